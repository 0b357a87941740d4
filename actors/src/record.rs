//! The timeline JSON schema: what the JSONL sink writes, what
//! `/timelines` and `timelined replay` return, and what the simulator's `/sim/truth` serves.
//! One type for all of them so the comparison in the integration tests is field for field.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One conversation's reconstructed timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineRecord {
    pub conversation_id: String,
    /// Sorted, de-duplicated: `voice`, `chat`, `message`, `email`, `callback`, `video`, …
    pub media_types: Vec<String>,
    #[serde(with = "millis", default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "millis", default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Every participant that joined has left and nothing was missed (or all was healed).
    pub complete: bool,
    pub gaps: u32,
    pub healed: bool,
    /// Participants that connected, ordered by `joinedAt` then `participantId`.
    pub participants: Vec<ParticipantRecord>,
    /// Joins and leaves in event-time order (ties: `left` before `joined`, then participant id).
    pub entries: Vec<EntryRecord>,
}

impl TimelineRecord {
    /// A closed, complete timeline of `conversation` with nobody in it: the fixture of
    /// tests of what carries records without looking inside them.
    pub fn empty(conversation: &str) -> Self {
        TimelineRecord {
            conversation_id: conversation.into(),
            media_types: Vec::new(),
            started_at: None,
            ended_at: None,
            complete: true,
            gaps: 0,
            healed: false,
            participants: Vec::new(),
            entries: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRecord {
    pub participant_id: String,
    /// `None` where the wire dialect does not carry it (analytics-stream).
    pub purpose: Option<String>,
    pub user_id: Option<String>,
    pub queue_id: Option<String>,
    #[serde(with = "millis", default)]
    pub joined_at: Option<DateTime<Utc>>,
    #[serde(with = "millis", default)]
    pub left_at: Option<DateTime<Utc>>,
    /// Lower-case dotted, as in conversation snapshots: `peer`, `client`, `transfer`, …
    pub disconnect_type: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryAction {
    // Declared first so that a leave sorts before a join at the same millisecond.
    Left,
    Joined,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRecord {
    #[serde(with = "millis_required")]
    pub at: DateTime<Utc>,
    pub action: EntryAction,
    pub participant_id: String,
    pub purpose: Option<String>,
}

impl EntryRecord {
    /// The order entries appear in: event time, then leave before join, then participant id.
    pub fn sort_key(&self) -> (DateTime<Utc>, EntryAction, &str) {
        (self.at, self.action, &self.participant_id)
    }
}

/// RFC 3339, UTC, milliseconds, `Z` — the one timestamp format of every output.
pub fn format_millis(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&format_millis(at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

mod millis_required {
    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_millis(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_millis_and_round_trip() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T10:00:01.5+01:00")
            .map(|t| t.with_timezone(&Utc))
            .unwrap();
        let entry = EntryRecord {
            at,
            action: EntryAction::Joined,
            participant_id: "p1".into(),
            purpose: Some("agent".into()),
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"at":"2026-11-23T09:00:01.500Z","action":"joined","participantId":"p1","purpose":"agent"}"#
        );
        let back: EntryRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn a_leave_sorts_before_a_join_at_the_same_millisecond() {
        assert!(EntryAction::Left < EntryAction::Joined);
    }
}
