//! Open timelines on disk: what SIGTERM saves and the periodic checkpoint writes, so a
//! restart (or a SIGKILL and restart) resumes them. Writes are atomic (temp file, fsync,
//! rename); a file that does not parse is reported and moved aside, never fatal.

use super::OpenTimelines;
use crate::record::TimelineRecord;
use chrono::{DateTime, Utc};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const STATE_FILE: &str = "open-timelines.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedState {
    pub version: u32,
    pub saved_at: DateTime<Utc>,
    /// Timelines still open, as they stood.
    pub open: Vec<TimelineRecord>,
    /// Conversations closed recently (tombstones): a late frame must not reopen them.
    pub closed: Vec<String>,
}

impl SavedState {
    pub fn new(open: Vec<TimelineRecord>, closed: Vec<String>) -> Self {
        SavedState { version: FORMAT_VERSION, saved_at: Utc::now(), open, closed }
    }
}

/// What a save writes, read from the live map as it is written: each open timeline is
/// rendered and written in turn, so saving a million holds one record at a time, and the
/// map is locked only for the moment of each. It serializes as a [`SavedState`].
pub struct Snapshot {
    open: Arc<OpenTimelines>,
    closed: Vec<Arc<str>>,
}

impl Snapshot {
    pub fn new(open: Arc<OpenTimelines>, closed: Vec<Arc<str>>) -> Self {
        Snapshot { open, closed }
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The timelines open when the save began, as each stands when its turn comes (one
        /// closed meanwhile is left out: it is in the sink).
        struct Open<'a>(&'a OpenTimelines);
        impl Serialize for Open<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let conversations: Vec<Arc<str>> = self.0.iter().map(|t| t.key().clone()).collect();
                let mut seq = serializer.serialize_seq(None)?;
                for conversation in conversations {
                    let Some(record) = self.0.get(&conversation).map(|t| t.to_record()) else {
                        continue;
                    };
                    seq.serialize_element(&record)?;
                }
                seq.end()
            }
        }
        let mut state = serializer.serialize_struct("SavedState", 4)?;
        state.serialize_field("version", &FORMAT_VERSION)?;
        state.serialize_field("savedAt", &Utc::now())?;
        state.serialize_field("open", &Open(&self.open))?;
        let closed: Vec<&str> = self.closed.iter().map(|c| &**c).collect();
        state.serialize_field("closed", &closed)?;
        state.end()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is not a timelined state file ({error}); moved aside to {aside}")]
    Corrupt { path: String, error: String, aside: String },
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

pub fn state_path(directory: &Path) -> PathBuf {
    directory.join(STATE_FILE)
}

/// Write atomically: a crash leaves the old file or the new one, never half of one.
pub fn save(directory: &Path, state: &impl Serialize) -> Result<(), StateError> {
    let path = state_path(directory);
    let temporary = directory.join(format!(".{STATE_FILE}.tmp"));
    let write_error = |error| StateError::Write { path: path.display().to_string(), error };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(directory)?;
        // Buffered: serde_json writes token by token, and an unbuffered file turns that
        // into one syscall per `"` or `,` (seconds for a large book). 64 KiB makes the
        // syscalls few; a larger buffer only showed as an RSS spike at every checkpoint.
        let mut file = std::io::BufWriter::with_capacity(64 << 10, std::fs::File::create(&temporary)?);
        serde_json::to_writer(&mut file, state)?;
        file.flush()?;
        file.get_ref().sync_all()?;
        std::fs::rename(&temporary, &path)
    };
    write().map_err(write_error)
}

/// The saved state, if any. A corrupt file is moved aside and reported as an error; the
/// caller logs it and starts empty.
pub fn load(directory: &Path) -> Result<Option<SavedState>, StateError> {
    let path = state_path(directory);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StateError::Read { path: path.display().to_string(), error }),
    };
    let parsed =
        serde_json::from_slice::<SavedState>(&bytes).map_err(|e| e.to_string()).and_then(|state| match state
            .version
        {
            FORMAT_VERSION => Ok(state),
            other => Err(format!("unknown format version {other}")),
        });
    match parsed {
        Ok(state) => Ok(Some(state)),
        Err(error) => {
            let aside =
                directory.join(format!("{STATE_FILE}.corrupt-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ")));
            std::fs::rename(&path, &aside)
                .map_err(|error| StateError::Read { path: path.display().to_string(), error })?;
            Err(StateError::Corrupt {
                path: path.display().to_string(),
                error,
                aside: aside.display().to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &SavedState::new(Vec::new(), vec!["c1".into()])).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.closed, vec!["c1".to_string()]);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[test]
    fn nothing_saved_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(state_path(dir.path()), b"{\"version\":1,\"open\":[tru").unwrap();
        let error = load(dir.path()).unwrap_err();
        assert!(matches!(error, StateError::Corrupt { .. }), "{error}");
        assert!(!state_path(dir.path()).exists(), "moved aside");
        assert!(load(dir.path()).unwrap().is_none(), "the next start begins empty");
        let aside = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(aside, 1, "the corrupt file is kept for a person to look at");
    }
}
