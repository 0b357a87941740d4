//! TimelineActor: owns every open timeline (the [`TimelineBook`], whose `DashMap` the HTTP
//! side reads). It applies `ParticipantEvents`, and on its tick publishes what the
//! reorder window releases and what has closed to every consumer, each through its own
//! bounded mailbox.

use super::{Applied, CloseReason, GapLedger, Tick, TimelineBook, TimelineUpdate};
use crate::consumer::actor::Publication;
use crate::event::ParticipantEvent;
use crate::internal_events::BadInputLog;
use crate::mailbox::{Inbox, Mailbox, Weighted};
use crate::metrics::Metrics;
use crate::record::TimelineRecord;
use actix::prelude::*;
use slog::Logger;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The events of one frame.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ParticipantEvents(pub Vec<ParticipantEvent>);

impl Weighted for ParticipantEvents {
    fn weight(&self) -> u64 {
        self.0.len() as u64
    }
}

/// Publish everything still held and close every open timeline (shutdown). Answers once
/// the publications are queued to the consumers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll;

pub struct TimelineActor {
    book: TimelineBook,
    inbox: Inbox,
    consumers: Vec<Mailbox<Publication>>,
    gaps: Arc<GapLedger>,
    tick_interval: Duration,
    bad_input: BadInputLog,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl TimelineActor {
    pub fn new(
        book: TimelineBook,
        inbox: Inbox,
        consumers: Vec<Mailbox<Publication>>,
        gaps: Arc<GapLedger>,
        tick_interval: Duration,
        metrics: Arc<Metrics>,
        log: Logger,
    ) -> Self {
        TimelineActor {
            book,
            inbox,
            consumers,
            gaps,
            tick_interval,
            bad_input: BadInputLog::default(),
            metrics,
            log,
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        for conversation in self.gaps.drain() {
            self.book.mark_gap(&conversation, now);
            self.metrics.gaps.inc();
        }
        let tick = self.book.tick(now);
        self.publish(tick);
    }

    fn publish(&mut self, tick: Tick) {
        for update in tick.updates {
            if update.late {
                self.metrics.late_events.inc();
            }
            self.broadcast(Publication::Update(Arc::new(update)));
        }
        for (record, reason) in tick.closed {
            self.metrics
                .timelines_closed
                .get_or_create(&crate::metrics::ClosedLabels {
                    complete: if record.complete { "true" } else { "false" },
                })
                .inc();
            self.broadcast(Publication::Closed(Arc::new(record), reason));
        }
        self.metrics.open_conversations.set(self.book.open_count() as i64);
    }

    fn broadcast(&mut self, publication: Publication) {
        for consumer in &self.consumers {
            if let Err(dropped) = consumer.send(publication.clone()) {
                self.bad_input
                    .dropped(&self.log, consumer.stage(), dropped.reason);
            }
        }
    }
}

impl Actor for TimelineActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.tick_interval, |act, _| act.tick());
    }
}

impl Handler<ParticipantEvents> for TimelineActor {
    type Result = ();

    fn handle(&mut self, ParticipantEvents(events): ParticipantEvents, _: &mut Context<Self>) {
        self.inbox.taken();
        let now = Instant::now();
        for event in events {
            match self.book.apply(event, now) {
                Applied::Accepted => {}
                Applied::Duplicate | Applied::AfterClose => {
                    self.metrics.duplicate_events.inc();
                }
            }
        }
    }
}

impl Handler<CloseAll> for TimelineActor {
    type Result = ();

    fn handle(&mut self, _: CloseAll, _: &mut Context<Self>) {
        self.tick();
        let tick = self.book.close_all(Instant::now());
        self.publish(tick);
    }
}

/// What one closed timeline looks like to consumers.
pub type Closed = (Arc<TimelineRecord>, CloseReason);

/// What one published entry looks like to consumers.
pub type Update = Arc<TimelineUpdate>;
