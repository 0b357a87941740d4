//! An outage while the timeline mailbox is full is still healed: the `SocketGap` the
//! ConnectionActor sends when a socket comes back goes through the plain `Recipient` it
//! holds (`do_send`), which queues past the bounded mailbox that events are refused at.
//! Here the TimelineActor is held busy (its shutdown save blocks in a store that waits for
//! the test), its mailbox is filled until an event is refused and its channel until any
//! bounded send is, the gap is sent, and once the actor runs again the open conversation
//! must be asked to be backfilled.

use actix::dev::channel;
use actix::prelude::*;
use chrono::Utc;
use dashmap::DashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timelined_actors::backfill::actor::Backfill;
use timelined_actors::event::{Action, EventDetails, ParticipantEvent};
use timelined_actors::mailbox::{Inbox, Mailbox};
use timelined_actors::metrics::{Metrics, Stage};
use timelined_actors::timeline::actor::{
    ParticipantEvents, Persist, SocketGap, TimelineActor, TimelineActorConfig, TimelineLinks,
};
use timelined_actors::timeline::state::{FinalSave, SaveError, Snapshot, StateStore, Unwritten};
use timelined_actors::timeline::{GapLedger, Outage, TimelineBook, TimelineRules};

/// A store whose shutdown save says it has begun, then waits until it is let go.
struct HeldStore {
    begun: SyncSender<()>,
    release: Mutex<Receiver<()>>,
}

impl StateStore for HeldStore {
    fn checkpoint(&self, _: &mut dyn FnMut() -> Snapshot) -> bool {
        false
    }

    fn save_final(&self, _: Snapshot) -> Result<FinalSave, SaveError> {
        self.begun.send(()).unwrap();
        self.release.lock().unwrap().recv().unwrap();
        Ok(FinalSave { saved: 0, superseded_checkpoint: false })
    }
}

/// Records the conversations it is asked to backfill.
struct Requests(Arc<Mutex<Vec<String>>>);

impl Actor for Requests {
    type Context = Context<Self>;
}

impl Handler<Backfill> for Requests {
    type Result = ();

    fn handle(&mut self, Backfill(requests): Backfill, _: &mut Context<Self>) {
        self.0.lock().unwrap().extend(requests.into_iter().map(|r| r.conversation));
    }
}

fn joined(conversation: &str, participant: &str) -> ParticipantEvents {
    let details = EventDetails { purpose: Some("customer".into()), ..Default::default() };
    ParticipantEvents {
        channel: 0,
        events: vec![ParticipantEvent::new(
            conversation.into(),
            participant,
            Action::Joined,
            Utc::now(),
            details,
        )],
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_rt::test]
async fn an_outage_while_the_timeline_mailbox_is_full_is_still_healed() {
    let metrics = Arc::new(Metrics::new());
    let inbox = Inbox::new(Stage::Timeline, 2, &metrics);
    let (sender, receiver) = channel::channel::<TimelineActor>(inbox.capacity());
    let timeline = Addr::new(sender);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let backfill = Requests(asked.clone()).start();
    let (begun, has_begun) = sync_channel(1);
    let (let_go, release) = sync_channel(1);
    let open = Arc::new(DashMap::new());
    let rules = TimelineRules {
        reorder_window: Duration::ZERO,
        close_after: Duration::from_secs(60),
        verify_after: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(3600),
        tombstone_ttl: Duration::from_secs(600),
        max_participants: 1000,
        max_open_conversations: 1000,
    };
    let actor = TimelineActor::new(
        TimelineBook::new(rules, open.clone()),
        inbox.clone(),
        TimelineLinks {
            consumers: Vec::new(),
            gaps: Arc::new(GapLedger::default()),
            backfill: Some(backfill.recipient()),
            discover: None,
            state: Some(Box::new(HeldStore { begun, release: Mutex::new(release) })),
            unwritten: Arc::new(Unwritten::new(0)),
        },
        TimelineActorConfig {
            tick_interval: Duration::from_millis(10),
            checkpoint_interval: Duration::from_secs(3600),
            gap_grace: Duration::ZERO,
            channels: 1,
        },
        metrics.clone(),
        slog::Logger::root(slog::Discard, slog::o!()),
    );
    let arbiter = Arbiter::new();
    arbiter.spawn_fn(move || {
        Context::with_receiver(receiver).run(actor);
    });
    let events = Mailbox::new(timeline.clone().recipient(), inbox, metrics.clone());
    let socket_gap: Recipient<SocketGap> = timeline.clone().recipient();

    events.offer(joined("open-before-the-outage", "customer")).unwrap_or_else(|_| panic!("room"));
    wait_until("the conversation to open", || open.contains_key("open-before-the-outage")).await;
    let save = timeline.send(Persist);
    let save = actix_rt::spawn(save);
    has_begun.recv_timeout(Duration::from_secs(10)).expect("the actor is held in its save");

    let mut refused = 0;
    for n in 0..10 {
        if events.offer(joined(&format!("during-{n}"), "customer")).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0, "the timeline mailbox is full: an event was refused");
    // Past the count of events, actix's own channel is filled too, until it refuses.
    let raw: Recipient<ParticipantEvents> = timeline.clone().recipient();
    let full =
        (0..1_000).any(|_| raw.try_send(ParticipantEvents { channel: 0, events: Vec::new() }).is_err());
    assert!(full, "the actor's channel is full: a bounded send is refused");
    assert!(asked.lock().unwrap().is_empty(), "nothing is asked before the gap");

    socket_gap.do_send(SocketGap { channel: 0, outage: Outage::Socket });
    let_go.send(()).unwrap();
    save.await.unwrap().unwrap().unwrap();
    wait_until("the open conversation to be backfilled", || {
        asked.lock().unwrap().iter().any(|c| c == "open-before-the-outage")
    })
    .await;
    arbiter.stop();
}
