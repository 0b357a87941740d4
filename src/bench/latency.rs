//! Figure 2: latency from the simulator handing a join or leave to its socket to a
//! consumer taking its publication, at a fixed rate.
//!
//! The simulator plays its generator through the hub as usual and keeps a send log
//! (`SimConfig::send_log`: the wall-clock instant each join or leave was first handed to
//! a socket's session). The daemon runs in process with one more output, a probe that
//! notes when it takes each join/leave; both clocks are this process's monotonic clock.
//! The reorder window is excluded by running with `pipeline.reorder_window = 0`: what
//! remains is transport, decoding, the timeline, the wait for the TimelineActor's next
//! tick (`pipeline.tick`, which publishes what is due) and the hop to the consumer.

use super::stats::{human_rate, millis, per_second, percentile, Summary};
use super::{daemon_settings, file_logger, verdict, Scratch, SimThread};
use crate::daemon::Daemon;
use crate::sim::{SimConfig, TransitionKey};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use timelined_actors::consumer::Output;
use timelined_actors::metrics::Stage;
use timelined_actors::record::{EntryAction, TimelineRecord};
use timelined_actors::timeline::{CloseReason, TimelineUpdate};
use timelined_actors::wire::Dialect;

const TARGET_P99: Duration = Duration::from_millis(2);
const WARM_UP: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
pub struct Options {
    /// Transitions (joins and leaves, and the few ends of missed alerts) the simulator
    /// plays per second.
    #[arg(long, default_value_t = 20_000)]
    rate: u32,
    /// Seconds measured, after a 2 s warm-up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The TimelineActor's tick (`pipeline.tick`); the shipped default is 20ms.
    #[arg(long, value_parser = humantime::parse_duration)]
    tick: Option<Duration>,
    /// Conversations in flight.
    #[arg(long, default_value_t = 1_000)]
    concurrency: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Notes when each join/leave reaches a consumer.
struct Probe {
    taken: Arc<Mutex<Vec<(TransitionKey, Instant)>>>,
}

impl Output for Probe {
    fn update(&mut self, update: &TimelineUpdate) -> io::Result<()> {
        let at = Instant::now();
        let key = TransitionKey {
            conversation: update.conversation_id.to_string(),
            participant: update.entry.participant_id.clone(),
            joined: update.entry.action == EntryAction::Joined,
        };
        self.taken.lock().unwrap_or_else(PoisonError::into_inner).push((key, at));
        Ok(())
    }

    fn closed(&mut self, _: &TimelineRecord, _: CloseReason) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    println!("figure 2: send → publish latency at {} transitions/s", options.rate);
    let sim = SimThread::start(SimConfig {
        rate: options.rate,
        seed: options.seed,
        concurrency: options.concurrency,
        send_log: true,
        ..SimConfig::default()
    })
    .await?;
    let scratch = Scratch::new("latency")?;
    let mut settings = daemon_settings(sim.sim(), Dialect::Notifications, &scratch);
    settings.pipeline.reorder_window = Duration::ZERO;
    if let Some(tick) = options.tick {
        settings.pipeline.tick = tick;
    }
    println!(
        "daemon: default settings except pipeline.reorder_window = 0 (excluded), pipeline.tick = {:?}; \
         log to a file, JSONL sink, and a probe consumer",
        settings.pipeline.tick
    );
    let (log, guard) = file_logger(&scratch.path("daemon.log"))?;
    // Reserved: growing it would stall the probe's thread, and the stall would count as latency.
    let taken = Arc::new(Mutex::new(Vec::with_capacity(1 << 19)));
    let probe: Box<dyn Output> = Box::new(Probe { taken: taken.clone() });
    let daemon = Daemon::start_with(&settings, log, vec![(Stage::Feed, probe)])?;
    sim.until_listening(true, Duration::from_secs(10)).await?;

    actix_rt::time::sleep(WARM_UP).await;
    sim.sim().take_send_log();
    let received_before = daemon.metrics.events_received.get();
    let started = Instant::now();
    actix_rt::time::sleep(Duration::from_secs(options.seconds)).await;
    let sent = sim.sim().take_send_log();
    let window = started.elapsed();
    let decoded = daemon.metrics.events_received.get() - received_before;
    // What was sent last needs a moment (a tick or two) to be published.
    actix_rt::time::sleep(settings.pipeline.tick * 5 + Duration::from_millis(200)).await;
    let drops = daemon.metrics.dropped_total();
    let published: HashMap<TransitionKey, Instant> = {
        let mut taken = taken.lock().unwrap_or_else(PoisonError::into_inner);
        let mut first = HashMap::with_capacity(taken.len());
        for (key, at) in taken.drain(..) {
            first.entry(key).or_insert(at);
        }
        first
    };
    daemon.shutdown().await;
    drop(guard);
    sim.stop().await;

    let mut latencies = Vec::with_capacity(sent.len());
    let mut missing = 0;
    for transition in &sent {
        match published.get(&transition.key) {
            Some(at) => latencies.push(at.saturating_duration_since(transition.at)),
            None => missing += 1,
        }
    }
    println!(
        "measured {:.1} s: {} joins/leaves sent ({}/s), {} events/s decoded (snapshots repeat earlier ones), \
         {missing} never published, {drops} dropped",
        window.as_secs_f64(),
        sent.len(),
        human_rate(per_second(sent.len() as u64, window)),
        human_rate(per_second(decoded, window)),
    );
    latencies.sort_unstable();
    let sorted = latencies.clone();
    let Some(summary) = Summary::of(latencies) else {
        anyhow::bail!("nothing was published in the window");
    };
    println!(
        "latency send → publish: p50 {}, p99 {}, max {} over {} joins/leaves (p90 {}, p99.9 {})",
        millis(summary.p50),
        millis(summary.p99),
        millis(summary.max),
        summary.count,
        millis(percentile(&sorted, 90.0).unwrap_or_default()),
        millis(percentile(&sorted, 99.9).unwrap_or_default()),
    );
    println!(
        "result: p99 {} — target < {}: {}",
        millis(summary.p99),
        millis(TARGET_P99),
        verdict(summary.p99 < TARGET_P99)
    );
    Ok(())
}
