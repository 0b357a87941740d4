//! Overload: full mailboxes drop, count exactly, and heal. A timeline mailbox too small
//! for a burst drops events — every one counted, every affected conversation backfilled
//! and healed. A log output that stalls fills its own mailbox — its drops counted
//! exactly — while closed timelines still reach the sink and the daemon stays ready.

mod common;

use common::*;
use slog::Drain;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use timelined::daemon::Daemon;
use timelined::sim::SimConfig;
use timelined_actors::metrics::{ActorLabels, DropReason, Stage};
use timelined_actors::wire::Dialect;

fn delivered(daemon: &Daemon, stage: Stage) -> u64 {
    daemon.metrics.delivered.get_or_create(&ActorLabels { actor: stage }).get()
}

fn dropped(daemon: &Daemon, stage: Stage) -> u64 {
    DropReason::ALL.iter().map(|&reason| daemon.metrics.dropped(stage, reason)).sum()
}

#[actix_rt::test]
async fn a_full_timeline_mailbox_drops_counts_exactly_and_every_affected_timeline_heals() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let sink = temp_path(&dir, "timelines.jsonl");
    let sim =
        simulator(SimConfig { seed: 21, conversations: 150, rate: 20_000, ..SimConfig::default() }).await;
    let mut settings = settings_for(&sim, Dialect::Notifications, &sink);
    settings.pipeline.timeline_mailbox = 2;
    // Dropping at a full mailbox is what this test is about: no holding the socket back.
    settings.pipeline.pause_reading = false;
    let daemon = Daemon::start(&settings, quiet_logger()).unwrap();
    wait_until("every conversation closed into the sink", Duration::from_secs(60), || {
        sim.finished() && sink_holds_all(&sink, &sim.truth())
    })
    .await;

    let timeline_drops = dropped(&daemon, Stage::Timeline);
    assert!(timeline_drops > 0, "the burst did overflow the mailbox");
    assert_eq!(
        daemon.metrics.events_received.get(),
        delivered(&daemon, Stage::Timeline) + timeline_drops,
        "every event received was either delivered or counted as dropped"
    );
    let healed = assert_equal_or_healed("overflow", &read_jsonl(&sink), &sim.truth());
    assert!(healed > 0, "dropped events were healed by backfill");
    assert!(
        daemon
            .metrics
            .backfills
            .get_or_create(&timelined_actors::metrics::BackfillLabels {
                outcome: timelined_actors::metrics::BackfillOutcome::Ok
            })
            .get()
            > 0
    );
    assert_eq!(daemon.readiness(), Ok(()), "still streaming after the overflow");
    daemon.shutdown().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn a_nearly_full_timeline_mailbox_holds_the_socket_back_and_nothing_is_dropped() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let sink = temp_path(&dir, "timelines.jsonl");
    let sim =
        simulator(SimConfig { seed: 21, conversations: 150, rate: 20_000, ..SimConfig::default() }).await;
    let mut settings = settings_for(&sim, Dialect::Notifications, &sink);
    // The burst and the mailbox that drop when the socket is read regardless (above).
    settings.pipeline.timeline_mailbox = 2;
    assert!(settings.pipeline.pause_reading, "on by default");
    let daemon = Daemon::start(&settings, quiet_logger()).unwrap();
    wait_until("every conversation closed into the sink", Duration::from_secs(60), || {
        sim.finished() && sink_holds_all(&sink, &sim.truth())
    })
    .await;

    assert_eq!(dropped(&daemon, Stage::Timeline), 0, "held back, not dropped");
    assert_eq!(daemon.metrics.events_received.get(), delivered(&daemon, Stage::Timeline));
    let timelines = read_jsonl(&sink);
    assert!(timelines.iter().all(|t| t.gaps == 0), "nothing was missed, so nothing was healed");
    assert_eq!(assert_equal_or_healed("held back", &timelines, &sim.truth()), 0);
    daemon.shutdown().await;
    sim.stop().await;
}

/// A drain that blocks the timeline lines (joins, leaves, closed) while the gate is shut —
/// a stalled terminal or journald — and lets the daemon's own lines through.
#[derive(Clone)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn set(&self, open: bool) {
        *self.0 .0.lock().unwrap() = open;
        self.0 .1.notify_all();
    }
}

impl Drain for Gate {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let message = record.msg().to_string();
        if message.starts_with("participant") || message.starts_with("timeline closed") {
            let mut open = self.0 .0.lock().unwrap();
            while !*open {
                open = self.0 .1.wait(open).unwrap();
            }
        }
        Ok(())
    }
}

#[actix_rt::test]
async fn a_stalled_log_output_drops_only_its_own_lines_counted_exactly() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let sink = temp_path(&dir, "timelines.jsonl");
    let sim = simulator(SimConfig { seed: 22, conversations: 80, rate: 4000, ..SimConfig::default() }).await;
    let mut settings = settings_for(&sim, Dialect::Notifications, &sink);
    settings.pipeline.consumer_mailbox = 8;
    let gate = Gate(Arc::new((Mutex::new(false), Condvar::new())));
    let daemon = Daemon::start(&settings, slog::Logger::root(gate.clone(), slog::o!())).unwrap();

    wait_until(
        "every conversation closed into the sink while the log is stalled",
        Duration::from_secs(60),
        || sim.finished() && sink_holds_all(&sink, &sim.truth()),
    )
    .await;
    assert_eq!(daemon.readiness(), Ok(()), "the pipeline kept streaming");
    assert!(dropped(&daemon, Stage::Log) > 0, "the stalled output's mailbox overflowed");
    assert_eq!(dropped(&daemon, Stage::Sink), 0, "the sink is not held up by the log");
    assert_equal_or_healed("stalled log", &read_jsonl(&sink), &sim.truth());

    gate.set(true);
    let truth = sim.truth();
    // Offered to the log: every entry of every timeline, and one summary per timeline.
    let offered: u64 = truth.iter().map(|t| t.entries.len() as u64 + 1).sum();
    wait_until("the log output to catch up", Duration::from_secs(30), || {
        delivered(&daemon, Stage::Log) + dropped(&daemon, Stage::Log) >= offered
    })
    .await;
    assert_eq!(delivered(&daemon, Stage::Log) + dropped(&daemon, Stage::Log), offered);
    assert_eq!(dropped(&daemon, Stage::Log), daemon.metrics.dropped(Stage::Log, DropReason::MailboxFull));
    daemon.shutdown().await;
    sim.stop().await;
}
