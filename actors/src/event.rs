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

/// The event times accepted from outside (stream and backfill), around the clock now: a
/// time far in the future (year 10000, chrono's last second) or long past is not a
/// conversation's, and once in a timeline it would be saved in the checkpoint, steer the
/// outage search and reach time arithmetic. Such an event is rejected and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// How far in the past an event may be.
    pub max_age: std::time::Duration,
    /// How far ahead of our clock an event may be (the service's clock may run ahead).
    pub max_lead: std::time::Duration,
}

impl Default for TimeWindow {
    fn default() -> Self {
        TimeWindow {
            max_age: std::time::Duration::from_secs(3650 * 24 * 3600),
            max_lead: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

impl TimeWindow {
    /// Whether `at` is within the window around `now`. A bound past chrono's range is no
    /// bound.
    pub fn admits(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let earliest =
            chrono::TimeDelta::from_std(self.max_age).ok().and_then(|age| now.checked_sub_signed(age));
        let latest =
            chrono::TimeDelta::from_std(self.max_lead).ok().and_then(|lead| now.checked_add_signed(lead));
        earliest.is_none_or(|earliest| at >= earliest) && latest.is_none_or(|latest| at <= latest)
    }

    /// Keep the events `admits` lets through; describe the first one refused, if any, with
    /// how many were.
    pub fn retain(&self, events: &mut Vec<ParticipantEvent>, now: DateTime<Utc>) -> Option<(usize, String)> {
        let before = events.len();
        let mut first = None;
        events.retain(|event| {
            let admitted = self.admits(event.at, now);
            if !admitted && first.is_none() {
                first = Some(format!(
                    "event time {} outside the accepted window (at most {} old, {} ahead)",
                    event.at.to_rfc3339(),
                    humanize(self.max_age),
                    humanize(self.max_lead)
                ));
            }
            admitted
        });
        first.map(|detail| (before - events.len(), detail))
    }
}

fn humanize(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(86_400) {
        format!("{}d", seconds / 86_400)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    fn event_at(at: DateTime<Utc>) -> ParticipantEvent {
        ParticipantEvent::new("c".into(), "p", Action::Joined, at, EventDetails::default())
    }

    #[test]
    fn times_far_ahead_or_long_past_are_refused_and_the_rest_kept() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z").unwrap().to_utc();
        let window = TimeWindow::default();
        let year_10000 = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").unwrap().to_utc()
            + chrono::TimeDelta::seconds(2);
        let cases = [
            (now, true),
            (now - chrono::TimeDelta::days(3000), true),
            (now + chrono::TimeDelta::hours(23), true),
            (now + chrono::TimeDelta::hours(25), false),
            (now - chrono::TimeDelta::days(3651), false),
            (year_10000, false),
            (DateTime::<Utc>::MAX_UTC, false),
            (DateTime::<Utc>::MIN_UTC, false),
            (DateTime::<Utc>::UNIX_EPOCH, false),
        ];
        for (at, admitted) in cases {
            assert_eq!(window.admits(at, now), admitted, "{at}");
        }
        let mut events: Vec<_> = cases.iter().map(|(at, _)| event_at(*at)).collect();
        let (refused, detail) = window.retain(&mut events, now).unwrap();
        assert_eq!((refused, events.len()), (6, 3));
        assert!(detail.contains("outside the accepted window"), "{detail}");
    }

    #[test]
    fn a_bound_beyond_the_calendar_is_no_bound() {
        let window = TimeWindow { max_age: std::time::Duration::MAX, max_lead: std::time::Duration::MAX };
        assert!(window.admits(DateTime::<Utc>::MAX_UTC, Utc::now()));
        assert!(window.admits(DateTime::<Utc>::MIN_UTC, Utc::now()));
    }
}
