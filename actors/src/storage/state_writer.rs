//! The one writer of the state file: a thread of its own for the daemon's life (a large
//! book takes seconds to write, and events keep coming meanwhile). Checkpoints and the
//! shutdown save both go through it, one at a time and in the order asked, so an older
//! snapshot is never renamed over a newer one. The shutdown save supersedes a checkpoint
//! in flight: that one stops at its next write, its temporary file is removed, and the
//! final save is written next. After the final save nothing more is written.

use super::state_file::{self, StateError};
use crate::health::Health;
use crate::metrics::{Metrics, OutputKind};
use crate::timeline::state::{FinalSave, SaveError, Snapshot, StateStore};
use slog::{error, info, Logger};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;

enum Job {
    Checkpoint(Snapshot),
    Final(Snapshot, SyncSender<Result<FinalSave, StateError>>),
}

struct Shared {
    /// A checkpoint is asked for or being written.
    checkpointing: AtomicBool,
    /// Set by the shutdown save: the checkpoint in flight stops.
    supersede: AtomicBool,
    /// The shutdown save was asked for: no more checkpoints.
    finished: AtomicBool,
}

pub struct StateWriter {
    directory: PathBuf,
    jobs: Sender<Job>,
    shared: Arc<Shared>,
}

/// Reported in `/readyz` while saves fail.
fn health_name(directory: &Path) -> String {
    format!("state directory {}", directory.display())
}

impl StateWriter {
    pub fn start(
        directory: PathBuf,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        log: Logger,
    ) -> std::io::Result<StateWriter> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            checkpointing: AtomicBool::new(false),
            supersede: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        });
        let worker = Worker { directory: directory.clone(), shared: shared.clone(), health, metrics, log };
        std::thread::Builder::new().name("timelined-state".into()).spawn(move || worker.run(queue))?;
        Ok(StateWriter { directory, jobs, shared })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Whether a checkpoint is being written.
    pub fn checkpointing(&self) -> bool {
        self.shared.checkpointing.load(Ordering::SeqCst)
    }

    /// Write a checkpoint, unless one is still being written (then this one is skipped: the
    /// next interval takes a fresher snapshot) or the shutdown save was asked for. Returns
    /// whether it was taken.
    pub fn checkpoint(&self, snapshot: impl FnOnce() -> Snapshot) -> bool {
        if self.shared.finished.load(Ordering::SeqCst)
            || self.shared.checkpointing.swap(true, Ordering::SeqCst)
        {
            return false;
        }
        if self.jobs.send(Job::Checkpoint(snapshot())).is_err() {
            // The thread is gone (it only ends when this writer is dropped).
            self.shared.checkpointing.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The shutdown save: supersedes a checkpoint in flight, then writes `snapshot` and
    /// answers once it is durable (or failed). Blocks the caller meanwhile.
    pub fn save_final(&self, snapshot: Snapshot) -> Result<FinalSave, StateError> {
        self.shared.finished.store(true, Ordering::SeqCst);
        self.shared.supersede.store(true, Ordering::SeqCst);
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let gone = || StateError::Write {
            path: state_file::state_path(&self.directory).display().to_string(),
            error: std::io::Error::other("the state writer thread is gone"),
        };
        self.jobs.send(Job::Final(snapshot, answer)).map_err(|_| gone())?;
        answered.recv().map_err(|_| gone())?
    }
}

impl StateStore for StateWriter {
    fn checkpoint(&self, snapshot: &mut dyn FnMut() -> Snapshot) -> bool {
        StateWriter::checkpoint(self, snapshot)
    }

    fn save_final(&self, snapshot: Snapshot) -> Result<FinalSave, SaveError> {
        Ok(StateWriter::save_final(self, snapshot)?)
    }
}

struct Worker {
    directory: PathBuf,
    shared: Arc<Shared>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl Worker {
    fn run(self, queue: Receiver<Job>) {
        let mut superseded = false;
        let mut failing = false;
        for job in queue {
            match job {
                Job::Checkpoint(snapshot) => {
                    match state_file::save(&self.directory, &snapshot, &self.shared.supersede) {
                        Ok(()) => self.recovered(&mut failing),
                        Err(StateError::Cancelled { .. }) => superseded = true,
                        Err(error) => self.failed(&error, &mut failing),
                    }
                    self.shared.checkpointing.store(false, Ordering::SeqCst);
                }
                Job::Final(snapshot, answer) => {
                    self.shared.supersede.store(false, Ordering::SeqCst);
                    let saved = snapshot.open_count();
                    let never = AtomicBool::new(false);
                    let result = state_file::save(&self.directory, &snapshot, &never)
                        .map(|()| FinalSave { saved, superseded_checkpoint: superseded });
                    match &result {
                        Ok(_) => self.recovered(&mut failing),
                        Err(error) => self.failed(error, &mut failing),
                    }
                    // The asker waits for this answer; it is gone only if it gave up.
                    let _ = answer.send(result);
                }
            }
        }
    }

    fn failed(&self, error: &StateError, failing: &mut bool) {
        self.metrics.output_error(OutputKind::State);
        self.health.output(&health_name(&self.directory), Some(error.to_string()));
        if !std::mem::replace(failing, true) {
            error!(self.log, "cannot save open timelines; retrying at every checkpoint (a restart now would \
                             resume from the last good save)"; "error" => %error);
        }
    }

    fn recovered(&self, failing: &mut bool) {
        if std::mem::replace(failing, false) {
            self.health.output(&health_name(&self.directory), None);
            info!(self.log, "open timelines saved again"; "directory" => self.directory.display().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::state::{SavedState, Snapshot};
    use crate::timeline::OpenTimelines;

    fn writer(dir: &Path) -> (StateWriter, Arc<Health>, Arc<Metrics>) {
        let (health, metrics) = (Arc::new(Health::default()), Arc::new(Metrics::new()));
        let log = Logger::root(slog::Discard, slog::o!());
        (
            StateWriter::start(dir.to_path_buf(), health.clone(), metrics.clone(), log).unwrap(),
            health,
            metrics,
        )
    }

    fn snapshot(tombstone: &str) -> Snapshot {
        Snapshot::new(Arc::new(OpenTimelines::default()), Vec::new(), vec![tombstone.into()])
    }

    fn saved(dir: &Path) -> Vec<String> {
        state_file::load(dir).state.map(|s: SavedState| s.closed).unwrap_or_default()
    }

    fn wait_idle(writer: &StateWriter) {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while writer.checkpointing() {
            assert!(std::time::Instant::now() < give_up, "checkpoint never finished");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn checkpoints_then_the_final_save_and_nothing_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _, _) = writer(dir.path());
        assert!(writer.checkpoint(|| snapshot("first")));
        wait_idle(&writer);
        assert_eq!(saved(dir.path()), ["first"]);
        let report = writer.save_final(snapshot("final")).unwrap();
        assert!(!report.superseded_checkpoint);
        assert!(!writer.checkpoint(|| snapshot("late")), "no checkpoint after the final save");
        assert_eq!(saved(dir.path()), ["final"]);
    }

    #[test]
    fn the_final_save_supersedes_a_checkpoint_in_flight_and_is_what_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _, _) = writer(dir.path());
        // A checkpoint large enough to be in flight when the final save is asked for.
        let open = Arc::new(OpenTimelines::default());
        let closed: Vec<Arc<str>> = (0..2_000_000).map(|i| Arc::from(format!("conversation-{i}"))).collect();
        assert!(writer.checkpoint(|| Snapshot::new(open, Vec::new(), closed)));
        assert!(writer.checkpointing());
        let report = writer.save_final(snapshot("final")).unwrap();
        assert!(report.superseded_checkpoint, "the checkpoint was abandoned, not finished first");
        assert_eq!(saved(dir.path()), ["final"]);
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_failing_directory_is_counted_and_named_until_a_save_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, health, metrics) = writer(dir.path());
        // A directory where the file should be: the rename fails.
        let blocker = state_file::state_path(dir.path());
        std::fs::create_dir_all(blocker.join("x")).unwrap();
        assert!(writer.checkpoint(|| snapshot("a")));
        wait_idle(&writer);
        assert_eq!(metrics.output_errors(OutputKind::State), 1);
        assert!(health.degraded().unwrap().starts_with("state directory"), "{:?}", health.degraded());
        std::fs::remove_dir_all(&blocker).unwrap();
        assert!(writer.checkpoint(|| snapshot("b")));
        wait_idle(&writer);
        assert_eq!(health.degraded(), None);
        assert_eq!(saved(dir.path()), ["b"]);
    }
}
