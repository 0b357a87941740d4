//! The one bounded-send rule of every data hop: actix counts
//! capacity per sender, so the real bound lives here — an atomic depth (mirrored in the
//! `mailbox_depth{actor}` gauge) checked before `try_send`. Capacity N accepts
//! exactly N; every further message is dropped and counted in
//! `events_dropped_total{stage,reason}`, and handed back so the caller can mark the gap.
//! A mailbox may also bound the events queued (the weight): one frame of 8 MiB can be
//! ~170k events in one message, so a bound in messages alone does not bound memory.

use crate::metrics::{ActorLabels, DropReason, Metrics, Stage};
use actix::dev::{Message, Recipient, SendError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;

/// How many events a message stands for, for the drop counter.
pub trait Weighted {
    fn weight(&self) -> u64 {
        1
    }
}

/// The receiving side's view: it calls [`Inbox::received`] first thing in every data handler.
#[derive(Clone, Debug)]
pub struct Inbox {
    stage: Stage,
    capacity: usize,
    /// This mailbox's own depth: the bound is checked against it.
    depth: Gauge,
    /// `mailbox_depth{actor}`, shared by every mailbox of the same stage.
    exported: Gauge,
    /// `delivered_total{actor}`.
    delivered: Counter,
    /// Events queued, and how many may be (none: no bound but the message count).
    weight: Gauge,
    weight_capacity: Option<u64>,
}

impl Inbox {
    pub fn new(stage: Stage, capacity: usize, metrics: &Metrics) -> Self {
        Inbox {
            stage,
            capacity,
            depth: Gauge::default(),
            exported: metrics.depth_gauge(stage),
            delivered: metrics.delivered.get_or_create(&ActorLabels { actor: stage }).clone(),
            weight: Gauge::default(),
            weight_capacity: None,
        }
    }

    /// Bound the events queued as well as the messages. A message heavier than the whole
    /// bound still passes into an empty mailbox: a frame the socket accepted is not
    /// refused for its size alone.
    pub fn with_weight_capacity(mut self, events: u64) -> Self {
        self.weight_capacity = Some(events);
        self
    }

    /// Count one more queued message; returns how many were queued before it.
    fn queued(&self) -> i64 {
        self.exported.inc();
        self.depth.inc()
    }

    /// The actix mailbox capacity to set in the actor's constructor closure: at least ours,
    /// so that our count, not actix's per-sender slots, decides.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Called first thing by the receiving handler with the message's weight: one message
    /// fewer queued, `weight` more events delivered (`delivered_total{actor}`, the twin of
    /// `events_dropped_total{stage}`: offered = delivered + dropped).
    pub fn received(&self, weight: u64) {
        self.unqueue();
        self.weight.dec_by(i64::try_from(weight).unwrap_or(i64::MAX));
        self.delivered.inc_by(weight);
    }

    fn unqueue(&self) {
        self.exported.dec();
        self.depth.dec();
    }

    pub fn depth(&self) -> i64 {
        self.depth.get()
    }
}

/// A message that was not delivered, with why.
#[derive(Debug)]
pub struct Dropped<M> {
    pub message: M,
    pub reason: DropReason,
}

/// The one long-lived sender to one actor.
pub struct Mailbox<M>
where
    M: Message + Send,
    M::Result: Send,
{
    recipient: Recipient<M>,
    inbox: Inbox,
    metrics: Arc<Metrics>,
}

impl<M> Mailbox<M>
where
    M: Message + Send + Weighted,
    M::Result: Send,
{
    pub fn new(recipient: Recipient<M>, inbox: Inbox, metrics: Arc<Metrics>) -> Self {
        Mailbox { recipient, inbox, metrics }
    }

    /// Deliver, or drop and count.
    pub fn send(&self, message: M) -> Result<(), Dropped<M>> {
        self.offer(message).map_err(|refused| self.count_drop(refused.message, refused.reason))
    }

    /// Deliver, or hand the message back uncounted: for a caller that keeps it and tries
    /// again (and counts it with [`Mailbox::count_drop`] if it finally gives up).
    pub fn offer(&self, message: M) -> Result<(), Dropped<M>> {
        if self.inbox.queued() >= self.inbox.capacity as i64 {
            self.inbox.unqueue();
            return Err(Dropped { message, reason: DropReason::MailboxFull });
        }
        let weight = i64::try_from(message.weight()).unwrap_or(i64::MAX);
        let before = self.inbox.weight.inc_by(weight);
        let too_heavy = self.inbox.weight_capacity.is_some_and(|capacity| {
            before > 0 && before.saturating_add(weight) > i64::try_from(capacity).unwrap_or(i64::MAX)
        });
        let refuse = |reason| {
            self.inbox.unqueue();
            self.inbox.weight.dec_by(weight);
            reason
        };
        if too_heavy {
            return Err(Dropped { message, reason: refuse(DropReason::MailboxFull) });
        }
        match self.recipient.try_send(message) {
            Ok(()) => Ok(()),
            Err(SendError::Full(message)) => {
                Err(Dropped { message, reason: refuse(DropReason::MailboxFull) })
            }
            Err(SendError::Closed(message)) => {
                Err(Dropped { message, reason: refuse(DropReason::ReceiverGone) })
            }
        }
    }

    pub fn count_drop(&self, message: M, reason: DropReason) -> Dropped<M> {
        self.metrics
            .events_dropped
            .get_or_create(&crate::metrics::DropLabels { stage: self.inbox.stage, reason })
            .inc_by(message.weight());
        Dropped { message, reason }
    }

    pub fn stage(&self) -> Stage {
        self.inbox.stage
    }

    /// This mailbox's depth, to watch from elsewhere.
    pub fn depth_gauge(&self) -> Gauge {
        self.inbox.depth.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::prelude::*;

    struct Item;
    impl Message for Item {
        type Result = ();
    }
    impl Weighted for Item {}

    struct Counter {
        inbox: Inbox,
        seen: Arc<std::sync::atomic::AtomicUsize>,
    }
    impl Actor for Counter {
        type Context = Context<Self>;
    }
    impl Handler<Item> for Counter {
        type Result = ();
        fn handle(&mut self, _: Item, _: &mut Context<Self>) {
            self.inbox.received(1);
            self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[actix_rt::test]
    async fn capacity_n_accepts_exactly_n_and_counts_every_further_message() {
        const N: usize = 16;
        let metrics = Arc::new(Metrics::new());
        let inbox = Inbox::new(Stage::Timeline, N, &metrics);
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let receiver_inbox = inbox.clone();
        let receiver_seen = seen.clone();
        let addr = Counter::create(move |ctx| {
            ctx.set_mailbox_capacity(receiver_inbox.capacity());
            Counter { inbox: receiver_inbox, seen: receiver_seen }
        });
        let mailbox = Mailbox::new(addr.recipient(), inbox.clone(), metrics.clone());
        // No await between sends: the receiver is held (it cannot run) the whole time.
        let outcomes: Vec<bool> = (0..N + 10).map(|_| mailbox.send(Item).is_ok()).collect();
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), N);
        assert!(outcomes[..N].iter().all(|ok| *ok), "the first N are the accepted ones");
        assert_eq!(metrics.dropped(Stage::Timeline, DropReason::MailboxFull), 10);
        assert_eq!(inbox.depth(), N as i64);

        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while seen.load(std::sync::atomic::Ordering::SeqCst) < N {
            assert!(std::time::Instant::now() < deadline, "receiver never drained");
            actix_rt::task::yield_now().await;
        }
        assert_eq!(inbox.depth(), 0, "the depth gauge follows the queue back down");
        let delivered = metrics.delivered.get_or_create(&ActorLabels { actor: Stage::Timeline }).get();
        assert_eq!(delivered + metrics.dropped(Stage::Timeline, DropReason::MailboxFull), (N + 10) as u64);
        assert!(mailbox.send(Item).is_ok(), "room again once drained");
    }

    #[actix_rt::test]
    async fn a_gone_receiver_is_counted_apart() {
        let metrics = Arc::new(Metrics::new());
        let inbox = Inbox::new(Stage::Log, 4, &metrics);
        let receiver_inbox = inbox.clone();
        let addr = Counter::create(move |ctx| {
            ctx.stop();
            Counter { inbox: receiver_inbox, seen: Default::default() }
        });
        let mailbox = Mailbox::new(addr.clone().recipient(), inbox, metrics.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while addr.connected() {
            assert!(std::time::Instant::now() < deadline, "actor never stopped");
            actix_rt::task::yield_now().await;
        }
        let dropped = mailbox.send(Item).unwrap_err();
        assert_eq!(dropped.reason, DropReason::ReceiverGone);
        assert_eq!(metrics.dropped(Stage::Log, DropReason::ReceiverGone), 1);
    }

    /// A message standing for this many events.
    struct Heavy(u64);
    impl Message for Heavy {
        type Result = ();
    }
    impl Weighted for Heavy {
        fn weight(&self) -> u64 {
            self.0
        }
    }
    struct Weigher {
        inbox: Inbox,
    }
    impl Actor for Weigher {
        type Context = Context<Self>;
    }
    impl Handler<Heavy> for Weigher {
        type Result = ();
        fn handle(&mut self, heavy: Heavy, _: &mut Context<Self>) {
            self.inbox.received(heavy.0);
        }
    }

    #[actix_rt::test]
    async fn a_weight_capacity_bounds_the_events_queued_not_just_the_messages() {
        let metrics = Arc::new(Metrics::new());
        let inbox = Inbox::new(Stage::Timeline, 100, &metrics).with_weight_capacity(1000);
        let receiver_inbox = inbox.clone();
        let addr = Weigher::create(move |ctx| {
            ctx.set_mailbox_capacity(receiver_inbox.capacity());
            Weigher { inbox: receiver_inbox }
        });
        let mailbox = Mailbox::new(addr.recipient(), inbox.clone(), metrics.clone());
        assert!(mailbox.send(Heavy(5000)).is_ok(), "into an empty mailbox, even past the bound");
        assert!(mailbox.send(Heavy(1)).is_err(), "nothing more while it is queued");
        assert_eq!(metrics.dropped(Stage::Timeline, DropReason::MailboxFull), 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while inbox.depth() > 0 {
            assert!(std::time::Instant::now() < deadline, "receiver never drained");
            actix_rt::task::yield_now().await;
        }
        let sent: Vec<bool> = (0..5).map(|_| mailbox.send(Heavy(300)).is_ok()).collect();
        assert_eq!(sent, [true, true, true, false, false], "300 + 300 + 300 fit in 1000; a fourth does not");
        assert_eq!(metrics.dropped(Stage::Timeline, DropReason::MailboxFull), 1 + 600);
    }
}
