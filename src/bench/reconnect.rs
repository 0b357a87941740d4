//! Figure 4: how long from a socket kill to events flowing again, over many kills.
//!
//! The simulator plays at a steady rate; each kill is `Fault::DropSocket` (the connection
//! ends without a Close frame, as a dead load balancer would end it). The clock runs from
//! the kill to the first event decoded from the new socket; along the way it notes when
//! the daemon saw the old socket end and when the new one opened. The daemon runs with
//! the shipped reconnect settings (initial backoff 200 ms, capped at 30 s, jittered; the
//! backoff resets on the first frame of a new socket, so every kill starts from the
//! initial backoff).

use super::stats::{millis, Summary};
use super::{baseline, daemon_settings, file_logger, verdict, wait_for, Scratch, SimThread};
use crate::daemon::Daemon;
use crate::sim::{Fault, SimConfig};
use std::time::{Duration, Instant};
use timelined_actors::wire::Dialect;

const TARGET_P99: Duration = Duration::from_secs(1);
/// Longest a single kill may take before the run is given up.
const GIVE_UP: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct Options {
    /// Kills to time.
    #[arg(long, default_value_t = 100)]
    kills: usize,
    /// Transitions the simulator plays per second (how soon a new socket has an event).
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// How long events flow between kills.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300ms")]
    between: Duration,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also time, with a bare awc client, how long the simulator takes to end a dropped
    /// connection (the transport's share of the figure), over this many kills.
    #[arg(long, default_value_t = 10)]
    raw_kills: usize,
}

/// The timeline of one kill, from the kill.
struct Kill {
    /// The daemon saw the old socket end.
    lost: Duration,
    /// A new socket was open.
    opened: Duration,
    /// The first event from the new socket was decoded.
    streaming: Duration,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    println!("figure 4: socket kill → events flowing again, {} kills", options.kills);
    let sim = SimThread::start(SimConfig { rate: options.rate, seed: options.seed, ..SimConfig::default() })
        .await?;
    let scratch = Scratch::new("reconnect")?;
    let settings = daemon_settings(sim.sim(), Dialect::Notifications, &scratch);
    println!(
        "daemon: shipped settings (reconnect.initial_backoff {:?}, max_backoff {:?}); simulator at {} transitions/s",
        settings.reconnect.initial_backoff, settings.reconnect.max_backoff, options.rate
    );
    let (log, guard) = file_logger(&scratch.path("daemon.log"))?;
    let daemon = Daemon::start(&settings, log)?;
    let metrics = daemon.metrics.clone();
    let liveness = daemon.channels[0].clone();
    wait_for("events to flow", Duration::from_secs(20), || metrics.events_received.get() > 0).await?;

    let mut kills = Vec::with_capacity(options.kills);
    for _ in 0..options.kills {
        actix_rt::time::sleep(options.between).await;
        let before =
            liveness.open_generation().ok_or_else(|| anyhow::anyhow!("no socket open before a kill"))?;
        let killed = Instant::now();
        sim.sim().fault(Fault::DropSocket)?;
        wait_for("the daemon to see the socket end", GIVE_UP, || liveness.open_generation() != Some(before))
            .await?;
        let lost = killed.elapsed();
        wait_for("a new socket", GIVE_UP, || liveness.open_generation().is_some()).await?;
        let opened = killed.elapsed();
        let decoded = metrics.events_received.get();
        wait_for("an event from the new socket", GIVE_UP, || metrics.events_received.get() > decoded).await?;
        kills.push(Kill { lost, opened, streaming: killed.elapsed() });
    }
    daemon.shutdown().await;
    drop(guard);
    let mut raw = Vec::with_capacity(options.raw_kills);
    let topics: Vec<String> =
        settings.subscription.queues.iter().map(|q| format!("v2.routing.queues.{q}.conversations")).collect();
    for _ in 0..options.raw_kills {
        sim.until_listening(false, Duration::from_secs(10)).await?;
        let client = actix_rt::spawn({
            let (base, topics) = (sim.sim().base_url(), topics.clone());
            async move { baseline::until_end(&base, &topics).await }
        });
        sim.until_listening(true, Duration::from_secs(10)).await?;
        actix_rt::time::sleep(options.between).await;
        let killed = Instant::now();
        sim.sim().fault(Fault::DropSocket)?;
        let (ended, closed) = client.await??;
        anyhow::ensure!(!closed, "a dropped socket sent a Close frame");
        raw.push(ended.saturating_duration_since(killed));
    }
    sim.stop().await;

    let summary = |pick: fn(&Kill) -> Duration| Summary::of(kills.iter().map(pick).collect());
    let (Some(lost), Some(opened), Some(streaming)) =
        (summary(|k| k.lost), summary(|k| k.opened), summary(|k| k.streaming))
    else {
        anyhow::bail!("no kills timed");
    };
    for (label, s) in [
        ("kill → daemon sees the socket end", lost),
        ("kill → new socket open", opened),
        ("kill → events flowing again", streaming),
    ] {
        println!(
            "  {label:<36} p50 {:>10}  p99 {:>10}  max {:>10}",
            millis(s.p50),
            millis(s.p99),
            millis(s.max)
        );
    }
    if let Some(raw) = Summary::of(raw) {
        println!(
            "  bare client: kill → connection ended  p50 {:>10}  p99 {:>10}  max {:>10}  ({} kills)",
            millis(raw.p50),
            millis(raw.p99),
            millis(raw.max),
            raw.count
        );
    }
    println!(
        "result: kill → streaming p99 {} over {} kills — target < {}: {}",
        millis(streaming.p99),
        streaming.count,
        millis(TARGET_P99),
        verdict(streaming.p99 < TARGET_P99)
    );
    Ok(())
}
