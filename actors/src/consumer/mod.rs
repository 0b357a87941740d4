//! Outputs: the log for supervisors (here), the JSONL sink of closed timelines
//! (`storage::jsonl`) and the HTTP live feed. Each is a plain [`Output`]; the [`actor`]
//! gives each its own mailbox and thread.

pub mod actor;

use crate::internal_events::printable;
use crate::record::{format_millis, EntryAction, TimelineRecord};
use crate::timeline::{CloseReason, TimelineUpdate};
use slog::{info, Logger};
use std::io;

/// One output. `Send`: each runs on its own arbiter (thread), so a slow one blocks nobody.
pub trait Output: Send {
    /// Whether this output takes each join/leave, or only closed timelines.
    fn wants_updates(&self) -> bool {
        true
    }

    fn update(&mut self, update: &TimelineUpdate) -> io::Result<()>;
    fn closed(&mut self, record: &TimelineRecord, reason: CloseReason) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;

    /// How often [`Output::tick`] runs, if at all.
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Periodic work: retry what failed, sync what was written.
    fn tick(&mut self) {}

    /// Open its files anew (SIGHUP, after logrotate renamed them).
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
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
        // Ids and purposes come from the network: escaped, so none can forge a line.
        info!(self.log, "{}", message;
            "late" => update.late,
            "at" => at,
            "purpose" => &*printable(purpose),
            "participant" => &*printable(&entry.participant_id),
            "conversation" => &*printable(&update.conversation_id),
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
            "media" => &*printable(&record.media_types.join(",")),
            "participants" => record.participants.len(),
            "duration" => duration,
            "conversation" => &*printable(&record.conversation_id),
        );
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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

    /// Every value of every record logged, as text.
    #[derive(Clone, Default)]
    struct Values(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl slog::Serializer for Values {
        fn emit_arguments(&mut self, _: slog::Key, value: &std::fmt::Arguments) -> slog::Result {
            self.0.lock().unwrap().push(value.to_string());
            Ok(())
        }
    }

    impl slog::Drain for Values {
        type Ok = ();
        type Err = slog::Never;

        fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            let mut values = self.clone();
            let _ = slog::KV::serialize(&record.kv(), record, &mut values);
            Ok(())
        }
    }

    #[test]
    fn ids_from_the_network_cannot_forge_a_log_line() {
        let values = Values::default();
        let mut output = LogOutput::new(Logger::root(values.clone(), slog::o!()));
        let forged = "c1\nDec 04 12:00:00.000 INFO timeline closed, conversation: fake";
        let update = TimelineUpdate {
            conversation_id: forged.into(),
            entry: EntryRecord {
                at: record().started_at.unwrap(),
                action: EntryAction::Joined,
                participant_id: "p1\r".into(),
                purpose: Some("agent\u{1b}[2J".into()),
            },
            late: false,
        };
        output.update(&update).unwrap();
        output
            .closed(&TimelineRecord { conversation_id: forged.into(), ..record() }, CloseReason::Ended)
            .unwrap();
        let logged = values.0.lock().unwrap().clone();
        assert!(logged.iter().any(|v| v.starts_with("c1\\n")), "{logged:?}");
        assert!(logged.iter().all(|v| !v.chars().any(char::is_control)), "{logged:?}");
    }

    #[test]
    fn duration_is_first_join_to_last_leave() {
        assert_eq!(duration_seconds(&record()), Some(61.5));
    }
}
