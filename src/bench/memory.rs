//! Figure 3: resident memory per open conversation, and RSS over a churn run.
//!
//! The daemon is the real binary (`timelined run --config …`, the shipped settings but
//! for the simulator's address, a free HTTP port and a scratch state directory) in a
//! child process, so its RSS (`VmRSS` of `/proc/<pid>/status`) counts nothing of the
//! simulator or the harness. Its progress is read from its own `/metrics`.
//!
//! 1. Open conversations: the simulator streams conversations that are held open (each
//!    played until an agent has taken it from the queue: customer, IVR or flow, queue and
//!    agent joined, the IVR and the queue left; `sim::prerender::held`), up to each level
//!    in turn. At each level, once the daemon holds them all, RSS is sampled every second
//!    for `--hold` (longer than the 30 s checkpoint, which serializes every open timeline).
//!    Bytes per open conversation = (RSS − RSS with none open) / open conversations.
//! 2. Churn: a fresh daemon, the simulator's generator playing steadily (conversations
//!    open and close); once the number open has settled, RSS is sampled every 5 s for
//!    `--minutes`, and must stay within ±5 % of the first sample.

use super::stats::{bytes_per_conversation, metric, mib, vm_rss_bytes, Flatness};
use super::{verdict, Scratch, SimThread};
use crate::sim::prerender::{self, Shape};
use crate::sim::{SimConfig, DEFAULT_QUEUES};
use anyhow::Context as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET_BYTES_PER_CONVERSATION: f64 = 1024.0;
const TARGET_FLATNESS: f64 = 0.05;
const CHURN_SAMPLE_EVERY: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
pub struct Options {
    /// Open conversations to measure at, increasing.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    conversations: Vec<u64>,
    /// Frames per second the conversations of a level are sent at (0: as fast as the daemon
    /// reads). Unpaced, a backlog builds up in the mailboxes, and the allocator keeps the
    /// memory it took (tens of MiB) after it is freed — a cost of the burst, not of what is open.
    #[arg(long, default_value_t = 50_000)]
    load_rate: u32,
    /// Give up a level the daemon has not reached after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    load_timeout: Duration,
    /// Skip the open-conversation levels (churn only).
    #[arg(long)]
    churn_only: bool,
    /// How long RSS is sampled at each level (longer than `state.checkpoint_interval`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "35s")]
    hold: Duration,
    /// Length of the churn run in minutes; 0 skips it.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Transitions per second the simulator plays in the churn run.
    #[arg(long, default_value_t = 2_000)]
    churn_rate: u32,
    /// Conversations in flight in the churn run.
    #[arg(long, default_value_t = 2_000)]
    churn_open: usize,
    /// `pipeline.tombstone_ttl` for the churn run. Shipped: 1h — memory then grows for an
    /// hour, one tombstone per closed conversation, before it is flat; the run waits out
    /// this TTL before it measures, so the default is short.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
    tombstone_ttl: Duration,
    /// `state.checkpoint_interval` (shipped default: 30s; each checkpoint serializes every
    /// open timeline). A long one keeps checkpoints out of the figure.
    #[arg(long, value_parser = humantime::parse_duration)]
    checkpoint_interval: Option<Duration>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    println!("figure 3: resident memory of the daemon (a child process running `timelined run`)");
    if !options.churn_only {
        open_conversations(&options).await?;
    }
    if options.minutes > 0.0 {
        churn(&options).await?;
    }
    Ok(())
}

/// `timelined run` in a child process, pointed at a simulator.
struct ChildDaemon {
    child: Child,
    metrics_url: String,
    client: awc::Client,
}

impl ChildDaemon {
    /// `pipeline` is extra TOML under `[pipeline]`, `state` under `[state]` (may be empty).
    fn spawn(sim_base: &str, scratch: &Scratch, pipeline: &str, state: &str) -> anyhow::Result<ChildDaemon> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let queues: Vec<String> = DEFAULT_QUEUES.iter().map(|q| format!("{q:?}")).collect();
        let config = scratch.path("timelined.toml");
        let toml = format!(
            "[genesys]\nclient_id = \"bench\"\napi_base = \"{sim_base}\"\nlogin_base = \"{sim_base}\"\n\
             [subscription]\nqueues = [{queues}]\n[pipeline]\n{pipeline}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
             [state]\ndirectory = {directory:?}\n{state}\n[[sinks]]\nkind = \"jsonl\"\npath = {sink:?}\n",
            queues = queues.join(", "),
            directory = scratch.path("state"),
            sink = scratch.path("timelines.jsonl"),
        );
        std::fs::write(&config, toml).with_context(|| format!("writing {}", config.display()))?;
        let log = std::fs::File::create(scratch.path("daemon.log"))?;
        let child = Command::new(std::env::current_exe().context("this executable")?)
            .args(["run", "--config"])
            .arg(&config)
            .env("TIMELINED__GENESYS__CLIENT_SECRET", "bench")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting `timelined run`")?;
        Ok(ChildDaemon {
            child,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        })
    }

    fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        vm_rss_bytes(&status).context("no VmRSS in /proc/<pid>/status")
    }

    /// One metric of the daemon's `/metrics`.
    async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let mut response =
            self.client.get(&self.metrics_url).send().await.map_err(|e| anyhow::anyhow!("/metrics: {e}"))?;
        let body = response.body().limit(64 << 20).await?;
        metric(&String::from_utf8_lossy(&body), name).with_context(|| format!("no {name} in /metrics"))
    }

    /// Waits until the daemon answers `/metrics` and has a subscribed socket.
    async fn ready(&self, sim: &SimThread) -> anyhow::Result<()> {
        sim.until_listening(true, Duration::from_secs(30)).await?;
        let give_up = Instant::now() + Duration::from_secs(30);
        while self.metric("timelined_events_received_total").await.is_err() {
            anyhow::ensure!(Instant::now() < give_up, "the daemon's /metrics never answered");
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Samples RSS every second for `period`; returns (first, max).
    async fn sample(&self, period: Duration) -> anyhow::Result<(u64, u64)> {
        let first = self.rss()?;
        let mut max = first;
        let end = Instant::now() + period;
        while Instant::now() < end {
            actix_rt::time::sleep(Duration::from_secs(1)).await;
            max = max.max(self.rss()?);
        }
        Ok((first, max))
    }
}

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open_conversations(options: &Options) -> anyhow::Result<()> {
    let sim = SimThread::start(SimConfig { generate: false, ..SimConfig::default() }).await?;
    let scratch = Scratch::new("memory")?;
    let daemon = ChildDaemon::spawn(&sim.sim().base_url(), &scratch, "", &state_toml(options))?;
    daemon.ready(&sim).await?;
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let (empty, _) = daemon.sample(Duration::from_secs(3)).await?;
    println!(
        "open conversations (held: customer, IVR/flow, queue and agent joined; IVR and queue left); \
         checkpoint every {}:",
        options
            .checkpoint_interval
            .map_or_else(|| "30s (shipped)".to_owned(), |t| humantime::format_duration(t).to_string())
    );
    println!("  none open: RSS {}", mib(empty));
    let queues: Vec<String> = DEFAULT_QUEUES.iter().map(|q| q.to_string()).collect();
    let (mut open, mut events) = (0u64, 0u64);
    let mut previous = (0u64, empty);
    let mut worst: f64 = 0.0;
    for (index, &level) in options.conversations.iter().enumerate() {
        anyhow::ensure!(level > open, "--conversations must increase");
        let counted = Arc::new(AtomicU64::new(0));
        let frames =
            prerender::held(options.seed + index as u64, &queues, level - open, Shape::QueueSnapshots).map({
                let counted = counted.clone();
                move |frame| {
                    counted.fetch_add(u64::from(frame.events), Ordering::Relaxed);
                    frame.text
                }
            });
        let loading = Instant::now();
        let sent = actix_rt::spawn(
            sim.sim().stream(frames, options.load_rate).context("the daemon is not listening")?,
        );
        let give_up = loading + options.load_timeout;
        let mut reported = loading;
        let mut held: u64;
        let loaded = loop {
            actix_rt::time::sleep(Duration::from_millis(200)).await;
            let received = daemon.metric("timelined_events_received_total").await? as u64;
            held = daemon.metric("timelined_open_conversations").await? as u64;
            if sent.is_finished() && received >= events + counted.load(Ordering::Relaxed) && held >= level {
                break true;
            }
            if Instant::now() > give_up {
                break false;
            }
            if reported.elapsed() >= Duration::from_secs(10) {
                reported = Instant::now();
                println!(
                    "    … {:.0} s: {held} open, RSS {}",
                    loading.elapsed().as_secs_f64(),
                    mib(daemon.rss()?)
                );
            }
        };
        if !loaded {
            let rss = daemon.rss()?;
            println!(
                "  {level:>8} open: NOT REACHED — after {:.0} s the daemon holds {held} (RSS {}, {:.0} B per open \
                 conversation); it no longer keeps up (see BENCHMARKS.md, figure 3)",
                options.load_timeout.as_secs_f64(),
                mib(rss),
                bytes_per_conversation(empty, rss, held)
            );
            worst = f64::INFINITY;
            break;
        }
        let report = sent.await.context("stream task")?;
        anyhow::ensure!(report.is_some_and(|s| !s.interrupted), "the stream to the daemon broke off");
        events += counted.load(Ordering::Relaxed);
        open = level;
        let loaded_in = loading.elapsed();
        actix_rt::time::sleep(Duration::from_secs(2)).await;
        let (settled, max) = daemon.sample(options.hold).await?;
        let per = bytes_per_conversation(empty, settled, open);
        let per_max = bytes_per_conversation(empty, max, open);
        let marginal = bytes_per_conversation(previous.1, settled, open - previous.0);
        worst = worst.max(per).max(per_max);
        println!(
            "  {open:>8} open: RSS {:>10} (max {:>10} over {:?}) → {per:>6.0} B per open conversation \
             (max {per_max:.0} B; {marginal:.0} B each since the previous level); loaded in {:.1} s",
            mib(settled),
            mib(max),
            options.hold,
            loaded_in.as_secs_f64()
        );
        previous = (open, settled);
    }
    if worst.is_infinite() {
        println!(
            "result: not every level was reached — target ≤ {TARGET_BYTES_PER_CONVERSATION:.0} B: NOT MET"
        );
    } else {
        println!(
            "result: up to {worst:.0} B per open conversation — target ≤ {TARGET_BYTES_PER_CONVERSATION:.0} B: {}",
            verdict(worst <= TARGET_BYTES_PER_CONVERSATION)
        );
    }
    drop(daemon);
    sim.stop().await;
    Ok(())
}

async fn churn(options: &Options) -> anyhow::Result<()> {
    let sim = SimThread::start(SimConfig {
        rate: options.churn_rate,
        concurrency: options.churn_open,
        seed: options.seed,
        ..SimConfig::default()
    })
    .await?;
    let scratch = Scratch::new("churn")?;
    let pipeline = format!("tombstone_ttl = \"{}\"", humantime::format_duration(options.tombstone_ttl));
    let daemon = ChildDaemon::spawn(&sim.sim().base_url(), &scratch, &pipeline, &state_toml(options))?;
    daemon.ready(&sim).await?;
    println!(
        "churn: {} transitions/s, {} conversations in flight, checkpoint every {}, tombstone_ttl {}",
        options.churn_rate,
        options.churn_open,
        options
            .checkpoint_interval
            .map_or_else(|| "30s (shipped)".to_owned(), |t| humantime::format_duration(t).to_string()),
        humantime::format_duration(options.tombstone_ttl)
    );
    // The generator staggers its first conversations; wait until the number open has
    // stopped growing (within 2 % over 30 s), at most 15 minutes — and until the first
    // tombstones expire: until then each closed conversation adds one (by design: they
    // are kept for `tombstone_ttl`), and memory grows towards its steady state.
    let warming = Instant::now();
    let tombstones_settle = options.tombstone_ttl;
    let mut last = daemon.metric("timelined_open_conversations").await?;
    loop {
        actix_rt::time::sleep(Duration::from_secs(30)).await;
        let now = daemon.metric("timelined_open_conversations").await?;
        let open_settled = (now - last).abs() <= 0.02 * last.max(1.0);
        if (open_settled && warming.elapsed() > tombstones_settle)
            || warming.elapsed() > Duration::from_secs(900)
        {
            break;
        }
        last = now;
    }
    println!("  settled after {:.0} s at {last:.0} open conversations", warming.elapsed().as_secs_f64());
    let closed_before = closed(&daemon).await?;
    let mut samples = Vec::new();
    let started = Instant::now();
    let length = Duration::from_secs_f64(options.minutes * 60.0);
    while started.elapsed() <= length {
        let rss = daemon.rss()?;
        let open = daemon.metric("timelined_open_conversations").await?;
        println!("  {:>6.0} s  RSS {:>10}  open {open:>7.0}", started.elapsed().as_secs_f64(), mib(rss));
        samples.push(rss);
        actix_rt::time::sleep(CHURN_SAMPLE_EVERY).await;
    }
    let closed_during = closed(&daemon).await? - closed_before;
    drop(daemon);
    sim.stop().await;
    let flat = Flatness::of(&samples).context("no samples")?;
    println!(
        "  {closed_during:.0} conversations closed in {:.1} min ({:.0}/s)",
        options.minutes,
        closed_during / (options.minutes * 60.0)
    );
    println!(
        "result: RSS start {} end {} min {} max {} median {} — worst {:.1} % from the median, drift {:+.1} % \
         (last tenth against first); target ±{:.0} %: {}",
        mib(flat.start),
        mib(flat.end),
        mib(flat.min),
        mib(flat.max),
        mib(flat.median),
        flat.worst_deviation * 100.0,
        flat.drift * 100.0,
        TARGET_FLATNESS * 100.0,
        verdict(flat.is_flat_within(TARGET_FLATNESS))
    );
    Ok(())
}

fn state_toml(options: &Options) -> String {
    options
        .checkpoint_interval
        .map(|every| format!("checkpoint_interval = \"{}\"", humantime::format_duration(every)))
        .unwrap_or_default()
}

async fn closed(daemon: &ChildDaemon) -> anyhow::Result<f64> {
    // Both series of timelines_closed_total{complete}: read them from the text.
    let mut response =
        daemon.client.get(&daemon.metrics_url).send().await.map_err(|e| anyhow::anyhow!("/metrics: {e}"))?;
    let body = response.body().limit(64 << 20).await?;
    let text = String::from_utf8_lossy(&body);
    Ok(["true", "false"]
        .iter()
        .filter_map(|complete| {
            metric(&text, &format!("timelined_timelines_closed_total{{complete=\"{complete}\"}}"))
        })
        .sum())
}
