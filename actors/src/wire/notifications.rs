//! The Genesys Cloud Notifications API dialect: conversation snapshots on queue/user
//! topics (full and per-media shapes), flat detail events, and the `channel.metadata` / `v2.system.*` control frames.

use super::{parse_time, DecodeError, Decoded, DecodedEvents, MalformedReason};
use crate::compact::Symbol;
use crate::event::{Action, EventDetails, ParticipantEvent};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;

// Strings are borrowed from the frame (`Cow`: owned only when JSON escapes make them
// differ): a snapshot repeats every participant, and most of it is known already.

/// A frame, read in one pass: Genesys writes `topicName` before `eventBody`, so the body
/// is decoded as what its topic calls for as it is read. A body that comes first is kept
/// raw and decoded after (the JSON object is unordered).
struct Envelope<'a> {
    topic: Option<Cow<'a, str>>,
    body: Option<Body<'a>>,
    /// Socket-subscribe answers carry `result`/`status` instead of a topic.
    result: Option<Cow<'a, str>>,
}

enum Body<'a> {
    Raw(&'a RawValue),
    Snapshot(Conversation<'a>),
    Detail(DetailEvent<'a>),
    Metadata(MetadataBody),
    /// A topic whose body carries nothing for us.
    Skipped,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier)]
        enum Field {
            #[serde(rename = "topicName")]
            Topic,
            #[serde(rename = "eventBody")]
            Body,
            #[serde(rename = "result")]
            Result,
            #[serde(other)]
            Other,
        }
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Envelope<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a notification frame")
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                use serde::de::IgnoredAny;
                let mut envelope = Envelope { topic: None, body: None, result: None };
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Topic => envelope.topic = map.next_value()?,
                        Field::Body => {
                            let topic = envelope.topic.as_deref().map(classify);
                            envelope.body = Some(match topic {
                                None => Body::Raw(map.next_value()?),
                                Some(Some(Topic::Snapshot { .. })) => Body::Snapshot(map.next_value()?),
                                Some(Some(Topic::Detail { .. })) => Body::Detail(map.next_value()?),
                                Some(Some(Topic::Metadata)) => Body::Metadata(map.next_value()?),
                                Some(_) => {
                                    map.next_value::<IgnoredAny>()?;
                                    Body::Skipped
                                }
                            });
                        }
                        Field::Result => envelope.result = map.next_value()?,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(envelope)
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// The body as `T`: decoded already, or now from the raw text kept when it came before
/// its topic.
fn body<'a, T: Deserialize<'a>>(
    topic: &str,
    body: Option<Body<'a>>,
    decoded: impl FnOnce(Body<'a>) -> Option<T>,
) -> Result<T, DecodeError> {
    match body {
        Some(Body::Raw(raw)) => serde_json::from_str(raw.get()).map_err(DecodeError::from_json),
        Some(body) => decoded(body).ok_or_else(|| {
            DecodeError::new(MalformedReason::WrongType, format!("{topic}: unexpected eventBody"))
        }),
        None => Err(DecodeError::new(MalformedReason::WrongType, format!("{topic}: no eventBody"))),
    }
}

#[derive(Deserialize)]
struct MetadataBody {
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Conversation<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    participants: Participants<'a>,
}

/// The participants of a snapshot, each reduced to what makes its events as it is read
/// (a full participant, with its session arrays, is several times larger).
#[derive(Default)]
struct Participants<'a>(Vec<ParticipantSummary<'a>>);

struct ParticipantSummary<'a> {
    id: Cow<'a, str>,
    connected_time: Option<Cow<'a, str>>,
    end_time: Option<Cow<'a, str>>,
    /// `media` as the session arrays say; a per-media topic overrides it.
    details: EventDetails,
}

impl<'de: 'a, 'a> Deserialize<'de> for Participants<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let participants = Vec::with_capacity(8);
        fold_array(
            deserializer,
            "an array of participants",
            participants,
            |all, participant: Participant<'de>| {
                all.push(ParticipantSummary {
                    details: participant_details(&participant),
                    id: participant.id,
                    connected_time: participant.connected_time,
                    end_time: participant.end_time,
                })
            },
        )
        .map(Participants)
    }
}

/// Read a JSON array element by element into `init` with `step`, without collecting it.
fn fold_array<'de, D, T, A>(
    deserializer: D,
    expecting: &'static str,
    init: A,
    step: impl FnMut(&mut A, T),
) -> Result<A, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Fold<T, A, F> {
        expecting: &'static str,
        init: A,
        step: F,
        item: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>, A, F: FnMut(&mut A, T)> serde::de::Visitor<'de> for Fold<T, A, F> {
        type Value = A;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_seq<S: serde::de::SeqAccess<'de>>(mut self, mut seq: S) -> Result<A, S::Error> {
            let mut folded = self.init;
            while let Some(item) = seq.next_element::<T>()? {
                (self.step)(&mut folded, item);
            }
            Ok(folded)
        }
    }
    deserializer.deserialize_seq(Fold { expecting, init, step, item: std::marker::PhantomData })
}

/// Both participant shapes in one: the full one (`userId`, `queueId`, session arrays) and
/// the flatter per-media one (`user.id`, `queue.id`, `disconnectType` on the participant).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Participant<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    purpose: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    queue_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: Option<Reference<'a>>,
    #[serde(borrow)]
    queue: Option<Reference<'a>>,
    #[serde(borrow)]
    connected_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    end_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    disconnect_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    calls: Sessions<'a>,
    #[serde(default, borrow)]
    chats: Sessions<'a>,
    #[serde(default, borrow)]
    messages: Sessions<'a>,
    #[serde(default, borrow)]
    emails: Sessions<'a>,
    #[serde(default, borrow)]
    callbacks: Sessions<'a>,
    #[serde(default, borrow)]
    videos: Sessions<'a>,
}

/// A session array (`calls`, `chats`, …) as far as it is used: whether it has any session,
/// and the last disconnect type in it — read without collecting the sessions.
#[derive(Default)]
struct Sessions<'a> {
    any: bool,
    last_disconnect_type: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Sessions<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fold_array(
            deserializer,
            "an array of sessions",
            Sessions::default(),
            |sessions, session: Session<'de>| {
                sessions.any = true;
                if session.disconnect_type.is_some() {
                    sessions.last_disconnect_type = session.disconnect_type;
                }
            },
        )
    }
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Session<'a> {
    #[serde(borrow)]
    disconnect_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailEvent<'a> {
    event_time: i64,
    #[serde(borrow)]
    conversation_id: Cow<'a, str>,
    #[serde(borrow)]
    participant_id: Cow<'a, str>,
    #[serde(borrow)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    disconnect_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    queue_id: Option<Cow<'a, str>>,
}

enum Topic<'t> {
    Metadata,
    SocketClosing,
    ChannelGone,
    /// A snapshot topic; the per-media suffix (`calls`, `chats`, …) when there is one.
    Snapshot {
        media_suffix: Option<&'t str>,
    },
    /// `v2.detail.events.conversation.{id}.{kind}.{start|end}`.
    Detail {
        kind: &'t str,
        action: Action,
    },
}

fn classify(topic: &str) -> Option<Topic<'_>> {
    if topic == "channel.metadata" {
        return Some(Topic::Metadata);
    }
    if topic == "v2.system.socket_closing" {
        return Some(Topic::SocketClosing);
    }
    if topic.starts_with("v2.system.token_revoked") || topic.starts_with("v2.system.no_longer_subscribed") {
        return Some(Topic::ChannelGone);
    }
    let parts: Vec<&str> = topic.split('.').collect();
    match parts.as_slice() {
        ["v2", "routing", "queues", _, "conversations"] | ["v2", "users", _, "conversations"] => {
            Some(Topic::Snapshot { media_suffix: None })
        }
        ["v2", "routing", "queues", _, "conversations", media]
        | ["v2", "users", _, "conversations", media] => Some(Topic::Snapshot { media_suffix: Some(media) }),
        ["v2", "detail", "events", "conversation", _, kind, phase] => {
            let action = match *phase {
                "start" => Action::Joined,
                "end" => Action::Left,
                _ => return None,
            };
            Some(Topic::Detail { kind, action })
        }
        _ => None,
    }
}

/// Media names as the timeline reports them, from a per-media topic suffix or a session
/// array name. Unknown suffixes pass through: media is an open set.
fn media_from_suffix(suffix: &str) -> Option<Symbol> {
    Symbol::intern(match suffix {
        "calls" => "voice",
        "chats" => "chat",
        "messages" => "message",
        "emails" => "email",
        "callbacks" => "callback",
        "videos" => "video",
        other => other,
    })
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(DecodeError::from_json)?;
    let Some(topic) = envelope.topic else {
        return match envelope.result.as_deref() {
            Some("200") => Ok(Decoded::Subscribed),
            Some("404") => Ok(Decoded::ChannelGone),
            Some(_) => Ok(Decoded::Ignored),
            None => Err(DecodeError::new(MalformedReason::WrongType, "frame has no topicName")),
        };
    };
    let classified = classify(&topic)
        .ok_or_else(|| DecodeError::new(MalformedReason::UnknownTopic, topic.clone().into_owned()))?;
    match classified {
        Topic::Metadata => {
            let meta: MetadataBody = body(&topic, envelope.body, |body| match body {
                Body::Metadata(meta) => Some(meta),
                _ => None,
            })?;
            Ok(match meta.message.as_deref() {
                Some("WebSocket Heartbeat") => Decoded::Heartbeat,
                Some("pong") => Decoded::Pong,
                _ => Decoded::Ignored,
            })
        }
        Topic::SocketClosing => Ok(Decoded::SocketClosing),
        Topic::ChannelGone => Ok(Decoded::ChannelGone),
        Topic::Snapshot { media_suffix } => {
            let conversation: Conversation = body(&topic, envelope.body, |body| match body {
                Body::Snapshot(conversation) => Some(conversation),
                _ => None,
            })?;
            Ok(Decoded::Events(snapshot_events(conversation, media_suffix)))
        }
        Topic::Detail { kind, action } => {
            let detail: DetailEvent = body(&topic, envelope.body, |body| match body {
                Body::Detail(detail) => Some(detail),
                _ => None,
            })?;
            detail_event(detail, kind, action).map(Decoded::Events)
        }
    }
}

/// A conversation as `GET /api/v2/conversations/{id}` returns it (the snapshot shape),
/// for backfill.
pub fn decode_conversation(bytes: &[u8]) -> Result<DecodedEvents, DecodeError> {
    let conversation: Conversation = serde_json::from_slice(bytes).map_err(DecodeError::from_json)?;
    Ok(snapshot_events(conversation, None))
}

/// Join = `connectedTime` present; leave = `endTime` present on a participant that
/// connected. A participant with `endTime` and no `connectedTime` was alerted and never
/// connected: not a join, and so not a leave either. Applying the same snapshot twice
/// yields the same events, which the timeline's fingerprint set then ignores.
fn snapshot_events(conversation: Conversation, media_suffix: Option<&str>) -> DecodedEvents {
    let mut decoded = DecodedEvents::default();
    let topic_media = media_suffix.and_then(media_from_suffix);
    let id: Arc<str> = Arc::from(&*conversation.id);
    for participant in conversation.participants.0 {
        let Some(connected) = participant.connected_time.as_deref() else {
            continue;
        };
        let details =
            EventDetails { media: topic_media.or(participant.details.media), ..participant.details };
        match parse_time("connectedTime", connected) {
            Ok(at) => decoded.events.push(ParticipantEvent::new(
                id.clone(),
                &participant.id,
                Action::Joined,
                at,
                EventDetails { disconnect_type: None, ..details },
            )),
            Err(rejection) => decoded.rejected.push(rejection),
        }
        if let Some(ended) = participant.end_time.as_deref() {
            match parse_time("endTime", ended) {
                Ok(at) => decoded.events.push(ParticipantEvent::new(
                    id.clone(),
                    &participant.id,
                    Action::Left,
                    at,
                    details,
                )),
                Err(rejection) => decoded.rejected.push(rejection),
            }
        }
    }
    decoded
}

fn reference<'r>(reference: &'r Option<Reference>) -> Option<&'r str> {
    reference.as_ref().and_then(|r| r.id.as_deref())
}

fn participant_details(participant: &Participant) -> EventDetails {
    let session_arrays: [(&str, &Sessions); 6] = [
        ("calls", &participant.calls),
        ("chats", &participant.chats),
        ("messages", &participant.messages),
        ("emails", &participant.emails),
        ("callbacks", &participant.callbacks),
        ("videos", &participant.videos),
    ];
    let session_media = session_arrays
        .iter()
        .find(|(_, sessions)| sessions.any)
        .and_then(|(name, _)| media_from_suffix(name));
    let session_disconnect =
        session_arrays.iter().find_map(|(_, sessions)| sessions.last_disconnect_type.as_deref());
    EventDetails {
        purpose: participant.purpose.as_deref().and_then(Symbol::intern),
        media: session_media,
        user: participant
            .user_id
            .as_deref()
            .or_else(|| reference(&participant.user))
            .and_then(Symbol::intern),
        queue: participant
            .queue_id
            .as_deref()
            .or_else(|| reference(&participant.queue))
            .and_then(Symbol::intern),
        disconnect_type: participant
            .disconnect_type
            .as_deref()
            .or(session_disconnect)
            .and_then(Symbol::intern),
    }
}

/// Detail topics name the participant's role; the timeline reports the snapshot purposes.
fn purpose_from_detail_kind(kind: &str) -> Option<Symbol> {
    Symbol::intern(match kind {
        "user" => "agent",
        "flow" => "ivr",
        other => other,
    })
}

fn detail_event(detail: DetailEvent, kind: &str, action: Action) -> Result<DecodedEvents, DecodeError> {
    let at = chrono::DateTime::from_timestamp_millis(detail.event_time).ok_or_else(|| {
        DecodeError::new(MalformedReason::BadTime, format!("eventTime {} out of range", detail.event_time))
    })?;
    let details = EventDetails {
        purpose: purpose_from_detail_kind(kind),
        media: detail.media_type.and_then(|m| Symbol::intern(&m.to_ascii_lowercase())),
        user: detail.user_id.as_deref().and_then(Symbol::intern),
        queue: detail.queue_id.as_deref().and_then(Symbol::intern),
        disconnect_type: match action {
            Action::Left => {
                detail.disconnect_type.and_then(|d| Symbol::intern(&snapshot_disconnect_type(&d)))
            }
            Action::Joined => None,
        },
    };
    Ok(DecodedEvents {
        events: vec![ParticipantEvent::new(
            Arc::from(&*detail.conversation_id),
            &detail.participant_id,
            action,
            at,
            details,
        )],
        rejected: Vec::new(),
    })
}

/// A detail event's disconnect type in the snapshots' (and our output's) spelling: detail
/// events name the dotted ones their own way (`CONSULT_TRANSFER` is `transfer.consult`);
/// any other is lower-cased with `_` as `.` (`TRANSFER_CONSULT` is `transfer.consult` too).
fn snapshot_disconnect_type(detail: &str) -> String {
    let named = match detail {
        "CONFERENCE_TRANSFER" => "transfer.conference",
        "CONSULT_TRANSFER" => "transfer.consult",
        "FORWARD_TRANSFER" => "transfer.forward",
        "NO_ANSWER_TRANSFER" => "transfer.noanswer",
        "NOT_AVAILABLE_TRANSFER" => "transfer.notavailable",
        "DND_TRANSFER" => "transfer.dnd",
        "DND_ENDPOINT" => "endpoint.dnd",
        other => return other.to_ascii_lowercase().replace('_', "."),
    };
    named.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(frame: &str) -> DecodedEvents {
        match decode(frame.as_bytes()) {
            Ok(Decoded::Events(events)) => events,
            other => panic!("expected events, got {other:?}"),
        }
    }

    const QUEUE_SNAPSHOT: &str = r#"{"topicName":"v2.routing.queues.q1.conversations","version":"2",
      "eventBody":{"id":"c1","participants":[
        {"id":"p-cust","purpose":"customer","connectedTime":"2026-01-01T09:00:00.000Z",
         "calls":[{"state":"connected","direction":"inbound"}]},
        {"id":"p-missed","purpose":"agent","userId":"u9","queueId":"q1","endTime":"2026-01-01T09:00:20.000Z",
         "calls":[{"state":"disconnected","disconnectType":"timeout"}]},
        {"id":"p-agent","purpose":"agent","userId":"u1","queueId":"q1","connectedTime":"2026-01-01T09:00:30.123Z",
         "endTime":"2026-01-01T09:05:00.000Z","someNewField":{"x":1},
         "calls":[{"state":"disconnected","disconnectType":"transfer.consult","direction":"inbound"}]}
      ]},"metadata":{"CorrelationId":"x"}}"#;

    #[test]
    fn snapshot_yields_joins_and_leaves_and_skips_missed_alerts() {
        let decoded = events(QUEUE_SNAPSHOT);
        assert!(decoded.rejected.is_empty());
        let summary: Vec<(String, Action, i64)> = decoded
            .events
            .iter()
            .map(|e| (e.participant.to_string(), e.action, e.at.timestamp_millis() % 1_000_000))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("p-cust".to_owned(), Action::Joined, 1767258000000 % 1_000_000),
                ("p-agent".to_owned(), Action::Joined, 1767258030123 % 1_000_000),
                ("p-agent".to_owned(), Action::Left, 1767258300000 % 1_000_000),
            ]
        );
        let leave = &decoded.events[2];
        assert_eq!(leave.disconnect_type.map(Symbol::as_str), Some("transfer.consult"));
        assert_eq!(leave.user.map(Symbol::as_str), Some("u1"));
        assert_eq!(leave.queue.map(Symbol::as_str), Some("q1"));
        assert_eq!(leave.media.map(Symbol::as_str), Some("voice"));
        assert_eq!(leave.purpose.map(Symbol::as_str), Some("agent"));
        assert_eq!(decoded.events[1].disconnect_type, None, "a join carries no disconnect type");
    }

    #[test]
    fn same_snapshot_twice_gives_identical_fingerprints() {
        let first: Vec<_> = events(QUEUE_SNAPSHOT).events.into_iter().map(|e| e.fingerprint).collect();
        let second: Vec<_> = events(QUEUE_SNAPSHOT).events.into_iter().map(|e| e.fingerprint).collect();
        assert_eq!(first, second);
    }

    #[test]
    fn per_media_topic_reads_flat_participants_with_references() {
        let frame = r#"{"topicName":"v2.users.u1.conversations.chats","eventBody":{"id":"c2","participants":[
            {"id":"p1","purpose":"agent","startTime":"2026-01-01T09:00:00.000Z","connectedTime":"2026-01-01T09:00:01.000Z",
             "endTime":"2026-01-01T09:01:00.000Z","state":"disconnected","disconnectType":"client",
             "user":{"id":"u1","name":"Ann"},"queue":{"id":"q2","name":"Sales"},"held":false}]}}"#;
        let decoded = events(frame);
        assert_eq!(decoded.events.len(), 2);
        let leave = &decoded.events[1];
        assert_eq!(leave.media.map(Symbol::as_str), Some("chat"));
        assert_eq!(leave.user.map(Symbol::as_str), Some("u1"));
        assert_eq!(leave.queue.map(Symbol::as_str), Some("q2"));
        assert_eq!(leave.disconnect_type.map(Symbol::as_str), Some("client"));
    }

    #[test]
    fn detail_events_map_kind_to_purpose_and_normalise_disconnect_type() {
        let frame = r#"{"topicName":"v2.detail.events.conversation.c3.user.end","eventBody":{
            "eventTime":1767258000123,"conversationId":"c3","participantId":"p7","sessionId":"s",
            "mediaType":"VOICE","direction":"INBOUND","disconnectType":"TRANSFER_CONSULT","userId":"u1","queueId":"q1"}}"#;
        let decoded = events(frame);
        let event = &decoded.events[0];
        assert_eq!(event.action, Action::Left);
        assert_eq!(event.purpose.map(Symbol::as_str), Some("agent"));
        assert_eq!(event.media.map(Symbol::as_str), Some("voice"));
        assert_eq!(event.disconnect_type.map(Symbol::as_str), Some("transfer.consult"));
        assert_eq!(event.at.timestamp_millis(), 1767258000123);
    }

    #[test]
    fn detail_disconnect_types_take_the_snapshot_spelling() {
        for (detail, snapshot) in [
            ("CONSULT_TRANSFER", "transfer.consult"),
            ("CONFERENCE_TRANSFER", "transfer.conference"),
            ("NO_ANSWER_TRANSFER", "transfer.noanswer"),
            ("DND_ENDPOINT", "endpoint.dnd"),
            ("TRANSPORT_FAILURE", "transport.failure"),
            ("SESSION_EXPIRED", "session.expired"),
            ("TRANSFER_CONSULT", "transfer.consult"),
            ("PEER", "peer"),
        ] {
            assert_eq!(snapshot_disconnect_type(detail), snapshot, "{detail}");
        }
    }

    #[test]
    fn a_body_before_its_topic_decodes_the_same() {
        let (topic, rest) = QUEUE_SNAPSHOT.split_once(r#","version":"2","#).unwrap();
        let (body, metadata) = rest.split_once(r#","metadata""#).unwrap();
        let reordered = format!("{{{body},{},\"version\":\"2\",\"metadata\"{metadata}", &topic[1..]);
        assert!(reordered.find("eventBody") < reordered.find("topicName"), "{reordered}");
        assert_eq!(events(&reordered), events(QUEUE_SNAPSHOT));
    }

    #[test]
    fn control_frames() {
        let heartbeat = r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
        assert_eq!(decode(heartbeat.as_bytes()), Ok(Decoded::Heartbeat));
        let pong = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;
        assert_eq!(decode(pong.as_bytes()), Ok(Decoded::Pong));
        let closing = r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"closing"}}"#;
        assert_eq!(decode(closing.as_bytes()), Ok(Decoded::SocketClosing));
        let revoked = r#"{"topicName":"v2.system.token_revoked.abc","eventBody":{}}"#;
        assert_eq!(decode(revoked.as_bytes()), Ok(Decoded::ChannelGone));
        let subscribed = r#"{"result":"200","status":"subscribed","correlationId":"1"}"#;
        assert_eq!(decode(subscribed.as_bytes()), Ok(Decoded::Subscribed));
    }

    #[test]
    fn bad_input_is_classified() {
        let reason = |frame: &str| decode(frame.as_bytes()).map(|_| ()).unwrap_err().reason;
        assert_eq!(reason("{not json"), MalformedReason::InvalidJson);
        assert_eq!(
            reason(r#"{"topicName":"v2.users.u.conversations","eventBody":{"id":"c","participants":5}}"#),
            MalformedReason::WrongType
        );
        assert_eq!(
            reason(r#"{"topicName":"v2.weather.today","eventBody":{}}"#),
            MalformedReason::UnknownTopic
        );
        assert_eq!(reason(r#"{"topicName":42}"#), MalformedReason::WrongType);
    }

    #[test]
    fn unknown_enum_values_decode() {
        let frame = r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"c","participants":[
            {"id":"p","purpose":"brand-new-purpose","connectedTime":"2026-01-01T09:00:00.000Z",
             "calls":[{"state":"teleporting","disconnectType":"wormhole.collapse"}]}]}}"#;
        let decoded = events(frame);
        assert_eq!(decoded.events[0].purpose.map(Symbol::as_str), Some("brand-new-purpose"));
    }

    #[test]
    fn a_time_that_does_not_parse_is_rejected_not_guessed() {
        let frame = r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"c","participants":[
            {"id":"p","purpose":"agent","connectedTime":"yesterday","endTime":"2026-01-01T09:00:00.000Z"}]}}"#;
        let decoded = events(frame);
        assert_eq!(decoded.rejected.len(), 1);
        assert_eq!(decoded.rejected[0].reason, MalformedReason::BadTime);
        assert_eq!(decoded.events.len(), 1, "the valid leave is kept");
        assert_eq!(decoded.events[0].action, Action::Left);
    }
}
