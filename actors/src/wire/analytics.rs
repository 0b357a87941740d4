//! The analytics-stream dialect: status
//! answers to the token and filter messages, then `{"events":[…]}` in text or binary frames.

use super::{parse_time, DecodeError, Decoded, DecodedEvents, MalformedReason, Rejection};
use crate::compact::Symbol;
use crate::event::{Action, EventDetails, ParticipantEvent};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    events: Option<Vec<StreamEvent<'a>>>,
    status: Option<String>,
    message: Option<String>,
}

// Borrowed from the frame (owned only where JSON escapes make them differ).
#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    participant: Cow<'a, str>,
    #[serde(borrow)]
    interaction: Cow<'a, str>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let frame: Frame = serde_json::from_slice(bytes).map_err(DecodeError::from_json)?;
    if let Some(events) = frame.events {
        let mut decoded = DecodedEvents::default();
        for event in events {
            let action = match &*event.kind {
                "ParticipantJoined" => Action::Joined,
                "ParticipantLeft" => Action::Left,
                other => {
                    decoded.rejected.push(Rejection {
                        reason: MalformedReason::UnknownEventType,
                        detail: format!("event type {other:?} ignored"),
                    });
                    continue;
                }
            };
            let at = match parse_time("timestamp", &event.timestamp) {
                Ok(at) => at,
                Err(rejection) => {
                    decoded.rejected.push(rejection);
                    continue;
                }
            };
            let details = EventDetails {
                media: event.channel.as_deref().and_then(Symbol::intern),
                disconnect_type: match action {
                    Action::Left => event.reason.as_deref().and_then(Symbol::intern),
                    Action::Joined => None,
                },
                ..EventDetails::default()
            };
            decoded.events.push(ParticipantEvent::new(
                event.interaction.as_ref().into(),
                &event.participant,
                action,
                at,
                details,
            ));
        }
        return Ok(Decoded::Events(decoded));
    }
    match frame.status.as_deref() {
        Some("connected") => Ok(Decoded::Connected),
        Some("subscribed") => Ok(Decoded::Subscribed),
        Some("error") => Ok(Decoded::StreamError(frame.message.unwrap_or_default())),
        Some(_) => Ok(Decoded::Ignored),
        None => Err(DecodeError::new(MalformedReason::WrongType, "frame has neither events nor status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, Dialect, RawFrame};

    const FRAME: &str = r#"{"events":[
        {"timestamp":"2026-01-01T09:00:00.000Z","type":"ParticipantJoined","participant":"p1","interaction":"c1","channel":"voice"},
        {"timestamp":"2026-01-01T09:00:01.000Z","type":"ParticipantMuted","participant":"p1","interaction":"c1","channel":"voice"},
        {"timestamp":"2026-01-01T09:02:00.500Z","type":"ParticipantLeft","participant":"p1","interaction":"c1","channel":"voice","reason":"peer"}
    ]}"#;

    #[test]
    fn events_decode_from_text_and_binary_alike() {
        let text = wire::decode(Dialect::AnalyticsStream, RawFrame::Text(FRAME.as_bytes())).unwrap();
        let binary = wire::decode(Dialect::AnalyticsStream, RawFrame::Binary(FRAME.as_bytes())).unwrap();
        assert_eq!(text, binary);
        let Decoded::Events(decoded) = text else { panic!("expected events") };
        assert_eq!(decoded.events.len(), 2);
        assert_eq!(decoded.events[1].action, Action::Left);
        assert_eq!(decoded.events[1].disconnect_type.map(Symbol::as_str), Some("peer"));
        assert_eq!(decoded.events[0].media.map(Symbol::as_str), Some("voice"));
        assert_eq!(decoded.rejected.len(), 1, "the unknown event type is counted, not fatal");
        assert_eq!(decoded.rejected[0].reason, MalformedReason::UnknownEventType);
    }

    #[test]
    fn status_frames() {
        assert_eq!(decode(br#"{"status":"connected"}"#), Ok(Decoded::Connected));
        assert_eq!(decode(br#"{"status":"subscribed"}"#), Ok(Decoded::Subscribed));
        assert_eq!(
            decode(br#"{"status":"error","message":"bad token"}"#),
            Ok(Decoded::StreamError("bad token".into()))
        );
    }

    #[test]
    fn malformed_frames_are_classified() {
        assert_eq!(decode(b"\xff\xfe").unwrap_err().reason, MalformedReason::InvalidJson);
        assert_eq!(decode(br#"{"events":{"a":1}}"#).unwrap_err().reason, MalformedReason::WrongType);
        assert_eq!(decode(br#"{}"#).unwrap_err().reason, MalformedReason::WrongType);
        let bad_time = r#"{"events":[{"timestamp":"soon","type":"ParticipantJoined","participant":"p","interaction":"c"}]}"#;
        let Ok(Decoded::Events(decoded)) = decode(bad_time.as_bytes()) else { panic!() };
        assert!(decoded.events.is_empty());
        assert_eq!(decoded.rejected[0].reason, MalformedReason::BadTime);
    }

    #[test]
    fn binary_frames_are_bad_input_on_the_notifications_socket() {
        let err = wire::decode(Dialect::Notifications, RawFrame::Binary(FRAME.as_bytes())).unwrap_err();
        assert_eq!(err.reason, MalformedReason::UnexpectedBinary);
    }
}
