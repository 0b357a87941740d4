//! TimelineActor: owns every open timeline (the [`TimelineBook`], whose `DashMap` the HTTP
//! side reads). It applies `ParticipantEvents` and publishes each entry the moment its
//! reorder window ends (a timer set for the oldest held entry, none at all with a window of
//! zero); its tick closes what has ended. Everything goes to every consumer, each through
//! its own bounded mailbox, the entries of one release as one message.

use super::state::{FinalSave, SaveError, StateStore, Unwritten};
use super::{
    Applied, ChannelSet, CloseReason, GapCause, GapLedger, Outage, Tick, TimelineBook, TimelineUpdate,
};
use crate::backfill::actor::{Backfill, BackfillResult, Discover, Discovered};
use crate::backfill::OutageWindow;
use crate::event::ParticipantEvent;
use crate::internal_events::BadInputLog;
use crate::mailbox::{Inbox, Mailbox, Weighted};
use crate::metrics::{DropReason, Metrics};
use crate::record::TimelineRecord;
use actix::prelude::*;
use slog::{warn, Logger};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The events of one frame, and the index of the channel whose socket carried it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ParticipantEvents {
    pub channel: usize,
    pub events: Vec<ParticipantEvent>,
}

/// What the TimelineActor publishes to every consumer (the outputs).
#[derive(Clone, Message)]
#[rtype(result = "()")]
pub enum Publication {
    /// Joins and leaves released together, in order.
    Updates(Arc<Vec<TimelineUpdate>>),
    Closed(Arc<TimelineRecord>, CloseReason),
}

impl Weighted for Publication {
    fn weight(&self) -> u64 {
        match self {
            Publication::Updates(updates) => updates.len() as u64,
            Publication::Closed(..) => 1,
        }
    }
}

impl Weighted for ParticipantEvents {
    fn weight(&self) -> u64 {
        self.events.len() as u64
    }
}

/// Publish everything still held and close every open timeline (shutdown). Answers once
/// the publications are queued to the consumers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll;

/// Shutdown with a state directory, first step: publish what is held and close what is
/// finished (the sinks then write it out before the save).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settle;

/// Shutdown with a state directory, last step: save what is open, and what closed but no
/// sink has made durable, for the next start — superseding a checkpoint in flight.
#[derive(Message)]
#[rtype(result = "Result<FinalSave, SaveError>")]
pub struct Persist;

/// Answers at once: the actor system's loop is turning (systemd watchdog).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Alive;

/// Offer again the closed timelines still waiting for room; answers how many still wait
/// (shutdown repeats it until none do).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Drain;

/// Channel `channel`'s socket was down (from some time until now): every open
/// conversation it carried may have missed events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketGap {
    pub channel: usize,
    pub outage: Outage,
}

#[derive(Clone, Debug)]
pub struct TimelineActorConfig {
    pub tick_interval: Duration,
    pub checkpoint_interval: Duration,
    /// After an outage, conversations first seen within this long are presumed to have
    /// begun while nobody listened, and are backfilled.
    pub gap_grace: Duration,
    /// How many channels (sockets) feed the actor, each with its own outages.
    pub channels: usize,
}

/// One consumer's mailbox, whether it takes joins/leaves or only closed timelines, and
/// whether it is a durable sink (settles what it writes in the [`Unwritten`] ledger).
pub struct ConsumerLink {
    pub mailbox: Mailbox<Publication>,
    pub wants_updates: bool,
    pub durable: bool,
}

/// Where the TimelineActor sends what it produces.
pub struct TimelineLinks {
    pub consumers: Vec<ConsumerLink>,
    /// Conversations whose events were dropped on the way in.
    pub gaps: Arc<GapLedger>,
    /// Where backfills are asked for (none in replay).
    pub backfill: Option<Recipient<Backfill>>,
    /// Where an outage is searched for conversations missed entirely.
    pub discover: Option<Recipient<Discover>>,
    /// Writes checkpoints and the shutdown save (none = nothing saved).
    pub state: Option<Box<dyn StateStore>>,
    /// Closed timelines not yet durable in every sink (saved as open meanwhile).
    pub unwritten: Arc<Unwritten>,
}

/// Closed timelines waiting for room in a consumer's mailbox, at most this many.
const MAX_REDELIVERY: usize = 100_000;

pub struct TimelineActor {
    book: TimelineBook,
    /// Each channel's outage in event time, by channel index.
    outages: Vec<OutageWindow>,
    /// When each channel's last outage ended (the conversations open then were marked then).
    last_outages: Vec<Option<Instant>>,
    redelivery: std::collections::VecDeque<(usize, Publication)>,
    /// Set for when the oldest held entry's reorder window ends.
    release_timer: Option<SpawnHandle>,
    inbox: Inbox,
    links: TimelineLinks,
    config: TimelineActorConfig,
    bad_input: BadInputLog,
    /// Bounds already logged as reached (each is logged once, then only counted).
    limits_logged: HashSet<crate::metrics::Limit>,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl TimelineActor {
    pub fn new(
        book: TimelineBook,
        inbox: Inbox,
        links: TimelineLinks,
        config: TimelineActorConfig,
        metrics: Arc<Metrics>,
        log: Logger,
    ) -> Self {
        let channels = config.channels.clamp(1, ChannelSet::CAPACITY);
        let mut outages: Vec<OutageWindow> = (0..channels).map(|_| OutageWindow::default()).collect();
        let mut last_outages = vec![None; channels];
        if book.open_count() > 0 {
            // Resumed after a restart: every channel missed events since the latest saved.
            let latest = book.latest_entry_time();
            for (outage, last) in outages.iter_mut().zip(&mut last_outages) {
                outage.resumed(latest);
                *last = Some(Instant::now());
            }
        }
        TimelineActor {
            book,
            outages,
            last_outages,
            redelivery: Default::default(),
            release_timer: None,
            inbox,
            links,
            config,
            bad_input: BadInputLog::default(),
            limits_logged: HashSet::new(),
            metrics,
            log,
        }
    }

    fn tick(&mut self) {
        self.redeliver();
        let now = Instant::now();
        for conversation in self.links.gaps.drain() {
            self.book.mark_gap(&conversation, now, GapCause::Loss);
        }
        let tick = self.book.tick(now);
        self.publish(tick);
        self.ask_backfills();
    }

    /// Publish what the reorder window lets go now, and set the timer for what it holds.
    fn release(&mut self, ctx: &mut Context<Self>) {
        let updates = self.book.release(Instant::now());
        self.publish_updates(updates);
        if self.release_timer.is_some() {
            return;
        }
        if let Some(due) = self.book.next_release() {
            let delay = due.saturating_duration_since(Instant::now());
            self.release_timer = Some(ctx.run_later(delay, |act, ctx| {
                act.release_timer = None;
                act.release(ctx);
            }));
        }
    }

    /// Save the open timelines so that a SIGKILL loses at most one interval. The state
    /// writer's thread writes it while events keep coming; one still being written is not
    /// started again.
    fn checkpoint(&mut self) {
        if let Some(writer) = &self.links.state {
            writer.checkpoint(&mut || self.book.snapshot(&self.links.unwritten));
        }
    }

    fn ask_backfills(&mut self) {
        let requests = self.book.take_backfills();
        self.metrics.gaps.inc_by(requests.len() as u64);
        if let (Some(backfill), false) = (&self.links.backfill, requests.is_empty()) {
            backfill.do_send(Backfill(requests)); // one per tick, each of at most the open conversations; lost only if the backfill actor stopped (shutdown)
        }
    }

    /// A bound refused something: counted, and logged the first time for each bound.
    fn limit_enforced(&mut self, limit: crate::metrics::Limit) {
        self.metrics.limits_enforced.get_or_create(&crate::metrics::LimitLabels { limit }).inc();
        if self.limits_logged.insert(limit) {
            warn!(self.log, "a bound on memory was reached (further ones are only counted)"; "limit" => limit.as_str());
        }
    }

    fn publish_updates(&mut self, updates: Vec<TimelineUpdate>) {
        if updates.is_empty() {
            return;
        }
        self.metrics.late_events.inc_by(updates.iter().filter(|u| u.late).count() as u64);
        self.broadcast(Publication::Updates(Arc::new(updates)));
    }

    fn publish(&mut self, tick: Tick) {
        for _ in 0..tick.evicted {
            self.limit_enforced(crate::metrics::Limit::OpenConversations);
        }
        self.publish_updates(tick.updates);
        for (record, reason) in tick.closed {
            self.metrics
                .timelines_closed
                .get_or_create(&crate::metrics::ClosedLabels {
                    complete: if record.complete { "true" } else { "false" },
                })
                .inc();
            let record = Arc::new(record);
            self.links.unwritten.closed(&record);
            self.broadcast(Publication::Closed(record, reason));
        }
        self.metrics.open_conversations.set(self.book.open_count() as i64);
    }

    /// Send to every consumer. A join/leave line that does not fit is dropped and counted;
    /// a closed timeline is kept and offered again on the next ticks — it is the product —
    /// unless its consumer is gone or too much is already waiting.
    fn broadcast(&mut self, publication: Publication) {
        let is_update = matches!(publication, Publication::Updates(_));
        for index in 0..self.links.consumers.len() {
            if !is_update || self.links.consumers[index].wants_updates {
                self.deliver(index, publication.clone());
            }
        }
    }

    fn deliver(&mut self, index: usize, publication: Publication) {
        let link = &self.links.consumers[index];
        let consumer = &link.mailbox;
        let refused = match publication {
            Publication::Closed(..) => match consumer.offer(publication) {
                Ok(()) => return,
                Err(refused)
                    if refused.reason == DropReason::MailboxFull
                        && self.redelivery.len() < MAX_REDELIVERY =>
                {
                    self.redelivery.push_back((index, refused.message));
                    return;
                }
                Err(refused) => {
                    // A durable sink settles what it takes; one it never gets is settled here.
                    if let (true, Publication::Closed(record, _)) = (link.durable, &refused.message) {
                        self.links.unwritten.settled(&record.conversation_id);
                    }
                    consumer.count_drop(refused.message, refused.reason)
                }
            },
            Publication::Updates(_) => match consumer.send(publication) {
                Ok(()) => return,
                Err(dropped) => dropped,
            },
        };
        self.bad_input.dropped(&self.log, consumer.stage(), refused.reason);
    }

    /// Offer the closed timelines that did not fit before, oldest first.
    fn redeliver(&mut self) {
        for _ in 0..self.redelivery.len() {
            let Some((index, publication)) = self.redelivery.pop_front() else {
                break;
            };
            self.deliver(index, publication);
        }
    }
}

impl Actor for TimelineActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.config.tick_interval, |act, _| act.tick());
        if self.links.state.is_some() {
            ctx.run_interval(self.config.checkpoint_interval, |act, _| act.checkpoint());
        }
    }
}

impl Handler<ParticipantEvents> for TimelineActor {
    type Result = ();

    fn handle(&mut self, ParticipantEvents { channel, events }: ParticipantEvents, ctx: &mut Context<Self>) {
        self.inbox.received(events.len() as u64);
        let now = Instant::now();
        if let (Some(latest), Some(outage)) =
            (events.iter().map(|e| e.at).max(), self.outages.get_mut(channel))
        {
            if let (Some((from, to)), Some(discover)) = (outage.observed(latest), &self.links.discover) {
                discover.do_send(Discover { channel, from, to }); // once per outage; lost only if the backfill actor stopped (shutdown)
            }
        }
        for event in events {
            match self.book.apply_from(channel, event, now) {
                Applied::Accepted => {}
                Applied::Duplicate | Applied::AfterClose => {
                    self.metrics.duplicate_events.inc();
                }
                Applied::OverLimit => self.limit_enforced(crate::metrics::Limit::Participants),
            }
        }
        self.release(ctx);
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

impl Handler<Settle> for TimelineActor {
    type Result = ();

    fn handle(&mut self, _: Settle, _: &mut Context<Self>) {
        self.tick();
        let now = Instant::now();
        let released = self.book.release_all(now);
        self.publish(released);
        let finished = self.book.close_finished(now);
        self.publish(finished);
    }
}

impl Handler<Persist> for TimelineActor {
    type Result = Result<FinalSave, SaveError>;

    /// Blocks this actor's thread until the save is durable: at shutdown nothing else is
    /// left for it to do.
    fn handle(&mut self, _: Persist, _: &mut Context<Self>) -> Self::Result {
        let snapshot = self.book.snapshot(&self.links.unwritten);
        match &self.links.state {
            Some(writer) => writer.save_final(snapshot),
            None => Ok(FinalSave { saved: 0, superseded_checkpoint: false }),
        }
    }
}

impl Handler<Alive> for TimelineActor {
    type Result = ();

    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
}

impl Handler<Drain> for TimelineActor {
    type Result = usize;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> usize {
        self.redeliver();
        self.redelivery.len()
    }
}

impl Handler<SocketGap> for TimelineActor {
    type Result = ();

    fn handle(&mut self, SocketGap { channel, outage }: SocketGap, _: &mut Context<Self>) {
        if let Some(last) = self.last_outages.get_mut(channel) {
            *last = Some(Instant::now());
        }
        self.book.socket_gap_on(channel, outage, Instant::now(), self.config.gap_grace);
        if let Some(window) = self.outages.get_mut(channel) {
            window.socket_gap();
        }
        self.ask_backfills();
    }
}

impl Handler<Discovered> for TimelineActor {
    type Result = ();

    fn handle(&mut self, Discovered { channel, conversations }: Discovered, _: &mut Context<Self>) {
        let now = Instant::now();
        let last_outage = self.last_outages.get(channel).copied().flatten();
        for conversation in conversations {
            // Each may have begun while nobody listened: missed entirely (then whatever the
            // backfill brings was missed), or first seen since (then what it brings before
            // the stream's latest was missed). One open before the outage was marked then;
            // a closed one stays closed.
            let marked_at_outage =
                last_outage.is_some_and(|outage| self.book.open_since_before(&conversation, outage));
            if !marked_at_outage && !self.book.backfill_pending(&conversation) {
                self.book.mark_gap(&conversation, now, GapCause::Outage);
            }
        }
        self.ask_backfills();
    }
}

impl Handler<BackfillResult> for TimelineActor {
    type Result = ();

    fn handle(&mut self, result: BackfillResult, ctx: &mut Context<Self>) {
        let refused = self.book.backfilled(&result.request, result.events, result.succeeded, Instant::now());
        for _ in 0..refused {
            self.limit_enforced(crate::metrics::Limit::Participants);
        }
        self.release(ctx);
    }
}
