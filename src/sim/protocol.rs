//! The simulator's half of the wire protocol, written independently of the
//! daemon's decoders so that a misreading on either side fails a test instead of agreeing
//! with itself.
//!
//! Three groups: topic names (which topics exist, which a conversation publishes on),
//! frame bodies (full and per-media conversation snapshots, detail events, analytics-stream
//! events) and the small fixed frames (heartbeat, pong, status replies). Everything here is
//! a pure function of a [`Conversation`] and how far it has been played.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use timelined_actors::record::format_millis;

use super::generator::{Conversation, Media, Participant, Purpose, Step, TransitionKind};

/// Most topics one channel may hold.
pub const MAX_TOPICS: usize = 1_000;

/// The server heartbeat on the notifications socket.
pub const HEARTBEAT: &str =
    r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;

/// The answer to `{"message":"ping"}`.
pub const PONG: &str = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;

pub const ANALYTICS_CONNECTED: &str = r#"{"status":"connected"}"#;
pub const ANALYTICS_SUBSCRIBED: &str = r#"{"status":"subscribed"}"#;

/// The per-media topic suffixes a snapshot topic may carry.
const MEDIA_SUFFIXES: [&str; 6] = ["calls", "chats", "messages", "emails", "callbacks", "videos"];
const DETAIL_CATEGORIES: [&str; 4] = ["customer", "user", "acd", "flow"];
const DETAIL_PHASES: [&str; 2] = ["start", "end"];

/// Whether a channel may subscribe to `topic`; `Err` carries the rejection reason.
pub fn check_topic(topic: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = topic.split('.').collect();
    let id_ok = |id: &str| !id.is_empty() && !id.chars().any(char::is_whitespace);
    let snapshot_tail = |tail: &[&str]| match tail {
        ["conversations"] => true,
        ["conversations", media] => MEDIA_SUFFIXES.contains(media),
        _ => false,
    };
    let known = match parts.as_slice() {
        ["v2", "routing", "queues", id, tail @ ..] => id_ok(id) && snapshot_tail(tail),
        ["v2", "users", id, tail @ ..] => id_ok(id) && snapshot_tail(tail),
        ["v2", "detail", "events", "conversation", id, category, phase] => {
            id_ok(id) && DETAIL_CATEGORIES.contains(category) && DETAIL_PHASES.contains(phase)
        }
        _ => false,
    };
    if known {
        Ok(())
    } else {
        Err("Topic is not a valid notification topic")
    }
}

/// How a topic's frames render the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// The whole conversation, participants with `calls`/`chats`/`messages` sessions.
    Full,
    /// The per-media form: flat participants with `user`/`queue` references.
    Flat,
    /// One detail event for the step's participant.
    Detail,
}

/// Every topic this step publishes on, with the body each carries.
///
/// Queue topics see the conversation once it has entered the queue (its acd participant
/// has appeared); user topics once that user's agent participant has appeared (alerting
/// counts). Detail topics fire for joins and leaves of participants that connected.
pub fn topics_for(step: &Step) -> Vec<(String, BodyKind)> {
    let conversation = &step.conversation;
    let now = step.transition().at;
    let suffix = conversation.media.sessions_key();
    let mut topics = Vec::new();
    let mut push_snapshot_topics = |base: String| {
        topics.push((format!("{base}.{suffix}"), BodyKind::Flat));
        topics.push((base, BodyKind::Full));
    };
    let visible = || conversation.participants.iter().filter(move |p| p.is_visible_at(now));
    if visible().any(|p| p.purpose == Purpose::Acd) {
        push_snapshot_topics(format!("v2.routing.queues.{}.conversations", conversation.queue_id));
    }
    let mut users: Vec<&str> = visible().filter_map(|p| p.user.as_ref().map(|u| u.id.as_str())).collect();
    users.sort_unstable();
    users.dedup();
    for user in users {
        push_snapshot_topics(format!("v2.users.{user}.conversations"));
    }
    let participant = step.participant();
    if participant.connected_at.is_some() {
        let phase = match step.transition().kind {
            TransitionKind::Connected => "start",
            TransitionKind::Ended => "end",
        };
        topics.push((
            format!(
                "v2.detail.events.conversation.{}.{}.{phase}",
                conversation.id,
                participant.purpose.detail_category()
            ),
            BodyKind::Detail,
        ));
    }
    topics
}

/// The body a topic of `kind` carries for this step.
pub fn body(kind: BodyKind, step: &Step) -> String {
    match kind {
        BodyKind::Full => full_snapshot(&step.conversation, step.played()),
        BodyKind::Flat => flat_snapshot(&step.conversation, step.played()),
        BodyKind::Detail => detail_event(step),
    }
}

/// A notification data frame around an already-serialized body.
pub fn notification(topic: &str, body: &str, correlation_id: &str) -> String {
    format!(
        r#"{{"topicName":{},"version":"2","eventBody":{body},"metadata":{{"CorrelationId":{}}}}}"#,
        json_string(topic),
        json_string(correlation_id)
    )
}

/// `v2.system.socket_closing`: the channel is about to expire and the socket will close.
pub fn socket_closing(correlation_id: &str) -> String {
    notification(
        "v2.system.socket_closing",
        r#"{"message":"This socket will close soon; connect a new one"}"#,
        correlation_id,
    )
}

/// The answer to a subscribe message on the socket; `correlation_id` is echoed as sent.
pub fn subscribe_reply(alive: bool, correlation_id: Option<&Value>) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Reply<'a> {
        result: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        correlation_id: Option<&'a Value>,
    }
    serialize(&Reply {
        result: if alive { "200" } else { "404" },
        status: alive.then_some("subscribed"),
        correlation_id,
    })
}

pub fn analytics_error(message: &str) -> String {
    serde_json::json!({"status": "error", "message": message}).to_string()
}

fn json_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

fn serialize(value: &impl Serialize) -> String {
    // Plain structs of strings and numbers: serialization cannot fail.
    serde_json::to_string(value).expect("frame bodies serialize")
}

fn time(at: DateTime<Utc>) -> String {
    format_millis(&at)
}

#[derive(Serialize)]
struct Snapshot<P> {
    id: String,
    participants: Vec<P>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FullParticipant<'a> {
    id: &'a str,
    purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_id: Option<&'a str>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calls: Option<[Session<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chats: Option<[Session<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<[Session<'a>; 1]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Session<'a> {
    id: &'a str,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnected_time: Option<String>,
}

/// A participant's session state at `now`: alerting until it connects, connected until it
/// ends, then disconnected.
fn state(participant: &Participant, now: DateTime<Utc>) -> &'static str {
    if participant.ended_by(now).is_some() {
        "disconnected"
    } else if participant.connected_by(now).is_some() {
        "connected"
    } else {
        "alerting"
    }
}

/// The whole conversation after `played` transitions, as queue and user topics carry it.
pub fn full_snapshot(conversation: &Conversation, played: usize) -> String {
    snapshot(conversation, played, SnapshotFor::Topic)
}

/// The whole conversation after `played` transitions, as `GET /api/v2/conversations/{id}`
/// answers it.
pub fn conversation_resource(conversation: &Conversation, played: usize) -> String {
    snapshot(conversation, played, SnapshotFor::Resource)
}

/// Where a full snapshot goes: the topics' chat sessions have no `direction`, the REST
/// resource's do (the SDK's `QueueConversationEventTopicChat` and
/// `ConversationEventTopicChat` lack it, `ConversationChat` has it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SnapshotFor {
    Topic,
    Resource,
}

fn snapshot(conversation: &Conversation, played: usize, target: SnapshotFor) -> String {
    let Some(now) = conversation.time_after(played) else {
        return serialize(&Snapshot::<()> { id: conversation.id.clone(), participants: Vec::new() });
    };
    let participants = conversation
        .participants
        .iter()
        .filter(|p| p.is_visible_at(now))
        .map(|p| {
            let connected = p.connected_by(now).map(time);
            let ended = p.ended_by(now).map(time);
            let session = [Session {
                id: &p.session_id,
                state: state(p, now),
                disconnect_type: p.ended_by(now).map(|_| p.disconnect_type),
                direction: (target == SnapshotFor::Resource || conversation.media != Media::Chat)
                    .then(|| p.purpose.direction()),
                connected_time: connected.clone(),
                disconnected_time: ended.clone(),
            }];
            let (mut calls, mut chats, mut messages) = (None, None, None);
            match conversation.media {
                Media::Voice => calls = Some(session),
                Media::Chat => chats = Some(session),
                Media::Message => messages = Some(session),
            }
            FullParticipant {
                id: &p.id,
                purpose: p.purpose.as_str(),
                user_id: p.user.as_ref().map(|u| u.id.as_str()),
                queue_id: p.queue_id.as_deref(),
                name: &p.name,
                connected_time: connected,
                end_time: ended,
                calls,
                chats,
                messages,
            }
        })
        .collect();
    serialize(&Snapshot { id: conversation.id.clone(), participants })
}

#[derive(Serialize)]
struct Reference<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlatParticipant<'a> {
    id: &'a str,
    purpose: &'static str,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    state: &'static str,
    initial_state: &'static str,
    direction: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_type: Option<&'static str>,
    held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Reference<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<Reference<'a>>,
}

/// The per-media form (`….conversations.calls` and friends).
pub fn flat_snapshot(conversation: &Conversation, played: usize) -> String {
    let Some(now) = conversation.time_after(played) else {
        return serialize(&Snapshot::<()> { id: conversation.id.clone(), participants: Vec::new() });
    };
    let participants = conversation
        .participants
        .iter()
        .filter(|p| p.is_visible_at(now))
        .map(|p| FlatParticipant {
            id: &p.id,
            purpose: p.purpose.as_str(),
            start_time: time(p.appeared_at),
            connected_time: p.connected_by(now).map(time),
            end_time: p.ended_by(now).map(time),
            state: state(p, now),
            initial_state: match p.purpose {
                Purpose::Agent => "alerting",
                Purpose::External => "dialing",
                _ => "connected",
            },
            direction: p.purpose.direction(),
            disconnect_type: p.ended_by(now).map(|_| p.disconnect_type),
            held: false,
            user: p.user.as_ref().map(|u| Reference { id: &u.id, name: &u.name }),
            queue: p.queue_id.as_deref().map(|id| Reference { id, name: &conversation.queue_name }),
        })
        .collect();
    serialize(&Snapshot { id: conversation.id.clone(), participants })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailEvent<'a> {
    event_time: i64,
    conversation_id: &'a str,
    participant_id: &'a str,
    session_id: &'a str,
    media_type: &'static str,
    direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<&'a str>,
}

/// The flat detail event for the step's participant (EventBridge form): enums upper-case,
/// disconnect types in the detail events' own words (`transfer.conference` →
/// `CONFERENCE_TRANSFER`).
pub fn detail_event(step: &Step) -> String {
    let conversation = &step.conversation;
    let participant = step.participant();
    let transition = step.transition();
    let is_flow = matches!(participant.purpose, Purpose::Ivr | Purpose::Workflow);
    serialize(&DetailEvent {
        event_time: transition.at.timestamp_millis(),
        conversation_id: &conversation.id,
        participant_id: &participant.id,
        session_id: &participant.session_id,
        media_type: conversation.media.detail_name(),
        direction: participant.purpose.direction().to_uppercase(),
        disconnect_type: (transition.kind == TransitionKind::Ended)
            .then(|| detail_disconnect_type(participant.disconnect_type)),
        user_id: participant.user.as_ref().map(|u| u.id.as_str()),
        queue_id: participant.queue_id.as_deref(),
        flow_id: is_flow.then_some(conversation.flow_id.as_str()),
    })
}

/// A snapshot's disconnect type as detail events spell it: the dotted ones have names of
/// their own, the one-word ones are upper-cased.
fn detail_disconnect_type(dotted: &str) -> String {
    let named = match dotted {
        "transfer.conference" => "CONFERENCE_TRANSFER",
        "transfer.consult" => "CONSULT_TRANSFER",
        "transfer.forward" => "FORWARD_TRANSFER",
        "transfer.noanswer" => "NO_ANSWER_TRANSFER",
        "transfer.notavailable" => "NOT_AVAILABLE_TRANSFER",
        "transfer.dnd" => "DND_TRANSFER",
        "endpoint.dnd" => "DND_ENDPOINT",
        "transport.failure" => "TRANSPORT_FAILURE",
        "session.expired" => "SESSION_EXPIRED",
        other => return other.to_uppercase(),
    };
    named.to_owned()
}

#[derive(Serialize)]
struct AnalyticsFrame<'a> {
    events: [AnalyticsEvent<'a>; 1],
}

#[derive(Serialize)]
struct AnalyticsEvent<'a> {
    timestamp: String,
    #[serde(rename = "type")]
    kind: &'static str,
    participant: &'a str,
    interaction: &'a str,
    channel: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// The analytics-stream frame for this step, or `None` for a missed alert ending (it was
/// never a join, so its end is not a leave).
pub fn analytics_event(step: &Step) -> Option<String> {
    let participant = step.participant();
    participant.connected_at?;
    let transition = step.transition();
    let (kind, reason) = match transition.kind {
        TransitionKind::Connected => ("ParticipantJoined", None),
        TransitionKind::Ended => ("ParticipantLeft", Some(participant.disconnect_type)),
    };
    Some(serialize(&AnalyticsFrame {
        events: [AnalyticsEvent {
            timestamp: time(transition.at),
            kind,
            participant: &participant.id,
            interaction: &step.conversation.id,
            channel: step.conversation.media.name(),
            reason,
        }],
    }))
}

/// Decodes standard base64 (padding optional), for `Authorization: Basic`.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::generator::Generator;
    use serde_json::Value;

    fn steps() -> Vec<Step> {
        Generator::new(21, &["queue-a".to_owned()], 40, 4).collect()
    }

    #[test]
    fn topics_are_checked_by_shape() {
        for ok in [
            "v2.routing.queues.q1.conversations",
            "v2.routing.queues.q1.conversations.calls",
            "v2.users.u1.conversations.videos",
            "v2.detail.events.conversation.c1.user.end",
            "v2.detail.events.conversation.c1.flow.start",
        ] {
            assert_eq!(check_topic(ok), Ok(()), "{ok}");
        }
        for bad in [
            "v2.routing.queues..conversations",
            "v2.routing.queues.q1.conversations.faxes",
            "v2.users.u1",
            "v2.detail.events.conversation.c1.agent.end",
            "v2.system.socket_closing",
            "channel.metadata",
            "",
        ] {
            assert!(check_topic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_published_topic_is_subscribable() {
        for step in steps() {
            for (topic, _) in topics_for(&step) {
                assert_eq!(check_topic(&topic), Ok(()), "{topic}");
            }
        }
    }

    #[test]
    fn frames_wrap_bodies_in_the_notification_envelope() {
        let frame = notification("v2.users.u.conversations", r#"{"id":"c"}"#, "corr");
        let value: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["topicName"], "v2.users.u.conversations");
        assert_eq!(value["version"], "2");
        assert_eq!(value["eventBody"]["id"], "c");
        assert_eq!(value["metadata"]["CorrelationId"], "corr");
    }

    #[test]
    fn snapshots_omit_absent_fields_and_use_the_media_key() {
        for step in steps().iter().filter(|s| s.is_last()) {
            let full: Value =
                serde_json::from_str(&full_snapshot(&step.conversation, step.played())).unwrap();
            let key = step.conversation.media.sessions_key();
            for participant in full["participants"].as_array().unwrap() {
                let text = participant.to_string();
                assert!(!text.contains("null"), "{text}");
                assert_eq!(participant[key].as_array().map(Vec::len), Some(1), "{text}");
                assert!(participant["endTime"].is_string(), "everyone ended: {text}");
                let missed = participant.get("connectedTime").is_none();
                if missed {
                    assert_eq!(participant[key][0]["disconnectType"], "timeout");
                }
            }
            let flat: Value =
                serde_json::from_str(&flat_snapshot(&step.conversation, step.played())).unwrap();
            for participant in flat["participants"].as_array().unwrap() {
                assert!(participant.get("userId").is_none());
                assert_eq!(participant["held"], false);
                if participant["purpose"] == "agent" {
                    assert!(participant["user"]["id"].is_string());
                    assert!(participant["queue"]["id"].is_string());
                }
            }
        }
    }

    #[test]
    fn chat_sessions_carry_a_direction_in_the_resource_only() {
        let steps = steps();
        let chat = steps.iter().find(|s| s.is_last() && s.conversation.media == Media::Chat).unwrap();
        let (conversation, played) = (&chat.conversation, chat.played());
        let topic: Value = serde_json::from_str(&full_snapshot(conversation, played)).unwrap();
        let resource: Value = serde_json::from_str(&conversation_resource(conversation, played)).unwrap();
        for (topic, resource) in
            topic["participants"].as_array().unwrap().iter().zip(resource["participants"].as_array().unwrap())
        {
            assert!(topic["chats"][0].get("direction").is_none(), "{topic}");
            assert!(resource["chats"][0]["direction"].is_string(), "{resource}");
        }
        let call = steps.iter().find(|s| s.is_last() && s.conversation.media == Media::Voice).unwrap();
        let topic: Value = serde_json::from_str(&full_snapshot(&call.conversation, call.played())).unwrap();
        assert!(topic["participants"][0]["calls"][0]["direction"].is_string(), "{topic}");
    }

    #[test]
    fn detail_disconnect_types_use_the_detail_events_names() {
        assert_eq!(detail_disconnect_type("transfer.conference"), "CONFERENCE_TRANSFER");
        assert_eq!(detail_disconnect_type("transport.failure"), "TRANSPORT_FAILURE");
        assert_eq!(detail_disconnect_type("endpoint.dnd"), "DND_ENDPOINT");
        assert_eq!(detail_disconnect_type("peer"), "PEER");
    }

    #[test]
    fn a_snapshot_shows_only_what_happened_so_far() {
        let step = steps().into_iter().next().unwrap();
        let full: Value = serde_json::from_str(&full_snapshot(&step.conversation, 1)).unwrap();
        let participants = full["participants"].as_array().unwrap();
        assert_eq!(participants.len(), 1);
        assert_eq!(participants[0]["purpose"], "customer");
        assert!(participants[0]["connectedTime"].is_string());
        assert!(participants[0].get("endTime").is_none());
    }

    #[test]
    fn queue_topics_start_once_the_conversation_is_queued() {
        let step = steps().into_iter().next().unwrap();
        assert_eq!(step.participant().purpose, Purpose::Customer);
        let topics = topics_for(&step);
        assert!(topics.iter().all(|(t, _)| !t.starts_with("v2.routing.queues.")));
        assert!(topics.iter().any(|(t, k)| *k == BodyKind::Detail && t.ends_with(".customer.start")));
    }

    #[test]
    fn detail_events_are_upper_case_and_skip_missed_alerts() {
        for step in steps() {
            let topics = topics_for(&step);
            let detail = topics.iter().find(|(_, k)| *k == BodyKind::Detail);
            if step.participant().connected_at.is_none() {
                assert!(detail.is_none());
                assert!(analytics_event(&step).is_none());
                continue;
            }
            assert!(detail.is_some());
            let event: Value = serde_json::from_str(&detail_event(&step)).unwrap();
            assert_eq!(event["eventTime"], step.transition().at.timestamp_millis());
            assert_eq!(event["direction"].as_str().map(|d| d == d.to_uppercase()), Some(true));
            if step.transition().kind == TransitionKind::Ended {
                let why = event["disconnectType"].as_str().unwrap();
                assert!(!why.contains('.') && why == why.to_uppercase(), "{why}");
            } else {
                assert!(event.get("disconnectType").is_none());
            }
            if step.participant().purpose == Purpose::Ivr {
                assert!(event["flowId"].is_string());
            }
        }
    }

    #[test]
    fn analytics_events_carry_the_reason_on_leaves_only() {
        for step in steps() {
            let Some(frame) = analytics_event(&step) else {
                continue;
            };
            let value: Value = serde_json::from_str(&frame).unwrap();
            let event = &value["events"][0];
            match step.transition().kind {
                TransitionKind::Connected => {
                    assert_eq!(event["type"], "ParticipantJoined");
                    assert!(event.get("reason").is_none());
                }
                TransitionKind::Ended => {
                    assert_eq!(event["type"], "ParticipantLeft");
                    assert!(event["reason"].is_string());
                }
            }
            assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
        }
    }

    #[test]
    fn subscribe_replies_echo_the_correlation_id() {
        let id = Value::from("abc");
        assert_eq!(
            subscribe_reply(true, Some(&id)),
            r#"{"result":"200","status":"subscribed","correlationId":"abc"}"#
        );
        assert_eq!(subscribe_reply(false, None), r#"{"result":"404"}"#);
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aWQ6c2VjcmV0").as_deref(), Some(&b"id:secret"[..]));
        assert_eq!(decode_base64("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("!!!!").is_none());
    }
}
