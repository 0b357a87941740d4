//! The JSONL sink: closed timelines, one JSON object per line, in the order they closed.
//!
//! - **A line or nothing.** Each line is one `write`; if it fails partway, the file is cut
//!   back to where the line began. A partial last line found at open (a crash mid-write) is
//!   cut off and reported.
//! - **Held, not dropped.** A line that cannot be written (disk full, I/O error) is held in
//!   memory, with every later one behind it so the order stays; past `hold_bytes` what is
//!   held is spilled to a file in the state directory (fsynced); past `spill_bytes`, or if
//!   even the spill fails, a line is dropped — counted in
//!   `timelined_events_dropped_total{stage="sink",reason="output_failed"}` and logged. Every
//!   failed attempt counts in `timelined_output_errors_total{output="sink"}`, and `/readyz`
//!   names the sink and the error until it writes again. Then the spill and what is held
//!   are written, in order, once; a spill left by a restart is written first at the next
//!   start (lines the sink already has skipped).
//! - **Durable before forgotten.** A closed timeline stays in the [`Unwritten`] ledger —
//!   and so in every checkpoint, as open — until its line is fsynced (per [`Fsync`]) or
//!   spilled.
//! - **Reopened on request** (SIGHUP, after logrotate renamed the file): lines already
//!   written are synced, the path is opened anew; if that fails the old file is kept and
//!   the reopen retried.

use super::line_file::LineFile;
use super::read_back::{closed_in_sink, spill_line_already_written, spill_lines};
use crate::consumer::Output;
use crate::health::Health;
use crate::internal_events::printable;
use crate::metrics::{DropLabels, DropReason, Metrics, OutputKind, OutputLabels, Stage};
use crate::record::TimelineRecord;
use crate::timeline::state::Unwritten;
use crate::timeline::{CloseReason, TimelineUpdate};
use sha2::{Digest, Sha256};
use slog::{error, info, warn, Logger};
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// When a written line is fsynced (`sinks.fsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every line.
    Always,
    /// Every [`RETRY_INTERVAL`], if anything was written.
    #[default]
    Interval,
    /// Left to the kernel: a line counts as written once `write` returns.
    Never,
}

/// How often held lines are retried and, with [`Fsync::Interval`], written ones synced.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// How much of a sink's end is read to find what it already holds (at start-up, and when
/// a spill is taken up): far more than a checkpoint interval's worth.
pub const RECENT_TAIL_BYTES: u64 = 64 << 20;

#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub path: PathBuf,
    pub fsync: Fsync,
    /// Bytes of lines held in memory while the sink fails, before they are spilled.
    pub hold_bytes: u64,
    /// Where held lines are spilled (in the state directory); none = not spilled.
    pub spill: Option<PathBuf>,
    /// Largest spill file.
    pub spill_bytes: u64,
}

/// The spill file of the sink at `sink`, in `state_directory`: named after the sink's path,
/// so each sink finds its own after a restart.
pub fn spill_path(state_directory: &Path, sink: &Path) -> PathBuf {
    let digest = Sha256::digest(sink.as_os_str().as_encoded_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    state_directory.join(format!("sink-{name}.spill.jsonl"))
}

/// Lines spilled to disk, older than everything held in memory.
struct Spill {
    path: PathBuf,
    /// Bytes in the file.
    bytes: u64,
    /// Where the next line to write out begins.
    offset: u64,
    /// Lines not yet written out.
    lines: usize,
    /// Conversations the sink already had when a restart found this spill.
    skip: HashSet<String>,
}

struct Held {
    conversation: Arc<str>,
    line: Vec<u8>,
}

/// Everything the sink reports to (metrics, readiness, the ledger, the log).
pub struct SinkLinks {
    pub unwritten: Arc<Unwritten>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub log: Logger,
}

pub struct JsonlSink {
    config: SinkConfig,
    file: Option<LineFile>,
    /// A reopen was asked for and has not succeeded yet.
    reopen: bool,
    spill: Option<Spill>,
    held: VecDeque<Held>,
    held_bytes: u64,
    /// Written since the last sync (settled once synced).
    unsynced: Vec<Arc<str>>,
    /// The error that started the current failure, until the sink writes again.
    failing: Option<String>,
    /// Lines dropped in the current failure.
    dropped: u64,
    /// What the held gauge was last moved by this sink.
    reported_held: i64,
    links: SinkLinks,
}

impl JsonlSink {
    /// Open the sink; a spill left by an earlier run is taken up (written out first).
    pub fn open(config: SinkConfig, links: SinkLinks) -> io::Result<JsonlSink> {
        let (file, cut) = LineFile::open(&config.path)?;
        if cut > 0 {
            warn!(links.log, "sink ended in a partial line (a write cut short by a crash); cut it off";
                "path" => config.path.display().to_string(), "bytes" => cut);
        }
        let spill = match &config.spill {
            Some(path) => match std::fs::metadata(path) {
                Ok(metadata) => Some(Spill {
                    path: path.clone(),
                    bytes: metadata.len(),
                    offset: 0,
                    lines: spill_lines(path, |_| ())?,
                    skip: closed_in_sink(&config.path, RECENT_TAIL_BYTES)?,
                }),
                Err(error) if error.kind() == io::ErrorKind::NotFound => None,
                Err(error) => return Err(error),
            },
            None => None,
        };
        let mut sink = JsonlSink {
            config,
            file: Some(file),
            reopen: false,
            spill,
            held: VecDeque::new(),
            held_bytes: 0,
            unsynced: Vec::new(),
            failing: None,
            dropped: 0,
            reported_held: 0,
            links,
        };
        if sink.spill.is_some() {
            info!(sink.links.log, "writing out what an earlier run spilled"; "path" => sink.config.path.display().to_string());
            sink.retry();
        }
        Ok(sink)
    }

    fn name(&self) -> String {
        format!("sink {}", self.config.path.display())
    }

    /// Lines are waiting: a new one queues behind them.
    fn waiting(&self) -> bool {
        self.spill.is_some() || !self.held.is_empty()
    }

    /// Closed timelines held for this sink (in memory or spilled).
    pub fn held(&self) -> usize {
        self.held.len() + self.spill.as_ref().map_or(0, |s| s.lines)
    }

    fn take(&mut self, record: &TimelineRecord) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(error) => {
                // A record always serializes; should it not, it is counted, not lost silently.
                self.drop_line(&record.conversation_id, &error.to_string());
                return;
            }
        };
        line.push(b'\n');
        let conversation: Arc<str> = record.conversation_id.as_str().into();
        if !self.waiting() && !self.reopen {
            if let Some(file) = &mut self.file {
                match file.append(&line) {
                    Ok(()) => {
                        self.written(conversation);
                        return;
                    }
                    Err(error) => self.failed(&error),
                }
            }
        }
        self.hold(conversation, line);
        self.report_held();
    }

    fn hold(&mut self, conversation: Arc<str>, line: Vec<u8>) {
        self.held_bytes += line.len() as u64;
        self.held.push_back(Held { conversation, line });
        if self.held_bytes <= self.config.hold_bytes {
            return;
        }
        if let Err(why) = self.spill_held() {
            let Some(Held { conversation, line }) = self.held.pop_back() else { return };
            self.held_bytes -= line.len() as u64;
            self.drop_line(&conversation, &why);
        }
    }

    /// Move everything held in memory to the spill file, durably.
    fn spill_held(&mut self) -> Result<(), String> {
        let Some(path) = self.config.spill.clone() else {
            return Err("hold_bytes reached and no state directory to spill to".into());
        };
        let spilled = self.spill.as_ref().map_or(0, |s| s.bytes);
        if spilled + self.held_bytes > self.config.spill_bytes {
            return Err(format!("hold_bytes and spill_bytes ({}) reached", self.config.spill_bytes));
        }
        let mut batch = Vec::with_capacity(self.held_bytes as usize);
        for held in &self.held {
            batch.extend_from_slice(&held.line);
        }
        let write = || -> io::Result<()> {
            let (mut file, _) = LineFile::open(&path)?;
            file.append(&batch)?;
            file.sync()?;
            if let Some(directory) = path.parent() {
                File::open(directory)?.sync_all()?;
            }
            Ok(())
        };
        if let Err(error) = write() {
            self.failed(&error);
            return Err(format!("spill to {} failed: {error}", path.display()));
        }
        let spill = self.spill.get_or_insert_with(|| Spill {
            path,
            bytes: 0,
            offset: 0,
            lines: 0,
            skip: HashSet::new(),
        });
        spill.bytes += batch.len() as u64;
        spill.lines += self.held.len();
        for held in self.held.drain(..) {
            self.links.unwritten.settled(&held.conversation);
        }
        self.held_bytes = 0;
        Ok(())
    }

    fn drop_line(&mut self, conversation: &str, why: &str) {
        self.links
            .metrics
            .events_dropped
            .get_or_create(&DropLabels { stage: Stage::Sink, reason: DropReason::OutputFailed })
            .inc();
        self.links.unwritten.settled(conversation);
        self.dropped += 1;
        if self.dropped == 1 {
            error!(self.links.log, "closed timeline dropped: the sink fails and nothing more can be held \
                                    (further ones are only counted in timelined_events_dropped_total)";
                "conversation" => &*printable(conversation), "why" => why, "path" => self.config.path.display().to_string());
        }
    }

    fn written(&mut self, conversation: Arc<str>) {
        match self.config.fsync {
            Fsync::Never => self.links.unwritten.settled(&conversation),
            Fsync::Interval => self.unsynced.push(conversation),
            Fsync::Always => {
                self.unsynced.push(conversation);
                self.sync();
            }
        }
    }

    fn sync(&mut self) {
        if self.unsynced.is_empty() {
            return;
        }
        let Some(file) = &self.file else { return };
        match file.sync() {
            Ok(()) => {
                for conversation in self.unsynced.drain(..) {
                    self.links.unwritten.settled(&conversation);
                }
            }
            Err(error) => self.failed(&error),
        }
    }

    fn failed(&mut self, error: &io::Error) {
        self.links.metrics.output_error(OutputKind::Sink);
        // The next try opens the path anew: the file may have been removed or remounted.
        self.reopen = true;
        if self.failing.is_none() {
            error!(self.links.log, "sink write failed; holding closed timelines until it writes again";
                "path" => self.config.path.display().to_string(), "error" => %error);
        }
        let why = error.to_string();
        self.links.health.output(&self.name(), Some(why.clone()));
        self.failing = Some(why);
    }

    fn report_held(&mut self) {
        let held = self.held() as i64;
        let gauge =
            self.links.metrics.output_held.get_or_create(&OutputLabels { output: OutputKind::Sink }).clone();
        gauge.inc_by(held - self.reported_held);
        self.reported_held = held;
    }

    /// Open the path anew if asked to (or never opened); keeps the old file if it fails.
    fn ensure_open(&mut self) -> io::Result<()> {
        if !self.reopen && self.file.is_some() {
            return Ok(());
        }
        self.sync();
        let (file, _) = LineFile::open(&self.config.path)?;
        if !self.unsynced.is_empty() {
            // The old file could not be synced: keep it until it can.
            return Err(io::Error::other("lines written to the old file are not yet synced"));
        }
        self.file = Some(file);
        self.reopen = false;
        Ok(())
    }

    /// Write out the spill, then what is held, in order, until done or something fails.
    fn write_waiting(&mut self) -> io::Result<()> {
        self.ensure_open()?;
        self.write_spill()?;
        while let Some(held) = self.held.pop_front() {
            if let Err(error) = self.open_file()?.append(&held.line) {
                self.held.push_front(held);
                return Err(error);
            }
            self.held_bytes -= held.line.len() as u64;
            self.written(held.conversation);
        }
        Ok(())
    }

    fn open_file(&mut self) -> io::Result<&mut LineFile> {
        self.file.as_mut().ok_or_else(|| io::Error::other("the sink is not open"))
    }

    /// Write the spill's lines (from where the last try stopped) to the sink, sync, and
    /// remove the spill.
    fn write_spill(&mut self) -> io::Result<()> {
        let Some(spill) = &mut self.spill else { return Ok(()) };
        let Some(file) = &mut self.file else { return Err(io::Error::other("the sink is not open")) };
        let mut reader = io::BufReader::new(File::open(&spill.path)?);
        reader.seek(SeekFrom::Start(spill.offset))?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 || line.last() != Some(&b'\n') {
                break; // the end (a partial last line is a spill cut short: never settled)
            }
            if !spill_line_already_written(&line, &spill.skip) {
                file.append(&line)?;
            }
            spill.offset += read as u64;
            spill.lines = spill.lines.saturating_sub(1);
        }
        // Durable in the sink before the spill is removed.
        file.sync()?;
        std::fs::remove_file(&spill.path)?;
        if let Some(directory) = spill.path.parent() {
            File::open(directory)?.sync_all()?;
        }
        self.spill = None;
        Ok(())
    }

    /// Retry what waits, sync what was written ([`Fsync::Interval`]); every
    /// [`RETRY_INTERVAL`].
    fn retry(&mut self) {
        let was_waiting = self.held();
        match self.write_waiting() {
            Ok(()) => {
                self.sync();
                if self.failing.is_some() && self.unsynced.is_empty() && !self.waiting() {
                    self.failing = None;
                    self.links.health.output(&self.name(), None);
                    info!(self.links.log, "sink writes again; every held timeline written";
                        "path" => self.config.path.display().to_string(), "written" => was_waiting,
                        "dropped" => self.dropped);
                    self.dropped = 0;
                }
            }
            Err(error) => self.failed(&error),
        }
        self.report_held();
    }

    /// Shutdown: write what can be written and sync; what is still held in memory is
    /// spilled if it can be (else it stays in the ledger, for the final save).
    fn finish(&mut self) -> io::Result<()> {
        self.retry();
        if !self.held.is_empty() {
            if let Err(why) = self.spill_held() {
                warn!(self.links.log, "closed timelines still held at exit (the final save keeps them as open)";
                    "count" => self.held.len(), "why" => why);
            }
            self.report_held();
        }
        match &self.failing {
            Some(why) => Err(io::Error::other(why.clone())),
            None => Ok(()),
        }
    }

    /// Open the path anew (after logrotate renamed the file).
    fn reopen_file(&mut self) -> io::Result<()> {
        self.reopen = true;
        let result = self.ensure_open();
        if let Err(error) = &result {
            self.failed(error);
        }
        result
    }
}

impl Output for JsonlSink {
    fn wants_updates(&self) -> bool {
        false
    }

    fn update(&mut self, _: &TimelineUpdate) -> io::Result<()> {
        Ok(())
    }

    /// Never fails: what cannot be written is held (see the module doc).
    fn closed(&mut self, record: &TimelineRecord, _: CloseReason) -> io::Result<()> {
        self.take(record);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.finish()
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(RETRY_INTERVAL)
    }

    fn tick(&mut self) {
        self.retry();
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.reopen_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Stage;
    use crate::storage::read_back::{conversation_of, spilled};

    fn record(id: &str) -> TimelineRecord {
        TimelineRecord::empty(id)
    }

    struct Rig {
        dir: tempfile::TempDir,
        unwritten: Arc<Unwritten>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    }

    impl Rig {
        fn new() -> Rig {
            Rig {
                dir: tempfile::tempdir().unwrap(),
                unwritten: Arc::new(Unwritten::new(1)),
                health: Arc::new(Health::default()),
                metrics: Arc::new(Metrics::new()),
            }
        }

        fn path(&self) -> PathBuf {
            self.dir.path().join("timelines.jsonl")
        }

        fn spill(&self) -> PathBuf {
            spill_path(&self.dir.path().join("state"), &self.path())
        }

        fn config(&self, fsync: Fsync, hold_bytes: u64) -> SinkConfig {
            SinkConfig {
                path: self.path(),
                fsync,
                hold_bytes,
                spill: Some(self.spill()),
                spill_bytes: 1 << 20,
            }
        }

        fn open(&self, config: SinkConfig) -> JsonlSink {
            let links = SinkLinks {
                unwritten: self.unwritten.clone(),
                health: self.health.clone(),
                metrics: self.metrics.clone(),
                log: Logger::root(slog::Discard, slog::o!()),
            };
            JsonlSink::open(config, links).unwrap()
        }

        /// Close `id` as the TimelineActor would, and hand it to the sink.
        fn close(&self, sink: &mut JsonlSink, id: &str) {
            let record = Arc::new(record(id));
            self.unwritten.closed(&record);
            Output::closed(sink, &record, CloseReason::Ended).unwrap();
        }

        fn lines(&self) -> Vec<String> {
            let text = std::fs::read_to_string(self.path()).unwrap_or_default();
            assert!(text.is_empty() || text.ends_with('\n'), "no partial line: {text:?}");
            text.lines().map(|line| conversation_of(line.as_bytes()).expect("a whole record")).collect()
        }

        /// Make the sink's file (and its spill) fail with ENOSPC: the paths become links
        /// to /dev/full, and the sink is told to reopen (as after a remount). `free` puts
        /// real files back; a failing sink reopens its path by itself on the next try.
        fn fill(&self, sink: &mut JsonlSink, spill_too: bool) {
            let _ = std::fs::remove_file(self.path());
            std::os::unix::fs::symlink("/dev/full", self.path()).unwrap();
            if spill_too {
                std::fs::create_dir_all(self.spill().parent().unwrap()).unwrap();
                std::os::unix::fs::symlink("/dev/full", self.spill()).unwrap();
            }
            Output::reopen(sink).unwrap();
        }

        fn free(&self, kept: &[&str]) {
            std::fs::remove_file(self.path()).unwrap();
            let text: String =
                kept.iter().map(|id| format!("{}\n", serde_json::to_string(&record(id)).unwrap())).collect();
            std::fs::write(self.path(), text).unwrap();
            if std::fs::symlink_metadata(self.spill()).is_ok_and(|m| m.file_type().is_symlink()) {
                std::fs::remove_file(self.spill()).unwrap();
            }
        }

        fn dropped(&self) -> u64 {
            self.metrics.dropped(Stage::Sink, DropReason::OutputFailed)
        }
    }

    #[test]
    fn a_line_is_settled_when_it_is_durable_as_the_fsync_setting_says() {
        for (fsync, settled_at_once) in
            [(Fsync::Always, true), (Fsync::Never, true), (Fsync::Interval, false)]
        {
            let rig = Rig::new();
            let mut sink = rig.open(rig.config(fsync, 1 << 20));
            rig.close(&mut sink, "a");
            assert_eq!(rig.lines(), ["a"]);
            assert_eq!(rig.unwritten.is_empty(), settled_at_once, "{fsync:?}");
            sink.tick();
            assert!(rig.unwritten.is_empty(), "{fsync:?}: synced on the tick");
        }
    }

    #[test]
    fn a_failing_sink_holds_in_order_and_writes_everything_once_when_it_recovers() {
        let rig = Rig::new();
        let mut sink = rig.open(rig.config(Fsync::Interval, 1 << 20));
        rig.close(&mut sink, "a");
        sink.tick();
        rig.fill(&mut sink, false);
        for id in ["b", "c", "d"] {
            rig.close(&mut sink, id);
        }
        sink.tick();
        assert!(rig.metrics.output_errors(OutputKind::Sink) >= 1);
        assert_eq!(sink.held(), 3);
        assert!(rig.unwritten.is_pending("b"), "held lines stay in the checkpoint");
        let degraded = rig.health.degraded().unwrap();
        assert!(degraded.contains("timelines.jsonl") && degraded.contains("No space left"), "{degraded}");
        assert_eq!(
            rig.metrics.output_held.get_or_create(&OutputLabels { output: OutputKind::Sink }).get(),
            3
        );

        rig.free(&["a"]);
        sink.tick();
        assert_eq!(rig.lines(), ["a", "b", "c", "d"]);
        assert_eq!(sink.held(), 0);
        assert!(rig.unwritten.is_empty());
        assert_eq!(rig.health.degraded(), None);
        assert_eq!(
            rig.metrics.output_held.get_or_create(&OutputLabels { output: OutputKind::Sink }).get(),
            0
        );
        assert_eq!(rig.dropped(), 0);
    }

    #[test]
    fn past_hold_bytes_lines_are_spilled_durably_then_written_first() {
        let rig = Rig::new();
        let line = serde_json::to_vec(&record("x")).unwrap().len() as u64 + 1;
        let mut sink = rig.open(rig.config(Fsync::Interval, 2 * line));
        rig.fill(&mut sink, false);
        for id in ["b", "c", "d", "e"] {
            rig.close(&mut sink, id);
        }
        assert!(rig.spill().exists(), "the third line went past hold_bytes: all three spilled");
        assert_eq!(spilled(&rig.spill()).unwrap().len(), 3);
        assert!(!rig.unwritten.is_pending("b"), "a spilled line is durable");
        assert!(rig.unwritten.is_pending("e"), "one held in memory is not");
        assert_eq!(sink.held(), 4);
        rig.free(&[]);
        sink.tick();
        assert_eq!(rig.lines(), ["b", "c", "d", "e"]);
        assert!(!rig.spill().exists(), "the spill is removed once written");
        assert_eq!(rig.dropped(), 0);
    }

    #[test]
    fn when_even_the_spill_fails_a_line_is_dropped_counted_and_settled() {
        let rig = Rig::new();
        let line = serde_json::to_vec(&record("x")).unwrap().len() as u64 + 1;
        let mut sink = rig.open(rig.config(Fsync::Interval, 2 * line));
        rig.fill(&mut sink, true);
        for id in ["b", "c", "d"] {
            rig.close(&mut sink, id);
        }
        assert_eq!(rig.dropped(), 1);
        assert!(!rig.unwritten.is_pending("d"), "dropped: no longer waited for");
        rig.free(&[]);
        sink.tick();
        assert_eq!(rig.lines(), ["b", "c"]);
    }

    #[test]
    fn a_spill_left_by_a_restart_is_written_at_open_skipping_what_the_sink_has() {
        let rig = Rig::new();
        let spill = rig.spill();
        std::fs::create_dir_all(spill.parent().unwrap()).unwrap();
        let line = |id| format!("{}\n", serde_json::to_string(&record(id)).unwrap());
        std::fs::write(&spill, format!("{}{}", line("a"), line("b"))).unwrap();
        std::fs::write(rig.path(), line("a")).unwrap();
        let mut sink = rig.open(rig.config(Fsync::Interval, 1 << 20));
        rig.close(&mut sink, "c");
        assert_eq!(rig.lines(), ["a", "b", "c"]);
        assert!(!spill.exists());
    }

    #[test]
    fn a_partial_last_line_is_cut_off_at_open() {
        let rig = Rig::new();
        let whole = format!("{}\n", serde_json::to_string(&record("a")).unwrap());
        std::fs::write(rig.path(), format!("{whole}{{\"conversationId\":\"b\",\"med")).unwrap();
        let mut sink = rig.open(rig.config(Fsync::Interval, 1 << 20));
        rig.close(&mut sink, "c");
        assert_eq!(rig.lines(), ["a", "c"]);
    }

    #[test]
    fn reopen_after_a_rename_writes_to_a_new_file_and_nothing_twice() {
        let rig = Rig::new();
        let mut sink = rig.open(rig.config(Fsync::Interval, 1 << 20));
        rig.close(&mut sink, "a");
        let rotated = rig.dir.path().join("timelines.jsonl.1");
        std::fs::rename(rig.path(), &rotated).unwrap();
        rig.close(&mut sink, "b"); // before the reopen: into the renamed file
        Output::reopen(&mut sink).unwrap();
        assert!(rig.unwritten.is_empty(), "the old file was synced before it was let go");
        rig.close(&mut sink, "c");
        assert_eq!(rig.lines(), ["c"]);
        let old = std::fs::read_to_string(&rotated).unwrap();
        assert_eq!(old.lines().count(), 2);
        let recent = closed_in_sink(&rig.path(), RECENT_TAIL_BYTES).unwrap();
        assert_eq!(recent, ["a", "b", "c"].map(String::from).into(), "the tail reads on into <path>.1");
    }

    #[test]
    fn closed_in_sink_reads_the_tail_and_skips_cut_lines() {
        let rig = Rig::new();
        let mut sink = rig.open(rig.config(Fsync::Never, 1 << 20));
        for id in ["a", "b", "c"] {
            rig.close(&mut sink, id);
        }
        let all = closed_in_sink(&rig.path(), u64::MAX).unwrap();
        assert_eq!(all.len(), 3);
        let line = std::fs::read_to_string(rig.path()).unwrap().lines().next().unwrap().len() as u64 + 1;
        let tail = closed_in_sink(&rig.path(), line + line / 2).unwrap();
        assert_eq!(tail, ["c".to_string()].into(), "a line cut by the seek is skipped");
        assert!(closed_in_sink(&rig.dir.path().join("none"), 10).unwrap().is_empty());
    }
}
