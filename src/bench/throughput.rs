//! Figure 1: max sustained throughput with no drops, the drops above it, and the bare
//! baseline on the same frames in the same run.
//!
//! The frames are rendered once, before any clock starts (`sim::prerender`), and streamed
//! straight from the simulator's socket writer (`SimHandle::stream`): the generator and
//! the hub are out of the way, and the sender is the same for every run below.
//!
//! 1. Baseline: a bare awc client receives every frame (no parse), then again with a
//!    typed `serde_json` parse of each (`baseline.rs`).
//! 2. Saturation: a fresh in-process daemon (the full pipeline: decode → dedupe → timeline
//!    → log consumer writing to a file → JSONL sink) receives every frame as fast as the
//!    sender and the socket allow.
//! 3. Steps: a fresh daemon per step, the sender paced at each rate in turn, until one is
//!    not sustained (the daemon fell behind, or dropped anything).
//!
//! Events are the joins and leaves decoded from the frames (`timelined_events_received`;
//! a snapshot repeats its conversation's earlier ones, which the timeline deduplicates),
//! counted from the first frame handed to the socket to the moment the last one has been
//! decoded. "Published" is what the log consumer took (each join/leave once).

use super::stats::{human_rate, per_second, ratio};
use super::{baseline, daemon_settings, file_logger, verdict, Scratch, SimThread};
use crate::daemon::Daemon;
use crate::sim::prerender::{self, RenderedFrame, Shape};
use crate::sim::{SimConfig, StreamReport, DEFAULT_QUEUES};
use anyhow::Context as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timelined_actors::metrics::{ActorLabels, DropReason, Metrics, Stage};
use timelined_actors::wire::Dialect;

/// The targets.
const TARGET_EVENTS_PER_SECOND: f64 = 500_000.0;
const TARGET_SHARE_OF_BASELINE: f64 = 0.55;
const TARGET_NO_DROPS_UP_TO: f64 = 200_000.0;
/// A step is sustained when the daemon decoded at least this share of the offered rate.
const SUSTAINED: f64 = 0.97;
/// How long a run may go without progress before it is given up.
const STALL: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BenchDialect {
    Notifications,
    AnalyticsStream,
}

#[derive(clap::Args, Debug)]
pub struct Options {
    /// Frames rendered (and streamed in the baseline and saturation runs).
    #[arg(long, default_value_t = 600_000)]
    frames: usize,
    /// Rates to step through, in events/s (decoded joins and leaves); stops at the first
    /// one not sustained.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50000,100000,200000,300000,400000,500000,600000,800000,1000000"
    )]
    rates: Vec<u64>,
    /// Bisections between the last rate sustained and the first not.
    #[arg(long, default_value_t = 2)]
    refine: u32,
    /// Seconds each step streams for.
    #[arg(long, default_value_t = 3.0)]
    step_seconds: f64,
    #[arg(long, value_enum, default_value = "notifications")]
    dialect: BenchDialect,
    /// Conversations in flight in the rendered stream.
    #[arg(long, default_value_t = 1_000)]
    concurrency: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip the steps: baseline and saturation only.
    #[arg(long)]
    no_steps: bool,
    /// Skip the baseline (to profile the daemon alone); no ratio is printed.
    #[arg(long)]
    no_baseline: bool,
}

/// The rendered frames, shared with the simulator's writer.
struct Rendered {
    frames: Arc<Vec<RenderedFrame>>,
}

impl Rendered {
    fn events(&self, count: usize) -> u64 {
        self.frames[..count].iter().map(|f| u64::from(f.events)).sum()
    }

    fn new_events(&self, count: usize) -> u64 {
        self.frames[..count].iter().map(|f| u64::from(f.new_events)).sum()
    }

    /// How many frames from the start carry at least `events` joins/leaves (all, if fewer).
    fn frames_for(&self, events: u64) -> usize {
        let mut carried = 0;
        for (index, frame) in self.frames.iter().enumerate() {
            carried += u64::from(frame.events);
            if carried >= events {
                return index + 1;
            }
        }
        self.frames.len()
    }

    fn bytes(&self, count: usize) -> u64 {
        self.frames[..count].iter().map(|f| f.text.len() as u64).sum()
    }

    fn stream(&self, count: usize) -> impl Iterator<Item = Arc<str>> + Send + 'static {
        let frames = self.frames.clone();
        (0..count.min(frames.len())).map(move |i| frames[i].text.clone())
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let (dialect, shape) = match options.dialect {
        BenchDialect::Notifications => (Dialect::Notifications, Shape::QueueSnapshots),
        BenchDialect::AnalyticsStream => (Dialect::AnalyticsStream, Shape::AnalyticsEvents),
    };
    println!("figure 1: throughput ({:?} dialect)", options.dialect);
    let queues: Vec<String> = DEFAULT_QUEUES.iter().map(|q| q.to_string()).collect();
    let rendered = render(&options, &queues, shape);
    let sim = SimThread::start(SimConfig {
        generate: false,
        heartbeat_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    })
    .await?;
    let scratch = Scratch::new("throughput")?;
    let topics: Vec<String> = queues.iter().map(|q| format!("v2.routing.queues.{q}.conversations")).collect();
    let baseline_rate =
        if options.no_baseline { 0.0 } else { measure_baseline(&sim, &rendered, dialect, &topics).await? };

    println!();
    println!("daemon at saturation (sender unpaced; default settings, log to a file, JSONL sink):");
    let all = rendered.frames.len();
    let saturated = run_daemon(&sim, &rendered, all, 0, dialect, &scratch).await?;
    saturated.print("saturation");
    let daemon_rate = saturated.decoded_rate();
    if !options.no_baseline {
        let share = ratio(daemon_rate, baseline_rate);
        println!("  daemon / baseline (events/s, both at saturation): {:.1} %", share * 100.0);
    }
    let climbed = if options.no_steps {
        Climb {
            sustained: (saturated.drops == 0).then_some(daemon_rate),
            above: Vec::new(),
            clean_up_to: None,
        }
    } else {
        climb(&sim, &rendered, &options, dialect, &scratch).await?
    };
    report(&options, climbed, &saturated, baseline_rate);
    sim.stop().await;
    Ok(())
}

/// The frames every run sends, rendered once up front so that the sender is not the
/// bottleneck.
fn render(options: &Options, queues: &[String], shape: Shape) -> Rendered {
    let rendering = Instant::now();
    let frames: Vec<RenderedFrame> =
        prerender::endless(options.seed, queues, options.concurrency, shape).take(options.frames).collect();
    let rendered = Rendered { frames: Arc::new(frames) };
    let all = rendered.frames.len();
    let events = rendered.events(all);
    println!(
        "frames: {all} rendered in {:.1} s, {:.0} B each on average, {:.2} joins/leaves decoded per frame \
         ({events} in all, {} new — the timeline entries)",
        rendering.elapsed().as_secs_f64(),
        rendered.bytes(all) as f64 / all as f64,
        events as f64 / all as f64,
        rendered.new_events(all),
    );
    rendered
}

/// The same frames read by a bare awc socket loop, then also parsed with typed serde_json:
/// the events per second the daemon is held against.
async fn measure_baseline(
    sim: &SimThread,
    rendered: &Rendered,
    dialect: Dialect,
    topics: &[String],
) -> anyhow::Result<f64> {
    let all = rendered.frames.len();
    let events = rendered.events(all);
    let events_per_frame = events as f64 / all as f64;
    println!();
    println!("baseline: one awc socket read loop on the same frames, same sender");
    let receive_only = run_baseline(sim, rendered, dialect, topics, false).await?;
    let receive_rate = per_second(all as u64, receive_only);
    println!(
        "  receive only:               {:>8} frames/s  ({:>8} events/s in those frames)",
        human_rate(receive_rate),
        human_rate(receive_rate * events_per_frame)
    );
    let parsed = run_baseline(sim, rendered, dialect, topics, true).await?;
    let baseline_rate = per_second(events, parsed);
    println!(
        "  receive + typed serde_json: {:>8} frames/s  {:>8} events/s",
        human_rate(per_second(all as u64, parsed)),
        human_rate(baseline_rate)
    );
    Ok(baseline_rate)
}

/// What the paced steps found.
struct Climb {
    /// The highest rate decoded with nothing dropped.
    sustained: Option<f64>,
    /// The steps not sustained, with what they did.
    above: Vec<(u64, Outcome)>,
    /// The highest offered rate at which every step so far was delivered in full.
    clean_up_to: Option<u64>,
}

/// The paced steps in turn until one is not sustained, then a few halvings of the interval
/// between the last sustained and the first not.
async fn climb(
    sim: &SimThread,
    rendered: &Rendered,
    options: &Options,
    dialect: Dialect,
    scratch: &Scratch,
) -> anyhow::Result<Climb> {
    println!();
    println!(
        "steps (sender paced; a step is sustained when ≥ {:.0} % of its rate is decoded, nothing dropped):",
        SUSTAINED * 100.0
    );
    let mut climbed = Climb { sustained: None, above: Vec::new(), clean_up_to: None };
    let mut good: Option<u64> = None;
    let mut bad: Option<u64> = None;
    for &rate in &options.rates {
        let (ok, outcome) = step(sim, rendered, rate, options, dialect, scratch).await?;
        if !ok {
            bad = Some(rate);
            climbed.above.push((rate, outcome));
            break;
        }
        good = Some(rate);
        climbed.sustained = Some(outcome.decoded_rate());
    }
    climbed.clean_up_to = good;
    for _ in 0..options.refine {
        let (Some(low), Some(high)) = (good, bad) else { break };
        let middle = (low + high) / 2 / 5_000 * 5_000;
        if middle <= low || middle >= high {
            break;
        }
        let (ok, outcome) = step(sim, rendered, middle, options, dialect, scratch).await?;
        if ok {
            good = Some(middle);
            climbed.clean_up_to = good;
            climbed.sustained = Some(outcome.decoded_rate());
        } else {
            bad = Some(middle);
            climbed.above.push((middle, outcome));
        }
    }
    Ok(climbed)
}

/// The figures against their targets.
fn report(options: &Options, mut climbed: Climb, saturated: &Outcome, baseline_rate: f64) {
    println!();
    println!("result (events = joins/leaves decoded):");
    match climbed.sustained {
        Some(rate) => println!(
            "  max sustained with 0 drops: {} events/s — target ≥ {}: {}",
            human_rate(rate),
            human_rate(TARGET_EVENTS_PER_SECOND),
            verdict(rate >= TARGET_EVENTS_PER_SECOND)
        ),
        None => println!("  max sustained with 0 drops: none of the steps"),
    }
    climbed.above.sort_by_key(|(rate, _)| *rate);
    for (rate, outcome) in &climbed.above {
        println!(
            "  above it, {} events/s offered: {} decoded, {} dropped ({:.3} % of offered{})",
            human_rate(*rate as f64),
            human_rate(outcome.decoded_rate()),
            outcome.drops,
            outcome.drop_share() * 100.0,
            if outcome.drops == 0 {
                "; the daemon read slower than offered, holding the sender back"
            } else {
                ""
            }
        );
    }
    println!(
        "  at saturation: {} decoded, {} dropped ({:.3} % of offered)",
        human_rate(saturated.decoded_rate()),
        saturated.drops,
        saturated.drop_share() * 100.0
    );
    if !options.no_baseline {
        // The daemon's figure is what it sustains with no drops; at saturation it may drop.
        let sustained_share = ratio(climbed.sustained.unwrap_or(0.0), baseline_rate);
        println!(
            "  daemon (max sustained, 0 drops) / baseline: {:.1} % — target ≥ {:.0} %: {}",
            sustained_share * 100.0,
            TARGET_SHARE_OF_BASELINE * 100.0,
            verdict(sustained_share >= TARGET_SHARE_OF_BASELINE)
        );
        let share = ratio(saturated.decoded_rate(), baseline_rate);
        println!("  daemon at saturation (dropping or not) / baseline: {:.1} %", share * 100.0);
    }
    if !options.no_steps {
        let clean = climbed.clean_up_to.unwrap_or(0) as f64;
        println!(
            "  0 drops at every step up to {} events/s (each delivered in full), default mailboxes — target {}: {}",
            human_rate(clean),
            human_rate(TARGET_NO_DROPS_UP_TO),
            verdict(clean >= TARGET_NO_DROPS_UP_TO)
        );
    }
}

/// One step: a fresh daemon, the sender paced at `rate` events/s for `step_seconds`.
/// Sustained when nothing was dropped and at least [`SUSTAINED`] of the rate was decoded.
async fn step(
    sim: &SimThread,
    rendered: &Rendered,
    rate: u64,
    options: &Options,
    dialect: Dialect,
    scratch: &Scratch,
) -> anyhow::Result<(bool, Outcome)> {
    // The first frames of the stream carry fewer joins/leaves (conversations are young):
    // pace by the frames this step actually streams.
    let count = rendered.frames_for((rate as f64 * options.step_seconds) as u64);
    let frames_per_second = (count as f64 / options.step_seconds).round().max(1.0);
    let outcome = run_daemon(sim, rendered, count, frames_per_second as u32, dialect, scratch).await?;
    let ok = outcome.drops == 0 && outcome.decoded_rate() >= SUSTAINED * rate as f64;
    outcome.print(&format!("{:>8} ev/s {}", human_rate(rate as f64), if ok { "ok  " } else { "FAIL" }));
    Ok((ok, outcome))
}

/// Streams every frame to a bare client; returns how long from the first frame handed to
/// the socket until the last one was read (and parsed).
async fn run_baseline(
    sim: &SimThread,
    rendered: &Rendered,
    dialect: Dialect,
    topics: &[String],
    parse: bool,
) -> anyhow::Result<Duration> {
    let all = rendered.frames.len();
    let client = actix_rt::spawn({
        let (base, topics) = (sim.sim().base_url(), topics.to_vec());
        async move { baseline::receive(&base, dialect, &topics, all as u64, parse).await }
    });
    sim.until_listening(true, Duration::from_secs(10)).await?;
    let sent = stream(sim, rendered, all, 0).await?;
    let received = client.await.context("baseline client")??;
    anyhow::ensure!(received.frames == all as u64, "the baseline got {} of {all} frames", received.frames);
    if parse {
        anyhow::ensure!(
            received.events == rendered.events(all),
            "the baseline parsed {} events, {} were sent",
            received.events,
            rendered.events(all)
        );
    }
    sim.until_listening(false, Duration::from_secs(10)).await?;
    let first = sent.first_sent.context("nothing was sent")?;
    Ok(received.done.saturating_duration_since(first))
}

async fn stream(
    sim: &SimThread,
    rendered: &Rendered,
    count: usize,
    rate: u32,
) -> anyhow::Result<StreamReport> {
    let report = sim.sim().stream(rendered.stream(count), rate).context("nobody listens to the simulator")?;
    report.await.context("the socket went away before the stream started")
}

/// One daemon run.
struct Outcome {
    offered: u64,
    sent: StreamReport,
    /// When every offered event had been decoded.
    decoded_at: Option<Instant>,
    decoded: u64,
    expected_published: u64,
    published: u64,
    /// When the log consumer had taken every join/leave.
    published_at: Option<Instant>,
    drops: u64,
    drops_by_stage: Vec<(Stage, u64)>,
    reorder_window: Duration,
}

impl Outcome {
    fn first(&self) -> Option<Instant> {
        self.sent.first_sent
    }

    /// Decoded events per second, first frame sent → last event decoded.
    fn decoded_rate(&self) -> f64 {
        match (self.first(), self.decoded_at) {
            (Some(first), Some(at)) => per_second(self.decoded, at.saturating_duration_since(first)),
            _ => 0.0,
        }
    }

    /// Decoded events per second, first frame sent → last join/leave taken by the log
    /// consumer, less the reorder window (a fixed hold, not work).
    fn published_rate(&self) -> Option<f64> {
        let elapsed = self.published_at?.saturating_duration_since(self.first()?);
        Some(per_second(self.decoded, elapsed.saturating_sub(self.reorder_window)))
    }

    fn drop_share(&self) -> f64 {
        ratio(self.drops as f64, self.offered as f64)
    }

    fn print(&self, label: &str) {
        let sent_rate = match (self.sent.first_sent, self.sent.last_sent) {
            (Some(first), Some(last)) => per_second(self.offered, last.saturating_duration_since(first)),
            _ => 0.0,
        };
        let stages: Vec<String> = self
            .drops_by_stage
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(stage, n)| format!("{}={n}", stage.as_str()))
            .collect();
        println!(
            "  {label}: sent {:>8}/s, decoded {:>8} events/s, published (end to end) {:>8}/s, \
             published {}/{} entries, dropped {}{}",
            human_rate(sent_rate),
            human_rate(self.decoded_rate()),
            self.published_rate().map_or_else(|| "—".to_owned(), human_rate),
            self.published,
            self.expected_published,
            self.drops,
            if stages.is_empty() { String::new() } else { format!(" ({})", stages.join(", ")) },
        );
    }
}

/// Joins and leaves the log consumer has taken (it takes closed timelines too).
fn published(metrics: &Metrics) -> u64 {
    let taken = metrics.delivered.get_or_create(&ActorLabels { actor: Stage::Log }).get();
    taken.saturating_sub(metrics.closed(true) + metrics.closed(false))
}

fn drops_by_stage(metrics: &Metrics) -> Vec<(Stage, u64)> {
    Stage::ALL
        .iter()
        .map(|&stage| (stage, DropReason::ALL.iter().map(|&reason| metrics.dropped(stage, reason)).sum()))
        .collect()
}

/// A fresh daemon takes the first `count` frames at `rate` frames/s (0 = unpaced).
async fn run_daemon(
    sim: &SimThread,
    rendered: &Rendered,
    count: usize,
    rate: u32,
    dialect: Dialect,
    scratch: &Scratch,
) -> anyhow::Result<Outcome> {
    let settings = daemon_settings(sim.sim(), dialect, scratch);
    let log_path = scratch.path("daemon.log");
    let (log, guard) = file_logger(&log_path)?;
    let daemon = Daemon::start(&settings, log)?;
    sim.until_listening(true, Duration::from_secs(10)).await?;
    let metrics = daemon.metrics.clone();
    let offered = rendered.events(count);
    let expected_published = rendered.new_events(count);
    let report = sim.sim().stream(rendered.stream(count), rate).context("nobody listens to the simulator")?;
    let report = actix_rt::spawn(report);

    let mut decoded_at = None;
    let mut published_at = None;
    // Closed timelines are counted when closed and taken by the log a moment later: the
    // difference dips meanwhile, so keep the highest reading.
    let mut most_published = 0;
    let mut progress = (0, 0, Instant::now());
    loop {
        let now = Instant::now();
        let decoded = metrics.events_received.get();
        let taken = published(&metrics);
        most_published = most_published.max(taken);
        if decoded_at.is_none() && decoded >= offered {
            decoded_at = Some(now);
        }
        if published_at.is_none() && taken >= expected_published {
            published_at = Some(now);
        }
        if decoded_at.is_some() && (published_at.is_some() || metrics.dropped_total() > 0) {
            break;
        }
        if (decoded, taken) != (progress.0, progress.1) {
            progress = (decoded, taken, now);
        } else if now.duration_since(progress.2) > STALL {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    // Whatever is still on its way to the consumers has a moment to arrive (and be counted).
    actix_rt::time::sleep(settings.pipeline.reorder_window + Duration::from_millis(200)).await;
    let sent =
        report.await.context("stream task")?.context("the socket went away before the stream started")?;
    let outcome = Outcome {
        offered,
        sent,
        decoded_at,
        decoded: metrics.events_received.get(),
        expected_published,
        published: most_published.max(published(&metrics)),
        published_at,
        drops: metrics.dropped_total(),
        drops_by_stage: drops_by_stage(&metrics),
        reorder_window: settings.pipeline.reorder_window,
    };
    daemon.shutdown().await;
    drop(guard);
    let _ = std::fs::remove_file(&log_path);
    let _ = std::fs::remove_file(scratch.path("timelines.jsonl"));
    sim.until_listening(false, Duration::from_secs(10)).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(events: &[u32]) -> Rendered {
        let frames = events
            .iter()
            .map(|&events| RenderedFrame { text: "{}".into(), events, new_events: events.min(1) })
            .collect();
        Rendered { frames: Arc::new(frames) }
    }

    #[test]
    fn a_step_takes_the_frames_that_carry_its_events() {
        let rendered = rendered(&[1, 2, 3, 4]);
        assert_eq!(rendered.frames_for(1), 1);
        assert_eq!(rendered.frames_for(3), 2);
        assert_eq!(rendered.frames_for(4), 3);
        assert_eq!(rendered.frames_for(100), 4, "never more than there are");
        assert_eq!((rendered.events(3), rendered.new_events(3), rendered.bytes(2)), (6, 3, 4));
        assert_eq!(rendered.stream(10).count(), 4);
    }

    #[test]
    fn rates_run_from_the_first_frame_sent() {
        let first = Instant::now();
        let outcome = Outcome {
            offered: 1_000,
            sent: StreamReport {
                frames: 10,
                first_sent: Some(first),
                last_sent: Some(first + Duration::from_millis(400)),
                interrupted: false,
            },
            decoded_at: Some(first + Duration::from_millis(500)),
            decoded: 1_000,
            expected_published: 100,
            published: 100,
            published_at: Some(first + Duration::from_millis(700)),
            drops: 10,
            drops_by_stage: Vec::new(),
            reorder_window: Duration::from_millis(200),
        };
        assert_eq!(outcome.decoded_rate(), 2_000.0);
        // The reorder window is a fixed hold, not work: it is taken off the end-to-end time.
        assert_eq!(outcome.published_rate(), Some(2_000.0));
        assert_eq!(outcome.drop_share(), 0.01);
        let undecoded = Outcome { decoded_at: None, published_at: None, ..outcome };
        assert_eq!(undecoded.decoded_rate(), 0.0);
        assert_eq!(undecoded.published_rate(), None);
    }
}
