//! Wire decoding: one text or binary WebSocket frame in, a [`Decoded`] value out.
//! Pure functions — no sockets, no actix — for both dialects.
//! Decoding is liberal where the protocol leaves the record open (unknown fields and enum
//! values pass), and strict where a guess would corrupt a timeline (times).

mod analytics;
mod notifications;

use crate::event::ParticipantEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use analytics::decode as decode_analytics;
pub use notifications::{decode as decode_notifications, decode_conversation};

/// Which protocol the daemon speaks (`genesys.dialect`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// The Genesys Cloud Notifications API (channels, topics, snapshots).
    #[default]
    Notifications,
    /// The seed's analytics stream (token message, filter, `{"events":[…]}` frames).
    AnalyticsStream,
}

/// A frame as it came off the socket.
#[derive(Clone, Copy, Debug)]
pub enum RawFrame<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

/// What one frame meant.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Joins and leaves, plus the fields that were rejected (bad time, unknown event type).
    Events(DecodedEvents),
    /// `channel.metadata` "WebSocket Heartbeat".
    Heartbeat,
    /// `channel.metadata` "pong", the answer to our `{"message":"ping"}`.
    Pong,
    /// `v2.system.socket_closing`: the server will close this socket in about a minute.
    SocketClosing,
    /// The channel is no longer usable (`token_revoked`, `no_longer_subscribed`, socket
    /// subscribe answered 404).
    ChannelGone,
    /// Subscription acknowledged (socket subscribe `200`, or analytics `subscribed`).
    Subscribed,
    /// Analytics-stream token accepted.
    Connected,
    /// Analytics-stream `{"status":"error"}`.
    StreamError(String),
    /// A well-formed frame that carries nothing for us.
    Ignored,
}

#[derive(Debug, Default, PartialEq)]
pub struct DecodedEvents {
    pub events: Vec<ParticipantEvent>,
    pub rejected: Vec<Rejection>,
}

/// A part of an otherwise good frame that was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: MalformedReason,
    pub detail: String,
}

/// Low-cardinality reason for a frame (or part of one) that could not be used: the
/// `reason` label of `timelined_malformed_frames_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MalformedReason {
    InvalidJson,
    WrongType,
    UnknownTopic,
    BadTime,
    UnknownEventType,
    UnexpectedBinary,
    Oversized,
    /// An event time outside [`crate::event::TimeWindow`].
    TimeOutOfWindow,
}

impl MalformedReason {
    pub const ALL: [MalformedReason; 8] = [
        MalformedReason::InvalidJson,
        MalformedReason::WrongType,
        MalformedReason::UnknownTopic,
        MalformedReason::BadTime,
        MalformedReason::UnknownEventType,
        MalformedReason::UnexpectedBinary,
        MalformedReason::Oversized,
        MalformedReason::TimeOutOfWindow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MalformedReason::InvalidJson => "invalid_json",
            MalformedReason::WrongType => "wrong_type",
            MalformedReason::UnknownTopic => "unknown_topic",
            MalformedReason::BadTime => "bad_time",
            MalformedReason::UnknownEventType => "unknown_event_type",
            MalformedReason::UnexpectedBinary => "unexpected_binary",
            MalformedReason::Oversized => "oversized",
            MalformedReason::TimeOutOfWindow => "time_out_of_window",
        }
    }
}

/// A frame that could not be used at all.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{reason:?}: {detail}")]
pub struct DecodeError {
    pub reason: MalformedReason,
    pub detail: String,
}

impl DecodeError {
    fn new(reason: MalformedReason, detail: impl Into<String>) -> Self {
        DecodeError { reason, detail: detail.into() }
    }

    /// serde_json tells syntax from shape: that is the invalid_json / wrong_type split.
    fn from_json(err: serde_json::Error) -> Self {
        let reason = match err.classify() {
            serde_json::error::Category::Data => MalformedReason::WrongType,
            _ => MalformedReason::InvalidJson,
        };
        DecodeError::new(reason, err.to_string())
    }
}

/// Decode one frame in the given dialect.
pub fn decode(dialect: Dialect, frame: RawFrame<'_>) -> Result<Decoded, DecodeError> {
    match (dialect, frame) {
        (Dialect::Notifications, RawFrame::Text(bytes)) => notifications::decode(bytes),
        (Dialect::Notifications, RawFrame::Binary(bytes)) => Err(DecodeError::new(
            MalformedReason::UnexpectedBinary,
            format!("binary frame of {} bytes on the notifications socket", bytes.len()),
        )),
        (Dialect::AnalyticsStream, RawFrame::Text(bytes) | RawFrame::Binary(bytes)) => {
            analytics::decode(bytes)
        }
    }
}

/// Parse an RFC 3339 time; `field` names it in the rejection.
fn parse_time(field: &str, value: &str) -> Result<DateTime<Utc>, Rejection> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|e| Rejection {
        reason: MalformedReason::BadTime,
        detail: format!("{field} {value:?}: {e}"),
    })
}
