//! Shared helpers of the integration tests: start the simulator and the daemon on
//! loopback, wait on conditions with deadlines, read the JSONL sink.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use timelined::cli::{demo_settings, jsonl_sink};
use timelined::settings::Settings;
use timelined::sim::{self, SimConfig, SimHandle};
use timelined_actors::record::TimelineRecord;
use timelined_actors::wire::Dialect;

pub fn quiet_logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Poll `condition` every 20 ms until it holds; panic with `what` at the deadline.
pub async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + deadline;
    while !condition() {
        assert!(Instant::now() < give_up, "timed out after {deadline:?} waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn simulator(config: SimConfig) -> SimHandle {
    sim::start(config).await.expect("simulator starts on loopback")
}

/// Daemon settings pointed at `sim`, fast closing, JSONL sink at `sink`.
pub fn settings_for(sim: &SimHandle, dialect: Dialect, sink: &Path) -> Settings {
    let queues: Vec<String> = sim::DEFAULT_QUEUES.iter().map(|q| q.to_string()).collect();
    let mut settings = demo_settings(&sim.base_url(), &queues, dialect);
    settings.pipeline.close_after = Duration::from_millis(300);
    settings.sinks = vec![jsonl_sink(sink.to_path_buf())];
    settings
}

pub fn read_jsonl(path: &Path) -> Vec<TimelineRecord> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("every sink line is a timeline"))
        .collect()
}

pub fn by_id(records: Vec<TimelineRecord>) -> BTreeMap<String, TimelineRecord> {
    records.into_iter().map(|r| (r.conversation_id.clone(), r)).collect()
}

/// The analytics stream carries no purpose, user or queue: compare the rest.
pub fn analytics_projection(mut record: TimelineRecord) -> TimelineRecord {
    for participant in &mut record.participants {
        participant.purpose = None;
        participant.user_id = None;
        participant.queue_id = None;
    }
    for entry in &mut record.entries {
        entry.purpose = None;
    }
    record
}

/// Assert two sets of timelines are equal, naming the first conversation that differs.
pub fn assert_same_timelines(
    label: &str,
    actual: &BTreeMap<String, TimelineRecord>,
    expected: &BTreeMap<String, TimelineRecord>,
) {
    let missing: Vec<&String> = expected.keys().filter(|id| !actual.contains_key(*id)).collect();
    let extra: Vec<&String> = actual.keys().filter(|id| !expected.contains_key(*id)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{label}: missing {missing:?}, unexpected {extra:?}");
    for (id, want) in expected {
        assert_eq!(&actual[id], want, "{label}: conversation {id} differs");
    }
}

pub fn temp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Every conversation of the truth is in `closed` exactly once and equals it — or, where
/// the daemon marked a gap, it says so, is healed and complete, and otherwise equals it.
/// Returns how many were healed.
pub fn assert_equal_or_healed(label: &str, closed: &[TimelineRecord], truth: &[TimelineRecord]) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for record in closed {
        assert!(
            seen.insert(record.conversation_id.clone()),
            "{label}: {} written twice",
            record.conversation_id
        );
    }
    let actual = by_id(closed.to_vec());
    let mut healed = 0;
    for want in truth {
        let Some(got) = actual.get(&want.conversation_id) else {
            panic!("{label}: conversation {} lost", want.conversation_id);
        };
        if got.gaps == 0 {
            assert_eq!(got, want, "{label}: conversation {} differs", want.conversation_id);
        } else {
            assert!(
                got.healed && got.complete,
                "{label}: {} has a gap and is not healed: {got:?}",
                got.conversation_id
            );
            let normalised = TimelineRecord { gaps: 0, healed: false, ..got.clone() };
            assert_eq!(&normalised, want, "{label}: healed conversation {} differs", want.conversation_id);
            healed += 1;
        }
    }
    assert_eq!(actual.len(), truth.len(), "{label}: timelines the simulator never played");
    healed
}
