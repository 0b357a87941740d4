//! Fault switches: the ways Genesys Cloud and the network fail a client, on demand.
//!
//! A [`Fault`] is plain data with one JSON shape per kind. It
//! arrives by `POST /sim/faults`, [`super::SimHandle::fault`] or [`super::SimConfig::faults`];
//! [`Fault::validate`] turns a shape that cannot be carried out into a message before
//! anything is applied. This file is pure: the shapes, their checks, and the bad frames the
//! `malformed` and `oversized` faults send. The hub applies a fault to the sockets open at
//! that moment (`hub.rs`), each socket's writer carries out stalls and drops
//! (`outbound.rs`), and a middleware answers injected HTTP errors (`server.rs`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::protocol;

/// Longest stall or `socket_closing` delay accepted: beyond it a test has surely made a typo.
const MAX_DELAY: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Largest `oversized` frame: big enough for any client's limit, small enough for memory.
const MAX_OVERSIZED_BYTES: usize = 64 * 1024 * 1024;
/// How many kinds of bad frame `malformed` cycles through.
const MALFORMED_KINDS: u64 = 5;
/// A time no RFC 3339 parser accepts.
const NOT_A_TIME: &str = "yesterday at noon";
/// Bytes that are neither UTF-8 nor JSON.
const NOT_JSON_BYTES: &[u8] = b"\xff\xfe not json \x80";

/// One fault, as `POST /sim/faults` takes it: `{"kind": "<snake_case kind>", …}`. Unknown
/// kinds and unknown fields are refused; [`Fault::validate`] checks the values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "Tagged", into = "Tagged")]
pub enum Fault {
    /// Every open streaming socket (both dialects) ends without a Close frame.
    DropSocket,
    /// The socket of every channel subscribed to `topic` ends without a Close frame; the
    /// other channels' sockets stream on.
    DropChannelSocket { topic: String },
    /// Every open socket gets a Close frame with this code, then is closed.
    Close { code: u16 },
    /// Every socket open now sends nothing for this long (no data, heartbeats or pongs)
    /// and stays open; frames meant for it meanwhile are lost. A stalled socket that is
    /// closed meanwhile (replaced, expired) ends without its Close frame.
    Stall { seconds: f64 },
    /// Every notifications socket gets `v2.system.socket_closing`, then Close 1001 after
    /// `close_after` (a humantime string, `"5s"`; default a minute, as the service does).
    /// The channel itself stays usable.
    SocketClosing { close_after: Duration },
    /// Every channel with an open socket is gone now: the socket closes (1000), the
    /// upgrade and the subscription calls answer 404.
    ExpireChannel,
    /// The next `count` (default 1) requests whose path starts with `path` are answered
    /// with `status` (and `Retry-After` when given) in the error shape of that endpoint
    /// family.
    Http { path: String, status: u16, retry_after: Option<u64>, count: u64 },
    /// `count` (default 5) bad frames to every open socket, cycling through invalid JSON,
    /// wrong types, an unknown topic, a non-JSON binary frame and a time that is not
    /// RFC 3339.
    Malformed { count: u64 },
    /// One valid-JSON text frame of about `bytes` bytes to every open socket.
    Oversized { bytes: usize },
    /// Exactly this frame to every open socket: `text`, or `binary` as base64.
    Inject { text: Option<String>, binary: Option<String> },
    /// As if 20 more channels had been created: every existing channel is evicted.
    EvictChannel,
    /// Every issued token is invalid from now on; sockets stay open.
    RevokeToken,
    /// The next `count` (default 1) channels created are handed `uri` as their
    /// `connectUri`: a host that never answers, a cleartext or foreign one.
    ConnectUri { uri: String, count: u64 },
    /// For `seconds`, `rate` (default 20) frames a second that no honest service sends, to
    /// every open socket beside the normal stream (see the `hostile` module).
    Hostile { seconds: f64, rate: u32 },
}

/// The wire form of [`Fault`]. Kinds without fields are empty structs here because serde
/// lets unknown fields through on unit variants of an internally tagged enum, and
/// `{"kind":"drop_socket","extra":1}` must be refused like any other typo.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Tagged {
    DropSocket {},
    DropChannelSocket {
        topic: String,
    },
    Close {
        code: u16,
    },
    Stall {
        seconds: f64,
    },
    SocketClosing {
        #[serde(default = "default_close_after", with = "humantime_text")]
        close_after: Duration,
    },
    ExpireChannel {},
    Http {
        path: String,
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        #[serde(default = "one")]
        count: u64,
    },
    Malformed {
        #[serde(default = "default_malformed")]
        count: u64,
    },
    Oversized {
        bytes: usize,
    },
    Inject {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<String>,
    },
    EvictChannel {},
    RevokeToken {},
    ConnectUri {
        uri: String,
        #[serde(default = "one")]
        count: u64,
    },
    Hostile {
        seconds: f64,
        #[serde(default = "default_hostile_rate")]
        rate: u32,
    },
}

fn default_hostile_rate() -> u32 {
    20
}

impl From<Tagged> for Fault {
    fn from(tagged: Tagged) -> Self {
        match tagged {
            Tagged::DropSocket {} => Fault::DropSocket,
            Tagged::DropChannelSocket { topic } => Fault::DropChannelSocket { topic },
            Tagged::Close { code } => Fault::Close { code },
            Tagged::Stall { seconds } => Fault::Stall { seconds },
            Tagged::SocketClosing { close_after } => Fault::SocketClosing { close_after },
            Tagged::ExpireChannel {} => Fault::ExpireChannel,
            Tagged::Http { path, status, retry_after, count } => {
                Fault::Http { path, status, retry_after, count }
            }
            Tagged::Malformed { count } => Fault::Malformed { count },
            Tagged::Oversized { bytes } => Fault::Oversized { bytes },
            Tagged::Inject { text, binary } => Fault::Inject { text, binary },
            Tagged::EvictChannel {} => Fault::EvictChannel,
            Tagged::RevokeToken {} => Fault::RevokeToken,
            Tagged::ConnectUri { uri, count } => Fault::ConnectUri { uri, count },
            Tagged::Hostile { seconds, rate } => Fault::Hostile { seconds, rate },
        }
    }
}

impl From<Fault> for Tagged {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::DropSocket => Tagged::DropSocket {},
            Fault::DropChannelSocket { topic } => Tagged::DropChannelSocket { topic },
            Fault::Close { code } => Tagged::Close { code },
            Fault::Stall { seconds } => Tagged::Stall { seconds },
            Fault::SocketClosing { close_after } => Tagged::SocketClosing { close_after },
            Fault::ExpireChannel => Tagged::ExpireChannel {},
            Fault::Http { path, status, retry_after, count } => {
                Tagged::Http { path, status, retry_after, count }
            }
            Fault::Malformed { count } => Tagged::Malformed { count },
            Fault::Oversized { bytes } => Tagged::Oversized { bytes },
            Fault::Inject { text, binary } => Tagged::Inject { text, binary },
            Fault::EvictChannel => Tagged::EvictChannel {},
            Fault::RevokeToken => Tagged::RevokeToken {},
            Fault::ConnectUri { uri, count } => Tagged::ConnectUri { uri, count },
            Fault::Hostile { seconds, rate } => Tagged::Hostile { seconds, rate },
        }
    }
}

fn one() -> u64 {
    1
}

/// One of each kind of bad frame.
fn default_malformed() -> u64 {
    MALFORMED_KINDS
}

fn default_close_after() -> Duration {
    Duration::from_secs(60)
}

/// `Duration` as a humantime string (`"5s"`, `"1m 30s"`).
mod humantime_text {
    use super::*;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*duration).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration like \"5s\": {e}")))
    }
}

/// Why a fault was refused; nothing of a refused batch is applied.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("the body is neither a fault object nor an array of them: {0}")]
    NotJson(serde_json::Error),
    #[error("{}{source}", at_position(*position))]
    Shape {
        /// Index in the array, when the body was one.
        position: Option<usize>,
        source: serde_json::Error,
    },
    #[error("{}{kind}: {problem}", at_position(*position))]
    Invalid { position: Option<usize>, kind: &'static str, problem: String },
}

fn at_position(position: Option<usize>) -> String {
    position.map(|p| format!("fault [{p}]: ")).unwrap_or_default()
}

impl FaultError {
    /// A low-cardinality label for the error.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultError::NotJson(_) => "not_json",
            FaultError::Shape { .. } => "shape",
            FaultError::Invalid { .. } => "invalid",
        }
    }

    fn at(self, at: usize) -> Self {
        match self {
            FaultError::Shape { source, .. } => FaultError::Shape { position: Some(at), source },
            FaultError::Invalid { kind, problem, .. } => {
                FaultError::Invalid { position: Some(at), kind, problem }
            }
            other => other,
        }
    }
}

impl Fault {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::DropSocket => "drop_socket",
            Fault::DropChannelSocket { .. } => "drop_channel_socket",
            Fault::Close { .. } => "close",
            Fault::Stall { .. } => "stall",
            Fault::SocketClosing { .. } => "socket_closing",
            Fault::ExpireChannel => "expire_channel",
            Fault::Http { .. } => "http",
            Fault::Malformed { .. } => "malformed",
            Fault::Oversized { .. } => "oversized",
            Fault::Inject { .. } => "inject",
            Fault::EvictChannel => "evict_channel",
            Fault::RevokeToken => "revoke_token",
            Fault::ConnectUri { .. } => "connect_uri",
            Fault::Hostile { .. } => "hostile",
        }
    }

    /// Whether the simulator can carry this fault out as written.
    pub fn validate(&self) -> Result<(), FaultError> {
        let problem = match self {
            Fault::Close { code } if !close_code_can_be_sent(*code) => Some(format!(
                "code {code} cannot be sent in a Close frame (use 1000-1003, 1007-1014 or 3000-4999)"
            )),
            Fault::Hostile { rate, .. } if !(1..=1000).contains(rate) => {
                Some(format!("rate must be from 1 to 1000 frames a second, not {rate}"))
            }
            Fault::Stall { seconds } | Fault::Hostile { seconds, .. } => {
                match Duration::try_from_secs_f64(*seconds) {
                    Ok(duration) if duration <= MAX_DELAY => None,
                    _ => Some(format!(
                        "seconds must be a number from 0 to {}, not {seconds}",
                        MAX_DELAY.as_secs()
                    )),
                }
            }
            Fault::SocketClosing { close_after } if *close_after > MAX_DELAY => {
                Some(format!("close_after must be at most {}", humantime::format_duration(MAX_DELAY)))
            }
            Fault::DropChannelSocket { topic } if topic.is_empty() => {
                Some("topic must not be empty".to_owned())
            }
            Fault::Http { path, .. } if !path.starts_with('/') => {
                Some(format!("path must start with '/', not {path:?}"))
            }
            Fault::Http { path, .. } if path.starts_with("/sim") => {
                Some(format!("path {path:?} would fault the simulator's own /sim endpoints"))
            }
            Fault::Http { status, .. } if !(400..=599).contains(status) => {
                Some(format!("status must be an error status (400-599), not {status}"))
            }
            Fault::Http { count: 0, .. }
            | Fault::Malformed { count: 0 }
            | Fault::ConnectUri { count: 0, .. } => Some("count must be at least 1".to_owned()),
            Fault::Oversized { bytes } if *bytes == 0 || *bytes > MAX_OVERSIZED_BYTES => {
                Some(format!("bytes must be from 1 to {MAX_OVERSIZED_BYTES}, not {bytes}"))
            }
            Fault::Inject { text, binary } => match (text, binary) {
                (Some(_), None) => None,
                (None, Some(binary)) if protocol::decode_base64(binary).is_some() => None,
                (None, Some(_)) => Some("binary must be standard base64".to_owned()),
                _ => Some("give exactly one of text and binary".to_owned()),
            },
            _ => None,
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(FaultError::Invalid { position: None, kind: self.kind(), problem }),
        }
    }
}

impl FromStr for Fault {
    type Err = FaultError;

    /// One fault object, checked: what `--fault '{"kind":"drop_socket"}'` takes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fault: Fault =
            serde_json::from_str(text).map_err(|source| FaultError::Shape { position: None, source })?;
        fault.validate()?;
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    /// The JSON shape, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

/// A `POST /sim/faults` body: one fault object or an array of them, every one checked.
pub fn parse_faults(body: &[u8]) -> Result<Vec<Fault>, FaultError> {
    let value: Value = serde_json::from_slice(body).map_err(FaultError::NotJson)?;
    let decode = |value: Value| -> Result<Fault, FaultError> {
        let fault: Fault =
            serde_json::from_value(value).map_err(|source| FaultError::Shape { position: None, source })?;
        fault.validate()?;
        Ok(fault)
    };
    match value {
        Value::Array(items) => {
            items.into_iter().enumerate().map(|(at, item)| decode(item).map_err(|e| e.at(at))).collect()
        }
        single => Ok(vec![decode(single)?]),
    }
}

/// Codes an endpoint may put in a Close frame (RFC 6455 §7.4): not 1004-1006, not 1015,
/// not the unassigned 1016-2999.
fn close_code_can_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Which dialect a socket speaks, for the frames a fault builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Notifications,
    Analytics,
}

/// A frame a fault sends as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FaultFrame {
    Text(String),
    Binary(Vec<u8>),
}

/// Ids the bad frames refer to, so they look like the real thing.
pub(crate) struct BadFrameIds<'a> {
    pub queue: &'a str,
    /// A fresh conversation id, never one that is played.
    pub conversation: &'a str,
    pub participant: &'a str,
    pub correlation: &'a str,
}

/// The `n`-th bad frame of a `malformed` fault (counting from 0 on each socket).
pub(crate) fn malformed_frame(dialect: Dialect, n: u64, ids: &BadFrameIds<'_>) -> FaultFrame {
    let queue_topic = format!("v2.routing.queues.{}.conversations", ids.queue);
    let text = match (n % MALFORMED_KINDS, dialect) {
        (0, Dialect::Notifications) => r#"{"topicName":"#.to_owned(),
        (0, Dialect::Analytics) => r#"{"events":"#.to_owned(),
        (1, Dialect::Notifications) => protocol::notification(
            &queue_topic,
            &serde_json::json!({"id": ids.conversation, "participants": 42}).to_string(),
            ids.correlation,
        ),
        (1, Dialect::Analytics) => r#"{"events":42}"#.to_owned(),
        (2, Dialect::Notifications) => {
            protocol::notification("v2.weather.today", r#"{"forecast":"rain"}"#, ids.correlation)
        }
        (2, Dialect::Analytics) => {
            r#"{"topicName":"v2.weather.today","eventBody":{"forecast":"rain"}}"#.to_owned()
        }
        (3, _) => return FaultFrame::Binary(NOT_JSON_BYTES.to_vec()),
        (_, Dialect::Notifications) => {
            let body = serde_json::json!({
                "id": ids.conversation,
                "participants": [{
                    "id": ids.participant,
                    "purpose": "customer",
                    "connectedTime": NOT_A_TIME,
                }],
            });
            protocol::notification(&queue_topic, &body.to_string(), ids.correlation)
        }
        (_, Dialect::Analytics) => serde_json::json!({
            "events": [{
                "timestamp": NOT_A_TIME,
                "type": "ParticipantJoined",
                "participant": ids.participant,
                "interaction": ids.conversation,
                "channel": "voice",
            }],
        })
        .to_string(),
    };
    FaultFrame::Text(text)
}

/// A valid-JSON frame of exactly `bytes` bytes (or its bare skeleton, when that is
/// longer): a padded `channel.metadata` frame, or an empty padded event batch.
pub(crate) fn oversized_frame(dialect: Dialect, bytes: usize) -> String {
    let (head, tail) = match dialect {
        Dialect::Notifications => {
            (r#"{"topicName":"channel.metadata","eventBody":{"message":"padding","padding":""#, r#""}}"#)
        }
        Dialect::Analytics => (r#"{"events":[],"padding":""#, r#""}"#),
    };
    let padding = bytes.saturating_sub(head.len() + tail.len());
    let mut frame = String::with_capacity(head.len() + padding + tail.len());
    frame.push_str(head);
    frame.extend(std::iter::repeat_n('x', padding));
    frame.push_str(tail);
    frame
}

/// The `inject` fault's frame; `None` when the fault is not a valid inject.
pub(crate) fn injected_frame(text: Option<&str>, binary: Option<&str>) -> Option<FaultFrame> {
    match (text, binary) {
        (Some(text), None) => Some(FaultFrame::Text(text.to_owned())),
        (None, Some(binary)) => protocol::decode_base64(binary).map(FaultFrame::Binary),
        _ => None,
    }
}

/// Whether the endpoint family of `path` answers errors in OAuth's shape.
pub(crate) fn is_login_path(path: &str) -> bool {
    path.starts_with("/oauth/")
}

/// The `error` of an OAuth error body for `status` (RFC 6749 §5.2 where it has one).
pub(crate) fn oauth_error_code(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "invalid_client",
        403 => "unauthorized_client",
        429 => "too_many_requests",
        503 => "temporarily_unavailable",
        500..=599 => "server_error",
        _ => "invalid_request",
    }
}

/// The `code` of a REST error body for `status`, as the Genesys API spells them.
pub(crate) fn api_error_code(status: u16) -> &'static str {
    match status {
        400 => "bad.request",
        401 => "authentication.required",
        403 => "missing.permissions",
        404 => "not.found",
        408 => "request.timeout",
        409 => "conflict",
        429 => "too.many.requests",
        503 => "service.unavailable",
        500..=599 => "internal.server.error",
        _ => "bad.request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(text: &str) -> Result<Fault, String> {
        text.parse::<Fault>().map_err(|e| e.to_string())
    }

    #[test]
    fn every_documented_shape_parses() {
        let cases = [
            (r#"{"kind":"drop_socket"}"#, Fault::DropSocket),
            (
                r#"{"kind":"drop_channel_socket","topic":"v2.routing.queues.q.conversations"}"#,
                Fault::DropChannelSocket { topic: "v2.routing.queues.q.conversations".into() },
            ),
            (r#"{"kind":"close","code":1011}"#, Fault::Close { code: 1011 }),
            (r#"{"kind":"stall","seconds":20}"#, Fault::Stall { seconds: 20.0 }),
            (
                r#"{"kind":"socket_closing","close_after":"5s"}"#,
                Fault::SocketClosing { close_after: Duration::from_secs(5) },
            ),
            (r#"{"kind":"expire_channel"}"#, Fault::ExpireChannel),
            (
                r#"{"kind":"http","path":"/oauth/token","status":429,"retry_after":2,"count":3}"#,
                Fault::Http { path: "/oauth/token".into(), status: 429, retry_after: Some(2), count: 3 },
            ),
            (r#"{"kind":"malformed","count":5}"#, Fault::Malformed { count: 5 }),
            (r#"{"kind":"oversized","bytes":2000000}"#, Fault::Oversized { bytes: 2_000_000 }),
            (r#"{"kind":"inject","text":"hi"}"#, Fault::Inject { text: Some("hi".into()), binary: None }),
            (
                r#"{"kind":"inject","binary":"aGk="}"#,
                Fault::Inject { text: None, binary: Some("aGk=".into()) },
            ),
            (r#"{"kind":"evict_channel"}"#, Fault::EvictChannel),
            (r#"{"kind":"revoke_token"}"#, Fault::RevokeToken),
        ];
        for (text, fault) in cases {
            assert_eq!(parse_one(text), Ok(fault.clone()), "{text}");
            // What Display prints parses back to the same fault.
            assert_eq!(parse_one(&fault.to_string()), Ok(fault.clone()), "{fault}");
            assert!(fault.to_string().contains(fault.kind()));
        }
    }

    #[test]
    fn optional_fields_have_defaults() {
        assert_eq!(
            parse_one(r#"{"kind":"http","path":"/api/v2/","status":503}"#),
            Ok(Fault::Http { path: "/api/v2/".into(), status: 503, retry_after: None, count: 1 })
        );
        assert_eq!(parse_one(r#"{"kind":"malformed"}"#), Ok(Fault::Malformed { count: 5 }));
        assert_eq!(
            parse_one(r#"{"kind":"socket_closing"}"#),
            Ok(Fault::SocketClosing { close_after: Duration::from_secs(60) })
        );
    }

    #[test]
    fn unknown_kinds_fields_and_bad_values_are_refused_with_a_reason() {
        for (text, needle) in [
            (r#"{"kind":"meteor"}"#, "meteor"),
            (r#"{"kind":"drop_socket","extra":1}"#, "extra"),
            (r#"{"kind":"close","code":1011,"reason":"x"}"#, "reason"),
            (r#"{"kind":"close"}"#, "code"),
            (r#"{"kind":"close","code":1005}"#, "1005"),
            (r#"{"kind":"stall","seconds":-1}"#, "seconds"),
            (r#"{"kind":"socket_closing","close_after":"soon"}"#, "soon"),
            (r#"{"kind":"http","path":"oauth","status":429}"#, "path"),
            (r#"{"kind":"http","path":"/sim/truth","status":500}"#, "/sim"),
            (r#"{"kind":"http","path":"/","status":200}"#, "200"),
            (r#"{"kind":"http","path":"/","status":500,"count":0}"#, "count"),
            (r#"{"kind":"oversized","bytes":0}"#, "bytes"),
            (r#"{"kind":"inject"}"#, "exactly one"),
            (r#"{"kind":"inject","text":"a","binary":"YQ=="}"#, "exactly one"),
            (r#"{"kind":"inject","binary":"!!"}"#, "base64"),
            (r#"{"kind":"connect_uri"}"#, "uri"),
            (r#"{"kind":"connect_uri","uri":"ws://x","count":0}"#, "count"),
            (r#"{"kind":"hostile","seconds":-1}"#, "seconds"),
            (r#"{"kind":"hostile","seconds":5,"rate":0}"#, "rate"),
            (r#"{"code":1000}"#, "kind"),
        ] {
            let error = parse_one(text).expect_err(text);
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn a_body_is_one_fault_or_an_array_and_errors_name_the_position() {
        assert_eq!(parse_faults(br#"{"kind":"drop_socket"}"#).unwrap().len(), 1);
        let two = parse_faults(br#"[{"kind":"drop_socket"},{"kind":"revoke_token"}]"#).unwrap();
        assert_eq!(two, vec![Fault::DropSocket, Fault::RevokeToken]);
        assert!(parse_faults(b"[]").unwrap().is_empty());
        let error = parse_faults(br#"[{"kind":"drop_socket"},{"kind":"close","code":5}]"#).unwrap_err();
        assert!(error.to_string().starts_with("fault [1]: close:"), "{error}");
        assert_eq!(error.kind(), "invalid");
        assert_eq!(parse_faults(b"{").unwrap_err().kind(), "not_json");
        assert_eq!(parse_faults(b"3").unwrap_err().kind(), "shape");
    }

    #[test]
    fn malformed_frames_cycle_through_five_kinds_of_bad() {
        let ids = BadFrameIds { queue: "q", conversation: "c", participant: "p", correlation: "corr" };
        for dialect in [Dialect::Notifications, Dialect::Analytics] {
            let frames: Vec<FaultFrame> = (0..6).map(|n| malformed_frame(dialect, n, &ids)).collect();
            assert_eq!(frames[5], frames[0], "the cycle repeats");
            let text = |n: usize| match &frames[n] {
                FaultFrame::Text(text) => text.clone(),
                FaultFrame::Binary(_) => panic!("frame {n} is binary"),
            };
            assert!(serde_json::from_str::<Value>(&text(0)).is_err());
            let wrong_types: Value = serde_json::from_str(&text(1)).unwrap();
            let unknown: Value = serde_json::from_str(&text(2)).unwrap();
            match &frames[3] {
                FaultFrame::Binary(bytes) => assert!(serde_json::from_slice::<Value>(bytes).is_err()),
                FaultFrame::Text(_) => panic!("frame 3 is text"),
            }
            let bad_time: Value = serde_json::from_str(&text(4)).unwrap();
            assert!(text(4).contains(NOT_A_TIME));
            match dialect {
                Dialect::Notifications => {
                    assert_eq!(wrong_types["eventBody"]["participants"], 42);
                    assert_eq!(unknown["topicName"], "v2.weather.today");
                    assert_eq!(bad_time["topicName"], "v2.routing.queues.q.conversations");
                }
                Dialect::Analytics => {
                    assert_eq!(wrong_types["events"], 42);
                    assert!(unknown.get("events").is_none());
                    assert_eq!(bad_time["events"][0]["timestamp"], NOT_A_TIME);
                }
            }
        }
    }

    #[test]
    fn oversized_frames_are_valid_json_of_the_asked_size() {
        for dialect in [Dialect::Notifications, Dialect::Analytics] {
            let frame = oversized_frame(dialect, 100_000);
            assert_eq!(frame.len(), 100_000);
            let value: Value = serde_json::from_str(&frame).unwrap();
            assert!(value.is_object());
            let tiny = oversized_frame(dialect, 1);
            assert!(serde_json::from_str::<Value>(&tiny).is_ok());
        }
    }

    #[test]
    fn http_errors_use_each_family_s_codes() {
        assert!(is_login_path("/oauth/token"));
        assert!(!is_login_path("/api/v2/notifications/channels"));
        assert_eq!(oauth_error_code(401), "invalid_client");
        assert_eq!(oauth_error_code(502), "server_error");
        assert_eq!(api_error_code(429), "too.many.requests");
        assert_eq!(api_error_code(500), "internal.server.error");
    }
}
