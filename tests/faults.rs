//! One test per fault the simulator can inject, daemon against simulator on loopback,
//! asserting what an operator sees: the reconnect or token counters moved with the right
//! cause, readiness went false and came back where the fault takes the stream away, and
//! every conversation of the truth equals the daemon's timeline — or, only where the fault
//! really hid frames of it, is marked with its gap and healed to equal the truth.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::time::Duration;
use timelined::sim::Fault;
use timelined::sim::SimConfig;
use timelined_actors::metrics::{ReconnectCause, TokenOutcome};
use timelined_actors::wire::{Dialect, MalformedReason};

fn scenario(seed: u64) -> SimConfig {
    SimConfig { seed, conversations: 80, rate: 500, reorder: true, duplicates: true, ..SimConfig::default() }
}

/// Start, stream, inject `fault`, play to the end; the timelines must hold.
async fn survives(seed: u64, fault: Fault) -> Fixture {
    let fixture = Fixture::start(scenario(seed), Dialect::Notifications, |_| {}).await;
    fixture.streaming().await;
    fixture.sim.fault(fault).unwrap();
    fixture
}

async fn check(fixture: &Fixture, label: &str) -> usize {
    let (closed, truth, hidden) = fixture.finish().await;
    let healed = assert_truth_or_healed(label, &closed, &truth, &hidden);
    assert_eq!(fixture.daemon.readiness(), Ok(()), "{label}: streaming again at the end");
    healed
}

#[actix_rt::test]
async fn socket_dropped_without_close_frame_reconnects_and_heals() {
    let fixture = survives(41, Fault::DropSocket).await;
    check(&fixture, "drop_socket").await;
    assert!(fixture.reconnects(ReconnectCause::Dropped) >= 1);
    assert!(fixture.readiness.was_lost(), "readiness went false while disconnected");
    fixture.stop().await;
}

#[actix_rt::test]
async fn server_close_1011_reconnects_and_heals() {
    let fixture = survives(42, Fault::Close { code: 1011 }).await;
    check(&fixture, "close 1011").await;
    assert!(fixture.reconnects(ReconnectCause::Closed) >= 1);
    assert!(fixture.readiness.was_lost());
    fixture.stop().await;
}

#[actix_rt::test]
async fn server_close_1001_reconnects_and_heals() {
    let fixture = survives(43, Fault::Close { code: 1001 }).await;
    check(&fixture, "close 1001").await;
    assert!(fixture.reconnects(ReconnectCause::Closed) >= 1);
    fixture.stop().await;
}

#[actix_rt::test]
async fn stalled_socket_is_declared_stale_and_replaced() {
    let fixture = survives(44, Fault::Stall { seconds: 20.0 }).await;
    let healed = check(&fixture, "stall").await;
    assert!(fixture.reconnects(ReconnectCause::Stale) >= 1, "the silence was noticed");
    assert!(fixture.readiness.was_lost(), "readiness went false while stale");
    assert!(healed > 0 || fixture.sim.hidden().is_empty(), "what the stall hid was healed");
    fixture.stop().await;
}

#[actix_rt::test]
async fn expired_channel_is_replaced_by_a_new_one() {
    let fixture = survives(45, Fault::ExpireChannel).await;
    check(&fixture, "expire_channel").await;
    assert!(
        fixture.reconnects(ReconnectCause::ChannelGone) >= 1,
        "the 404 upgrade was read as a dead channel"
    );
    fixture.stop().await;
}

#[actix_rt::test]
async fn evicted_channel_is_replaced_by_a_new_one() {
    let fixture = survives(46, Fault::EvictChannel).await;
    check(&fixture, "evict_channel").await;
    assert!(fixture.reconnects(ReconnectCause::ChannelGone) >= 1);
    fixture.stop().await;
}

#[actix_rt::test]
async fn malformed_frames_are_counted_and_the_stream_goes_on() {
    let fixture = survives(47, Fault::Malformed { count: 10 }).await;
    check(&fixture, "malformed").await;
    let metrics = &fixture.daemon.metrics;
    for reason in [
        MalformedReason::InvalidJson,
        MalformedReason::WrongType,
        MalformedReason::UnknownTopic,
        MalformedReason::BadTime,
    ] {
        assert!(metrics.malformed(reason) >= 2, "{reason:?} counted: {}", metrics.malformed(reason));
    }
    assert!(metrics.malformed(MalformedReason::UnexpectedBinary) >= 2);
    assert_eq!(metrics.reconnects_total(), 0, "bad frames do not cost the socket");
    fixture.stop().await;
}

#[actix_rt::test]
async fn an_oversized_frame_within_the_limit_is_read() {
    let fixture = survives(48, Fault::Oversized { bytes: 2_000_000 }).await;
    check(&fixture, "oversized within limit").await;
    assert_eq!(fixture.daemon.metrics.malformed(MalformedReason::Oversized), 0);
    assert_eq!(fixture.daemon.metrics.reconnects_total(), 0);
    fixture.stop().await;
}

#[actix_rt::test]
async fn an_oversized_frame_past_the_limit_is_counted_and_the_socket_replaced() {
    let fixture =
        Fixture::start(scenario(49), Dialect::Notifications, |s| s.pipeline.max_frame_bytes = 1 << 20).await;
    fixture.streaming().await;
    fixture.sim.fault(Fault::Oversized { bytes: 2_000_000 }).unwrap();
    // The frames behind the oversized one are lost with the socket the daemon drops: the
    // simulator delivered them, the daemon did not read them. They are healed all the same.
    let (closed, truth, _) = fixture.finish().await;
    assert_equal_or_healed("oversized past limit", &closed, &truth);
    assert_eq!(fixture.daemon.metrics.malformed(MalformedReason::Oversized), 1);
    assert!(fixture.reconnects(ReconnectCause::Error) >= 1);
    fixture.stop().await;
}

fn http(path: &str, status: u16, retry_after: Option<u64>, count: u64) -> Fault {
    Fault::Http { path: path.into(), status, retry_after, count }
}

#[actix_rt::test]
async fn rate_limited_token_endpoint_is_waited_out() {
    let fault = http("/oauth/token", 429, Some(1), 2);
    let fixture = Fixture::start_after(scenario(50), Dialect::Notifications, &[fault], |_| {}).await;
    check(&fixture, "token 429").await;
    assert_eq!(fixture.token_refreshes(TokenOutcome::RateLimited), 2);
    assert!(fixture.token_refreshes(TokenOutcome::Ok) >= 1);
    fixture.stop().await;
}

#[actix_rt::test]
async fn rejected_credentials_are_a_configuration_error_until_they_are_accepted() {
    let fault = http("/oauth/token", 401, None, 2);
    let fixture = Fixture::start_after(scenario(51), Dialect::Notifications, &[fault], |s| {
        s.reconnect.max_backoff = Duration::from_millis(200);
    })
    .await;
    let probe = fixture.daemon.probe();
    wait_until("readiness to name the credentials", Duration::from_secs(10), || {
        probe.readiness().is_err_and(|why| why.contains("no access token") && why.contains("credentials"))
            || fixture.token_refreshes(TokenOutcome::Ok) > 0
    })
    .await;
    check(&fixture, "token 401").await;
    assert_eq!(fixture.token_refreshes(TokenOutcome::Rejected), 2);
    fixture.stop().await;
}

#[actix_rt::test]
async fn token_server_errors_are_retried() {
    let fault = http("/oauth/token", 503, None, 3);
    let fixture = Fixture::start_after(scenario(52), Dialect::Notifications, &[fault], |_| {}).await;
    check(&fixture, "token 503").await;
    assert_eq!(fixture.token_refreshes(TokenOutcome::ServerError), 3);
    fixture.stop().await;
}

#[actix_rt::test]
async fn channel_creation_failures_are_retried() {
    let faults = [
        http("/api/v2/notifications/channels", 503, None, 2),
        http("/api/v2/notifications/channels", 429, Some(1), 1),
    ];
    let fixture = Fixture::start_after(scenario(53), Dialect::Notifications, &faults, |_| {}).await;
    check(&fixture, "channel 503/429").await;
    let creations = fixture.sim.request_times("POST /api/v2/notifications/channels");
    assert!(creations.len() >= 4, "two 503s and a 429 answered, then a channel: {} tries", creations.len());
    // The fourth try came after the 429's Retry-After (1 s), not at the backoff's pace.
    assert!(creations[3] - creations[2] >= Duration::from_secs(1), "Retry-After honoured");
    assert!(creations[1] - creations[0] >= Duration::from_millis(25), "the 503s were retried with a backoff");
    fixture.stop().await;
}

#[actix_rt::test]
async fn unauthorized_subscription_refreshes_the_token_and_retries() {
    // The channel call consumes nothing of this fault: only the subscription PUT matches.
    let fault = http("/api/v2/notifications/channels/", 401, None, 1);
    let fixture = Fixture::start_after(scenario(54), Dialect::Notifications, &[fault], |_| {}).await;
    check(&fixture, "subscribe 401").await;
    assert!(fixture.token_refreshes(TokenOutcome::Ok) >= 2, "the 401 made the token be fetched again");
    fixture.stop().await;
}

#[actix_rt::test]
async fn forbidden_and_bad_subscriptions_are_retried_with_backoff() {
    let faults = [
        http("/api/v2/notifications/channels/", 403, None, 1),
        http("/api/v2/notifications/channels/", 400, None, 1),
    ];
    let fixture = Fixture::start_after(scenario(55), Dialect::Notifications, &faults, |_| {}).await;
    check(&fixture, "subscribe 403/400").await;
    let subscribes: Vec<String> = fixture
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT /api/v2/notifications/channels/") && r.ends_with("/subscriptions"))
        .collect();
    assert!(subscribes.len() >= 3, "a 403 and a 400 answered, then a subscription: {subscribes:?}");
    let distinct: BTreeSet<&String> = subscribes.iter().collect();
    let mut times: Vec<_> = distinct.into_iter().flat_map(|r| fixture.sim.request_times(r)).collect();
    times.sort();
    assert!(times[1] - times[0] >= Duration::from_millis(25), "the 403 was retried after a backoff");
    assert!(times[2] - times[1] >= Duration::from_millis(25), "the 400 was retried after a backoff");
    fixture.stop().await;
}

#[actix_rt::test]
async fn refused_upgrade_leads_to_a_new_channel() {
    let fixture = survives(56, Fault::Close { code: 1000 }).await;
    fixture.sim.fault(http("/channels/", 404, None, 1)).unwrap();
    check(&fixture, "upgrade 404").await;
    assert!(fixture.reconnects(ReconnectCause::ChannelGone) >= 1);
    fixture.stop().await;
}

#[actix_rt::test]
async fn backfill_rate_limits_are_honoured_and_the_gap_still_heals() {
    let fixture = survives(57, Fault::DropSocket).await;
    fixture.sim.fault(http("/api/v2/conversations/", 429, Some(1), 3)).unwrap();
    check(&fixture, "backfill 429").await;
    let limited = fixture
        .daemon
        .metrics
        .backfills
        .get_or_create(&timelined_actors::metrics::BackfillLabels {
            outcome: timelined_actors::metrics::BackfillOutcome::RateLimited,
        })
        .get();
    assert!(limited >= 1, "a backfill met the rate limit");
    fixture.stop().await;
}

#[actix_rt::test]
async fn a_revoked_token_is_replaced_when_an_api_refuses_it() {
    let fixture = survives(58, Fault::RevokeToken).await;
    // The next REST calls (a rotation) meet 401 with the revoked token.
    fixture.sim.fault(Fault::SocketClosing { close_after: Duration::from_secs(2) }).unwrap();
    check(&fixture, "revoked token").await;
    assert!(fixture.token_refreshes(TokenOutcome::Ok) >= 2);
    fixture.stop().await;
}

/// A planned rotation under a steady stream loses nothing and duplicates nothing: every
/// timeline equals the truth exactly, with no gap at all.
async fn planned_rotation(fixture: Fixture, label: &str) {
    let (closed, truth, _) = fixture.finish().await;
    assert_eq!(closed.len(), truth.len(), "{label}: each timeline written once");
    assert_same_timelines(label, &by_id(closed), &by_id(truth));
    assert!(fixture.reconnects(ReconnectCause::Rotation) >= 1, "{label}: the rotation happened");
    assert_eq!(fixture.daemon.metrics.gaps.get(), 0, "{label}: no gap at all");
    fixture.stop().await;
}

#[actix_rt::test]
async fn socket_closing_rotates_make_before_break_losing_nothing() {
    let fixture = survives(60, Fault::SocketClosing { close_after: Duration::from_secs(2) }).await;
    planned_rotation(fixture, "socket_closing").await;
}

#[actix_rt::test]
async fn channel_expiry_is_anticipated_losing_nothing() {
    let config = SimConfig { channel_lifetime: Duration::from_secs(2), ..scenario(61) };
    let fixture = Fixture::start(config, Dialect::Notifications, |_| {}).await;
    planned_rotation(fixture, "channel expiry").await;
}

#[actix_rt::test]
async fn token_expiry_is_anticipated_losing_nothing() {
    let config = SimConfig {
        token_lifetime: Duration::from_secs(3),
        channel_dies_with_token: true,
        rate: 150,
        ..scenario(62)
    };
    let fixture = Fixture::start(config, Dialect::Notifications, |s| {
        s.genesys.token_refresh_margin = Duration::from_secs(1);
    })
    .await;
    let (closed, truth, _) = fixture.finish().await;
    assert_same_timelines("token expiry", &by_id(closed), &by_id(truth));
    assert!(fixture.token_refreshes(TokenOutcome::Ok) >= 2, "the token was refreshed ahead of expiry");
    assert!(fixture.reconnects(ReconnectCause::Rotation) >= 1);
    assert_eq!(fixture.daemon.metrics.gaps.get(), 0);
    fixture.stop().await;
}

#[actix_rt::test]
async fn analytics_stream_survives_a_dropped_socket() {
    let fixture = Fixture::start(scenario(63), Dialect::AnalyticsStream, |_| {}).await;
    fixture.streaming().await;
    fixture.sim.fault(Fault::DropSocket).unwrap();
    let (closed, truth, hidden) = fixture.finish().await;
    // The analytics stream carries no purpose, user or queue; backfilled ones do.
    let closed: Vec<_> = closed.into_iter().map(analytics_projection).collect();
    let truth: Vec<_> = truth.into_iter().map(analytics_projection).collect();
    assert_truth_or_healed("analytics drop", &closed, &truth, &hidden);
    assert!(fixture.reconnects(ReconnectCause::Dropped) >= 1);
    fixture.stop().await;
}

/// A channel whose `connectUri` accepts the connection and never answers the upgrade: the
/// daemon gives the channel up after a few tries and streams from a new one, instead of
/// retrying it until it expires a day later.
#[actix_rt::test]
async fn a_connect_uri_that_never_answers_is_given_up_for_a_new_channel() {
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("ws://{}/channels/never", black_hole.local_addr().unwrap());
    let fixture = Fixture::start(scenario(61), Dialect::Notifications, |settings| {
        settings.reconnect.connect_timeout = Duration::from_millis(300);
    })
    .await;
    fixture.streaming().await;
    let gone_before = fixture.reconnects(ReconnectCause::ChannelGone);
    fixture.sim.fault(Fault::ConnectUri { uri, count: 1 }).unwrap();
    fixture.sim.fault(Fault::ExpireChannel).unwrap();
    check(&fixture, "connect_uri never answers").await;
    assert!(
        fixture.reconnects(ReconnectCause::ConnectFailed)
            >= u64::from(timelined_actors::connection::actor::CONNECT_FAILURES_PER_CHANNEL) - 1,
        "the black hole was tried before it was given up"
    );
    assert!(
        fixture.reconnects(ReconnectCause::ChannelGone) >= gone_before + 2,
        "the expired channel and the one that never answered were both given up"
    );
    drop(black_hole);
    fixture.stop().await;
}

/// A `connectUri` in cleartext to a host that is not loopback is refused before any byte
/// goes to it (the stream would carry conversations unencrypted); a new channel follows.
#[actix_rt::test]
async fn a_cleartext_connect_uri_to_another_host_is_refused_for_a_new_channel() {
    let log = CapturedLog::default();
    let fixture =
        Fixture::start_logged(scenario(62), Dialect::Notifications, &[], |_| {}, log.logger()).await;
    fixture.streaming().await;
    let uri = "ws://192.0.2.1/channels/cleartext".to_owned();
    fixture.sim.fault(Fault::ConnectUri { uri, count: 1 }).unwrap();
    fixture.sim.fault(Fault::ExpireChannel).unwrap();
    check(&fixture, "cleartext connect_uri").await;
    let lines = log.lines();
    let refused = lines.iter().filter(|line| {
        line.message.starts_with("subscription setup failed")
            && line.value("error").is_some_and(|error| error.contains("cleartext"))
    });
    assert_eq!(refused.count(), 1, "the cleartext connectUri was refused once");
    assert!(
        !lines.iter().any(|line| line.message.starts_with("streaming connect failed")),
        "no connection was tried to the cleartext host"
    );
    fixture.stop().await;
}

/// Fault after fault a few seconds apart: every finished conversation is in the sink within
/// `close_after` and a few seconds of its last event (or of the backfill that healed it),
/// judged while the daemon runs — not at shutdown, which closes everything anyway. The
/// verification backfill is put out of reach, so it cannot be what closes a timeline.
#[actix_rt::test]
async fn finished_conversations_are_written_promptly_through_a_run_of_faults() {
    let config = SimConfig { conversations: 300, rate: 150, send_log: true, ..scenario(64) };
    let fixture = Fixture::start(config, Dialect::Notifications, |settings| {
        settings.pipeline.verify_after = Duration::from_secs(3600);
    })
    .await;
    let watch = SinkWatch::spawn(fixture.sink.clone());
    fixture.streaming().await;
    let faults = [
        Fault::DropSocket,
        Fault::Http { path: "/oauth/token".into(), status: 429, retry_after: Some(1), count: 2 },
        Fault::Close { code: 1011 },
        Fault::Stall { seconds: 8.0 },
        Fault::SocketClosing { close_after: Duration::from_secs(1) },
        Fault::ExpireChannel,
        Fault::Malformed { count: 5 },
    ];
    for fault in faults {
        fixture.sim.fault(fault).unwrap();
        actix_rt::time::sleep(Duration::from_secs(2)).await;
    }
    let (closed, truth, hidden) = fixture.finish().await;
    assert_truth_or_healed("a run of faults", &closed, &truth, &hidden);
    let close_after = Duration::from_millis(300);
    let delays = write_delays(&truth, &last_sent(&fixture.sim), &watch.seen());
    assert_eq!(delays.len(), truth.len(), "every conversation's last event was logged as sent");
    let slack = Duration::from_secs(5);
    let late: Vec<_> = delays.iter().filter(|(delay, _)| *delay > close_after + slack).collect();
    eprintln!("longest delays from last event to sink: {:?}", &delays[..5.min(delays.len())]);
    assert!(late.is_empty(), "{} conversations written late: {late:?}", late.len());
    fixture.stop().await;
}

/// A stall shorter than the stale timeout: the socket is kept, but what the service sent
/// meanwhile is lost without a trace. A ping left unanswered for a whole interval gives it
/// away; when the socket answers again the open timelines are backfilled, and each
/// finished conversation is written promptly rather than at its verification, an hour on.
#[actix_rt::test]
async fn a_stall_the_socket_survives_is_healed_when_it_answers_again() {
    let config = SimConfig { send_log: true, rate: 150, ..scenario(65) };
    let fixture = Fixture::start(config, Dialect::Notifications, |settings| {
        settings.heartbeat.stale_timeout = Duration::from_secs(60);
        settings.pipeline.verify_after = Duration::from_secs(3600);
    })
    .await;
    let watch = SinkWatch::spawn(fixture.sink.clone());
    fixture.streaming().await;
    fixture.sim.fault(Fault::Stall { seconds: 2.0 }).unwrap();
    let healed = check(&fixture, "stall survived").await;
    assert!(!fixture.sim.hidden().is_empty(), "the stall hid transitions");
    assert!(healed > 0, "what the stall hid was healed");
    assert!(fixture.daemon.metrics.stream_stalls.get() >= 1, "the stall was noticed");
    assert_eq!(fixture.reconnects(ReconnectCause::Stale), 0, "the socket was kept");
    let delays = write_delays(&fixture.sim.truth(), &last_sent(&fixture.sim), &watch.seen());
    let slack = Duration::from_millis(300) + Duration::from_secs(5);
    assert!(delays[0].0 <= slack + Duration::from_secs(2), "written late: {:?}", &delays[..3]);
    fixture.stop().await;
}
