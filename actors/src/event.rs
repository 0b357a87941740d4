//! `ParticipantEvent`: the one shape both wire dialects decode into and the timeline
//! consumes. Its fingerprint is computed once, at decode time.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::compact::{CompactId, Symbol};

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

    /// The first 8 bytes: what a timeline keeps to recognise an event seen again (a
    /// collision among one conversation's few events is out of reach).
    pub fn short(&self) -> u64 {
        let mut prefix = [0; 8];
        prefix.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(prefix)
    }
}

/// One participant joining or leaving one conversation, at an event time. Cheap to make
/// and to move: the conversation id is shared by the events of a frame, the participant id
/// is packed, and the details are interned.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantEvent {
    pub conversation: Arc<str>,
    pub participant: CompactId,
    pub action: Action,
    pub at: DateTime<Utc>,
    pub purpose: Option<Symbol>,
    pub media: Option<Symbol>,
    pub user: Option<Symbol>,
    pub queue: Option<Symbol>,
    pub disconnect_type: Option<Symbol>,
    pub fingerprint: Fingerprint,
}

/// The fields of an event besides its identity; the fingerprint is derived, never passed in.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventDetails {
    pub purpose: Option<Symbol>,
    pub media: Option<Symbol>,
    pub user: Option<Symbol>,
    pub queue: Option<Symbol>,
    pub disconnect_type: Option<Symbol>,
}

impl ParticipantEvent {
    pub fn new(
        conversation: Arc<str>,
        participant: &str,
        action: Action,
        at: DateTime<Utc>,
        details: EventDetails,
    ) -> Self {
        let fingerprint = Fingerprint::of(&conversation, participant, action, at);
        ParticipantEvent {
            conversation,
            participant: CompactId::new(participant),
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
        let a = ParticipantEvent::new("c".into(), "p", Action::Joined, at(5), EventDetails::default());
        let b = ParticipantEvent::new(
            "c".into(),
            "p",
            Action::Joined,
            at(5),
            EventDetails { purpose: Some("agent".into()), ..Default::default() },
        );
        assert_eq!(a.fingerprint, b.fingerprint);
        let left = ParticipantEvent::new("c".into(), "p", Action::Left, at(5), EventDetails::default());
        assert_ne!(a.fingerprint, left.fingerprint);
        let later = ParticipantEvent::new("c".into(), "p", Action::Joined, at(6), EventDetails::default());
        assert_ne!(a.fingerprint, later.fingerprint);
        // Field boundaries matter: ("ab","c") is not ("a","bc").
        assert_ne!(
            Fingerprint::of("ab", "c", Action::Joined, at(1)),
            Fingerprint::of("a", "bc", Action::Joined, at(1))
        );
    }
}
