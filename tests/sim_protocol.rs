//! The simulator on its own, driven over real loopback the way a Genesys client drives the
//! service: OAuth token → notification channel → subscriptions → streaming socket, and the
//! analytics-stream handshake. Each test tells one thing a client author relies on.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use awc::ws::{Frame, Message};
use awc::Client;
use bytes::Bytes;
use common::sim_client::{
    access_token, analytics_url, backfill, client, connect, grant, next, put_topics, refused_upgrade,
    send_json, small_run, Next, Socket, MAX_FRAME,
};
use futures_util::SinkExt;
use serde_json::{json, Value};
use timelined::sim::{SimConfig, SimHandle, DEFAULT_QUEUES};
use timelined_actors::record::TimelineRecord;
use tokio::time::Instant;

/// Every wait in these tests ends by this long, pass or fail.
const DEADLINE: Duration = Duration::from_secs(4);
/// The seed of every run here.
const SEED: u64 = 7;

/// A token, granted for the default lifetime.
async fn token(client: &Client, sim: &SimHandle) -> String {
    let body = grant(client, sim).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86_400);
    access_token(&body)
}

/// Creates a channel (with the SDK's `null` body); returns its id and connectUri.
async fn channel(client: &Client, sim: &SimHandle, token: &str) -> (String, String) {
    let mut response = client
        .post(format!("{}/api/v2/notifications/channels", sim.base_url()))
        .bearer_auth(token)
        .content_type("application/json")
        .send_body("null")
        .await
        .expect("channel request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("channel json");
    let id = body["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("streaming-0-"), "{id}");
    assert!(body["expires"].as_str().expect("expires").ends_with('Z'));
    let uri = body["connectUri"].as_str().expect("connectUri").to_owned();
    assert_eq!(uri, format!("ws://{}/channels/{id}", sim.addr()));
    (id, uri)
}

/// A data-carrying frame as JSON, and whether it came as a binary frame. Control frames
/// are handed back as they are.
enum Received {
    Json(Value, bool),
    Control(Frame),
}

async fn receive(socket: &mut impl Socket, until: Instant) -> Option<Received> {
    let Next::Frame(frame) = next(socket, until).await else {
        return None;
    };
    Some(match frame {
        Frame::Text(bytes) => Received::Json(serde_json::from_slice(&bytes).ok()?, false),
        Frame::Binary(bytes) => Received::Json(serde_json::from_slice(&bytes).ok()?, true),
        other => Received::Control(other),
    })
}

fn queue_topics() -> Vec<String> {
    DEFAULT_QUEUES
        .iter()
        .flat_map(|q| {
            [
                format!("v2.routing.queues.{q}.conversations"),
                format!("v2.routing.queues.{q}.conversations.calls"),
            ]
        })
        .collect()
}

/// Joins and leaves as a client derives them from full snapshots: conversation →
/// participant → (connectedTime, endTime).
type Derived = BTreeMap<String, BTreeMap<String, (Option<String>, Option<String>)>>;

fn apply_snapshot(derived: &mut Derived, body: &Value) {
    let Some(conversation) = body["id"].as_str() else {
        return;
    };
    let participants = derived.entry(conversation.to_owned()).or_default();
    for participant in body["participants"].as_array().into_iter().flatten() {
        let (Some(id), Some(connected)) = (participant["id"].as_str(), participant["connectedTime"].as_str())
        else {
            continue;
        };
        let left = participant["endTime"].as_str().map(str::to_owned);
        participants.insert(id.to_owned(), (Some(connected.to_owned()), left));
    }
}

fn expected(truth: &[TimelineRecord]) -> Derived {
    truth
        .iter()
        .map(|t| {
            let participants = t
                .participants
                .iter()
                .map(|p| {
                    let time = |at: &Option<chrono::DateTime<chrono::Utc>>| {
                        at.as_ref().map(timelined_actors::record::format_millis)
                    };
                    (p.participant_id.clone(), (time(&p.joined_at), time(&p.left_at)))
                })
                .collect();
            (t.conversation_id.clone(), participants)
        })
        .collect()
}

#[actix_rt::test]
async fn a_subscribed_socket_receives_every_join_and_leave_and_answers_pings() {
    let sim =
        common::simulator(SimConfig { heartbeat_interval: Duration::from_millis(150), ..small_run(SEED, 4) })
            .await;
    let client = client();
    let token = token(&client, &sim).await;
    let (channel, uri) = channel(&client, &sim, &token).await;

    let mut topics = queue_topics();
    topics.push("v2.not.a.topic".to_owned());
    let (status, body) = put_topics(&client, &sim, &token, &channel, &topics).await;
    assert_eq!(status, 200);
    let entities = body["entities"].as_array().expect("entities");
    assert_eq!(entities.len(), topics.len());
    assert!(entities[..topics.len() - 1].iter().all(|e| e["state"] == "Permitted"));
    assert_eq!(entities[topics.len() - 1]["state"], "Rejected");
    assert!(entities[topics.len() - 1]["rejectionReason"].is_string());

    // Playback waits for a listener, so connecting late misses nothing.
    assert!(sim.truth().is_empty());
    let mut socket = connect(&client, &uri).await;
    send_json(&mut socket, json!({"message": "ping"})).await;
    socket.send(Message::Ping(Bytes::from_static(b"rtt"))).await.expect("rfc 6455 ping");

    let until = Instant::now() + DEADLINE;
    let (mut pong, mut rfc_pong, mut heartbeat) = (false, false, false);
    let mut derived = Derived::new();
    let mut topics_seen = BTreeSet::new();
    while !(pong && rfc_pong && heartbeat && sim.finished() && derived == expected(&sim.truth())) {
        match receive(&mut socket, until).await {
            Some(Received::Json(frame, binary)) => {
                assert!(!binary, "notification frames are text");
                let topic = frame["topicName"].as_str().expect("topicName").to_owned();
                if topic == "channel.metadata" {
                    match frame["eventBody"]["message"].as_str() {
                        Some("pong") => pong = true,
                        Some("WebSocket Heartbeat") => heartbeat = true,
                        other => panic!("unexpected metadata {other:?}"),
                    }
                    continue;
                }
                assert_eq!(frame["version"], "2");
                assert!(frame["metadata"]["CorrelationId"].is_string());
                if !topic.ends_with(".calls") {
                    apply_snapshot(&mut derived, &frame["eventBody"]);
                }
                topics_seen.insert(topic);
            }
            Some(Received::Control(Frame::Pong(payload))) => {
                assert_eq!(&payload[..], b"rtt");
                rfc_pong = true;
            }
            Some(Received::Control(_)) => {}
            None => panic!(
                "timed out: pong {pong}, rfc pong {rfc_pong}, heartbeat {heartbeat}, \
                 finished {}, derived {} of {} conversations",
                sim.finished(),
                derived.len(),
                sim.truth().len()
            ),
        }
    }
    assert_eq!(sim.truth().len(), 4);
    assert!(sim.truth().iter().all(|t| t.complete));
    assert!(topics_seen.iter().all(|t| topics.contains(t)));
    assert!(sim.frames_sent() > 0);

    // Backfill returns the same shape as the snapshots.
    let conversation = &sim.truth()[0].conversation_id;
    let (status, snapshot) = backfill(&client, &sim, &token, conversation).await;
    assert_eq!(status, 200);
    let mut backfilled = Derived::new();
    apply_snapshot(&mut backfilled, &snapshot);
    assert_eq!(backfilled[conversation], derived[conversation]);

    // /sim/truth serves what truth() returns.
    let mut response = client.get(format!("{}/sim/truth", sim.base_url())).send().await.expect("truth");
    let served: Vec<TimelineRecord> = response.json().limit(MAX_FRAME).await.expect("truth json");
    assert_eq!(served, sim.truth());
    drop(socket);
    sim.stop().await;
}

#[actix_rt::test]
async fn topics_can_be_added_over_the_socket_and_user_topics_carry_agents() {
    let sim = common::simulator(small_run(SEED, 3)).await;
    let client = client();
    let token = token(&client, &sim).await;
    let (_, uri) = channel(&client, &sim, &token).await;
    let mut socket = connect(&client, &uri).await;
    let topics: Vec<String> = sim.user_ids().iter().map(|u| format!("v2.users.{u}.conversations")).collect();
    send_json(&mut socket, json!({"message": "subscribe", "topics": topics, "correlationId": "corr-1"}))
        .await;

    let until = Instant::now() + DEADLINE;
    let mut replied = false;
    let mut agents = 0;
    while !(replied && agents > 0) {
        match receive(&mut socket, until).await {
            Some(Received::Json(frame, _)) if frame.get("result").is_some() => {
                assert_eq!(frame["result"], "200");
                assert_eq!(frame["status"], "subscribed");
                assert_eq!(frame["correlationId"], "corr-1");
                replied = true;
            }
            Some(Received::Json(frame, _)) => {
                let topic = frame["topicName"].as_str().unwrap_or_default();
                assert!(topics.iter().any(|t| t == topic), "{topic}");
                let participants = frame["eventBody"]["participants"].as_array().expect("participants");
                agents += participants
                    .iter()
                    .filter(|p| p["purpose"] == "agent" && p["userId"].is_string())
                    .count();
            }
            Some(Received::Control(_)) => {}
            None => panic!("timed out: replied {replied}, agent snapshots {agents}"),
        }
    }
    drop(socket);
    sim.stop().await;
}

#[actix_rt::test]
async fn api_calls_without_a_valid_token_are_refused() {
    let sim = common::simulator(small_run(SEED, 1)).await;
    let client = client();
    let channels = format!("{}/api/v2/notifications/channels", sim.base_url());

    let response = client.post(&channels).send().await.expect("request");
    assert_eq!(response.status(), 401);
    let mut response = client.post(&channels).bearer_auth("sim-not-issued").send().await.expect("request");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("error json");
    assert_eq!(body["status"], 401);

    let token_url = format!("{}/oauth/token", sim.base_url());
    let mut response =
        client.post(&token_url).send_form(&[("grant_type", "client_credentials")]).await.expect("request");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("oauth error json");
    assert!(body["error"].is_string() && body["error_description"].is_string());
    let response = client
        .post(&token_url)
        .basic_auth("id", "secret")
        .send_form(&[("grant_type", "password")])
        .await
        .expect("request");
    assert_eq!(response.status(), 400);

    let token = token(&client, &sim).await;
    let (status, _) = backfill(&client, &sim, &token, "unknown").await;
    assert_eq!(status, 404);
    let (status, _) = put_topics(&client, &sim, &token, "streaming-0-gone", &queue_topics()).await;
    assert_eq!(status, 404);
    let (channel, _) = channel(&client, &sim, &token).await;
    let too_many: Vec<String> = (0..1_001).map(|n| format!("v2.users.user-{n}.conversations")).collect();
    let (status, _) = put_topics(&client, &sim, &token, &channel, &too_many).await;
    assert_eq!(status, 400);
    sim.stop().await;
}

#[actix_rt::test]
async fn an_unknown_channel_refuses_the_upgrade_with_404() {
    let sim = common::simulator(small_run(SEED, 1)).await;
    let uri = format!("ws://{}/channels/streaming-0-unknown", sim.addr());
    assert_eq!(refused_upgrade(&client(), &uri).await, 404);
    sim.stop().await;
}

#[actix_rt::test]
async fn a_second_socket_on_a_channel_closes_the_first() {
    let sim = common::simulator(small_run(SEED, 1)).await;
    let client = client();
    let token = token(&client, &sim).await;
    let (_, uri) = channel(&client, &sim, &token).await;
    let mut first = connect(&client, &uri).await;
    let second = connect(&client, &uri).await;
    let until = Instant::now() + DEADLINE;
    loop {
        match receive(&mut first, until).await {
            Some(Received::Control(Frame::Close(_))) => break,
            Some(_) => continue,
            None => panic!("the first socket was not closed"),
        }
    }
    drop((first, second));
    sim.stop().await;
}

#[actix_rt::test]
async fn the_analytics_stream_handshakes_then_streams_text_and_binary_events() {
    let sim =
        common::simulator(SimConfig { heartbeat_interval: Duration::from_millis(100), ..small_run(SEED, 3) })
            .await;
    let client = client();
    let url = analytics_url(&sim);

    let mut refused = connect(&client, &url).await;
    send_json(&mut refused, json!({"token": "sim-not-issued"})).await;
    let until = Instant::now() + DEADLINE;
    match receive(&mut refused, until).await {
        Some(Received::Json(reply, _)) => {
            assert_eq!(reply["status"], "error");
            assert!(reply["message"].is_string());
        }
        _ => panic!("no error status for a bad token"),
    }

    let token = token(&client, &sim).await;
    let mut socket = connect(&client, &url).await;
    send_json(&mut socket, json!({"token": token})).await;
    match receive(&mut socket, until).await {
        Some(Received::Json(reply, false)) => assert_eq!(reply, json!({"status": "connected"})),
        _ => panic!("not connected"),
    }
    send_json(&mut socket, json!({"filter": {"channels": ["voice", "chat", "message"]}})).await;
    match receive(&mut socket, until).await {
        Some(Received::Json(reply, false)) => assert_eq!(reply, json!({"status": "subscribed"})),
        _ => panic!("not subscribed"),
    }

    // Events are not cumulative like snapshots: getting every truth entry proves playback
    // waited for this listener.
    let mut entries = BTreeSet::new();
    let (mut text, mut binary, mut pinged) = (0, 0, false);
    let want = |sim: &SimHandle| -> BTreeSet<(String, String, String)> {
        sim.truth()
            .iter()
            .flat_map(|t| {
                t.entries.iter().map(|e| {
                    let kind = match e.action {
                        timelined_actors::record::EntryAction::Joined => "ParticipantJoined",
                        timelined_actors::record::EntryAction::Left => "ParticipantLeft",
                    };
                    (
                        timelined_actors::record::format_millis(&e.at),
                        kind.to_owned(),
                        e.participant_id.clone(),
                    )
                })
            })
            .collect()
    };
    while !(pinged && sim.finished() && entries == want(&sim)) {
        match receive(&mut socket, until).await {
            Some(Received::Json(frame, is_binary)) => {
                if is_binary {
                    binary += 1;
                } else {
                    text += 1;
                }
                for event in frame["events"].as_array().expect("events") {
                    assert!(event["interaction"].is_string());
                    assert!(["voice", "chat", "message"].contains(&event["channel"].as_str().unwrap_or("")));
                    entries.insert((
                        event["timestamp"].as_str().expect("timestamp").to_owned(),
                        event["type"].as_str().expect("type").to_owned(),
                        event["participant"].as_str().expect("participant").to_owned(),
                    ));
                }
            }
            Some(Received::Control(Frame::Ping(payload))) => {
                pinged = true;
                socket.send(Message::Pong(payload)).await.expect("pong");
            }
            Some(Received::Control(_)) => {}
            None => panic!("timed out: {} of {} entries, pinged {pinged}", entries.len(), want(&sim).len()),
        }
    }
    assert!(binary > 0 && text > binary, "text {text}, binary {binary}");
    drop((refused, socket));
    sim.stop().await;
}

#[actix_rt::test]
async fn the_record_file_holds_every_frame_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("frames.jsonl");
    let sim = common::simulator(SimConfig {
        record: Some(path.clone()),
        reorder: true,
        duplicates: true,
        ..small_run(SEED, 5)
    })
    .await;
    let client = client();
    let token = token(&client, &sim).await;
    let (channel, uri) = channel(&client, &sim, &token).await;
    put_topics(&client, &sim, &token, &channel, &queue_topics()).await;
    let mut socket = connect(&client, &uri).await;
    let until = Instant::now() + DEADLINE;
    let mut received = 0u64;
    while !(sim.finished() && received == sim.frames_sent()) {
        match receive(&mut socket, until).await {
            Some(Received::Json(..)) => received += 1,
            Some(Received::Control(_)) => {}
            None => panic!("timed out after {received} of {} frames", sim.frames_sent()),
        }
    }
    let text = std::fs::read_to_string(&path).expect("record file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, sim.frames_sent());
    for line in lines {
        let frame: Value = serde_json::from_str(line).expect("each line is one JSON frame");
        assert!(frame["topicName"].is_string());
    }
    drop(socket);
    sim.stop().await;
}

#[actix_rt::test]
async fn reordering_shuffles_within_a_small_window_and_duplicates_repeat_frames_verbatim() {
    let sim = common::simulator(SimConfig { reorder: true, duplicates: true, ..small_run(SEED, 10) }).await;
    let client = client();
    let token = token(&client, &sim).await;
    let url = analytics_url(&sim);
    let mut socket = connect(&client, &url).await;
    send_json(&mut socket, json!({"token": token})).await;
    send_json(&mut socket, json!({"filter": {}})).await;

    let until = Instant::now() + DEADLINE;
    let mut frames: Vec<Value> = Vec::new();
    while !(sim.finished() && frames.len() as u64 + 2 == sim.frames_sent()) {
        match receive(&mut socket, until).await {
            Some(Received::Json(frame, _)) if frame.get("events").is_some() => frames.push(frame),
            Some(_) => {}
            None => panic!("timed out after {} frames", frames.len()),
        }
    }
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    let mut times = Vec::new();
    for frame in &frames {
        if !seen.insert(frame.to_string()) {
            duplicates += 1;
            continue;
        }
        times.push(frame["events"][0]["timestamp"].as_str().expect("timestamp").to_owned());
    }
    assert!(duplicates > 0, "no duplicate among {} frames", frames.len());
    let expected: usize = sim.truth().iter().map(|t| t.entries.len()).sum();
    assert_eq!(times.len(), expected, "every event arrives, duplicates aside");
    let inversions = times.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(inversions > 0, "nothing was reordered");
    for (i, at) in times.iter().enumerate() {
        // Frames are sent in event-time order and shuffled in groups of at most 4.
        let overtaken_by = times[..i].iter().filter(|earlier| *earlier > at).count();
        assert!(overtaken_by <= 3, "{at} was overtaken by {overtaken_by} frames");
    }
    drop(socket);
    sim.stop().await;
}

#[actix_rt::test]
async fn an_expiring_channel_warns_with_socket_closing_then_closes_the_socket() {
    let sim =
        common::simulator(SimConfig { channel_lifetime: Duration::from_millis(400), ..small_run(SEED, 1) })
            .await;
    let client = client();
    let token = token(&client, &sim).await;
    let (channel, uri) = channel(&client, &sim, &token).await;
    let mut socket = connect(&client, &uri).await;
    let until = Instant::now() + DEADLINE;
    let mut warned = false;
    loop {
        match receive(&mut socket, until).await {
            Some(Received::Json(frame, _)) => {
                if frame["topicName"] == "v2.system.socket_closing" {
                    warned = true;
                }
            }
            Some(Received::Control(Frame::Close(_))) => break,
            Some(Received::Control(_)) => {}
            None => panic!("the socket of an expired channel stayed open"),
        }
    }
    assert!(warned, "no v2.system.socket_closing before the close");
    let (status, _) = put_topics(&client, &sim, &token, &channel, &queue_topics()).await;
    assert_eq!(status, 404, "an expired channel is gone");
    drop(socket);
    sim.stop().await;
}

#[actix_rt::test]
async fn an_expired_token_is_refused() {
    let sim =
        common::simulator(SimConfig { token_lifetime: Duration::from_millis(200), ..small_run(SEED, 1) })
            .await;
    let client = client();
    let token = token_with_lifetime(&client, &sim).await;
    let channels = format!("{}/api/v2/notifications/channels", sim.base_url());
    let first = client.post(&channels).bearer_auth(&token).send().await.expect("request");
    assert_eq!(first.status(), 200);
    let until = Instant::now() + DEADLINE;
    loop {
        let response = client.post(&channels).bearer_auth(&token).send().await.expect("request");
        if response.status() == 401 {
            break;
        }
        assert!(Instant::now() < until, "the token never expired");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    sim.stop().await;
}

/// A token request that does not insist on the default lifetime.
async fn token_with_lifetime(client: &Client, sim: &SimHandle) -> String {
    let body = grant(client, sim).await;
    assert_eq!(body["expires_in"], 0, "whole seconds, rounded down");
    access_token(&body)
}
