//! `timelined bench <figure>`: the benchmark harness (its figures are in BENCHMARKS.md). Each
//! figure is one command that starts the simulator and the daemon on loopback, drives
//! them, and prints what it measured with the machine it ran on and whether the issue's
//! target was met.
//!
//! - `throughput` — max sustained events/s with no drops, the drops above it, and a bare
//!   awc + serde_json client on the same frames in the same run (`throughput.rs`,
//!   `baseline.rs`).
//! - `latency` — simulator send → consumer publish at a fixed rate (`latency.rs`).
//! - `memory` — resident memory per open conversation, and flat RSS under churn
//!   (`memory.rs`; the daemon runs as a child process so only its memory is counted).
//! - `reconnect` — socket kill → events flowing again (`reconnect.rs`).
//!
//! The simulator always runs on its own arbiter (thread), never on the daemon's: playback
//! and the daemon's actors must not share one event loop. The arithmetic is in `stats.rs`
//! and unit-tested; the benchmarks themselves run only from this subcommand, never from
//! `cargo test`.

mod baseline;
mod latency;
mod memory;
mod reconnect;
pub mod stats;
mod throughput;

use crate::cli::{demo_settings, jsonl_sink};
use crate::settings::{LogFormat, LogLevel, Settings};
use crate::sim::{self, SimConfig, SimHandle};
use crate::telemetry::{self, LogGuard};
use actix::Arbiter;
use anyhow::Context as _;
use slog::Logger;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use timelined_actors::wire::Dialect;

/// One figure of BENCHMARKS.md.
#[derive(clap::Subcommand)]
pub enum Figure {
    /// Max sustained events/s with no drops, the drop rate above it, and the bare
    /// awc + serde_json baseline on the same frames.
    Throughput(throughput::Options),
    /// Simulator send → consumer publish, p50/p99/max, at a fixed rate.
    Latency(latency::Options),
    /// Resident memory per open conversation, and RSS over a churn run.
    Memory(memory::Options),
    /// Socket kill → events flowing again, p50/p99 over many kills.
    Reconnect(reconnect::Options),
}

/// Runs one figure and prints it.
pub fn run(figure: Figure) -> anyhow::Result<ExitCode> {
    let machine = Machine::describe();
    println!("command: {}", command_line());
    println!("machine: {machine}");
    if cfg!(debug_assertions) {
        println!("WARNING: a debug build; figures are only meaningful from `cargo run --release -- bench …`");
    }
    println!("load average at start: {}", load_average());
    let system = actix_rt::System::new();
    system.block_on(async move {
        match figure {
            Figure::Throughput(options) => throughput::run(options).await,
            Figure::Latency(options) => latency::run(options).await,
            Figure::Memory(options) => memory::run(options).await,
            Figure::Reconnect(options) => reconnect::run(options).await,
        }
    })?;
    // Anything else busy on two cores moves these figures: say so next to them.
    println!("load average at end: {}", load_average());
    Ok(ExitCode::SUCCESS)
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn command_line() -> String {
    let mut words: Vec<String> = std::env::args().collect();
    if let Some(program) = words.first_mut() {
        *program = "timelined".to_owned();
    }
    words.join(" ")
}

/// What the figures were taken on.
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub memory: String,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split(':').nth(1)))
            .map_or_else(|| "unknown CPU".to_owned(), |model| model.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or_else(|| "unknown memory".to_owned(), |kb| format!("{:.1} GiB", kb as f64 / 1048576.0));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown kernel".to_owned(), |k| k.trim().to_owned());
        Machine { cpus: std::thread::available_parallelism().map_or(1, |n| n.get()), model, memory, kernel }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nproc {}, {}, {} RAM, Linux {}", self.cpus, self.model, self.memory, self.kernel)
    }
}

/// A simulator on its own arbiter (thread).
pub(crate) struct SimThread {
    arbiter: Arbiter,
    sim: Option<SimHandle>,
}

impl SimThread {
    pub async fn start(config: SimConfig) -> anyhow::Result<SimThread> {
        let arbiter = Arbiter::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        arbiter.spawn(async move {
            let _ = tx.send(sim::start(config).await);
        });
        let sim = rx.await.context("the simulator thread ended")?.context("starting the simulator")?;
        Ok(SimThread { arbiter, sim: Some(sim) })
    }

    pub fn sim(&self) -> &SimHandle {
        self.sim.as_ref().expect("a running simulator")
    }

    /// Waits until somebody listens (or no longer does, with `listening` false).
    pub async fn until_listening(&self, listening: bool, within: Duration) -> anyhow::Result<()> {
        let what = if listening { "a client to subscribe" } else { "the client to go away" };
        wait_for(what, within, || self.sim().listening() == listening).await
    }

    pub async fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.arbiter.spawn(async move {
                sim.stop().await;
                let _ = tx.send(());
            });
            let _ = rx.await;
        }
        self.arbiter.stop();
    }
}

/// Polls `condition` every millisecond until it holds; an error naming `what` at the deadline.
pub(crate) async fn wait_for(
    what: &str,
    within: Duration,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let give_up = Instant::now() + within;
    while !condition() {
        if Instant::now() > give_up {
            anyhow::bail!("timed out after {within:?} waiting for {what}");
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// A scratch directory for sinks, logs and configs, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> anyhow::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("timelined-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A logger writing to `path` as `timelined run` writes to stderr (`telemetry::logger`), so
/// that the log consumer costs what it costs in production when stderr is a file. Keep
/// the guard alive.
pub(crate) fn file_logger(path: &Path) -> anyhow::Result<(Logger, LogGuard)> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(telemetry::logger_to(Box::new(file), LogFormat::Text, LogLevel::Info))
}

/// The daemon's settings for a benchmark: defaults (mailboxes, backoff, reorder window)
/// pointed at `sim`, with a JSONL sink in `scratch`; each figure changes only what it says.
pub(crate) fn daemon_settings(sim: &SimHandle, dialect: Dialect, scratch: &Scratch) -> Settings {
    let queues: Vec<String> = sim::DEFAULT_QUEUES.iter().map(|q| q.to_string()).collect();
    let mut settings = demo_settings(&sim.base_url(), &queues, dialect);
    settings.sinks = vec![jsonl_sink(scratch.path("timelines.jsonl"))];
    settings
}

/// Whether a measured figure met its target, for the report lines.
pub(crate) fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "NOT MET"
    }
}
