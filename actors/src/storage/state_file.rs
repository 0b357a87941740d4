//! The state file on disk (`timeline::state` is its format). A save is atomic and durable:
//! written to a temporary file of its own, fsynced, renamed over the old one, and the
//! directory fsynced, so a crash or power loss leaves the old save or the new one, never a
//! mix. A save can be abandoned midway (`cancel`): its temporary file is removed and the
//! old save stays. Loading never fails start-up: a file that cannot be read or parsed is
//! moved aside if it can be, and reported either way.

use crate::timeline::state::{SavedState, FORMAT_VERSION, STATE_FILE};
use chrono::Utc;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is not a timelined state file ({error}); moved aside to {aside}")]
    Corrupt { path: String, error: String, aside: String },
    #[error("{path} is unusable ({error}) and cannot be moved aside ({move_error}); ignored")]
    Stuck { path: String, error: String, move_error: std::io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: std::io::Error },
    #[error("save of {path} abandoned for a newer one")]
    Cancelled { path: String },
}

pub fn state_path(directory: &Path) -> PathBuf {
    directory.join(STATE_FILE)
}

/// Temporary files of saves in progress: `.open-timelines.json.<pid>.<n>.tmp`.
fn temporary_path(directory: &Path) -> PathBuf {
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let n = SAVES.fetch_add(1, Ordering::Relaxed);
    directory.join(format!(".{STATE_FILE}.{}.{n}.tmp", std::process::id()))
}

/// A writer that fails once `cancel` is set, so an abandoned save stops at its next write
/// (not with `Interrupted`: `write_all` would retry that forever).
struct Cancellable<'a, W> {
    inner: W,
    cancel: &'a AtomicBool,
}

impl<W: Write> Write for Cancellable<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("save abandoned"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Write `state` atomically and durably (see the module doc); stop, leaving the old save,
/// as soon as `cancel` is set.
pub fn save(directory: &Path, state: &impl Serialize, cancel: &AtomicBool) -> Result<(), StateError> {
    let path = state_path(directory);
    let temporary = temporary_path(directory);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(directory)?;
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temporary)?;
        // Buffered: serde_json writes token by token, and an unbuffered file turns that
        // into one syscall per `"` or `,` (seconds for a large book). 64 KiB makes the
        // syscalls few; a larger buffer only showed as an RSS spike at every checkpoint.
        let mut writer = std::io::BufWriter::with_capacity(64 << 10, Cancellable { inner: file, cancel });
        serde_json::to_writer(&mut writer, state)?;
        writer.flush()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?.inner;
        file.sync_all()?;
        if cancel.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("save abandoned"));
        }
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(directory)?.sync_all()
    };
    write().map_err(|error| {
        // Best effort: one left behind is removed at the next start.
        let _ = std::fs::remove_file(&temporary);
        if cancel.load(Ordering::SeqCst) {
            StateError::Cancelled { path: path.display().to_string() }
        } else {
            StateError::Write { path: path.display().to_string(), error }
        }
    })
}

/// What start-up finds in the state directory.
#[derive(Debug, Default)]
pub struct Loaded {
    pub state: Option<SavedState>,
    /// A state file that was there but could not be used (reported, never fatal).
    pub problem: Option<StateError>,
}

/// The saved state, if any; temporary files of saves a crash interrupted are removed. A
/// file that cannot be read or parsed is moved aside (kept for a person to look at) and
/// reported; if even that fails, it is reported and ignored.
pub fn load(directory: &Path) -> Loaded {
    remove_interrupted_saves(directory);
    let path = state_path(directory);
    let unusable = match std::fs::read(&path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Loaded::default(),
        Err(error) => error.to_string(),
        Ok(bytes) => match parse(&bytes) {
            Ok(state) => return Loaded { state: Some(state), problem: None },
            Err(why) => why,
        },
    };
    let aside = directory.join(format!("{STATE_FILE}.corrupt-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ")));
    let path_text = path.display().to_string();
    let problem = match std::fs::rename(&path, &aside) {
        Ok(()) => {
            StateError::Corrupt { path: path_text, error: unusable, aside: aside.display().to_string() }
        }
        Err(move_error) => StateError::Stuck { path: path_text, error: unusable, move_error },
    };
    Loaded { state: None, problem: Some(problem) }
}

/// The decoder of the state file's bytes: a [`SavedState`] of the current format, or why
/// the bytes are not one.
pub fn parse(bytes: &[u8]) -> Result<SavedState, String> {
    match serde_json::from_slice::<SavedState>(bytes) {
        Ok(state) if state.version == FORMAT_VERSION => Ok(state),
        Ok(state) => Err(format!("unknown format version {}", state.version)),
        Err(error) => Err(error.to_string()),
    }
}

fn remove_interrupted_saves(directory: &Path) {
    let Ok(entries) = std::fs::read_dir(directory) else { return };
    let prefix = format!(".{STATE_FILE}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &SavedState::new(Vec::new(), vec!["c1".into()]), &AtomicBool::new(false)).unwrap();
        let loaded = load(dir.path());
        assert!(loaded.problem.is_none());
        assert_eq!(loaded.state.unwrap().closed, vec!["c1".to_string()]);
        assert_eq!(names(dir.path()), vec![STATE_FILE.to_string()]);
    }

    #[test]
    fn nothing_saved_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(dir.path());
        assert!(loaded.state.is_none() && loaded.problem.is_none());
    }

    #[test]
    fn a_cancelled_save_leaves_the_old_one_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &SavedState::new(Vec::new(), vec!["old".into()]), &AtomicBool::new(false)).unwrap();
        let error =
            save(dir.path(), &SavedState::new(Vec::new(), vec!["new".into()]), &AtomicBool::new(true))
                .unwrap_err();
        assert!(matches!(error, StateError::Cancelled { .. }), "{error}");
        assert_eq!(load(dir.path()).state.unwrap().closed, vec!["old".to_string()]);
        assert_eq!(names(dir.path()), vec![STATE_FILE.to_string()]);
    }

    #[test]
    fn start_up_removes_the_temporary_files_of_interrupted_saves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!(".{STATE_FILE}.123.0.tmp")), b"{\"vers").unwrap();
        assert!(load(dir.path()).state.is_none());
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(state_path(dir.path()), b"{\"version\":1,\"open\":[tru").unwrap();
        let problem = load(dir.path()).problem.unwrap();
        assert!(matches!(problem, StateError::Corrupt { .. }), "{problem}");
        assert!(!state_path(dir.path()).exists(), "moved aside");
        let loaded = load(dir.path());
        assert!(loaded.state.is_none() && loaded.problem.is_none(), "the next start begins empty");
        assert_eq!(names(dir.path()).len(), 1, "the corrupt file is kept for a person to look at");
    }

    #[test]
    fn an_unreadable_state_file_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails (EISDIR), as an
        // unreadable file would.
        std::fs::create_dir(state_path(dir.path())).unwrap();
        let loaded = load(dir.path());
        assert!(loaded.state.is_none());
        assert!(matches!(loaded.problem, Some(StateError::Corrupt { .. })), "{:?}", loaded.problem);
    }
}
