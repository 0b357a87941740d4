//! Bad input never costs the socket or a timeline: malformed JSON, wrong types, unknown
//! topics, a binary frame on the notifications socket and a time that is not RFC 3339 are
//! each counted in `timelined_malformed_frames_total{reason}` and logged once per reason;
//! unknown enum values decode; binary frames carry events on the analytics stream.

mod common;

use common::*;
use std::time::Duration;
use timelined::sim::{Fault, SimConfig};
use timelined_actors::wire::{Dialect, MalformedReason};

fn inject(fixture: &Fixture, text: &str) {
    fixture.sim.fault(Fault::Inject { text: Some(text.into()), binary: None }).unwrap();
}

fn inject_binary(fixture: &Fixture, bytes: &[u8]) {
    use base64::Engine;
    let binary = base64::engine::general_purpose::STANDARD.encode(bytes);
    fixture.sim.fault(Fault::Inject { text: None, binary: Some(binary) }).unwrap();
}

#[actix_rt::test]
async fn each_kind_of_bad_frame_is_counted_logged_once_and_the_stream_goes_on() {
    let log = CapturedLog::default();
    let config = SimConfig { seed: 91, conversations: 60, rate: 300, ..SimConfig::default() };
    let fixture = Fixture::start_logged(config, Dialect::Notifications, &[], |_| {}, log.logger()).await;
    fixture.streaming().await;
    for _ in 0..3 {
        inject(&fixture, r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"#);
        inject(
            &fixture,
            r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"c","participants":7}}"#,
        );
        inject(&fixture, r#"{"topicName":"v2.weather.today","eventBody":{"sunny":true}}"#);
        inject_binary(&fixture, br#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#);
    }
    let bad_time = r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"bad-time","participants":[
        {"id":"p","purpose":"customer","connectedTime":"half past nine"}]}}"#;
    inject(&fixture, bad_time);
    inject(&fixture, bad_time);
    // Unknown enum values are not bad input: a new purpose and state decode as they are.
    inject(
        &fixture,
        r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"novel","participants":[
            {"id":"bot","purpose":"virtual-agent","connectedTime":"2026-01-01T08:00:00.000Z",
             "endTime":"2026-01-01T08:00:05.000Z","calls":[{"state":"transcending","disconnectType":"quantum.tunnel"}]}]}}"#,
    );

    let metrics = fixture.daemon.metrics.clone();
    wait_until("every bad frame counted", Duration::from_secs(20), || {
        metrics.malformed(MalformedReason::UnexpectedBinary) >= 3
            && metrics.malformed(MalformedReason::BadTime) >= 2
    })
    .await;
    let (closed, truth, _) = fixture.finish().await;
    for (reason, count) in [
        (MalformedReason::InvalidJson, 3),
        (MalformedReason::WrongType, 3),
        (MalformedReason::UnknownTopic, 3),
        (MalformedReason::UnexpectedBinary, 3),
        (MalformedReason::BadTime, 2),
    ] {
        assert_eq!(metrics.malformed(reason), count, "{reason:?} counted exactly");
        assert_eq!(log.count("bad input rejected", Some(reason.as_str())), 1, "{reason:?} logged once");
    }
    assert_eq!(metrics.reconnects_total(), 0, "bad input does not cost the socket");
    let novel = closed.iter().find(|t| t.conversation_id == "novel").expect("the novel conversation closed");
    assert_eq!(novel.participants[0].purpose.as_deref(), Some("virtual-agent"));
    assert_eq!(novel.participants[0].disconnect_type.as_deref(), Some("quantum.tunnel"));
    let played: Vec<_> = closed.into_iter().filter(|t| t.conversation_id != "novel").collect();
    assert_same_timelines("bad input", &by_id(played), &by_id(truth));
    fixture.stop().await;
}

#[actix_rt::test]
async fn binary_frames_carry_events_on_the_analytics_stream_and_garbage_is_counted() {
    let config = SimConfig { seed: 92, conversations: 40, rate: 300, ..SimConfig::default() };
    let fixture = Fixture::start(config, Dialect::AnalyticsStream, |_| {}).await;
    fixture.streaming().await;
    inject_binary(
        &fixture,
        br#"{"events":[
            {"timestamp":"2026-01-01T08:00:00.000Z","type":"ParticipantJoined","participant":"p1","interaction":"bin","channel":"voice"},
            {"timestamp":"2026-01-01T08:00:09.000Z","type":"ParticipantMuted","participant":"p1","interaction":"bin","channel":"voice"},
            {"timestamp":"2026-01-01T08:01:00.000Z","type":"ParticipantLeft","participant":"p1","interaction":"bin","channel":"voice","reason":"peer"}]}"#,
    );
    inject_binary(&fixture, &[0xff, 0x00, 0x13, 0x37]);
    let (closed, truth, _) = fixture.finish().await;
    let metrics = &fixture.daemon.metrics;
    assert_eq!(metrics.malformed(MalformedReason::InvalidJson), 1, "the garbage frame");
    assert_eq!(metrics.malformed(MalformedReason::UnknownEventType), 1, "the muted event, ignored");
    let binary = closed.iter().find(|t| t.conversation_id == "bin").expect("events from a binary frame");
    assert!(binary.complete && binary.entries.len() == 2);
    let played: Vec<_> = closed.into_iter().filter(|t| t.conversation_id != "bin").collect();
    let truth: Vec<_> = truth.into_iter().map(analytics_projection).collect();
    assert_same_timelines("analytics binary", &by_id(played), &by_id(truth));
    assert_eq!(metrics.reconnects_total(), 0);
    fixture.stop().await;
}
