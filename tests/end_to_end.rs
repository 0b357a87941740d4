//! The daemon against the simulator on loopback: 200 seeded conversations with transfers,
//! conferences, missed alerts, reordering and duplicates — every closed timeline in the
//! JSONL sink equals the simulator's ground truth, in both dialects; and replaying the
//! recorded frames yields the same timelines as the live run.

mod common;

use common::*;
use std::time::Duration;
use timelined::daemon::Daemon;
use timelined::sim::SimConfig;
use timelined_actors::wire::Dialect;

const CONVERSATIONS: u64 = 200;

fn scenario(seed: u64, record: Option<std::path::PathBuf>) -> SimConfig {
    SimConfig {
        seed,
        conversations: CONVERSATIONS,
        rate: 4000,
        reorder: true,
        duplicates: true,
        record,
        ..SimConfig::default()
    }
}

/// Play the scenario through the daemon; returns (truth, what the sink holds).
async fn play(
    dialect: Dialect,
    config: SimConfig,
) -> (
    Vec<timelined_actors::record::TimelineRecord>,
    Vec<timelined_actors::record::TimelineRecord>,
    timelined::sim::SimHandle,
    tempfile::TempDir,
) {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let sink = temp_path(&dir, "timelines.jsonl");
    let sim = simulator(config).await;
    let daemon = Daemon::start(&settings_for(&sim, dialect, &sink), quiet_logger()).unwrap();
    wait_until("the simulator to play every conversation", Duration::from_secs(60), || sim.finished()).await;
    let expected = sim.truth().len();
    wait_until("every timeline to close into the sink", Duration::from_secs(30), || {
        read_jsonl(&sink).len() >= expected
    })
    .await;
    assert_eq!(daemon.metrics.dropped_total(), 0, "nothing dropped at this rate");
    assert!(daemon.metrics.duplicate_events.get() > 0, "the scenario did deliver duplicates");
    daemon.shutdown().await;
    let truth = sim.truth();
    let closed = read_jsonl(&sink);
    (truth, closed, sim, dir)
}

#[actix_rt::test]
async fn notifications_dialect_rebuilds_every_conversation_exactly_and_replay_agrees() {
    let record_dir = tempfile::tempdir().unwrap();
    let record = record_dir.path().join("frames.jsonl");
    let (truth, closed, sim, _dir) = play(Dialect::Notifications, scenario(7, Some(record.clone()))).await;
    sim.stop().await;

    assert_eq!(truth.len() as u64, CONVERSATIONS);
    assert!(truth.iter().all(|t| t.complete));
    let shapes = |pred: &dyn Fn(&timelined_actors::record::TimelineRecord) -> bool| {
        truth.iter().filter(|t| pred(t)).count()
    };
    assert!(
        shapes(&|t| t.participants.iter().filter(|p| p.purpose.as_deref() == Some("agent")).count() >= 2) > 0,
        "transfers/conferences are in the mix"
    );
    assert!(shapes(&|t| t.media_types.contains(&"chat".to_string())) > 0, "chat is in the mix");
    assert_eq!(closed.len(), truth.len(), "each timeline is written once");
    let live = by_id(closed);
    assert_same_timelines("live notifications", &live, &by_id(truth));

    let report = timelined::replay::replay(
        std::io::BufReader::new(std::fs::File::open(&record).unwrap()),
        Dialect::Notifications,
        timelined::daemon::timeline_rules(&timelined::settings::Settings::default()),
        timelined::settings::Settings::default().pipeline.max_frame_bytes,
    )
    .unwrap();
    assert!(report.bad_lines.is_empty(), "{:?}", report.bad_lines);
    assert_same_timelines("replay", &by_id(report.timelines), &live);
}

#[actix_rt::test]
async fn analytics_stream_dialect_rebuilds_every_conversation_on_what_it_carries() {
    let (truth, closed, sim, _dir) = play(Dialect::AnalyticsStream, scenario(11, None)).await;
    sim.stop().await;
    assert_eq!(truth.len() as u64, CONVERSATIONS);
    assert_eq!(closed.len(), truth.len(), "each timeline is written once");
    let expected = by_id(truth.into_iter().map(analytics_projection).collect());
    assert_same_timelines("live analytics-stream", &by_id(closed), &expected);
}
