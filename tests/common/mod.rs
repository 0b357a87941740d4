//! Shared helpers of the integration tests: start the simulator and the daemon on
//! loopback, wait on conditions with deadlines, read the JSONL sink.

#![allow(dead_code)]

pub mod process;
pub mod sim_client;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use timelined::cli::{demo_settings, jsonl_sink};
use timelined::settings::Settings;
use timelined::sim::{self, SimConfig, SimHandle};
use timelined_actors::record::TimelineRecord;
use timelined_actors::wire::Dialect;

/// Discards logs, unless `TIMELINED_TEST_LOG` is set (then they go to stderr: debugging).
pub fn quiet_logger() -> slog::Logger {
    if std::env::var_os("TIMELINED_TEST_LOG").is_some() {
        use slog::Drain;
        let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
        return slog::Logger::root(slog_term::FullFormat::new(decorator).build().fuse(), slog::o!());
    }
    slog::Logger::root(slog::Discard, slog::o!())
}

pub fn install_crypto() {
    timelined::cli::install_crypto_provider();
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

/// The timelines in the sink so far. The daemon may be writing while this reads: a line
/// that is not yet complete (no newline; a write spanning pages becomes visible a page at
/// a time) is not read. Whether a stopped daemon left a partial line is `whole_lines`'s
/// question.
pub fn read_jsonl(path: &Path) -> Vec<TimelineRecord> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("every sink line is a timeline"))
        .collect()
}

/// Whether the file ends at a line's end: what a sink must leave when it stops.
pub fn whole_lines(path: &Path) -> bool {
    std::fs::read(path).map_or(true, |bytes| bytes.is_empty() || bytes.ends_with(b"\n"))
}

/// Whether every conversation of `truth` has been written to the sink. By id, not by
/// count: injected conversations and duplicates also land in the sink, and counting them
/// would end a wait before the last played conversation is written.
pub fn sink_holds_all(sink: &Path, truth: &[TimelineRecord]) -> bool {
    let written: BTreeSet<String> =
        read_jsonl(sink).into_iter().map(|record| record.conversation_id).collect();
    truth.iter().all(|record| written.contains(&record.conversation_id))
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
    let mut seen = BTreeSet::new();
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

/// A daemon (in process) against a simulator, with a JSONL sink; for the fault tests.
pub struct Fixture {
    pub sim: SimHandle,
    pub daemon: timelined::daemon::Daemon,
    pub sink: PathBuf,
    pub readiness: ReadinessWatch,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start(config: SimConfig, dialect: Dialect, tweak: impl FnOnce(&mut Settings)) -> Fixture {
        Fixture::start_after(config, dialect, &[], tweak).await
    }

    /// As `start`, with `faults` switched on before the daemon makes its first call.
    pub async fn start_after(
        config: SimConfig,
        dialect: Dialect,
        faults: &[timelined::sim::Fault],
        tweak: impl FnOnce(&mut Settings),
    ) -> Fixture {
        Fixture::start_logged(config, dialect, faults, tweak, quiet_logger()).await
    }

    /// As `start_after`, logging to `log`.
    pub async fn start_logged(
        config: SimConfig,
        dialect: Dialect,
        faults: &[timelined::sim::Fault],
        tweak: impl FnOnce(&mut Settings),
        log: slog::Logger,
    ) -> Fixture {
        install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let sink = temp_path(&dir, "timelines.jsonl");
        let sim = simulator(config).await;
        for fault in faults {
            sim.fault(fault.clone()).expect("a valid fault");
        }
        let mut settings = settings_for(&sim, dialect, &sink);
        // Fast failure detection, so a fault test takes seconds.
        settings.heartbeat.ping_interval = Duration::from_millis(200);
        settings.heartbeat.stale_timeout = Duration::from_millis(800);
        settings.reconnect.initial_backoff = Duration::from_millis(50);
        settings.reconnect.max_backoff = Duration::from_millis(500);
        settings.reconnect.rotation_overlap = Duration::from_millis(500);
        settings.pipeline.verify_after = Duration::from_secs(10);
        tweak(&mut settings);
        let daemon = timelined::daemon::Daemon::start(&settings, log).unwrap();
        let readiness = ReadinessWatch::spawn(daemon.probe());
        Fixture { sim, daemon, sink, readiness, _dir: dir }
    }

    /// Wait until the daemon is streaming events.
    pub async fn streaming(&self) {
        let metrics = self.daemon.metrics.clone();
        wait_until("events to stream", Duration::from_secs(20), || metrics.events_received.get() > 20).await;
        wait_until("readiness", Duration::from_secs(20), || self.daemon.readiness().is_ok()).await;
    }

    /// Wait for every conversation to close into the sink; returns (closed, truth, hidden).
    pub async fn finish(&self) -> (Vec<TimelineRecord>, Vec<TimelineRecord>, BTreeSet<String>) {
        wait_until("every conversation to close into the sink", Duration::from_secs(60), || {
            self.sim.finished() && sink_holds_all(&self.sink, &self.sim.truth())
        })
        .await;
        (read_jsonl(&self.sink), self.sim.truth(), self.sim.hidden())
    }

    pub fn reconnects(&self, cause: timelined_actors::metrics::ReconnectCause) -> u64 {
        self.daemon.metrics.reconnects.get_or_create(&timelined_actors::metrics::CauseLabels { cause }).get()
    }

    pub fn token_refreshes(&self, outcome: timelined_actors::metrics::TokenOutcome) -> u64 {
        self.daemon
            .metrics
            .token_refreshes
            .get_or_create(&timelined_actors::metrics::TokenLabels { outcome })
            .get()
    }

    pub async fn stop(self) {
        self.readiness.stop();
        self.daemon.shutdown().await;
        self.sim.stop().await;
    }
}

/// Every truth conversation closed exactly once and equal to the truth — or marked with
/// its gap, healed, and otherwise equal; and a gap only where the simulator hid frames of
/// that conversation (a gap claimed anywhere else is a false alarm to a supervisor).
/// Returns how many were healed.
pub fn assert_truth_or_healed(
    label: &str,
    closed: &[TimelineRecord],
    truth: &[TimelineRecord],
    hidden: &BTreeSet<String>,
) -> usize {
    let healed = assert_equal_or_healed(label, closed, truth);
    let unexplained: Vec<&str> = closed
        .iter()
        .filter(|r| r.gaps > 0 && !hidden.contains(&r.conversation_id))
        .map(|r| r.conversation_id.as_str())
        .collect();
    assert!(
        unexplained.is_empty(),
        "{label}: gap marked on conversations the simulator hid nothing of: {unexplained:?}"
    );
    healed
}

/// Records whether readiness was ever lost, polling every 10 ms.
pub struct ReadinessWatch {
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: actix_rt::task::JoinHandle<()>,
}

impl ReadinessWatch {
    pub fn spawn(probe: timelined::daemon::Probe) -> ReadinessWatch {
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = lost.clone();
        let task = actix_rt::spawn(async move {
            let mut was_ready = false;
            loop {
                let ready = probe.readiness().is_ok();
                if was_ready && !ready {
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                was_ready |= ready;
                actix_rt::time::sleep(Duration::from_millis(10)).await;
            }
        });
        ReadinessWatch { lost, task }
    }

    /// Readiness went from ready to not ready at least once.
    pub fn was_lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

/// A logger that keeps every message and its key-values for assertions.
#[derive(Clone, Default)]
pub struct CapturedLog(pub std::sync::Arc<std::sync::Mutex<Vec<CapturedLine>>>);

/// A log message and its key-values, in order.
#[derive(Clone, Debug)]
pub struct CapturedLine {
    pub message: String,
    pub values: Vec<(String, String)>,
}

impl CapturedLine {
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl CapturedLog {
    pub fn logger(&self) -> slog::Logger {
        use slog::Drain;
        slog::Logger::root(self.clone().fuse(), slog::o!())
    }

    /// How many lines with this message (prefix) and `reason`.
    pub fn count(&self, message: &str, reason: Option<&str>) -> usize {
        self.lines()
            .iter()
            .filter(|line| line.message.starts_with(message) && line.value("reason") == reason)
            .count()
    }

    pub fn lines(&self) -> Vec<CapturedLine> {
        self.0.lock().unwrap().clone()
    }
}

struct Values(Vec<(String, String)>);

impl slog::Serializer for Values {
    fn emit_arguments(&mut self, key: slog::Key, value: &std::fmt::Arguments) -> slog::Result {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

impl slog::Drain for CapturedLog {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let mut values = Values(Vec::new());
        let _ = slog::KV::serialize(&record.kv(), record, &mut values);
        self.0.lock().unwrap().push(CapturedLine { message: record.msg().to_string(), values: values.0 });
        Ok(())
    }
}

/// When each conversation first appeared in a sink, polled every 50 ms while the daemon
/// runs: how late a timeline was written, judged before shutdown closes everything.
pub struct SinkWatch {
    sink: PathBuf,
    seen: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Instant>>>,
    task: actix_rt::task::JoinHandle<()>,
}

impl SinkWatch {
    pub fn spawn(sink: PathBuf) -> SinkWatch {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let recorded = seen.clone();
        let polled = sink.clone();
        let task = actix_rt::spawn(async move {
            loop {
                let now = Instant::now();
                let records = read_jsonl(&polled);
                {
                    let mut seen = recorded.lock().unwrap();
                    for record in records {
                        seen.entry(record.conversation_id).or_insert(now);
                    }
                }
                actix_rt::time::sleep(Duration::from_millis(50)).await;
            }
        });
        SinkWatch { sink, seen, task }
    }

    /// What has been seen, with a last look now (the poll may not have come round yet).
    pub fn seen(&self) -> BTreeMap<String, Instant> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap();
        for record in read_jsonl(&self.sink) {
            seen.entry(record.conversation_id).or_insert(now);
        }
        seen.clone()
    }
}

impl Drop for SinkWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The latest time any join or leave of each conversation was sent (the simulator's send
/// log, `SimConfig::send_log`).
pub fn last_sent(sim: &SimHandle) -> BTreeMap<String, Instant> {
    let mut last = BTreeMap::new();
    for sent in sim.take_send_log() {
        let at = last.entry(sent.key.conversation).or_insert(sent.at);
        *at = (*at).max(sent.at);
    }
    last
}

/// Each truth conversation's delay from its last event sent to its line in the sink,
/// longest first; a conversation never seen counts as `Duration::MAX`.
pub fn write_delays(
    truth: &[TimelineRecord],
    sent: &BTreeMap<String, Instant>,
    seen: &BTreeMap<String, Instant>,
) -> Vec<(Duration, String)> {
    let mut delays: Vec<(Duration, String)> = truth
        .iter()
        .filter_map(|record| {
            let id = &record.conversation_id;
            let sent = sent.get(id)?;
            let delay = seen.get(id).map_or(Duration::MAX, |seen| seen.saturating_duration_since(*sent));
            Some((delay, id.clone()))
        })
        .collect();
    delays.sort_by(|a, b| b.cmp(a));
    delays
}
