//! The simulator against Genesys Cloud's own models: every notification body and REST
//! answer it sends must fit the model the official Python SDK (`purecloudplatformclientv2`)
//! has for it. The JSON schemas in `tests/conformance/schemas/` are generated from the SDK
//! by `tests/conformance/generate_schemas.py` (the version is in each schema's `$comment`);
//! each object refuses properties the model does not have, and each string with an SDK
//! value list refuses values outside it.
//!
//! Covered: the bodies of every topic the simulator publishes on (queue and user
//! conversation topics, full and per-media, and the detail-event topics; a frame on a topic
//! without a schema fails), channel creation, the subscriptions listing (GET, PUT, POST),
//! conversation backfill, the conversation-details query, the API's error answers and the
//! `v2.system.socket_closing` notice, plus `HEAD` on a channel.
//!
//! Not covered, as the SDK has no model for them: the OAuth token answer and errors (the
//! login host's standard OAuth shapes), the `channel.metadata` heartbeat and pong, the
//! notification envelope `{topicName, version, eventBody, metadata}` and the socket's
//! subscribe replies, the analytics-stream dialect (the simulator's own, not Genesys'), the
//! `DELETE` subscriptions answer (the SDK expects no body), and the simulator's own
//! `/sim/*` endpoints.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use awc::http::Method;
use awc::ws::Frame;
use awc::Client;
use common::sim_client::{self as sim_client, channel, client, connect, put_topics, token, MAX_FRAME};
use futures_util::StreamExt;
use jsonschema::Validator;
use serde_json::{json, Value};
use timelined::sim::{Fault, SimConfig, SimHandle, DEFAULT_QUEUES};

const SEED: u64 = 31;
/// Enough conversations that every media type, purpose and disconnect type comes up.
const CONVERSATIONS: u64 = 300;
/// Every wait here ends by this long, pass or fail.
const DEADLINE: Duration = Duration::from_secs(60);
/// The most topics one channel takes.
const TOPICS_PER_CHANNEL: usize = 1_000;
const SNAPSHOT_TAILS: [&str; 7] = [
    "conversations",
    "conversations.calls",
    "conversations.chats",
    "conversations.messages",
    "conversations.emails",
    "conversations.callbacks",
    "conversations.videos",
];
const DETAIL_CATEGORIES: [&str; 4] = ["customer", "user", "acd", "flow"];
const DETAILS_PATH: &str = "/api/v2/analytics/conversations/details/query";
/// Wider than any run's event times.
const WIDE: &str = "2025-12-31T00:00:00.000Z/2026-01-08T00:00:00.000Z";

fn run_config() -> SimConfig {
    SimConfig {
        seed: SEED,
        conversations: CONVERSATIONS,
        rate: 5_000,
        concurrency: 8,
        heartbeat_interval: Duration::from_secs(3_600),
        ..SimConfig::default()
    }
}

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/schemas")
}

/// The checked-in schemas, compiled once each, and every difference found so far.
#[derive(Default)]
struct Checker {
    validators: BTreeMap<String, Validator>,
    /// One example per (schema, pointer with indexes elided, message), with its count.
    differences: BTreeMap<String, (String, usize)>,
    checked: BTreeMap<String, usize>,
}

impl Checker {
    fn validator(&mut self, schema: &str) -> &Validator {
        self.validators.entry(schema.to_owned()).or_insert_with(|| {
            let path = schema_dir().join(format!("{schema}.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let value: Value = serde_json::from_str(&text).expect("schemas are JSON");
            jsonschema::draft7::new(&value).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
    }

    /// Validates `body`, sent on `source` (a topic or an endpoint), against `schema`.
    fn check(&mut self, source: &str, schema: &str, body: &Value) {
        *self.checked.entry(schema.to_owned()).or_default() += 1;
        for difference in differences(self.validator(schema), body) {
            let key = format!("{schema}: {}", difference.key);
            let example = format!("{source}: {}", difference.text);
            self.differences.entry(key).or_insert((example, 0)).1 += 1;
        }
    }

    fn unmapped(&mut self, topic: &str) {
        let key = format!("no schema for topic {topic}");
        self.differences.entry(key.clone()).or_insert((key, 0)).1 += 1;
    }

    fn report(&self) -> String {
        self.differences
            .values()
            .map(|(example, count)| format!("  {example} ({count} like it)"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Difference {
    /// Pointer (indexes elided) and message, for grouping alike differences.
    key: String,
    /// Pointer, message and the offending value.
    text: String,
}

/// Every way `body` breaks the schema, each with its JSON pointer and offending value.
fn differences(validator: &Validator, body: &Value) -> Vec<Difference> {
    validator
        .iter_errors(body)
        .map(|error| {
            let pointer = error.instance_path().to_string();
            let mut value = error.instance().to_string();
            if value.len() > 300 {
                value = format!("{}…", value.chars().take(300).collect::<String>());
            }
            Difference {
                key: format!("{}: {error}", elide_indexes(&pointer)),
                text: format!("at {pointer:?}: {error}; value {value}"),
            }
        })
        .collect()
}

/// `/participants/3/chats/0` → `/participants/*/chats/*`.
fn elide_indexes(pointer: &str) -> String {
    pointer
        .split('/')
        .map(|part| if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) { "*" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

/// The schema of a topic's bodies: the topic with its id replaced by `id`, if there is one.
fn topic_schema(topic: &str) -> Option<String> {
    let parts: Vec<&str> = topic.split('.').collect();
    let (head, rest) = match parts.as_slice() {
        ["v2", "routing", "queues", _, rest @ ..] => ("v2.routing.queues.id", rest),
        ["v2", "users", _, rest @ ..] => ("v2.users.id", rest),
        ["v2", "detail", "events", "conversation", _, rest @ ..] => {
            ("v2.detail.events.conversation.id", rest)
        }
        _ => return schema_dir().join(format!("{topic}.json")).exists().then(|| topic.to_owned()),
    };
    let name = std::iter::once(head).chain(rest.iter().copied()).collect::<Vec<_>>().join(".");
    schema_dir().join(format!("{name}.json")).exists().then_some(name)
}

/// A REST call with a bearer token: the status and the JSON body (`Null` when there is none).
async fn rest(
    client: &Client,
    sim: &SimHandle,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let request = client.request(method, format!("{}{path}", sim.base_url())).bearer_auth(token);
    let mut response = match body {
        Some(body) => request.send_json(body).await,
        None => request.send().await,
    }
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    let bytes = response.body().limit(MAX_FRAME).await.expect("a readable body");
    let json =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
    (response.status().as_u16(), json)
}

/// Plays the run to its end with a listener on a topic nothing is published on: the ids
/// of the conversations the same seed plays, for subscribing to their detail topics.
async fn conversation_ids(client: &Client) -> Vec<String> {
    let sim = common::simulator(run_config()).await;
    let token = token(client, &sim).await;
    let (id, uri) = channel(client, &sim, &token).await;
    let (status, _) =
        put_topics(client, &sim, &token, &id, &["v2.users.nobody.conversations".to_owned()]).await;
    assert_eq!(status, 200);
    let socket = connect(client, &uri).await;
    common::wait_until("the first run to finish", DEADLINE, || sim.finished()).await;
    drop(socket);
    let ids: Vec<String> = sim.truth().into_iter().map(|t| t.conversation_id).collect();
    sim.stop().await;
    assert_eq!(ids.len() as u64, CONVERSATIONS);
    ids
}

/// Every topic the run can publish on: queue and user topics of every shape, and the
/// detail topics of every conversation.
fn every_topic(sim: &SimHandle, conversations: &[String]) -> Vec<String> {
    let queues = DEFAULT_QUEUES.iter().map(|q| format!("v2.routing.queues.{q}"));
    let users = sim.user_ids().into_iter().map(|u| format!("v2.users.{u}"));
    let snapshots = queues.chain(users).flat_map(|base| SNAPSHOT_TAILS.map(|tail| format!("{base}.{tail}")));
    let details = conversations.iter().flat_map(|id| {
        DETAIL_CATEGORIES.into_iter().flat_map(move |category| {
            ["start", "end"].map(|phase| format!("v2.detail.events.conversation.{id}.{category}.{phase}"))
        })
    });
    snapshots.chain(details).collect()
}

/// Reads every text or binary frame of a socket into `frames` until it ends.
fn read_into(
    socket: impl sim_client::Socket + 'static,
    frames: Rc<RefCell<Vec<Vec<u8>>>>,
) -> actix_rt::task::JoinHandle<()> {
    actix_rt::spawn(async move {
        let mut socket = socket;
        while let Some(Ok(frame)) = socket.next().await {
            if let Frame::Text(bytes) | Frame::Binary(bytes) = frame {
                frames.borrow_mut().push(bytes.to_vec());
            }
        }
    })
}

#[actix_rt::test]
async fn every_body_the_simulator_sends_follows_the_sdk_models() {
    let client = client();
    let conversations = conversation_ids(&client).await;
    let sim = common::simulator(run_config()).await;
    // Held until every socket listens, so that none misses the start.
    sim.pause(true);
    let token = token(&client, &sim).await;
    let mut checker = Checker::default();
    let subscriptions = |id: &str| format!("/api/v2/notifications/channels/{id}/subscriptions");

    let frames = Rc::new(RefCell::new(Vec::new()));
    let mut readers = Vec::new();
    for topics in every_topic(&sim, &conversations).chunks(TOPICS_PER_CHANNEL) {
        let (status, created) =
            rest(&client, &sim, Method::POST, "/api/v2/notifications/channels", &token, None).await;
        assert_eq!(status, 200, "{created}");
        checker.check("POST /api/v2/notifications/channels", "POST.api.v2.notifications.channels", &created);
        let id = created["id"].as_str().expect("a channel id").to_owned();
        let (status, listing) = put_topics(&client, &sim, &token, &id, topics).await;
        assert_eq!(status, 200, "{listing}");
        checker.check("PUT …/subscriptions", "api.v2.notifications.channels.id.subscriptions", &listing);
        let (status, listing) = rest(&client, &sim, Method::GET, &subscriptions(&id), &token, None).await;
        assert_eq!(status, 200, "{listing}");
        checker.check("GET …/subscriptions", "api.v2.notifications.channels.id.subscriptions", &listing);
        let socket = connect(&client, created["connectUri"].as_str().expect("a connectUri")).await;
        readers.push(read_into(socket, frames.clone()));
    }

    // Adding topics, a rejected one among them, on a channel of its own.
    let (id, _) = channel(&client, &sim, &token).await;
    let added = json!([{"id": "v2.users.someone.conversations"}, {"id": "v2.no.such.topic"}]);
    let (status, listing) =
        rest(&client, &sim, Method::POST, &subscriptions(&id), &token, Some(&added)).await;
    assert_eq!(status, 200, "{listing}");
    checker.check("POST …/subscriptions", "api.v2.notifications.channels.id.subscriptions", &listing);
    assert_eq!(listing["entities"][1]["state"], "Rejected", "{listing}");

    sim.pause(false);
    common::wait_until("the run to finish and every frame to be read", DEADLINE, || {
        sim.finished() && frames.borrow().len() as u64 == sim.frames_sent()
    })
    .await;

    let mut topics_seen = BTreeSet::new();
    for frame in frames.borrow().iter() {
        let frame: Value = serde_json::from_slice(frame).expect("frames are JSON");
        let topic = frame["topicName"].as_str().expect("a topicName").to_owned();
        if topic == "channel.metadata" {
            continue;
        }
        match topic_schema(&topic) {
            Some(schema) => {
                checker.check(&topic, &schema, &frame["eventBody"]);
                topics_seen.insert(schema);
            }
            None => checker.unmapped(&topic),
        }
    }

    for id in &conversations {
        let path = format!("/api/v2/conversations/{id}");
        let (status, conversation) = rest(&client, &sim, Method::GET, &path, &token, None).await;
        assert_eq!(status, 200, "{path}: {conversation}");
        checker.check("GET /api/v2/conversations/{id}", "GET.api.v2.conversations.id", &conversation);
    }
    // Every page of the whole run, then the empty page after the last.
    let pages = CONVERSATIONS.div_ceil(100) + 1;
    for page in 1..=pages {
        let query = json!({
            "interval": WIDE,
            "order": "asc",
            "orderBy": "conversationStart",
            "paging": {"pageSize": 100, "pageNumber": page},
            "segmentFilters": [{"type": "or", "predicates": [
                {"type": "dimension", "dimension": "queueId", "operator": "matches", "value": DEFAULT_QUEUES[0]},
                {"type": "dimension", "dimension": "queueId", "operator": "matches", "value": DEFAULT_QUEUES[1]}
            ]}]
        });
        let (status, answer) = rest(&client, &sim, Method::POST, DETAILS_PATH, &token, Some(&query)).await;
        assert_eq!(status, 200, "{answer}");
        checker.check(
            &format!("POST {DETAILS_PATH}"),
            "POST.api.v2.analytics.conversations.details.query",
            &answer,
        );
    }

    for reader in readers {
        reader.abort();
    }
    sim.stop().await;

    // The run exercised every shape the simulator has.
    for media in ["calls", "chats", "messages"] {
        for base in ["v2.routing.queues.id", "v2.users.id"] {
            let topic = format!("{base}.conversations.{media}");
            assert!(topics_seen.contains(&topic), "no frame on {topic}: {topics_seen:?}");
        }
    }
    for category in DETAIL_CATEGORIES {
        for phase in ["start", "end"] {
            let topic = format!("v2.detail.events.conversation.id.{category}.{phase}");
            assert!(topics_seen.contains(&topic), "no frame on {topic}: {topics_seen:?}");
        }
    }
    assert!(
        checker.differences.is_empty(),
        "the simulator differs from the SDK's models:\n{}\n(checked {:?})",
        checker.report(),
        checker.checked
    );
}

/// `HEAD` on a channel, as the SDK's `head_notifications_channel` asks whether it exists.
#[actix_rt::test]
async fn head_answers_whether_a_channel_exists() {
    let client = client();
    let sim = common::simulator(run_config()).await;
    let token = token(&client, &sim).await;
    let (id, _) = channel(&client, &sim, &token).await;
    let head = |id: String| {
        let request = client
            .request(Method::HEAD, format!("{}/api/v2/notifications/channels/{id}", sim.base_url()))
            .bearer_auth(&token);
        async move { request.send().await.expect("HEAD request").status().as_u16() }
    };
    assert_eq!(head(id).await, 200);
    assert_eq!(head("streaming-0-no-such-channel".to_owned()).await, 404);
    sim.stop().await;
}

/// The `v2.system.socket_closing` notice and the API's error answers.
#[actix_rt::test]
async fn the_closing_notice_and_error_answers_follow_the_sdk_models() {
    let client = client();
    let sim = common::simulator(SimConfig { conversations: 3, ..run_config() }).await;
    let token = token(&client, &sim).await;
    let mut checker = Checker::default();
    let (id, uri) = channel(&client, &sim, &token).await;
    let (status, _) =
        put_topics(&client, &sim, &token, &id, &["v2.users.nobody.conversations".to_owned()]).await;
    assert_eq!(status, 200);
    let mut socket = connect(&client, &uri).await;
    sim.fault(Fault::SocketClosing { close_after: Duration::from_secs(60) }).expect("a valid fault");
    let until = tokio::time::Instant::now() + DEADLINE;
    let notice = loop {
        let sim_client::Next::Frame(Frame::Text(bytes)) = sim_client::next(&mut socket, until).await else {
            panic!("no socket_closing notice by the deadline");
        };
        let frame: Value = serde_json::from_slice(&bytes).expect("frames are JSON");
        if frame["topicName"] == "v2.system.socket_closing" {
            break frame["eventBody"].clone();
        }
    };
    checker.check("v2.system.socket_closing", "v2.system.socket_closing", &notice);
    drop(socket);

    let errors = [
        (Method::GET, "/api/v2/conversations/no-such-conversation".to_owned(), token.clone(), None, 404),
        (
            Method::GET,
            "/api/v2/notifications/channels/no-such-channel/subscriptions".to_owned(),
            token.clone(),
            None,
            404,
        ),
        (Method::POST, DETAILS_PATH.to_owned(), token.clone(), Some(json!({"interval": "yesterday"})), 400),
        (Method::POST, "/api/v2/notifications/channels".to_owned(), "not-a-token".to_owned(), None, 401),
    ];
    for (method, path, token, body, expected) in errors {
        let source = format!("{method} {path}");
        let (status, answer) = rest(&client, &sim, method, &path, &token, body.as_ref()).await;
        assert_eq!(status, expected, "{source}: {answer}");
        checker.check(&source, "api.v2.error", &answer);
    }
    sim.stop().await;
    assert!(
        checker.differences.is_empty(),
        "the simulator differs from the SDK's models:\n{}",
        checker.report()
    );
}

/// The first full snapshot on a queue topic of a short run.
async fn a_queue_snapshot() -> Value {
    let client = client();
    let sim = common::simulator(SimConfig { conversations: 3, ..run_config() }).await;
    let token = token(&client, &sim).await;
    let (id, uri) = channel(&client, &sim, &token).await;
    let topics: Vec<String> =
        DEFAULT_QUEUES.iter().map(|q| format!("v2.routing.queues.{q}.conversations")).collect();
    let (status, _) = put_topics(&client, &sim, &token, &id, &topics).await;
    assert_eq!(status, 200);
    let mut socket = connect(&client, &uri).await;
    let until = tokio::time::Instant::now() + DEADLINE;
    let snapshot = loop {
        let sim_client::Next::Frame(Frame::Text(bytes)) = sim_client::next(&mut socket, until).await else {
            panic!("no queue snapshot by the deadline");
        };
        let frame: Value = serde_json::from_slice(&bytes).expect("frames are JSON");
        if frame["topicName"].as_str().is_some_and(|t| t.starts_with("v2.routing.queues.")) {
            break frame["eventBody"].clone();
        }
    };
    drop(socket);
    sim.stop().await;
    snapshot
}

/// The check bites: a real frame passes, and the same frame with a property the SDK does
/// not know, or with a value outside an SDK list, fails, naming where.
#[actix_rt::test]
async fn the_check_refuses_unknown_properties_and_values() {
    let mut checker = Checker::default();
    let schema = "v2.routing.queues.id.conversations";
    let snapshot = a_queue_snapshot().await;
    assert!(differences(checker.validator(schema), &snapshot).is_empty(), "{snapshot}");
    let session_key = ["calls", "chats", "messages"]
        .into_iter()
        .find(|key| snapshot["participants"][0].get(*key).is_some())
        .expect("a media session");

    let mut unknown = snapshot.clone();
    unknown["participants"][0]["mood"] = json!("cheerful");
    let found = differences(checker.validator(schema), &unknown);
    assert_eq!(found.len(), 1, "{:?}", found.iter().map(|d| &d.text).collect::<Vec<_>>());
    assert!(
        found[0].text.contains("\"/participants/0\"") && found[0].text.contains("mood"),
        "{}",
        found[0].text
    );

    let mut outside = snapshot.clone();
    outside["participants"][0][session_key][0]["state"] = json!("levitating");
    let found = differences(checker.validator(schema), &outside);
    assert_eq!(found.len(), 1, "{:?}", found.iter().map(|d| &d.text).collect::<Vec<_>>());
    let pointer = format!("\"/participants/0/{session_key}/0/state\"");
    assert!(found[0].text.contains(&pointer) && found[0].text.contains("levitating"), "{}", found[0].text);

    let mut mistyped = snapshot;
    mistyped["participants"][0]["connectedTime"] = json!(12);
    assert_eq!(differences(checker.validator(schema), &mistyped).len(), 1);
}

#[test]
fn topics_map_to_their_schemas() {
    assert_eq!(
        topic_schema("v2.routing.queues.q1.conversations.chats").as_deref(),
        Some("v2.routing.queues.id.conversations.chats")
    );
    assert_eq!(topic_schema("v2.users.u1.conversations").as_deref(), Some("v2.users.id.conversations"));
    assert_eq!(
        topic_schema("v2.detail.events.conversation.c1.flow.end").as_deref(),
        Some("v2.detail.events.conversation.id.flow.end")
    );
    assert_eq!(topic_schema("v2.system.socket_closing").as_deref(), Some("v2.system.socket_closing"));
    assert_eq!(topic_schema("v2.users.u1.presence"), None);
    assert_eq!(topic_schema("channel.metadata"), None);
    assert_eq!(elide_indexes("/participants/12/chats/0/state"), "/participants/*/chats/*/state");
}
