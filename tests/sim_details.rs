//! The simulator's conversation-details query over real loopback, the way a daemon uses it
//! after an outage: "which conversations started in this window on my queues and users?"
//! The answer is checked against the ground truth (`SimHandle::truth`) and, for users,
//! against what backfill (`GET /api/v2/conversations/{id}`) shows of each conversation.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use awc::Client;
use chrono::{DateTime, Utc};
use common::sim_client::{backfill, channel, client, connect, put_topics, token, MAX_FRAME};
use serde_json::{json, Value};
use timelined::sim::{Fault, SimConfig, SimHandle, DEFAULT_QUEUES};
use timelined_actors::record::{format_millis, TimelineRecord};
use tokio::time::Instant;

const DETAILS_PATH: &str = "/api/v2/analytics/conversations/details/query";
/// Every wait in these tests ends by this long, pass or fail.
const DEADLINE: Duration = Duration::from_secs(10);
/// Wider than any run's event times (they start at 2026-01-01T09:00Z).
const WIDE: &str = "2025-12-31T00:00:00.000Z/2026-01-08T00:00:00.000Z";

/// A finite run, played to the end. Playback starts once somebody listens, so a channel
/// socket listens — on a user topic no conversation is published on, so nothing needs
/// reading while the run plays out. What the query finds is then everything played.
async fn finished_run(client: &Client, conversations: u64) -> (SimHandle, String) {
    let sim = common::simulator(SimConfig {
        seed: 23,
        conversations,
        rate: 0,
        concurrency: 6,
        ..SimConfig::default()
    })
    .await;
    let token = token(client, &sim).await;
    let (id, uri) = channel(client, &sim, &token).await;
    let nobody = ["v2.users.nobody-at-all.conversations".to_owned()];
    let (status, _) = put_topics(client, &sim, &token, &id, &nobody).await;
    assert_eq!(status, 200);
    let socket = connect(client, &uri).await;
    let until = Instant::now() + DEADLINE;
    while !sim.finished() {
        assert!(Instant::now() < until, "the run did not finish in time");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    drop(socket);
    assert_eq!(sim.truth().len() as u64, conversations);
    (sim, token)
}

/// `POST` the query (with `token` when given): the status, any `Retry-After`, the body.
async fn details(
    client: &Client,
    sim: &SimHandle,
    token: Option<&str>,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let mut request = client.post(format!("{}{DETAILS_PATH}", sim.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send_json(body).await.expect("details request");
    let retry_after =
        response.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
    let json = response.json().limit(MAX_FRAME).await.unwrap_or(Value::Null);
    (response.status().as_u16(), retry_after, json)
}

/// The query the daemon sends: conversations that started in `interval` on any of
/// `queues` or `users`.
fn query(interval: &str, queues: &[&str], users: &[&str], page_size: u64, page_number: u64) -> Value {
    let predicates: Vec<Value> = queues
        .iter()
        .map(|q| ("queueId", q))
        .chain(users.iter().map(|u| ("userId", u)))
        .map(|(dimension, value)| {
            json!({"type": "dimension", "dimension": dimension, "operator": "matches", "value": value})
        })
        .collect();
    json!({
        "interval": interval,
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": page_size, "pageNumber": page_number},
        "segmentFilters": [{"type": "or", "predicates": predicates}],
    })
}

fn listed_ids(page: &Value) -> Vec<String> {
    page.get("conversations")
        .map(|list| {
            list.as_array()
                .expect("conversations is a list")
                .iter()
                .map(|c| c["conversationId"].as_str().expect("conversationId").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every page of a query (pageSize `page_size`), checking each page's `totalHits`.
async fn all_pages(client: &Client, sim: &SimHandle, token: &str, mut body: Value) -> Vec<Value> {
    let page_size = body["paging"]["pageSize"].as_u64().expect("pageSize");
    let mut listed = Vec::new();
    let mut total = None;
    for number in 1..=1_000u64 {
        body["paging"]["pageNumber"] = json!(number);
        let (status, _, page) = details(client, sim, Some(token), &body).await;
        assert_eq!(status, 200, "{page}");
        let hits = page["totalHits"].as_u64().expect("totalHits");
        assert_eq!(*total.get_or_insert(hits), hits, "totalHits is the same on every page");
        let conversations = page.get("conversations").and_then(Value::as_array).cloned().unwrap_or_default();
        if conversations.is_empty() {
            assert_eq!(page, json!({"totalHits": hits}), "an empty page leaves the list out");
            break;
        }
        assert!(conversations.len() as u64 <= page_size);
        listed.extend(conversations);
    }
    assert_eq!(Some(listed.len() as u64), total);
    listed
}

fn started_at(record: &TimelineRecord) -> DateTime<Utc> {
    record.started_at.expect("a played conversation has started")
}

/// The truth's conversations routed through `queue`, in the order the query lists them.
fn truth_on_queue(truth: &[TimelineRecord], queue: &str) -> Vec<(String, String)> {
    let mut on_queue: Vec<(String, String)> = truth
        .iter()
        .filter(|t| t.participants.iter().any(|p| p.queue_id.as_deref() == Some(queue)))
        .map(|t| (format_millis(&started_at(t)), t.conversation_id.clone()))
        .collect();
    on_queue.sort();
    on_queue
}

#[actix_rt::test]
async fn after_a_run_the_query_finds_exactly_the_conversations_of_a_queue_with_their_times() {
    let client = client();
    let (sim, token) = finished_run(&client, 24).await;
    let truth = sim.truth();
    for queue in DEFAULT_QUEUES {
        let (status, _, page) =
            details(&client, &sim, Some(&token), &query(WIDE, &[queue], &[], 100, 1)).await;
        assert_eq!(status, 200, "{page}");
        let expected = truth_on_queue(&truth, queue);
        assert!(!expected.is_empty() && expected.len() < truth.len(), "both queues carry some");
        let listed: Vec<(String, String)> = page["conversations"]
            .as_array()
            .expect("conversations")
            .iter()
            .map(|c| {
                (
                    c["conversationStart"].as_str().unwrap().to_owned(),
                    c["conversationId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(listed, expected, "ids in conversationStart order, starts as the truth has them");
        assert_eq!(page["totalHits"], expected.len());
        for conversation in page["conversations"].as_array().unwrap() {
            let id = conversation["conversationId"].as_str().unwrap();
            let record = truth.iter().find(|t| t.conversation_id == id).expect("in the truth");
            assert_eq!(conversation["conversationEnd"], format_millis(&record.ended_at.expect("ended")));
            assert_eq!(conversation["originatingDirection"], "inbound");
        }
    }
    sim.stop().await;
}

#[actix_rt::test]
async fn pages_split_the_answer_and_every_page_tells_the_total() {
    let client = client();
    let (sim, token) = finished_run(&client, 24).await;
    let truth = sim.truth();
    let queue = DEFAULT_QUEUES[0];
    let expected: Vec<String> = truth_on_queue(&truth, queue).into_iter().map(|(_, id)| id).collect();
    assert!(expected.len() > 5, "enough for several pages of 5");
    let paged = all_pages(&client, &sim, &token, query(WIDE, &[queue], &[], 5, 1)).await;
    let paged_ids: Vec<String> =
        paged.iter().map(|c| c["conversationId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(paged_ids, expected);

    // Without filters: everything played; pageSize defaults to 25, as Genesys does.
    let (status, _, page) = details(&client, &sim, Some(&token), &json!({"interval": WIDE})).await;
    assert_eq!(status, 200);
    assert_eq!(page["totalHits"], truth.len());
    assert_eq!(listed_ids(&page).len(), truth.len().min(25));
    sim.stop().await;
}

#[actix_rt::test]
async fn a_narrow_interval_returns_only_the_conversations_that_started_in_it() {
    let client = client();
    let (sim, token) = finished_run(&client, 24).await;
    let truth = sim.truth();
    let mut starts: Vec<DateTime<Utc>> = truth.iter().map(started_at).collect();
    starts.sort();
    starts.dedup();
    let (from, to) = (starts[5], starts[12]);
    let interval = format!("{}/{}", format_millis(&from), format_millis(&to));
    let expected: BTreeSet<String> = truth
        .iter()
        .filter(|t| (from..to).contains(&started_at(t)))
        .map(|t| t.conversation_id.clone())
        .collect();
    assert!(!expected.is_empty() && expected.len() < truth.len());
    let every_queue = query(&interval, &DEFAULT_QUEUES, &[], 100, 1);
    let listed = all_pages(&client, &sim, &token, every_queue).await;
    let listed: BTreeSet<String> =
        listed.iter().map(|c| c["conversationId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed, expected, "from is included, to is not");
    sim.stop().await;
}

#[actix_rt::test]
async fn a_user_predicate_finds_every_conversation_that_user_was_offered_and_or_adds_up() {
    let client = client();
    let (sim, token) = finished_run(&client, 24).await;
    let user_ids = sim.user_ids();
    let user = user_ids[0].as_str();
    // What backfill shows is the oracle: a conversation involves the user when any of its
    // participants (a missed alert included) carries that userId.
    let mut involving = BTreeSet::new();
    for record in sim.truth() {
        let (status, snapshot) = backfill(&client, &sim, &token, &record.conversation_id).await;
        assert_eq!(status, 200);
        let participants = snapshot["participants"].as_array().expect("participants");
        if participants.iter().any(|p| p["userId"] == user) {
            involving.insert(record.conversation_id);
        }
    }
    assert!(!involving.is_empty(), "the small user pool puts every agent in some conversation");
    let ids_of = |pages: Vec<Value>| -> BTreeSet<String> {
        pages.iter().map(|c| c["conversationId"].as_str().unwrap().to_owned()).collect()
    };
    let by_user = ids_of(all_pages(&client, &sim, &token, query(WIDE, &[], &[user], 100, 1)).await);
    assert_eq!(by_user, involving);
    let by_queue =
        ids_of(all_pages(&client, &sim, &token, query(WIDE, &[DEFAULT_QUEUES[1]], &[], 100, 1)).await);
    let either =
        ids_of(all_pages(&client, &sim, &token, query(WIDE, &[DEFAULT_QUEUES[1]], &[user], 100, 1)).await);
    assert_eq!(either, by_user.union(&by_queue).cloned().collect(), "predicates of an or filter add up");
    sim.stop().await;
}

#[actix_rt::test]
async fn the_query_needs_a_token_and_a_well_formed_interval() {
    let client = client();
    let (sim, token) = finished_run(&client, 4).await;
    let (status, _, body) = details(&client, &sim, None, &query(WIDE, &DEFAULT_QUEUES, &[], 100, 1)).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "authentication.required");
    let (status, _, _) = details(&client, &sim, Some("sim-not-a-token"), &json!({"interval": WIDE})).await;
    assert_eq!(status, 401);

    for interval in
        ["yesterday/today", "2026-01-01T09:00:00.000Z", "2026-01-01T10:00:00.000Z/2026-01-01T09:00:00.000Z"]
    {
        let (status, _, body) =
            details(&client, &sim, Some(&token), &query(interval, &DEFAULT_QUEUES, &[], 100, 1)).await;
        assert_eq!(status, 400, "{interval}");
        assert_eq!(body["code"], "bad.request");
        assert_eq!(body["status"], 400);
        assert!(body["message"].as_str().is_some_and(|m| m.contains("interval")), "{body}");
    }
    let response = client
        .post(format!("{}{DETAILS_PATH}", sim.base_url()))
        .bearer_auth(&token)
        .content_type("application/json")
        .send_body("{\"interval\":")
        .await
        .expect("details request");
    assert_eq!(response.status(), 400, "a body that is not JSON");
    let (status, _, body) =
        details(&client, &sim, Some(&token), &query(WIDE, &DEFAULT_QUEUES, &[], 500, 1)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad.request")), "pageSize over 100");
    sim.stop().await;
}

#[actix_rt::test]
async fn a_rate_limit_fault_answers_429_with_retry_after_then_the_query_works_again() {
    let client = client();
    let (sim, token) = finished_run(&client, 4).await;
    sim.fault(Fault::Http { path: DETAILS_PATH.to_owned(), status: 429, retry_after: Some(3), count: 1 })
        .expect("a valid fault");
    let body = query(WIDE, &DEFAULT_QUEUES, &[], 100, 1);
    let (status, retry_after, error) = details(&client, &sim, Some(&token), &body).await;
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("3"));
    assert_eq!(error["code"], "too.many.requests");
    let (status, _, page) = details(&client, &sim, Some(&token), &body).await;
    assert_eq!(status, 200, "the fault counted down");
    assert_eq!(page["totalHits"], 4);
    sim.stop().await;
}
