//! `ParticipantEvent`: the one shape both wire dialects decode into and the timeline
//! consumes. Its fingerprint is computed once, at decode time.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use crate::record::EntryAction as Action;

/// SHA-256 of the fields that identify an event (conversation, participant, action, time).
/// The same join seen on two topics, or in two snapshots, has the same fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(conversation: &str, participant: &str, action: Action, at: DateTime<Utc>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(conversation.as_bytes());
        hasher.update([0]);
        hasher.update(participant.as_bytes());
        hasher.update([0, action as u8]);
        hasher.update(at.timestamp_millis().to_be_bytes());
        Fingerprint(hasher.finalize().into())
    }
}

/// One participant joining or leaving one conversation, at an event time.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantEvent {
    pub conversation: String,
    pub participant: String,
    pub action: Action,
    pub at: DateTime<Utc>,
    pub purpose: Option<String>,
    pub media: Option<String>,
    pub user: Option<String>,
    pub queue: Option<String>,
    pub disconnect_type: Option<String>,
    pub fingerprint: Fingerprint,
}

/// The fields of an event besides its identity; the fingerprint is derived, never passed in.
#[derive(Clone, Debug, Default)]
pub struct EventDetails {
    pub purpose: Option<String>,
    pub media: Option<String>,
    pub user: Option<String>,
    pub queue: Option<String>,
    pub disconnect_type: Option<String>,
}

impl ParticipantEvent {
    pub fn new(
        conversation: String,
        participant: String,
        action: Action,
        at: DateTime<Utc>,
        details: EventDetails,
    ) -> Self {
        let fingerprint = Fingerprint::of(&conversation, &participant, action, at);
        ParticipantEvent {
            conversation,
            participant,
            action,
            at,
            purpose: details.purpose,
            media: details.media,
            user: details.user,
            queue: details.queue,
            disconnect_type: details.disconnect_type,
            fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn fingerprint_depends_on_identity_only() {
        let a = ParticipantEvent::new("c".into(), "p".into(), Action::Joined, at(5), EventDetails::default());
        let b = ParticipantEvent::new(
            "c".into(),
            "p".into(),
            Action::Joined,
            at(5),
            EventDetails { purpose: Some("agent".into()), ..Default::default() },
        );
        assert_eq!(a.fingerprint, b.fingerprint);
        let left =
            ParticipantEvent::new("c".into(), "p".into(), Action::Left, at(5), EventDetails::default());
        assert_ne!(a.fingerprint, left.fingerprint);
        let later =
            ParticipantEvent::new("c".into(), "p".into(), Action::Joined, at(6), EventDetails::default());
        assert_ne!(a.fingerprint, later.fingerprint);
        // Field boundaries matter: ("ab","c") is not ("a","bc").
        assert_ne!(
            Fingerprint::of("ab", "c", Action::Joined, at(1)),
            Fingerprint::of("a", "bc", Action::Joined, at(1))
        );
    }
}
