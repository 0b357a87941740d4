//! The chaos run (issue "Never lose a timeline"): the daemon against the simulator under
//! steady load, a random fault every few seconds for at least five minutes, then every
//! conversation of the truth compared with what the daemon wrote. Not part of the default
//! test run:
//!
//! ```text
//! cargo test --release --test chaos -- --ignored --nocapture            # 300 s
//! CHAOS_SECONDS=60 CHAOS_SEED=7 cargo test --release --test chaos -- --ignored --nocapture
//! ```
//!
//! It prints the faults injected, reconnects by cause, the time from each disruptive fault
//! to events flowing again (max and p50), and the timelines equal / healed / lost. Lost
//! must be 0.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use timelined::sim::{Fault, SimConfig};
use timelined_actors::metrics::ReconnectCause;
use timelined_actors::wire::Dialect;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A random fault; `true` when it takes the stream away (time-to-stream-again is measured).
fn random_fault(rng: &mut impl Rng) -> (Fault, bool) {
    let http =
        |path: &str, status, retry_after| Fault::Http { path: path.into(), status, retry_after, count: 2 };
    match rng.random_range(0..12) {
        0 => (Fault::DropSocket, true),
        1 => (Fault::Close { code: 1011 }, true),
        2 => (Fault::Close { code: 1001 }, true),
        3 => (Fault::Stall { seconds: 3.0 }, true),
        4 => (Fault::SocketClosing { close_after: Duration::from_secs(2) }, false),
        5 => (Fault::ExpireChannel, true),
        6 => (Fault::EvictChannel, true),
        7 => (Fault::Malformed { count: 5 }, false),
        8 => (Fault::Oversized { bytes: 200_000 }, false),
        9 => (http("/oauth/token", 429, Some(1)), false),
        10 => (http("/api/v2/conversations/", 503, None), false),
        _ => (Fault::RevokeToken, false),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[actix_rt::test]
#[ignore = "a long run: cargo test --release --test chaos -- --ignored --nocapture"]
async fn chaos_loses_no_timeline() {
    let seconds = env_u64("CHAOS_SECONDS", 300);
    let seed = env_u64("CHAOS_SEED", 1);
    let rate = 300;
    // About nine transitions per conversation: enough conversations to play `seconds`.
    let conversations = seconds * u64::from(rate) / 9;
    let fixture = Fixture::start(
        SimConfig {
            seed,
            conversations,
            rate,
            reorder: true,
            duplicates: true,
            send_log: true,
            ..SimConfig::default()
        },
        Dialect::Notifications,
        |settings| settings.pipeline.verify_after = Duration::from_secs(10),
    )
    .await;
    let watch = SinkWatch::spawn(fixture.sink.clone());
    fixture.streaming().await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut injected = std::collections::BTreeMap::<String, u64>::new();
    let mut recoveries = Vec::new();
    // The slowest recoveries, with the fault and what was injected in the 10 s before it.
    let mut history: Vec<(Instant, String)> = Vec::new();
    let mut slowest: Vec<(Duration, String, Vec<String>)> = Vec::new();
    let started = Instant::now();
    while !fixture.sim.finished() {
        actix_rt::time::sleep(Duration::from_millis(rng.random_range(2000..5000))).await;
        if fixture.sim.finished() {
            break;
        }
        let (fault, disruptive) = random_fault(&mut rng);
        let kind = format!("{fault:?}").split([' ', '{', '(']).next().unwrap_or("?").to_owned();
        *injected.entry(kind.clone()).or_default() += 1;
        let recent: Vec<String> = history
            .iter()
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(10))
            .map(|(_, fault)| fault.clone())
            .collect();
        history.push((Instant::now(), format!("{fault:?}")));
        let received_before = fixture.daemon.metrics.events_received.get();
        let at = Instant::now();
        fixture.sim.fault(fault).unwrap();
        if disruptive {
            // Streaming again = ready, and events arriving on the new socket.
            let metrics = fixture.daemon.metrics.clone();
            let probe = fixture.daemon.probe();
            let reconnects_before = metrics.reconnects_total();
            wait_until("streaming again", Duration::from_secs(60), || {
                metrics.reconnects_total() > reconnects_before
                    && probe.readiness().is_ok()
                    && metrics.events_received.get() > received_before
            })
            .await;
            recoveries.push(at.elapsed());
            slowest.push((at.elapsed(), kind, recent));
        }
    }
    // Everything played: give the healing its time, then judge whatever is there.
    let give_up = Instant::now() + Duration::from_secs(90);
    while read_jsonl(&fixture.sink).len() < fixture.sim.truth().len() && Instant::now() < give_up {
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    let (closed, truth, hidden) = (read_jsonl(&fixture.sink), fixture.sim.truth(), fixture.sim.hidden());
    let elapsed = started.elapsed();
    // Judged while the daemon runs: how long after its last event each was written.
    let delays = write_delays(&truth, &last_sent(&fixture.sim), &watch.seen());
    let quantile = |q: f64| delays.get(((delays.len() as f64) * (1.0 - q)) as usize).map(|(d, _)| *d);
    let close_after = Duration::from_millis(300);
    let beyond = delays.iter().filter(|(d, _)| *d > close_after + Duration::from_secs(5)).count();
    eprintln!(
        "written after the last event: p50 {:?}, p99 {:?}, max {:?}; {beyond} later than close_after + 5 s \
         (a conversation healed by a backfill or its verification waits for it)",
        quantile(0.5),
        quantile(0.99),
        delays.first().map(|(d, _)| *d),
    );

    let actual = by_id(closed.clone());
    let (mut equal, mut healed, mut lost) = (0, 0, Vec::new());
    for want in &truth {
        match actual.get(&want.conversation_id) {
            Some(got) if got == want => equal += 1,
            Some(got)
                if got.gaps > 0
                    && got.healed
                    && &timelined_actors::record::TimelineRecord {
                        gaps: 0,
                        healed: false,
                        ..got.clone()
                    } == want =>
            {
                healed += 1
            }
            _ => lost.push(want.conversation_id.clone()),
        }
    }
    let written_twice = closed.len() - actual.len();
    recoveries.sort();
    let causes: Vec<String> = ReconnectCause::ALL
        .iter()
        .map(|&cause| format!("{}={}", cause.as_str(), fixture.reconnects(cause)))
        .collect();
    println!(
        "chaos run: seed {seed}, {:.0} s, {} conversations at {rate} transitions/s",
        elapsed.as_secs_f64(),
        truth.len()
    );
    println!("faults injected: {} {:?}", injected.values().sum::<u64>(), injected);
    println!("reconnects: {} ({})", fixture.daemon.metrics.reconnects_total(), causes.join(", "));
    println!(
        "time to stream again after {} disruptive faults: p50 {:?}, max {:?}",
        recoveries.len(),
        percentile(&recoveries, 50.0),
        recoveries.last().copied().unwrap_or_default()
    );
    slowest.sort_by_key(|(took, _, _)| std::cmp::Reverse(*took));
    for (took, kind, recent) in slowest.iter().take(3) {
        println!("  slow recovery {took:?} after {kind}; injected in the 10 s before: {recent:?}");
    }
    println!(
        "timelines: {} equal, {} healed, {} lost, {} written twice; {} conversations had frames hidden by faults",
        equal,
        healed,
        lost.len(),
        written_twice,
        hidden.len()
    );
    for id in lost.iter().take(5) {
        let open = fixture.daemon.timelines.get(id.as_str()).map(|t| t.to_record());
        let want = truth.iter().find(|t| &t.conversation_id == id);
        println!(
            "LOST {id}: hidden {}, written {:?}\n  open {open:?}\n  truth {want:?}",
            hidden.contains(id),
            actual.get(id)
        );
    }
    assert!(lost.is_empty(), "lost timelines: {lost:?}");
    assert_eq!(written_twice, 0);
    fixture.stop().await;
}

#[test]
fn percentile_picks_the_nearest_rank() {
    let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(51));
    assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
    assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(100));
    assert_eq!(percentile(&[], 50.0), Duration::ZERO);
}
