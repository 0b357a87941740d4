//! The HTTP API as a dashboard or an operator meets it, over real loopback HTTP: health and
//! readiness, the metrics text, the timelines JSON, and the `/feed` stream — a client that
//! disconnects and comes back with `Last-Event-ID` gets exactly what it missed, in order;
//! one that was away too long is told so with a `reset` event.

use chrono::DateTime;
use dashmap::DashMap;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timelined::http::feed::{Feed, FeedOutput};
use timelined::http::{self, HttpState};
use timelined_actors::consumer::Output;
use timelined_actors::event::{Action, EventDetails, ParticipantEvent};
use timelined_actors::metrics::{DropLabels, DropReason, Metrics, Stage};
use timelined_actors::record::{EntryAction, EntryRecord, TimelineRecord};
use timelined_actors::timeline::{CloseReason, Timeline, TimelineUpdate};

/// A running server and the handles a test turns.
struct Served {
    base: String,
    metrics: Arc<Metrics>,
    timelines: Arc<DashMap<Arc<str>, Box<Timeline>>>,
    not_ready: Arc<Mutex<Option<String>>>,
    feed: Arc<Feed>,
    handle: actix_web::dev::ServerHandle,
}

fn serve(feed: Arc<Feed>) -> Served {
    serve_with(feed, 64)
}

fn serve_with(feed: Arc<Feed>, max_feed_clients: usize) -> Served {
    timelined::cli::install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let timelines = Arc::new(DashMap::new());
    let not_ready = Arc::new(Mutex::new(Some("not subscribed".to_owned())));
    let reason = not_ready.clone();
    let state = HttpState {
        metrics: metrics.clone(),
        timelines: timelined_actors::timeline::OpenTimelinesView::new(timelines.clone()),
        readiness: Arc::new(move || match reason.lock().unwrap().clone() {
            None => Ok(()),
            Some(why) => Err(why),
        }),
        feed: feed.clone(),
        feed_clients: Default::default(),
        max_feed_clients,
    };
    let (address, handle) = http::start("127.0.0.1:0".parse().unwrap(), state).expect("binds loopback");
    Served { base: format!("http://{address}"), metrics, timelines, not_ready, feed, handle }
}

async fn get(url: &str) -> (u16, String, String) {
    get_with(url, &[]).await
}

async fn get_with(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut request = awc::Client::new().get(url).timeout(Duration::from_secs(5));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request.send().await.expect("server answers");
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = response.body().limit(16 << 20).await.expect("body");
    (response.status().as_u16(), content_type, String::from_utf8(body.to_vec()).unwrap())
}

fn at(ms: i64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp_millis(1_767_258_000_000 + ms).unwrap()
}

fn update(conversation: &str, participant: &str, ms: i64) -> TimelineUpdate {
    TimelineUpdate {
        conversation_id: conversation.into(),
        entry: EntryRecord {
            at: at(ms),
            action: EntryAction::Joined,
            participant_id: participant.into(),
            purpose: Some("agent".into()),
        },
        late: false,
    }
}

fn closed_record(conversation: &str) -> TimelineRecord {
    TimelineRecord {
        conversation_id: conversation.into(),
        media_types: vec!["voice".into()],
        started_at: Some(at(0)),
        ended_at: Some(at(60_000)),
        complete: true,
        gaps: 0,
        healed: false,
        participants: vec![],
        entries: vec![],
    }
}

#[actix_rt::test]
async fn healthz_and_readyz_follow_the_readiness_answer() {
    let served = serve(Feed::new(16));
    assert_eq!(
        get(&format!("{}/healthz", served.base)).await,
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );

    let readyz = format!("{}/readyz", served.base);
    let (status, _, body) = get(&readyz).await;
    assert_eq!((status, body.as_str()), (503, "not subscribed\n"));
    *served.not_ready.lock().unwrap() = None;
    let (status, _, body) = get(&readyz).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    *served.not_ready.lock().unwrap() = Some("no frame for 50s".into());
    let (status, _, body) = get(&readyz).await;
    assert_eq!((status, body.as_str()), (503, "no frame for 50s\n"));
    // While not ready the process is still alive: /healthz does not follow /readyz.
    assert_eq!(get(&format!("{}/healthz", served.base)).await.0, 200);
    served.handle.stop(false).await;
}

#[actix_rt::test]
async fn metrics_speak_prometheus_text_and_openmetrics_on_request() {
    let served = serve(Feed::new(16));
    served
        .metrics
        .events_dropped
        .get_or_create(&DropLabels { stage: Stage::Timeline, reason: DropReason::MailboxFull })
        .inc_by(7);
    let url = format!("{}/metrics", served.base);

    let (status, content_type, text) = get(&url).await;
    assert_eq!((status, content_type.as_str()), (200, http::PROMETHEUS_TEXT));
    assert!(
        text.contains("timelined_events_dropped_total{stage=\"timeline\",reason=\"mailbox_full\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains("timelined_events_dropped_total{stage=\"feed\",reason=\"receiver_gone\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE timelined_events_dropped_total counter\n"), "{text}");
    assert!(!text.contains("# EOF"), "{text}");

    // What Prometheus sends: OpenMetrics first.
    let accept =
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                  text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (status, content_type, text) = get_with(&url, &[("Accept", accept)]).await;
    assert_eq!((status, content_type.as_str()), (200, http::OPENMETRICS));
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE timelined_events_dropped counter\n"), "{text}");
    served.handle.stop(false).await;
}

#[actix_rt::test]
async fn timelines_lists_open_then_recently_closed_and_finds_one_by_id() {
    let served = serve(Feed::new(16));
    let mut open = Timeline::new("open-1".into(), Instant::now());
    let details =
        EventDetails { purpose: Some("customer".into()), media: Some("voice".into()), ..Default::default() };
    open.apply(
        ParticipantEvent::new("open-1".into(), "p1", Action::Joined, at(5), details),
        Instant::now(),
        1000,
    );
    served.timelines.insert("open-1".into(), Box::new(open));
    FeedOutput(served.feed.clone()).closed(&closed_record("closed-1"), CloseReason::Ended).unwrap();

    let (status, content_type, body) = get(&format!("{}/timelines", served.base)).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let all: Vec<TimelineRecord> = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.conversation_id.as_str()).collect();
    assert_eq!(ids, ["open-1", "closed-1"]);
    assert_eq!(all[0].entries.len(), 1);
    assert_eq!(all[0].entries[0].participant_id, "p1");
    assert_eq!(all[0].started_at, Some(at(5)));
    assert_eq!(all[1], closed_record("closed-1"));

    let only_open: Vec<TimelineRecord> =
        serde_json::from_str(&get(&format!("{}/timelines?state=open", served.base)).await.2).unwrap();
    assert_eq!(only_open.len(), 1);
    let only_closed: Vec<TimelineRecord> =
        serde_json::from_str(&get(&format!("{}/timelines?state=closed", served.base)).await.2).unwrap();
    assert_eq!(only_closed, vec![closed_record("closed-1")]);
    let (status, _, body) = get(&format!("{}/timelines?state=sideways", served.base)).await;
    assert_eq!(status, 400);
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string(), "{body}");

    let (status, _, body) = get(&format!("{}/timelines/open-1", served.base)).await;
    let one: TimelineRecord = serde_json::from_str(&body).unwrap();
    assert_eq!((status, one.conversation_id.as_str()), (200, "open-1"));
    let (status, _, body) = get(&format!("{}/timelines/closed-1", served.base)).await;
    assert_eq!(
        (status, serde_json::from_str::<TimelineRecord>(&body).unwrap()),
        (200, closed_record("closed-1"))
    );

    let (status, content_type, body) = get(&format!("{}/timelines/nobody", served.base)).await;
    assert_eq!((status, content_type.as_str()), (404, "application/json"));
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(error["error"].as_str().unwrap().contains("nobody"), "{body}");
    served.handle.stop(false).await;
}

/// One Server-Sent Event as a client sees it (comments and `retry:` blocks skipped).
#[derive(Debug, PartialEq)]
struct Event {
    id: Option<u64>,
    kind: String,
    data: serde_json::Value,
}

/// An open `/feed` response and what was read of it so far.
struct FeedClient {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>>>>,
    buffer: String,
}

impl FeedClient {
    async fn connect(base: &str, last_event_id: Option<u64>) -> FeedClient {
        let mut request = awc::Client::new().get(format!("{base}/feed")).timeout(Duration::from_secs(5));
        if let Some(id) = last_event_id {
            request = request.insert_header(("Last-Event-ID", id.to_string()));
        }
        let response = request.send().await.expect("feed answers");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get("content-type").unwrap(), "text/event-stream");
        FeedClient { body: Box::pin(response), buffer: String::new() }
    }

    /// The next event, waiting at most 5 s for it.
    async fn next(&mut self) -> Event {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, None, None);
                for line in block.lines() {
                    match line.split_once(": ") {
                        Some(("id", value)) => id = Some(value.parse().unwrap()),
                        Some(("event", value)) => kind = Some(value.to_owned()),
                        Some(("data", value)) => data = Some(serde_json::from_str(value).unwrap()),
                        _ => {}
                    }
                }
                if let (Some(kind), Some(data)) = (kind, data) {
                    return Event { id, kind, data };
                }
            }
            let left = give_up.saturating_duration_since(Instant::now());
            let chunk = actix_rt::time::timeout(left, self.body.next())
                .await
                .expect("an event within 5s")
                .expect("the stream stays open")
                .expect("readable");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    async fn next_n(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..n {
            events.push(self.next().await);
        }
        events
    }
}

fn ids(events: &[Event]) -> Vec<Option<u64>> {
    events.iter().map(|e| e.id).collect()
}

#[actix_rt::test]
async fn a_reconnecting_client_gets_exactly_the_missed_updates_in_order() {
    let served = serve(Feed::new(100));
    let mut output = FeedOutput(served.feed.clone());
    for ms in 0..3 {
        output.update(&update("c1", &format!("p{ms}"), ms)).unwrap();
    }

    // Id 0: "I have seen nothing" — all three, nothing was evicted so no reset.
    let mut client = FeedClient::connect(&served.base, Some(0)).await;
    let first = client.next_n(3).await;
    assert_eq!(ids(&first), [Some(1), Some(2), Some(3)]);
    assert_eq!(first[0].kind, "update");
    assert_eq!(
        first[0].data,
        serde_json::json!({"conversationId":"c1","entry":{"at":"2026-01-01T09:00:00.000Z","action":"joined",
            "participantId":"p0","purpose":"agent"},"late":false})
    );
    let last_seen = first[2].id.unwrap();
    drop(client);

    // While it is away: three more joins and a closed timeline.
    for ms in 3..6 {
        output.update(&update("c1", &format!("p{ms}"), ms)).unwrap();
    }
    output.closed(&closed_record("c1"), CloseReason::Ended).unwrap();

    let mut client = FeedClient::connect(&served.base, Some(last_seen)).await;
    let missed = client.next_n(4).await;
    assert_eq!(ids(&missed), [Some(4), Some(5), Some(6), Some(7)]);
    let participants: Vec<&str> =
        missed[..3].iter().map(|e| e.data["entry"]["participantId"].as_str().unwrap()).collect();
    assert_eq!(participants, ["p3", "p4", "p5"]);
    assert_eq!(missed[3].kind, "closed");
    assert_eq!(
        serde_json::from_value::<TimelineRecord>(missed[3].data.clone()).unwrap(),
        closed_record("c1")
    );
    // Then live: the very next event is the next one published, nothing replayed twice.
    output.update(&update("c2", "q1", 10)).unwrap();
    let live = client.next().await;
    assert_eq!((live.id, live.kind.as_str()), (Some(8), "update"));

    // A new client without Last-Event-ID starts at the live edge.
    let mut fresh = FeedClient::connect(&served.base, None).await;
    output.update(&update("c2", "q2", 11)).unwrap();
    assert_eq!(fresh.next().await.id, Some(9));
    served.handle.stop(false).await;
}

#[actix_rt::test]
async fn a_client_too_far_behind_is_told_with_a_reset_event() {
    let served = serve(Feed::new(5));
    let mut output = FeedOutput(served.feed.clone());
    for ms in 0..12 {
        output.update(&update("c1", &format!("p{ms}"), ms)).unwrap();
    }
    let mut client = FeedClient::connect(&served.base, Some(2)).await;
    let reset = client.next().await;
    assert_eq!(
        reset,
        Event {
            id: None,
            kind: "reset".into(),
            data: serde_json::json!({"reason":"too far behind","oldest":8})
        }
    );
    let rest = client.next_n(5).await;
    assert_eq!(ids(&rest), [Some(8), Some(9), Some(10), Some(11), Some(12)]);

    let (status, _, body) =
        get_with(&format!("{}/feed", served.base), &[("Last-Event-ID", "yesterday")]).await;
    assert_eq!(status, 400, "{body}");
    served.handle.stop(false).await;
}

mod common;

/// `/readyz` of the real daemon: 200 while streaming, 503 (saying why) while the simulator
/// stalls the socket, 200 again once the stale socket is replaced.
#[actix_rt::test]
async fn readyz_follows_a_stalled_socket_and_its_recovery() {
    use common::*;
    let fixture = Fixture::start(
        timelined::sim::SimConfig { seed: 81, conversations: 0, rate: 200, ..Default::default() },
        timelined_actors::wire::Dialect::Notifications,
        |_| {},
    )
    .await;
    fixture.streaming().await;
    let url = format!("http://{}/readyz", fixture.daemon.http_addr);
    let status = |url: String| async move {
        let mut response = awc::Client::new().get(url).send().await.ok()?;
        let body = response.body().await.ok()?;
        Some((response.status().as_u16(), String::from_utf8_lossy(&body).into_owned()))
    };
    assert_eq!(status(url.clone()).await.map(|s| s.0), Some(200));
    fixture.sim.fault(timelined::sim::Fault::Stall { seconds: 30.0 }).unwrap();
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let why = loop {
        if let Some((503, body)) = status(url.clone()).await {
            break body;
        }
        assert!(std::time::Instant::now() < give_up, "/readyz never turned 503");
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(why.contains("no frame for") || why.contains("not connected"), "{why}");
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(url.clone()).await.map(|s| s.0) != Some(200) {
        assert!(std::time::Instant::now() < give_up, "/readyz never came back to 200");
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    fixture.stop().await;
}

fn open_timeline(id: &str, start_ms: i64) -> Box<Timeline> {
    let mut open = Timeline::new(id.into(), Instant::now());
    open.apply(
        ParticipantEvent::new(id.into(), "p1", Action::Joined, at(start_ms), EventDetails::default()),
        Instant::now(),
        1000,
    );
    Box::new(open)
}

#[actix_rt::test]
async fn timelines_are_listed_a_page_at_a_time() {
    let served = serve(Feed::new(16));
    for n in 0..5 {
        served.timelines.insert(format!("open-{n}").into(), open_timeline(&format!("open-{n}"), n));
    }
    for n in 0..3 {
        FeedOutput(served.feed.clone())
            .closed(&closed_record(&format!("closed-{n}")), CloseReason::Ended)
            .unwrap();
    }
    let page = |query: &'static str| {
        let base = served.base.clone();
        async move {
            let mut response =
                awc::Client::new().get(format!("{base}/timelines{query}")).send().await.expect("answers");
            let total = response.headers().get("X-Total-Count").map(|v| v.to_str().unwrap().to_owned());
            let body = response.body().await.unwrap();
            let records: Vec<TimelineRecord> = serde_json::from_slice(&body).unwrap_or_default();
            let ids: Vec<String> = records.into_iter().map(|r| r.conversation_id).collect();
            (response.status().as_u16(), total, ids)
        }
    };
    let (status, total, ids) = page("?limit=3&offset=4").await;
    assert_eq!((status, total.as_deref()), (200, Some("8")));
    assert_eq!(ids, ["open-4", "closed-2", "closed-1"], "a page across open and closed");
    assert_eq!(page("?limit=2").await.2, ["open-0", "open-1"]);
    assert_eq!(page("?offset=7").await.2, ["closed-0"]);
    assert!(page("?offset=8").await.2.is_empty());
    assert_eq!(page("?state=closed&limit=1&offset=1").await.2, ["closed-1"]);
    assert_eq!(page("").await.2.len(), 8, "one default page holds all of a few");
    assert_eq!(page("?limit=0").await.0, 400);
    assert_eq!(page("?limit=10001").await.0, 400);
    served.handle.stop(false).await;
}

#[actix_rt::test]
async fn feed_clients_past_the_cap_are_refused_until_one_leaves() {
    // A client gone is noticed at the next write to it: keepalives come often here.
    let limits =
        timelined::http::feed::FeedLimits { keepalive: Duration::from_millis(100), ..Default::default() };
    let served = serve_with(Feed::with_limits(limits), 2);
    let first = FeedClient::connect(&served.base, None).await;
    let _second = FeedClient::connect(&served.base, None).await;
    let (status, _, body) = get(&format!("{}/feed", served.base)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("max_feed_clients"), "{body}");
    let refused =
        timelined_actors::metrics::LimitLabels { limit: timelined_actors::metrics::Limit::FeedClients };
    assert_eq!(served.metrics.limits_enforced.get_or_create(&refused).get(), 1);
    drop(first);
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let response = awc::Client::new().get(format!("{}/feed", served.base)).send().await.unwrap();
        if response.status().as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < give_up, "the place of the client that left was never freed");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    served.handle.stop(false).await;
}
