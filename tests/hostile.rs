//! A hostile or broken peer, live against the real binary: what it sends is rejected and
//! counted, the daemon keeps running, and nothing it sent poisons the saved state.

mod common;

use common::process::*;
use common::*;
use std::time::Duration;
use timelined::sim::{Fault, SimConfig};
use timelined_actors::metrics::TokenOutcome;
use timelined_actors::wire::Dialect;

fn inject(sim: &timelined::sim::SimHandle, text: &str) {
    sim.fault(Fault::Inject { text: Some(text.into()), binary: None }).unwrap();
}

/// A snapshot of `conversation` whose one participant joined at `time`.
fn joined_at(conversation: &str, time: &str) -> String {
    format!(
        r#"{{"topicName":"v2.routing.queues.q.conversations","eventBody":{{"id":"{conversation}","participants":[
            {{"id":"p","purpose":"customer","connectedTime":"{time}"}}]}}}}"#
    )
}

/// Times a conversation cannot have — the last second of year 9999, chrono's own last
/// seconds, year 1, the Unix epoch — then an outage (whose search starts from the latest
/// event time seen) and a checkpoint: each time is rejected and counted, the outage heals,
/// the state saved at SIGTERM loads on the next start, and every conversation is written.
#[actix_rt::test]
async fn times_outside_the_window_are_rejected_and_the_saved_state_loads_on_restart() {
    install_crypto();
    let dir = Scratch::new();
    let sim = simulator(SimConfig { seed: 101, conversations: 60, rate: 150, ..SimConfig::default() }).await;
    let spec = ConfigSpec::new(dir.path());
    let config = spec.write(dir.path(), &sim);
    let log = dir.path().join("stderr.log");
    let mut first = DaemonProcess::start(&config, &log, spec.http);
    wait_until("events streaming", Duration::from_secs(30), || {
        first.metric("timelined_events_received_total").is_some_and(|n| n > 20.0)
    })
    .await;
    let hostile = [
        ("hostile-9999", "9999-12-31T23:59:59.000Z"),
        ("hostile-chrono-max", "+262142-12-31T23:59:58Z"),
        ("hostile-year-1", "0001-01-01T00:00:00.000Z"),
        ("hostile-epoch", "1970-01-01T00:00:00.000Z"),
    ];
    for (conversation, time) in hostile {
        inject(&sim, &joined_at(conversation, time));
    }
    let rejected = r#"timelined_malformed_frames_total{reason="time_out_of_window"}"#;
    let bad_time = r#"timelined_malformed_frames_total{reason="bad_time"}"#;
    wait_until("every hostile time rejected", Duration::from_secs(20), || {
        let count = |series| first.metric(series).unwrap_or(0.0);
        count(rejected) + count(bad_time) >= hostile.len() as f64
    })
    .await;
    assert!(first.metric(rejected).unwrap_or(0.0) >= 3.0, "the parsable ones fall outside the window");
    sim.fault(Fault::DropSocket).unwrap();
    wait_until("reconnected after the outage", Duration::from_secs(20), || {
        first.metric(r#"timelined_reconnects_total{cause="dropped"}"#).is_some_and(|n| n >= 1.0)
            && first.get("/readyz").is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert!(first.running(), "the daemon lives");
    assert!(first.terminate().await.success(), "SIGTERM exits 0");

    let mut second = DaemonProcess::start(&config, &log, spec.http);
    let sink = spec.sink.clone();
    wait_until("the second daemon to write every conversation", Duration::from_secs(60), || {
        sim.finished() && sink_holds_all(&sink, &sim.truth())
    })
    .await;
    assert!(second.running());
    assert!(second.terminate().await.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("resumed open timelines"), "the saved state was taken up: {text}");
    assert!(!text.contains("moved aside"), "the saved state loaded cleanly: {text}");
    let written = read_jsonl(&sink);
    assert!(written.iter().all(|r| !r.conversation_id.starts_with("hostile")), "no hostile timeline written");
    assert_equal_or_healed("hostile times", &written, &sim.truth());
    sim.stop().await;
}

/// One snapshot of 50,000 participants (about 5 MB): the first `max_participants` are
/// kept, the rest refused and counted, and the stream goes on without a stall long
/// enough to lose the socket or a timeline.
#[actix_rt::test]
async fn a_snapshot_of_fifty_thousand_participants_is_bounded() {
    install_crypto();
    let dir = Scratch::new();
    let sim = simulator(SimConfig { seed: 102, conversations: 60, rate: 150, ..SimConfig::default() }).await;
    let spec = ConfigSpec::new(dir.path());
    let config = spec.write(dir.path(), &sim);
    let log = dir.path().join("stderr.log");
    let mut daemon = DaemonProcess::start(&config, &log, spec.http);
    wait_until("events streaming", Duration::from_secs(30), || {
        daemon.metric("timelined_events_received_total").is_some_and(|n| n > 20.0)
    })
    .await;
    let participants: Vec<String> = (0..50_000)
        .map(|n| {
            format!(r#"{{"id":"crowd-{n}","purpose":"customer","connectedTime":"2026-01-01T09:00:00.000Z"}}"#)
        })
        .collect();
    let snapshot = format!(
        r#"{{"topicName":"v2.routing.queues.q.conversations","eventBody":{{"id":"crowd","participants":[{}]}}}}"#,
        participants.join(",")
    );
    inject(&sim, &snapshot);
    let refused = r#"timelined_limits_enforced_total{limit="participants"}"#;
    wait_until("the crowd refused past the limit", Duration::from_secs(30), || {
        daemon.metric(refused).is_some_and(|n| n >= 49_000.0)
    })
    .await;
    let sink = spec.sink.clone();
    wait_until("every conversation written", Duration::from_secs(60), || {
        sim.finished() && sink_holds_all(&sink, &sim.truth())
    })
    .await;
    assert_eq!(daemon.metric(r#"timelined_reconnects_total{cause="stale"}"#), Some(0.0));
    assert!(daemon.running());
    assert!(daemon.terminate().await.success());
    // Still open (nobody left), so saved for the next start rather than written.
    let saved = std::fs::read_to_string(dir.path().join("state").join("open-timelines.json")).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    let crowd = saved["open"].as_array().unwrap().iter().find(|r| r["conversationId"] == "crowd");
    let crowd = crowd.expect("the crowd saved as open");
    assert_eq!(crowd["participants"].as_array().unwrap().len(), 1000, "only the kept participants saved");
    assert_eq!(crowd["complete"], false);
    assert_equal_or_healed("crowd", &read_jsonl(&sink), &sim.truth());
    sim.stop().await;
}

/// A flood of conversation ids past `pipeline.max_open_conversations`: the least recently
/// active are closed incomplete and counted, and the open count stays near the limit.
#[actix_rt::test]
async fn a_flood_of_conversations_is_held_to_the_open_limit() {
    install_crypto();
    let dir = Scratch::new();
    let sim = simulator(SimConfig { seed: 103, conversations: 20, rate: 100, ..SimConfig::default() }).await;
    let mut spec = ConfigSpec::new(dir.path());
    spec.sections = "[pipeline]\nclose_after = \"300ms\"\nmax_open_conversations = 50\n".into();
    let config = spec.write(dir.path(), &sim);
    let log = dir.path().join("stderr.log");
    let mut daemon = DaemonProcess::start(&config, &log, spec.http);
    wait_until("events streaming", Duration::from_secs(30), || {
        daemon.metric("timelined_events_received_total").is_some_and(|n| n > 5.0)
    })
    .await;
    for n in 0..300 {
        inject(&sim, &joined_at(&format!("flood-{n}"), "2026-01-01T09:00:00.000Z"));
    }
    let evicted = r#"timelined_limits_enforced_total{limit="open_conversations"}"#;
    wait_until("the flood evicted down to the limit", Duration::from_secs(30), || {
        daemon.metric(evicted).is_some_and(|n| n >= 250.0)
            && daemon.metric("timelined_open_conversations").is_some_and(|n| n <= 50.0)
    })
    .await;
    assert!(daemon.running());
    assert_eq!(daemon.get("/readyz").map(|(status, _)| status), Some(200));
    assert!(daemon.terminate().await.success());
    let evicted_lines =
        std::fs::read_to_string(&spec.sink).unwrap().lines().filter(|l| l.contains("flood-")).count();
    assert!(evicted_lines >= 250, "evicted timelines are written, incomplete: {evicted_lines}");
    sim.stop().await;
}

/// Thousands of distinct user and queue ids, and a purpose of 300 bytes: past
/// `pipeline.max_interned_strings` and `max_interned_bytes` the values are left out and
/// counted, so the table the process keeps for its life stays bounded.
#[actix_rt::test]
async fn a_stream_of_distinct_ids_is_held_to_the_interned_limit() {
    install_crypto();
    let dir = Scratch::new();
    let sim = simulator(SimConfig { seed: 104, conversations: 20, rate: 100, ..SimConfig::default() }).await;
    let mut spec = ConfigSpec::new(dir.path());
    spec.sections = "[pipeline]\nclose_after = \"300ms\"\nmax_interned_strings = 1000\n".into();
    let config = spec.write(dir.path(), &sim);
    let log = dir.path().join("stderr.log");
    let mut daemon = DaemonProcess::start(&config, &log, spec.http);
    wait_until("events streaming", Duration::from_secs(30), || {
        daemon.metric("timelined_events_received_total").is_some_and(|n| n > 5.0)
    })
    .await;
    for frame in 0..3 {
        let participants: Vec<String> = (0..900)
            .map(|n| {
                format!(
                    r#"{{"id":"p{n}","purpose":"agent","userId":"user-{frame}-{n}","queueId":"queue-{frame}-{n}",
                        "connectedTime":"2026-01-01T09:00:00.000Z","endTime":"2026-01-01T09:01:00.000Z"}}"#
                )
            })
            .collect();
        let snapshot = format!(
            r#"{{"topicName":"v2.routing.queues.q.conversations","eventBody":{{"id":"ids-{frame}","participants":[{}]}}}}"#,
            participants.join(",")
        );
        inject(&sim, &snapshot);
    }
    let long_purpose = "x".repeat(300);
    inject(
        &sim,
        &format!(
            r#"{{"topicName":"v2.routing.queues.q.conversations","eventBody":{{"id":"long","participants":[
                {{"id":"p","purpose":"{long_purpose}","connectedTime":"2026-01-01T09:00:00.000Z"}}]}}}}"#
        ),
    );
    let refused = "timelined_interned_strings_refused_total";
    wait_until("distinct ids past the limit refused", Duration::from_secs(30), || {
        daemon.metric(refused).is_some_and(|n| n >= 5400.0 - 1000.0)
    })
    .await;
    let sink = spec.sink.clone();
    wait_until("the id floods written", Duration::from_secs(30), || {
        let written = read_jsonl(&sink);
        (0..3).all(|frame| written.iter().any(|r| r.conversation_id == format!("ids-{frame}")))
    })
    .await;
    assert!(daemon.running());
    assert!(daemon.terminate().await.success());
    let written = read_jsonl(&sink);
    let last = written.iter().find(|r| r.conversation_id == "ids-2").unwrap();
    assert!(last.participants.iter().all(|p| p.user_id.is_none()), "ids past the limit are left out");
    sim.stop().await;
}

/// Token and backfill calls answered 429 with `Retry-After` of 10^10 s (317 years) and of
/// 2^64−1 s: each waits at most `genesys.max_retry_after`, and the stream and its healing
/// go on.
#[actix_rt::test]
async fn a_retry_after_of_centuries_waits_only_the_configured_cap() {
    let token_429 =
        Fault::Http { path: "/oauth/token".into(), status: 429, retry_after: Some(10_000_000_000), count: 1 };
    let config = SimConfig { seed: 105, conversations: 60, rate: 150, ..SimConfig::default() };
    let fixture = Fixture::start_after(config, Dialect::Notifications, &[token_429], |settings| {
        settings.genesys.max_retry_after = Duration::from_secs(1);
    })
    .await;
    fixture.streaming().await;
    let backfill_429 = Fault::Http {
        path: "/api/v2/conversations/".into(),
        status: 429,
        retry_after: Some(u64::MAX),
        count: 3,
    };
    fixture.sim.fault(backfill_429).unwrap();
    fixture.sim.fault(Fault::DropSocket).unwrap();
    let (closed, truth, hidden) = fixture.finish().await;
    assert_truth_or_healed("centuries of Retry-After", &closed, &truth, &hidden);
    assert!(fixture.token_refreshes(TokenOutcome::RateLimited) >= 1, "the token call was refused first");
    let rate_limited = timelined_actors::metrics::BackfillLabels {
        outcome: timelined_actors::metrics::BackfillOutcome::RateLimited,
    };
    assert!(
        fixture.daemon.metrics.backfills.get_or_create(&rate_limited).get() >= 1,
        "a backfill was refused first"
    );
    fixture.stop().await;
}

/// An `expires_in` of 2^64−1 seconds: believed only up to a day, no overflow, streaming.
#[actix_rt::test]
async fn an_expires_in_of_two_to_the_sixty_four_is_held_to_a_day() {
    let config = SimConfig {
        seed: 106,
        conversations: 40,
        rate: 150,
        token_lifetime: Duration::from_secs(u64::MAX),
        ..SimConfig::default()
    };
    let fixture = Fixture::start(config, Dialect::Notifications, |_| {}).await;
    let (closed, truth, _) = fixture.finish().await;
    assert_same_timelines("huge expires_in", &by_id(closed), &by_id(truth));
    assert_eq!(fixture.token_refreshes(TokenOutcome::Ok), 1);
    fixture.stop().await;
}

/// Resident memory of process `pid` in KiB (`VmRSS`), if it can be read.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.trim().parse().ok())
}

/// The simulator's hostile peer beside a normal stream, for `TIMELINED_HOSTILE_SECONDS`
/// (20 by default; RELIABILITY.md has a five-minute run): the daemon never exits, stays
/// ready, and writes every played conversation equal to the truth (or healed) before it
/// is stopped; the peak resident memory is printed.
#[actix_rt::test]
async fn a_hostile_peer_beside_a_normal_stream() {
    let seconds: u64 =
        std::env::var("TIMELINED_HOSTILE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    install_crypto();
    let dir = Scratch::new();
    let conversations = seconds * 8;
    let sim = simulator(SimConfig { seed: 107, conversations, rate: 100, ..SimConfig::default() }).await;
    let spec = ConfigSpec::new(dir.path());
    let config = spec.write(dir.path(), &sim);
    let log = dir.path().join("stderr.log");
    let mut daemon = DaemonProcess::start(&config, &log, spec.http);
    wait_until("events streaming", Duration::from_secs(30), || {
        daemon.metric("timelined_events_received_total").is_some_and(|n| n > 5.0)
    })
    .await;
    sim.fault(Fault::Hostile { seconds: seconds as f64, rate: 20 }).unwrap();
    let started = std::time::Instant::now();
    let (mut peak_kib, mut not_ready, mut polls) = (0, 0, 0);
    while started.elapsed() < Duration::from_secs(seconds) {
        assert!(daemon.running(), "the daemon exited under the hostile peer");
        peak_kib = peak_kib.max(rss_kib(daemon.pid()).unwrap_or(0));
        polls += 1;
        if daemon.get("/readyz").is_none_or(|(status, _)| status != 200) {
            not_ready += 1;
        }
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
    let sink = spec.sink.clone();
    wait_until("every played conversation written", Duration::from_secs(120), || {
        sim.finished() && sink_holds_all(&sink, &sim.truth())
    })
    .await;
    peak_kib = peak_kib.max(rss_kib(daemon.pid()).unwrap_or(0));
    let count = |series: &str| daemon.metric(series).unwrap_or(0.0);
    eprintln!(
        "hostile peer for {seconds} s beside {conversations} conversations: peak RSS {:.1} MiB; /readyz not 200 in \
         {not_ready} of {polls} polls; rejected: {} out-of-window times, {} bad times, {} invalid JSON, {} binary; \
         refused: {} participants, {} interned strings",
        peak_kib as f64 / 1024.0,
        count(r#"timelined_malformed_frames_total{reason="time_out_of_window"}"#),
        count(r#"timelined_malformed_frames_total{reason="bad_time"}"#),
        count(r#"timelined_malformed_frames_total{reason="invalid_json"}"#),
        count(r#"timelined_malformed_frames_total{reason="unexpected_binary"}"#),
        count(r#"timelined_limits_enforced_total{limit="participants"}"#),
        count("timelined_interned_strings_refused_total"),
    );
    assert_eq!(not_ready, 0, "/readyz stayed 200");
    assert!(
        count(r#"timelined_malformed_frames_total{reason="time_out_of_window"}"#) > 0.0,
        "the peer was heard"
    );
    assert!(daemon.terminate().await.success());
    let played: Vec<_> =
        read_jsonl(&sink).into_iter().filter(|r| !r.conversation_id.starts_with("hostile-")).collect();
    assert_equal_or_healed("beside a hostile peer", &played, &sim.truth());
    sim.stop().await;
}

/// Conversation ids crafted to walk the API host with our token, and one that forges a log
/// line: after an outage each would be backfilled. None reaches a request path (the
/// simulator records every request as sent), and the log shows the forged line escaped.
#[actix_rt::test]
async fn crafted_ids_walk_no_path_and_forge_no_log_line() {
    install_crypto();
    let dir = Scratch::new();
    let sim = simulator(SimConfig { seed: 108, conversations: 40, rate: 150, ..SimConfig::default() }).await;
    let spec = ConfigSpec::new(dir.path());
    let config = spec.write(dir.path(), &sim);
    let log = dir.path().join("stderr.log");
    let mut daemon = DaemonProcess::start(&config, &log, spec.http);
    wait_until("events streaming", Duration::from_secs(30), || {
        daemon.metric("timelined_events_received_total").is_some_and(|n| n > 5.0)
    })
    .await;
    let crafted = [
        "../../../api/v2/users/me",
        "x/../../api/v2/users/me",
        "c1?expand=users",
        "c1#fragment",
        "c1%2F..%2Fusers",
        "http://169.254.169.254/latest/meta-data",
        "//evil.example/x",
        "forged\nDec 04 00:00:00.000 INFO fake line, conversation: evil",
    ];
    for id in crafted {
        let id = serde_json::to_string(id).unwrap();
        let id = id.trim_matches('"');
        inject(&sim, &joined_at(id, "2026-01-01T09:00:00.000Z"));
    }
    wait_until("the crafted conversations open", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("169.254.169.254"))
    })
    .await;
    sim.fault(Fault::DropSocket).unwrap();
    let refused = r#"timelined_backfills_total{outcome="error"}"#;
    wait_until("each crafted id refused a backfill", Duration::from_secs(30), || {
        daemon.metric(refused).is_some_and(|n| n >= crafted.len() as f64)
    })
    .await;
    assert!(daemon.running());
    assert!(daemon.terminate().await.success());
    let requests = sim.requests();
    assert!(requests.iter().any(|r| r.starts_with("GET /api/v2/conversations/")), "backfills did run");
    for request in &requests {
        let target = request.split_once(' ').map_or("", |(_, target)| target);
        let bad = ["users/me", "169.254", "%2F", "expand=", "evil", "..", "//", "#"];
        assert!(!bad.iter().any(|b| target.contains(b)), "a crafted id reached a request: {request}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.lines().any(|line| line.starts_with("Dec 04 00:00:00.000 INFO fake line")),
        "a forged line"
    );
    assert!(text.contains(r"forged\nDec 04"), "the crafted id is logged escaped");
    sim.stop().await;
}
