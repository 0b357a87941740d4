//! Outputs (DESIGN.md "Outputs"): the log for supervisors and the JSONL sink of closed
//! timelines. Each is a plain [`Output`]; the [`actor`] gives each its own mailbox.

pub mod actor;

use crate::record::{format_millis, EntryAction, TimelineRecord};
use crate::timeline::{CloseReason, TimelineUpdate};
use slog::{info, Logger};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// One output. `Send`: each runs on its own arbiter (thread), so a slow one blocks nobody.
pub trait Output: Send {
    /// Whether this output takes each join/leave, or only closed timelines.
    fn wants_updates(&self) -> bool {
        true
    }

    fn update(&mut self, update: &TimelineUpdate) -> io::Result<()>;
    fn closed(&mut self, record: &TimelineRecord, reason: CloseReason) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// One line per join/leave, one `timeline closed` line per closed conversation.
pub struct LogOutput {
    log: Logger,
}

impl LogOutput {
    pub fn new(log: Logger) -> Self {
        LogOutput { log }
    }
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Ended => "ended",
            CloseReason::Idle => "idle",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// Duration of a closed timeline in seconds (first join to last leave), if it has both.
pub fn duration_seconds(record: &TimelineRecord) -> Option<f64> {
    match (record.started_at, record.ended_at) {
        (Some(start), Some(end)) => Some((end - start).num_milliseconds() as f64 / 1000.0),
        _ => None,
    }
}

// slog hands key-values to the formatter last-first: they are listed here in reverse so
// that a line reads conversation, participant, purpose, time.
impl Output for LogOutput {
    fn update(&mut self, update: &TimelineUpdate) -> io::Result<()> {
        let entry = &update.entry;
        let purpose = entry.purpose.as_deref().unwrap_or("unknown");
        let at = format_millis(&entry.at);
        let message = match entry.action {
            EntryAction::Joined => "participant joined",
            EntryAction::Left => "participant left",
        };
        info!(self.log, "{}", message;
            "late" => update.late,
            "at" => at,
            "purpose" => purpose,
            "participant" => &entry.participant_id,
            "conversation" => &update.conversation_id,
        );
        Ok(())
    }

    fn closed(&mut self, record: &TimelineRecord, reason: CloseReason) -> io::Result<()> {
        let duration = duration_seconds(record).map_or_else(|| "unknown".to_owned(), |s| format!("{s:.3}s"));
        info!(self.log, "timeline closed";
            "reason" => reason.as_str(),
            "healed" => record.healed,
            "gaps" => record.gaps,
            "complete" => record.complete,
            "media" => record.media_types.join(","),
            "participants" => record.participants.len(),
            "duration" => duration,
            "conversation" => &record.conversation_id,
        );
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Closed timelines, one JSON object per line, in the order they closed.
pub struct JsonlOutput {
    writer: BufWriter<File>,
}

impl JsonlOutput {
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonlOutput { writer: BufWriter::new(file) })
    }
}

impl Output for JsonlOutput {
    fn wants_updates(&self) -> bool {
        false
    }

    fn update(&mut self, _: &TimelineUpdate) -> io::Result<()> {
        Ok(())
    }

    fn closed(&mut self, record: &TimelineRecord, _: CloseReason) -> io::Result<()> {
        serde_json::to_writer(&mut self.writer, record)?;
        self.writer.write_all(b"\n")?;
        // A closed timeline is the product: it is on disk before the next one is taken.
        self.writer.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Conversation ids in the last `tail_bytes` of a JSONL sink: what was closed (and
/// written) recently, so that a restart from an older checkpoint does not write it twice.
pub fn closed_in_sink(path: &Path, tail_bytes: u64) -> io::Result<std::collections::HashSet<String>> {
    use std::io::{Read, Seek, SeekFrom};
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Id {
        conversation_id: String,
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(error) => return Err(error),
    };
    let length = file.metadata()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(tail_bytes)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    // The first line may be cut by the seek, and the last by a crash: both fail to parse.
    Ok(tail
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Id>(line).ok())
        .map(|id| id.conversation_id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{EntryRecord, ParticipantRecord};
    use chrono::DateTime;

    fn record() -> TimelineRecord {
        let at = |ms: i64| DateTime::from_timestamp_millis(1_767_258_000_000 + ms).unwrap();
        TimelineRecord {
            conversation_id: "c1".into(),
            media_types: vec!["voice".into()],
            started_at: Some(at(0)),
            ended_at: Some(at(61_500)),
            complete: true,
            gaps: 0,
            healed: false,
            participants: vec![ParticipantRecord {
                participant_id: "p1".into(),
                purpose: Some("customer".into()),
                user_id: None,
                queue_id: None,
                joined_at: Some(at(0)),
                left_at: Some(at(61_500)),
                disconnect_type: Some("peer".into()),
            }],
            entries: vec![
                EntryRecord {
                    at: at(0),
                    action: EntryAction::Joined,
                    participant_id: "p1".into(),
                    purpose: None,
                },
                EntryRecord {
                    at: at(61_500),
                    action: EntryAction::Left,
                    participant_id: "p1".into(),
                    purpose: None,
                },
            ],
        }
    }

    #[test]
    fn jsonl_writes_one_parseable_line_per_closed_timeline() {
        let dir = std::env::temp_dir().join(format!("timelined-jsonl-{}", std::process::id()));
        let path = dir.join("out.jsonl");
        let mut sink = JsonlOutput::open(&path).unwrap();
        sink.closed(&record(), CloseReason::Ended).unwrap();
        sink.closed(&record(), CloseReason::Ended).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<TimelineRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, vec![record(), record()]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn closed_in_sink_reads_the_tail_and_skips_cut_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sink.jsonl");
        let mut sink = JsonlOutput::open(&path).unwrap();
        for id in ["a", "b", "c"] {
            sink.closed(&TimelineRecord { conversation_id: id.into(), ..record() }, CloseReason::Ended)
                .unwrap();
        }
        let all = closed_in_sink(&path, u64::MAX).unwrap();
        assert_eq!(all.len(), 3);
        let line = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().len() as u64 + 1;
        let tail = closed_in_sink(&path, line + line / 2).unwrap();
        assert_eq!(tail, ["c".to_string()].into(), "a line cut by the seek is skipped");
        assert!(closed_in_sink(&dir.path().join("none"), 10).unwrap().is_empty());
    }

    #[test]
    fn duration_is_first_join_to_last_leave() {
        assert_eq!(duration_seconds(&record()), Some(61.5));
    }
}
