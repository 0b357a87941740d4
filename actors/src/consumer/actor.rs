//! ConsumerActor: one per output, each with its own bounded mailbox, so a slow sink fills
//! its own mailbox (and counts its own drops) without holding up the others.

use super::Output;
use crate::mailbox::{Inbox, Weighted};
use crate::timeline::actor::Publication;
use actix::prelude::*;
use slog::{error, Logger};

/// Flush buffered output; answers when done (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// Open the output's files anew (SIGHUP); answers whether that worked.
#[derive(Message)]
#[rtype(result = "std::io::Result<()>")]
pub struct Reopen;

pub struct ConsumerActor {
    output: Box<dyn Output>,
    inbox: Inbox,
    failing: bool,
    log: Logger,
}

impl ConsumerActor {
    pub fn new(output: Box<dyn Output>, inbox: Inbox, log: Logger) -> Self {
        ConsumerActor { output, inbox, failing: false, log }
    }

    fn result(&mut self, result: std::io::Result<()>) {
        match result {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                error!(self.log, "output write failed"; "error" => %e);
            }
            Err(_) => {}
        }
    }
}

impl Actor for ConsumerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.output.tick_interval() {
            ctx.run_interval(every, |act, _| act.output.tick());
        }
    }
}

impl Handler<Publication> for ConsumerActor {
    type Result = ();

    fn handle(&mut self, publication: Publication, _: &mut Context<Self>) {
        self.inbox.received(publication.weight());
        let result = match &publication {
            Publication::Updates(updates) => {
                // Every line is attempted; a failure is reported once (see `result`).
                updates.iter().map(|update| self.output.update(update)).fold(Ok(()), Result::and)
            }
            Publication::Closed(record, reason) => self.output.closed(record, *reason),
        };
        self.result(result);
    }
}

impl Handler<Flush> for ConsumerActor {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) {
        let result = self.output.flush();
        self.result(result);
    }
}

impl Handler<Reopen> for ConsumerActor {
    type Result = std::io::Result<()>;

    fn handle(&mut self, _: Reopen, _: &mut Context<Self>) -> Self::Result {
        self.output.reopen()
    }
}
