//! Figure 1's bare baseline: the least a client can do with the same frames — connect
//! like the daemon does, then one loop of awc reads and a typed `serde_json` parse of
//! each frame (owned strings, the fields the daemon uses), counting the joins and leaves
//! in it. No actors, no timelines, no output. With `parse` off it only receives, which
//! is the ceiling of the sender and the socket.
//!
//! The types below are written here on purpose rather than borrowed from the daemon's
//! decoder: the baseline must not get faster or slower when the daemon changes.

use anyhow::{bail, Context as _};
use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use std::time::{Duration, Instant};
use timelined_actors::wire::Dialect;

/// `bench:bench` in HTTP Basic form: the simulator takes any client credentials.
const BASIC_CREDENTIALS: &str = "Basic YmVuY2g6YmVuY2g=";
const MAX_FRAME: usize = 8 << 20;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "topicName")]
    #[allow(dead_code)]
    topic: String,
    #[serde(rename = "eventBody")]
    body: Option<Snapshot>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Snapshot {
    id: String,
    #[serde(default)]
    participants: Vec<Participant>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Participant {
    id: String,
    purpose: Option<String>,
    user_id: Option<String>,
    queue_id: Option<String>,
    connected_time: Option<String>,
    end_time: Option<String>,
    #[serde(default)]
    calls: Vec<Session>,
    #[serde(default)]
    chats: Vec<Session>,
    #[serde(default)]
    messages: Vec<Session>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Session {
    disconnect_type: Option<String>,
}

#[derive(Deserialize)]
struct StreamFrame {
    #[serde(default)]
    events: Vec<StreamEvent>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct StreamEvent {
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    participant: String,
    interaction: String,
    channel: Option<String>,
    reason: Option<String>,
}

/// Joins and leaves in one frame, by a typed parse.
fn events_in(dialect: Dialect, bytes: &[u8]) -> u64 {
    match dialect {
        Dialect::Notifications => match serde_json::from_slice::<Envelope>(bytes) {
            Ok(Envelope { body: Some(snapshot), .. }) => snapshot
                .participants
                .iter()
                .filter(|p| p.connected_time.is_some())
                .map(|p| if p.end_time.is_some() { 2 } else { 1 })
                .sum(),
            _ => 0,
        },
        Dialect::AnalyticsStream => {
            serde_json::from_slice::<StreamFrame>(bytes).map_or(0, |frame| frame.events.len() as u64)
        }
    }
}

/// What the baseline read.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub frames: u64,
    pub events: u64,
    /// When the last frame had been read (and parsed), or the connection ended.
    pub done: Instant,
    /// The connection ended with a Close frame.
    pub closed: bool,
}

/// Connects to the simulator at `base` as the daemon would (a token, then a channel
/// subscribed to `topics`, or the analytics stream with no filter), then reads until
/// `frames` frames have come (or the socket ends), parsing each one when `parse` is on.
pub async fn receive(
    base: &str,
    dialect: Dialect,
    topics: &[String],
    frames: u64,
    parse: bool,
) -> anyhow::Result<Received> {
    read(base, dialect, topics, Until::Frames { frames, parse }).await
}

/// Connects as [`receive`] does and reads until the connection ends; returns when it
/// ended (a Close frame, or the stream's end) and whether a Close frame came.
pub async fn until_end(base: &str, topics: &[String]) -> anyhow::Result<(Instant, bool)> {
    let received = read(base, Dialect::Notifications, topics, Until::End).await?;
    Ok((received.done, received.closed))
}

enum Until {
    Frames { frames: u64, parse: bool },
    End,
}

async fn read(base: &str, dialect: Dialect, topics: &[String], until: Until) -> anyhow::Result<Received> {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let token: serde_json::Value = client
        .post(format!("{base}/oauth/token"))
        .insert_header(("Authorization", BASIC_CREDENTIALS))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .send_body("grant_type=client_credentials")
        .await
        .map_err(|e| anyhow::anyhow!("token: {e}"))?
        .json()
        .await
        .context("token answer")?;
    let token = token["access_token"].as_str().context("no access_token")?.to_owned();
    let bearer = format!("Bearer {token}");
    let url = match dialect {
        Dialect::Notifications => {
            let channel: serde_json::Value = client
                .post(format!("{base}/api/v2/notifications/channels"))
                .insert_header(("Authorization", bearer.as_str()))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("channel: {e}"))?
                .json()
                .await
                .context("channel answer")?;
            let id = channel["id"].as_str().context("no channel id")?;
            let body: Vec<serde_json::Value> =
                topics.iter().map(|t| serde_json::json!({ "id": t })).collect();
            let response = client
                .put(format!("{base}/api/v2/notifications/channels/{id}/subscriptions"))
                .insert_header(("Authorization", bearer.as_str()))
                .send_json(&body)
                .await
                .map_err(|e| anyhow::anyhow!("subscriptions: {e}"))?;
            if !response.status().is_success() {
                bail!("subscriptions answered {}", response.status());
            }
            channel["connectUri"].as_str().context("no connectUri")?.to_owned()
        }
        Dialect::AnalyticsStream => {
            format!("{}/api/v2/analytics/conversations/stream", base.replacen("http", "ws", 1))
        }
    };
    let (_, mut socket) = client
        .ws(url.as_str())
        .max_frame_size(MAX_FRAME)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("websocket: {e}"))?;
    if dialect == Dialect::AnalyticsStream {
        for hello in [serde_json::json!({ "token": token }), serde_json::json!({ "filter": {} })] {
            socket.send(Message::Text(hello.to_string().into())).await?;
            match socket.next().await {
                Some(Ok(Frame::Text(answer))) if answer.windows(6).any(|w| w == b"status") => {}
                other => bail!("analytics stream handshake: {other:?}"),
            }
        }
    }
    let (frames, parse, to_the_end) = match until {
        Until::Frames { frames, parse } => (frames, parse, false),
        Until::End => (u64::MAX, false, true),
    };
    let mut received = Received { frames: 0, events: 0, done: Instant::now(), closed: false };
    while received.frames < frames {
        match socket.next().await {
            Some(Ok(Frame::Text(bytes) | Frame::Binary(bytes))) => {
                if parse {
                    received.events += events_in(dialect, &bytes);
                }
                received.frames += 1;
            }
            Some(Ok(Frame::Ping(payload))) => socket.send(Message::Pong(payload)).await?,
            Some(Ok(Frame::Close(_))) => {
                received.closed = true;
                break;
            }
            None => break,
            Some(Ok(_)) => {}
            // Waiting for the end, a broken connection is the end.
            Some(Err(_)) if to_the_end => break,
            Some(Err(error)) => bail!("baseline socket: {error}"),
        }
    }
    received.done = Instant::now();
    let _ = socket.send(Message::Close(None)).await;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_parse_counts_joins_and_leaves() {
        let snapshot = r#"{"topicName":"v2.routing.queues.q.conversations","version":"2","eventBody":{"id":"c",
            "participants":[{"id":"a","purpose":"customer","connectedTime":"2026-01-01T09:00:00.000Z"},
            {"id":"b","purpose":"ivr","connectedTime":"2026-01-01T09:00:01.000Z","endTime":"2026-01-01T09:00:09.000Z",
             "calls":[{"id":"s","state":"disconnected","disconnectType":"transfer"}]},
            {"id":"d","purpose":"agent","userId":"u","endTime":"2026-01-01T09:00:09.000Z"}]},
            "metadata":{"CorrelationId":"x"}}"#;
        assert_eq!(events_in(Dialect::Notifications, snapshot.as_bytes()), 3);
        let heartbeat = r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
        assert_eq!(events_in(Dialect::Notifications, heartbeat.as_bytes()), 0);
        let stream = r#"{"events":[{"timestamp":"2026-01-01T09:00:00.000Z","type":"ParticipantJoined",
            "participant":"p","interaction":"c","channel":"voice"}]}"#;
        assert_eq!(events_in(Dialect::AnalyticsStream, stream.as_bytes()), 1);
    }
}
