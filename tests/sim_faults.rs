//! The simulator's fault switches, seen from a client over real loopback: each fault kind
//! does to an open socket (or to the next requests) what its description promises, and
//! `hidden()` tells exactly which conversations lost a frame to it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use awc::ws::{Frame, Message};
use awc::Client;
use bytes::Bytes;
use common::sim_client::{
    analytics_url, channel, client, connect, create_channel, next, refused_upgrade, send_json, small_run,
    token, Next, Socket,
};
use futures_util::SinkExt;
use serde_json::{json, Value};
use timelined::sim::{self, Fault, SimConfig, SimHandle, DEFAULT_QUEUES};
use timelined_actors::record::{format_millis, EntryAction, TimelineRecord};
use tokio::time::Instant;

/// Every wait in these tests ends by this long, pass or fail.
const DEADLINE: Duration = Duration::from_secs(5);
/// The seed of the finite runs here.
const SEED: u64 = 11;

/// An endless run at a steady pace, so frames keep coming while a fault is on.
fn steady_run() -> SimConfig {
    SimConfig {
        seed: 5,
        conversations: 0,
        rate: 200,
        concurrency: 6,
        heartbeat_interval: Duration::from_millis(100),
        ..SimConfig::default()
    }
}

fn queue_topics() -> Vec<String> {
    DEFAULT_QUEUES.iter().map(|q| format!("v2.routing.queues.{q}.conversations")).collect()
}

/// Subscribes `channel` to the queue topics: the status.
async fn put_topics(client: &Client, sim: &SimHandle, token: &str, channel: &str) -> u16 {
    common::sim_client::put_topics(client, sim, token, channel, &queue_topics()).await.0
}

/// A channel subscribed to the queue topics, with its socket open.
async fn notifications(client: &Client, sim: &SimHandle) -> (String, String, impl Socket) {
    let token = token(client, sim).await;
    let (id, uri) = channel(client, sim, &token).await;
    assert_eq!(put_topics(client, sim, &token, &id).await, 200);
    let socket = connect(client, &uri).await;
    (id, uri, socket)
}

/// An analytics-stream socket past the handshake; subscribed to everything when `subscribe`.
async fn analytics(client: &Client, sim: &SimHandle, token: &str, subscribe: bool) -> impl Socket {
    let mut socket = connect(client, &analytics_url(sim)).await;
    send_json(&mut socket, json!({ "token": token })).await;
    let until = Instant::now() + DEADLINE;
    assert_eq!(next_json(&mut socket, until).await, json!({"status": "connected"}));
    if subscribe {
        send_json(&mut socket, json!({ "filter": {} })).await;
        assert_eq!(next_json(&mut socket, until).await, json!({"status": "subscribed"}));
    }
    socket
}

/// The next text or binary frame, skipping pings and heartbeats.
async fn next_data(socket: &mut impl Socket, until: Instant) -> Frame {
    loop {
        match next(socket, until).await {
            Next::Frame(Frame::Ping(_) | Frame::Pong(_)) => continue,
            Next::Frame(Frame::Text(text)) if is_heartbeat(&text) => continue,
            Next::Frame(frame) => return frame,
            Next::Ended => panic!("the socket ended"),
            Next::TimedOut => panic!("no frame arrived in time"),
        }
    }
}

async fn next_json(socket: &mut impl Socket, until: Instant) -> Value {
    match next_data(socket, until).await {
        Frame::Text(text) | Frame::Binary(text) => serde_json::from_slice(&text).expect("a JSON frame"),
        other => panic!("expected a JSON frame, got {other:?}"),
    }
}

fn is_heartbeat(text: &[u8]) -> bool {
    serde_json::from_slice::<Value>(text).is_ok_and(|v| v["eventBody"]["message"] == "WebSocket Heartbeat")
}

/// Reads until a Close frame arrives; returns its code and the frames before it.
async fn until_close(socket: &mut impl Socket) -> (Option<u16>, Vec<Frame>) {
    let until = Instant::now() + DEADLINE;
    let mut before = Vec::new();
    loop {
        match next(socket, until).await {
            Next::Frame(Frame::Close(reason)) => return (reason.map(|r| u16::from(r.code)), before),
            Next::Frame(frame) => before.push(frame),
            Next::Ended => panic!("the connection ended without a Close frame"),
            Next::TimedOut => panic!("no Close frame arrived"),
        }
    }
}

fn topic_of(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Text(text) => {
            serde_json::from_slice::<Value>(text).ok()?.get("topicName")?.as_str().map(str::to_owned)
        }
        _ => None,
    }
}

async fn post_faults(client: &Client, sim: &SimHandle, body: Value) -> (u16, Value) {
    let mut response =
        client.post(format!("{}/sim/faults", sim.base_url())).send_json(&body).await.expect("faults request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_rt::test]
async fn a_dropped_socket_ends_without_a_close_frame_in_both_dialects() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let (_, _, mut notification_socket) = notifications(&client, &sim).await;
    let token = token(&client, &sim).await;
    let mut analytics_socket = analytics(&client, &sim, &token, true).await;
    let until = Instant::now() + DEADLINE;
    next_data(&mut notification_socket, until).await;
    next_data(&mut analytics_socket, until).await;

    sim.fault(Fault::DropSocket).expect("a valid fault");
    assert_eq!(sim.faults_applied(), 1);
    for socket in [&mut notification_socket as &mut dyn DynSocket, &mut analytics_socket] {
        loop {
            match socket.next_frame(until).await {
                Next::Frame(Frame::Close(reason)) => panic!("a Close frame arrived: {reason:?}"),
                Next::Frame(_) => continue,
                Next::Ended => break,
                Next::TimedOut => panic!("the dropped socket stayed open"),
            }
        }
    }
    sim.stop().await;
}

/// Lets one loop drive sockets of different concrete types.
trait DynSocket {
    fn next_frame(
        &mut self,
        until: Instant,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Next> + '_>>;
}

impl<S: Socket> DynSocket for S {
    fn next_frame(
        &mut self,
        until: Instant,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Next> + '_>> {
        Box::pin(next(self, until))
    }
}

#[actix_rt::test]
async fn a_close_fault_sends_its_code_to_every_socket() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let (_, uri, mut notification_socket) = notifications(&client, &sim).await;
    let token = token(&client, &sim).await;
    let mut analytics_socket = analytics(&client, &sim, &token, true).await;

    let (status, body) = post_faults(&client, &sim, json!({"kind": "close", "code": 1011})).await;
    assert_eq!((status, body), (200, json!({"applied": 1})));
    assert_eq!(until_close(&mut notification_socket).await.0, Some(1011));
    assert_eq!(until_close(&mut analytics_socket).await.0, Some(1011));
    // The channel survives its socket: the client may connect again.
    let mut again = connect(&client, &uri).await;
    next_data(&mut again, Instant::now() + DEADLINE).await;
    sim.stop().await;
}

#[actix_rt::test]
async fn a_stalled_socket_answers_nothing_then_resumes_and_its_losses_are_hidden() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let (_, _, mut socket) = notifications(&client, &sim).await;
    next_data(&mut socket, Instant::now() + DEADLINE).await;
    assert!(sim.hidden().is_empty(), "nothing lost before the stall");

    let stall = Duration::from_millis(1_200);
    let stalled_at = Instant::now();
    sim.fault(Fault::Stall { seconds: stall.as_secs_f64() }).expect("a valid fault");
    send_json(&mut socket, json!({"message": "ping"})).await;
    socket.send(Message::Ping(Bytes::from_static(b"rtt"))).await.expect("rfc 6455 ping");
    // Frames already on the wire when the stall began may still land; after that, silence.
    let in_flight = stalled_at + Duration::from_millis(150);
    let quiet_until = stalled_at + stall - Duration::from_millis(150);
    loop {
        match next(&mut socket, quiet_until).await {
            Next::TimedOut => break,
            Next::Ended => panic!("a stalled socket must stay open"),
            Next::Frame(Frame::Pong(_)) => panic!("an RFC 6455 pong during the stall"),
            Next::Frame(frame) => {
                assert!(
                    topic_of(&frame).as_deref() != Some("channel.metadata"),
                    "a heartbeat or pong during the stall: {frame:?}"
                );
                assert!(Instant::now() < in_flight, "a frame {:?} into the stall", stalled_at.elapsed());
            }
        }
    }

    // After the stall: data and heartbeats flow again and pings are answered. The first
    // frame to arrive says the stall is over, so that is when to ping.
    let until = Instant::now() + DEADLINE;
    let (mut data, mut heartbeat, mut pinged, mut pong) = (false, false, false, false);
    while !(data && heartbeat && pong) {
        let frame = next(&mut socket, until).await;
        if !pinged && matches!(frame, Next::Frame(_)) {
            send_json(&mut socket, json!({"message": "ping"})).await;
            pinged = true;
        }
        match frame {
            Next::Frame(Frame::Text(text)) => {
                let frame: Value = serde_json::from_slice(&text).expect("json");
                match frame["eventBody"]["message"].as_str() {
                    Some("pong") => pong = true,
                    Some("WebSocket Heartbeat") => heartbeat = true,
                    _ => data = true,
                }
            }
            Next::Frame(_) => {}
            Next::Ended => panic!("the socket ended after the stall"),
            Next::TimedOut => panic!("after the stall: data {data}, heartbeat {heartbeat}, pong {pong}"),
        }
    }
    assert!(stalled_at.elapsed() >= stall);
    assert!(!sim.hidden().is_empty(), "frames lost to the stall hide their conversations");
    sim.stop().await;
}

#[actix_rt::test]
async fn a_stall_spares_sockets_opened_after_it() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let (_, _, stalled) = notifications(&client, &sim).await;
    sim.fault(Fault::Stall { seconds: 5.0 }).expect("a valid fault");
    let token = token(&client, &sim).await;
    let mut fresh = analytics(&client, &sim, &token, true).await;
    let until = Instant::now() + DEADLINE;
    let events = next_json(&mut fresh, until).await;
    assert!(events["events"].is_array());
    drop(stalled);
    sim.stop().await;
}

#[actix_rt::test]
async fn socket_closing_warns_then_closes_with_1001_after_the_delay() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let (_, uri, mut socket) = notifications(&client, &sim).await;
    let faulted_at = Instant::now();
    let (status, _) =
        post_faults(&client, &sim, json!({"kind": "socket_closing", "close_after": "300ms"})).await;
    assert_eq!(status, 200);
    let (code, before) = until_close(&mut socket).await;
    assert_eq!(code, Some(1001));
    assert!(faulted_at.elapsed() >= Duration::from_millis(300));
    assert!(
        before.iter().any(|f| topic_of(f).as_deref() == Some("v2.system.socket_closing")),
        "no v2.system.socket_closing before the close"
    );
    // A planned close, not a dead channel: a new socket on it works.
    let mut again = connect(&client, &uri).await;
    next_data(&mut again, Instant::now() + DEADLINE).await;
    sim.stop().await;
}

#[actix_rt::test]
async fn an_expired_channel_closes_its_socket_and_then_answers_404() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let token = token(&client, &sim).await;
    let (id, uri) = channel(&client, &sim, &token).await;
    assert_eq!(put_topics(&client, &sim, &token, &id).await, 200);
    let mut socket = connect(&client, &uri).await;

    sim.fault(Fault::ExpireChannel).expect("a valid fault");
    let (code, before) = until_close(&mut socket).await;
    assert_eq!(code, Some(1000));
    assert!(before.iter().all(|f| topic_of(f).as_deref() != Some("v2.system.socket_closing")));
    assert_eq!(refused_upgrade(&client, &uri).await, 404);
    assert_eq!(put_topics(&client, &sim, &token, &id).await, 404);
    sim.stop().await;
}

#[actix_rt::test]
async fn http_faults_answer_the_next_requests_in_each_family_s_shape_then_stop() {
    let sim = common::simulator(small_run(SEED, 1)).await;
    let client = client();
    let (status, body) = post_faults(
        &client,
        &sim,
        json!([
            {"kind": "http", "path": "/oauth/token", "status": 429, "retry_after": 2, "count": 2},
            {"kind": "http", "path": "/api/v2/notifications/channels", "status": 503},
            {"kind": "http", "path": "/channels/", "status": 401},
            {"kind": "http", "path": "/api/v2/analytics/conversations/stream", "status": 429},
        ]),
    )
    .await;
    assert_eq!((status, body), (200, json!({"applied": 4})));
    assert_eq!(sim.faults_applied(), 4);

    let token_url = format!("{}/oauth/token", sim.base_url());
    for _ in 0..2 {
        let mut response = client
            .post(&token_url)
            .basic_auth("id", "secret")
            .send_form(&[("grant_type", "client_credentials")])
            .await
            .expect("token request");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get("retry-after").expect("Retry-After"), "2");
        let body: Value = response.json().await.expect("oauth error json");
        assert!(body["error"].is_string() && body["error_description"].is_string(), "{body}");
    }
    let token = token(&client, &sim).await;

    let (status, retry_after, body) = create_channel(&client, &sim, &token).await;
    assert_eq!((status, retry_after), (503, None));
    assert_eq!(body["status"], 503);
    assert!(body["message"].is_string() && body["code"].is_string(), "{body}");
    let (_, uri) = channel(&client, &sim, &token).await;

    assert_eq!(refused_upgrade(&client, &uri).await, 401);
    let _notifications = connect(&client, &uri).await;
    assert_eq!(refused_upgrade(&client, &analytics_url(&sim)).await, 429);
    let _analytics = connect(&client, &analytics_url(&sim)).await;

    // A bad body is refused whole, with a reason.
    let applied = sim.faults_applied();
    let (status, body) = post_faults(
        &client,
        &sim,
        json!([{"kind": "revoke_token"}, {"kind": "http", "path": "/oauth/token", "status": 429, "cuont": 3}]),
    )
    .await;
    assert_eq!(status, 400);
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("[1]") && message.contains("cuont"), "{message}");
    assert_eq!(sim.faults_applied(), applied);
    assert_eq!(create_channel(&client, &sim, &token).await.0, 200, "the token is still valid");
    sim.stop().await;
}

#[actix_rt::test]
async fn malformed_frames_arrive_in_five_kinds_and_are_counted_and_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("frames.jsonl");
    let sim = common::simulator(SimConfig { record: Some(record.clone()), ..small_run(SEED, 1) }).await;
    let client = client();
    // No topics and no filter: nothing else is sent on these sockets.
    let token = token(&client, &sim).await;
    let (_, uri) = channel(&client, &sim, &token).await;
    let mut notification_socket = connect(&client, &uri).await;
    let mut analytics_socket = analytics(&client, &sim, &token, false).await;
    let sent_before = sim.frames_sent();

    sim.fault(Fault::Malformed { count: 5 }).expect("a valid fault");
    let until = Instant::now() + DEADLINE;
    for (socket, dialect) in [
        (&mut notification_socket as &mut dyn DynSocket, "notifications"),
        (&mut analytics_socket, "analytics"),
    ] {
        let mut frames = Vec::new();
        while frames.len() < 5 {
            match socket.next_frame(until).await {
                Next::Frame(Frame::Ping(_)) => {}
                Next::Frame(frame) => frames.push(frame),
                _ => panic!("{dialect}: {} of 5 bad frames", frames.len()),
            }
        }
        let text = |n: usize| match &frames[n] {
            Frame::Text(text) => text.clone(),
            other => panic!("{dialect}: frame {n} is {other:?}"),
        };
        assert!(serde_json::from_slice::<Value>(&text(0)).is_err(), "{dialect}: invalid JSON");
        let wrong_types: Value = serde_json::from_slice(&text(1)).expect("wrong types is JSON");
        let unknown: Value = serde_json::from_slice(&text(2)).expect("unknown topic is JSON");
        assert_eq!(unknown["topicName"], "v2.weather.today");
        match &frames[3] {
            Frame::Binary(bytes) => assert!(serde_json::from_slice::<Value>(bytes).is_err()),
            other => panic!("{dialect}: frame 3 is {other:?}"),
        }
        let bad_time: Value = serde_json::from_slice(&text(4)).expect("bad time is JSON");
        if dialect == "notifications" {
            assert_eq!(wrong_types["eventBody"]["participants"], 42);
            let time = &bad_time["eventBody"]["participants"][0]["connectedTime"];
            assert!(chrono::DateTime::parse_from_rfc3339(time.as_str().expect("a string")).is_err());
        } else {
            assert_eq!(wrong_types["events"], 42);
            let time = &bad_time["events"][0]["timestamp"];
            assert!(chrono::DateTime::parse_from_rfc3339(time.as_str().expect("a string")).is_err());
        }
    }
    assert_eq!(sim.frames_sent(), sent_before + 10);
    let recorded = std::fs::read_to_string(&record).expect("record file");
    assert_eq!(recorded.lines().count() as u64, sim.frames_sent());
    assert!(recorded.contains("v2.weather.today"));
    sim.stop().await;
}

#[actix_rt::test]
async fn oversized_and_injected_frames_arrive_as_sent() {
    let sim = common::simulator(small_run(SEED, 1)).await;
    let client = client();
    let token = token(&client, &sim).await;
    let (_, uri) = channel(&client, &sim, &token).await;
    let mut notification_socket = connect(&client, &uri).await;
    let mut analytics_socket = analytics(&client, &sim, &token, false).await;

    let (status, _) = post_faults(
        &client,
        &sim,
        json!([
            {"kind": "oversized", "bytes": 2_000_000},
            {"kind": "inject", "text": "{\"topicName\":\"v2.users.x.conversations\",\"eventBody\":[]}"},
            {"kind": "inject", "binary": "AAEC/w=="},
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let until = Instant::now() + DEADLINE;
    for (socket, data_key) in
        [(&mut notification_socket as &mut dyn DynSocket, "topicName"), (&mut analytics_socket, "events")]
    {
        let mut frames = Vec::new();
        while frames.len() < 3 {
            match socket.next_frame(until).await {
                Next::Frame(Frame::Ping(_)) => {}
                Next::Frame(frame) => frames.push(frame),
                _ => panic!("{} of 3 frames", frames.len()),
            }
        }
        match &frames[0] {
            Frame::Text(text) => {
                assert!((2_000_000..2_000_100).contains(&text.len()), "{} bytes", text.len());
                let value: Value = serde_json::from_slice(text).expect("valid JSON");
                assert!(value.get(data_key).is_some());
            }
            other => panic!("oversized: {other:?}"),
        }
        assert_eq!(
            frames[1],
            Frame::Text(Bytes::from_static(b"{\"topicName\":\"v2.users.x.conversations\",\"eventBody\":[]}"))
        );
        assert_eq!(frames[2], Frame::Binary(Bytes::from_static(&[0, 1, 2, 255])));
    }
    sim.stop().await;
}

#[actix_rt::test]
async fn evicting_channels_closes_their_sockets_and_forgets_them() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let token = token(&client, &sim).await;
    let (idle, idle_uri) = channel(&client, &sim, &token).await;
    let (busy, busy_uri) = channel(&client, &sim, &token).await;
    assert_eq!(put_topics(&client, &sim, &token, &busy).await, 200);
    let mut socket = connect(&client, &busy_uri).await;

    sim.fault(Fault::EvictChannel).expect("a valid fault");
    assert_eq!(until_close(&mut socket).await.0, Some(1000));
    for (id, uri) in [(&idle, &idle_uri), (&busy, &busy_uri)] {
        assert_eq!(refused_upgrade(&client, uri).await, 404);
        assert_eq!(put_topics(&client, &sim, &token, id).await, 404);
    }
    let (fresh, fresh_uri) = channel(&client, &sim, &token).await;
    assert_eq!(put_topics(&client, &sim, &token, &fresh).await, 200);
    let _socket = connect(&client, &fresh_uri).await;
    sim.stop().await;
}

#[actix_rt::test]
async fn a_revoked_token_is_refused_while_open_sockets_keep_streaming() {
    let sim = common::simulator(steady_run()).await;
    let client = client();
    let old = token(&client, &sim).await;
    let mut streaming = analytics(&client, &sim, &old, true).await;
    let (_, _, mut notification_socket) = notifications(&client, &sim).await;

    sim.fault(Fault::RevokeToken).expect("a valid fault");
    let (status, _, body) = create_channel(&client, &sim, &old).await;
    assert_eq!((status, &body["status"]), (401, &json!(401)));
    let mut refused = connect(&client, &analytics_url(&sim)).await;
    send_json(&mut refused, json!({ "token": old })).await;
    let reply = next_json(&mut refused, Instant::now() + DEADLINE).await;
    assert_eq!(reply["status"], "error");

    let until = Instant::now() + DEADLINE;
    assert!(next_json(&mut streaming, until).await["events"].is_array());
    assert!(topic_of(&next_data(&mut notification_socket, until).await).is_some());
    let new = token(&client, &sim).await;
    assert_eq!(create_channel(&client, &sim, &new).await.0, 200);
    sim.stop().await;
}

#[actix_rt::test]
async fn a_channel_can_die_with_the_token_that_created_it() {
    let sim = common::simulator(SimConfig {
        token_lifetime: Duration::from_millis(400),
        channel_dies_with_token: true,
        ..steady_run()
    })
    .await;
    let client = client();
    let (_, uri, mut socket) = notifications(&client, &sim).await;
    let (code, before) = until_close(&mut socket).await;
    assert_eq!(code, Some(1000));
    assert!(before.iter().all(|f| topic_of(f).as_deref() != Some("v2.system.socket_closing")));
    assert_eq!(refused_upgrade(&client, &uri).await, 404);
    sim.stop().await;
}

#[actix_rt::test]
async fn configured_faults_wait_for_the_first_listener() {
    let error = sim::start(SimConfig { faults: vec![Fault::Close { code: 1005 }], ..small_run(SEED, 1) })
        .await
        .err()
        .expect("an impossible fault is refused at start");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("1005"), "{error}");

    let sim =
        common::simulator(SimConfig { faults: vec![Fault::Close { code: 4000 }], ..small_run(SEED, 1) })
            .await;
    let client = client();
    let token = token(&client, &sim).await;
    let (id, uri) = channel(&client, &sim, &token).await;
    // Connected but not yet subscribed: not a listener, not faulted.
    let mut socket = connect(&client, &uri).await;
    assert_eq!(sim.faults_applied(), 0);
    assert_eq!(put_topics(&client, &sim, &token, &id).await, 200);
    assert_eq!(until_close(&mut socket).await.0, Some(4000));
    assert_eq!(sim.faults_applied(), 1);
    sim.stop().await;
}

/// Participants' (connectedTime, endTime) per conversation, as full snapshots show them.
type Derived = BTreeMap<String, BTreeMap<String, (String, Option<String>)>>;

fn apply_snapshot(derived: &mut Derived, body: &Value) {
    let Some(conversation) = body["id"].as_str() else {
        return;
    };
    let participants = derived.entry(conversation.to_owned()).or_default();
    for participant in body["participants"].as_array().into_iter().flatten() {
        if let (Some(id), Some(joined)) = (participant["id"].as_str(), participant["connectedTime"].as_str())
        {
            let left = participant["endTime"].as_str().map(str::to_owned);
            participants.insert(id.to_owned(), (joined.to_owned(), left));
        }
    }
}

fn expected(truth: &TimelineRecord) -> BTreeMap<String, (String, Option<String>)> {
    truth
        .participants
        .iter()
        .filter_map(|p| {
            let joined = format_millis(p.joined_at.as_ref()?);
            Some((p.participant_id.clone(), (joined, p.left_at.as_ref().map(format_millis))))
        })
        .collect()
}

#[actix_rt::test]
async fn nothing_is_hidden_in_a_fault_free_run() {
    let sim = common::simulator(small_run(SEED, 6)).await;
    let client = client();
    let (_, _, mut socket) = notifications(&client, &sim).await;
    let until = Instant::now() + DEADLINE;
    let mut derived = Derived::new();
    let all_seen = |derived: &Derived, sim: &SimHandle| {
        sim.finished() && sim.truth().iter().all(|t| derived.get(&t.conversation_id) == Some(&expected(t)))
    };
    while !all_seen(&derived, &sim) {
        match next(&mut socket, until).await {
            Next::Frame(Frame::Text(text)) => {
                let frame: Value = serde_json::from_slice(&text).expect("json");
                apply_snapshot(&mut derived, &frame["eventBody"]);
            }
            Next::Frame(_) => {}
            _ => panic!("{} of {} conversations seen", derived.len(), sim.truth().len()),
        }
    }
    assert!(sim.hidden().is_empty(), "{:?}", sim.hidden());
    let mut response =
        client.get(format!("{}/sim/hidden", sim.base_url())).send().await.expect("hidden request");
    assert_eq!(response.json::<Value>().await.expect("json"), json!([]));
    sim.stop().await;
}

#[actix_rt::test]
async fn every_conversation_a_dropped_client_got_wrong_is_hidden() {
    let sim = common::simulator(SimConfig { rate: 400, ..small_run(SEED, 12) }).await;
    let client = client();
    let (_, _, mut notification_socket) = notifications(&client, &sim).await;
    let token = token(&client, &sim).await;
    let mut analytics_socket = analytics(&client, &sim, &token, true).await;
    let until = Instant::now() + DEADLINE;

    // Take part of the run, then lose the sockets; everything written before the drop
    // still arrives, then the stream ends.
    let mut derived = Derived::new();
    let mut events = BTreeSet::new();
    while events.len() < 10 {
        match next(&mut analytics_socket, until).await {
            Next::Frame(Frame::Text(text) | Frame::Binary(text)) => {
                let frame: Value = serde_json::from_slice(&text).expect("json");
                collect_events(&mut events, &frame);
            }
            Next::Frame(_) => {}
            _ => panic!("the run did not start"),
        }
    }
    sim.fault(Fault::DropSocket).expect("a valid fault");
    loop {
        match next(&mut analytics_socket, until).await {
            Next::Frame(Frame::Text(text) | Frame::Binary(text)) => {
                let frame: Value = serde_json::from_slice(&text).expect("json");
                collect_events(&mut events, &frame);
            }
            Next::Frame(Frame::Close(_)) => panic!("a dropped socket sent a Close frame"),
            Next::Frame(_) => {}
            Next::Ended => break,
            Next::TimedOut => panic!("the analytics socket was not dropped"),
        }
    }
    loop {
        match next(&mut notification_socket, until).await {
            Next::Frame(Frame::Text(text)) => {
                let frame: Value = serde_json::from_slice(&text).expect("json");
                apply_snapshot(&mut derived, &frame["eventBody"]);
            }
            Next::Frame(Frame::Close(_)) => panic!("a dropped socket sent a Close frame"),
            Next::Frame(_) => {}
            Next::Ended => break,
            Next::TimedOut => panic!("the notifications socket was not dropped"),
        }
    }
    while !sim.finished() {
        assert!(Instant::now() < until, "the run did not finish");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }

    let truth = sim.truth();
    let hidden = sim.hidden();
    assert!(!hidden.is_empty(), "the run went on with nobody listening");
    let ids: BTreeSet<String> = truth.iter().map(|t| t.conversation_id.clone()).collect();
    assert!(hidden.is_subset(&ids));
    for conversation in &truth {
        let id = &conversation.conversation_id;
        let snapshots_agree = derived.get(id) == Some(&expected(conversation));
        let events_agree = conversation.entries.iter().all(|e| {
            let kind = match e.action {
                EntryAction::Joined => "ParticipantJoined",
                EntryAction::Left => "ParticipantLeft",
            };
            events.contains(&(format_millis(&e.at), kind.to_owned(), e.participant_id.clone()))
        });
        assert!(
            (snapshots_agree && events_agree) || hidden.contains(id),
            "{id} was received incompletely but is not hidden"
        );
    }
    let mut response =
        client.get(format!("{}/sim/hidden", sim.base_url())).send().await.expect("hidden request");
    let served: BTreeSet<String> = response.json().await.expect("json");
    assert_eq!(served, hidden);
    sim.stop().await;
}

fn collect_events(events: &mut BTreeSet<(String, String, String)>, frame: &Value) {
    for event in frame["events"].as_array().into_iter().flatten() {
        events.insert((
            event["timestamp"].as_str().unwrap_or_default().to_owned(),
            event["type"].as_str().unwrap_or_default().to_owned(),
            event["participant"].as_str().unwrap_or_default().to_owned(),
        ));
    }
}
