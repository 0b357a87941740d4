//! What a save of the open timelines holds, as it is written and read back: the format of
//! the state file (pure; `storage::state_file` owns the file). A save holds every open
//! timeline, every closed one that is not yet durable in every sink (it is saved as open,
//! so a restart closes and writes it again), and the tombstones of the rest.

use super::OpenTimelines;
use crate::record::TimelineRecord;
use chrono::{DateTime, Utc};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub const STATE_FILE: &str = "open-timelines.json";
pub const FORMAT_VERSION: u32 = 1;

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

/// Where the TimelineActor saves the open timelines: the actor decides when, the store
/// (`storage::state_writer::StateWriter`) how. A trait here, so that the timeline does not
/// import the storage that reads and writes its types.
pub trait StateStore: Send {
    /// Start a checkpoint unless one is still being written or the shutdown save was asked
    /// for; `snapshot` is taken only if it starts. Returns whether it started.
    fn checkpoint(&self, snapshot: &mut dyn FnMut() -> Snapshot) -> bool;

    /// The shutdown save: supersedes a checkpoint in flight, and answers once `snapshot`
    /// is durable or has failed.
    fn save_final(&self, snapshot: Snapshot) -> Result<FinalSave, SaveError>;
}

/// Why a save failed, as the store reports it (a file error, with its path).
pub type SaveError = Box<dyn std::error::Error + Send + Sync>;

/// How the shutdown save went.
#[derive(Debug)]
pub struct FinalSave {
    /// Open timelines saved (the unwritten closed ones included).
    pub saved: usize,
    /// A checkpoint was being written when it was asked for, and was abandoned for it.
    pub superseded_checkpoint: bool,
}

/// What a save writes, read from the live map as it is written: each open timeline is
/// rendered and written in turn, so saving a million holds one record at a time, and the
/// map is locked only for the moment of each. It serializes as a [`SavedState`].
pub struct Snapshot {
    open: Arc<OpenTimelines>,
    /// Closed, but not yet durable in every sink: saved as open.
    unwritten: Vec<Arc<TimelineRecord>>,
    closed: Vec<Arc<str>>,
}

impl Snapshot {
    /// `closed` must not name a conversation of `unwritten` (its tombstone would keep it
    /// from being resumed).
    pub fn new(open: Arc<OpenTimelines>, unwritten: Vec<Arc<TimelineRecord>>, closed: Vec<Arc<str>>) -> Self {
        Snapshot { open, unwritten, closed }
    }

    /// Timelines this snapshot saves as open (the live ones counted now).
    pub fn open_count(&self) -> usize {
        let unwritten = self.unwritten.iter().filter(|r| !self.open.contains_key(r.conversation_id.as_str()));
        self.open.len() + unwritten.count()
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The timelines open when the save began, as each stands when its turn comes (one
        /// closed meanwhile is left out: the ledger of unwritten ones had it, or the sink
        /// has it), then the closed ones not yet durable.
        struct Open<'a>(&'a Snapshot);
        impl Serialize for Open<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let live = &self.0.open;
                let conversations: Vec<Arc<str>> = live.iter().map(|t| t.key().clone()).collect();
                let mut seq = serializer.serialize_seq(None)?;
                for conversation in conversations {
                    let Some(record) = live.get(&conversation).map(|t| t.to_record()) else {
                        continue;
                    };
                    seq.serialize_element(&record)?;
                }
                for record in &self.0.unwritten {
                    // Reopened since it closed (its tombstone expired): the live one is saved.
                    if !live.contains_key(record.conversation_id.as_str()) {
                        seq.serialize_element(&**record)?;
                    }
                }
                seq.end()
            }
        }
        let mut state = serializer.serialize_struct("SavedState", 4)?;
        state.serialize_field("version", &FORMAT_VERSION)?;
        state.serialize_field("savedAt", &Utc::now())?;
        state.serialize_field("open", &Open(self))?;
        let closed: Vec<&str> = self.closed.iter().map(|c| &**c).collect();
        state.serialize_field("closed", &closed)?;
        state.end()
    }
}

/// Closed timelines that some durable sink has not yet made durable (written and synced,
/// or spilled to the state directory). Until every sink has, a save keeps each as open:
/// a crash before its line is on disk resumes it instead of losing it. Shared by the
/// TimelineActor (which adds) and the sinks (which settle).
#[derive(Debug, Default)]
pub struct Unwritten {
    sinks: usize,
    pending: Mutex<HashMap<Arc<str>, Pending>>,
}

#[derive(Debug)]
struct Pending {
    record: Arc<TimelineRecord>,
    /// Sinks that have not settled it yet.
    waiting: usize,
}

impl Unwritten {
    /// For `sinks` durable sinks (none: nothing is ever pending).
    pub fn new(sinks: usize) -> Self {
        Unwritten { sinks, pending: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Pending>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A timeline closed and is on its way to every sink.
    pub fn closed(&self, record: &Arc<TimelineRecord>) {
        if self.sinks == 0 {
            return;
        }
        let mut pending = self.lock();
        let entry = pending
            .entry(record.conversation_id.as_str().into())
            .or_insert_with(|| Pending { record: record.clone(), waiting: 0 });
        // Closed again before the last close was settled: the newer record is what to save.
        entry.record = record.clone();
        entry.waiting += self.sinks;
    }

    /// One sink has it durably, or has given it up (counted as a drop where it did).
    pub fn settled(&self, conversation: &str) {
        let mut pending = self.lock();
        if let Some(entry) = pending.get_mut(conversation) {
            entry.waiting = entry.waiting.saturating_sub(1);
            if entry.waiting == 0 {
                pending.remove(conversation);
            }
        }
    }

    pub fn is_pending(&self, conversation: &str) -> bool {
        self.lock().contains_key(conversation)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every pending record (for a save).
    pub fn records(&self) -> Vec<Arc<TimelineRecord>> {
        self.lock().values().map(|p| p.record.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Arc<TimelineRecord> {
        Arc::new(TimelineRecord::empty(id))
    }

    #[test]
    fn a_closed_timeline_is_pending_until_every_sink_settles_it() {
        let unwritten = Unwritten::new(2);
        unwritten.closed(&record("c1"));
        unwritten.settled("c1");
        assert!(unwritten.is_pending("c1"), "one sink of two");
        unwritten.settled("c1");
        assert!(!unwritten.is_pending("c1"));
        unwritten.settled("c1");
        assert!(unwritten.is_empty(), "a late settle is harmless");
    }

    #[test]
    fn without_sinks_nothing_is_pending() {
        let unwritten = Unwritten::new(0);
        unwritten.closed(&record("c1"));
        assert!(unwritten.is_empty());
    }

    #[test]
    fn a_snapshot_saves_the_unwritten_as_open() {
        let open = Arc::new(OpenTimelines::default());
        let snapshot = Snapshot::new(open, vec![record("c1")], vec!["c0".into()]);
        assert_eq!(snapshot.open_count(), 1);
        let saved: SavedState = serde_json::from_value(serde_json::to_value(&snapshot).unwrap()).unwrap();
        assert_eq!(saved.open.iter().map(|r| r.conversation_id.as_str()).collect::<Vec<_>>(), ["c1"]);
        assert_eq!(saved.closed, ["c0"]);
    }
}
