//! What each subcommand does once its arguments are parsed: the process-level glue
//! (runtime, logging, signals) around the library's daemon, simulator and replay.

use crate::daemon::{timeline_rules, Daemon};
use crate::settings::{LogFormat, LogLevel, Settings, SinkSettings};
use crate::sim::{self, SimConfig};
use crate::{systemd, telemetry};
use slog::info;
use std::process::ExitCode;
use std::time::Duration;
use timelined_actors::internal_events::printable;
use timelined_actors::secret::Secret;
use timelined_actors::wire::Dialect;
use tokio::signal::unix::{Signal, SignalKind};

/// The signals the daemon answers: SIGTERM and SIGINT stop it, SIGHUP reopens its sinks.
/// Installed before anything else starts, so that none of them ends the process with the
/// default action (no save) while it is starting.
struct Signals {
    terminate: Option<Signal>,
    interrupt: Option<Signal>,
    hangup: Option<Signal>,
}

enum Received {
    Stop,
    Reopen,
}

impl Signals {
    fn install() -> Signals {
        let install = |kind| tokio::signal::unix::signal(kind).ok();
        Signals {
            terminate: install(SignalKind::terminate()),
            interrupt: install(SignalKind::interrupt()),
            hangup: install(SignalKind::hangup()),
        }
    }

    async fn next(&mut self) -> Received {
        async fn on(signal: &mut Option<Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = on(&mut self.terminate) => Received::Stop,
            _ = on(&mut self.interrupt) => Received::Stop,
            _ = on(&mut self.hangup) => Received::Reopen,
        }
    }

    /// Resolves on SIGTERM or SIGINT (SIGHUP is taken and ignored).
    async fn termination(&mut self) {
        while let Received::Reopen = self.next().await {}
    }
}

/// rustls needs one crypto provider for the process, chosen before the first TLS
/// connection: ring, the one built in. Installing it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let (log, _guard) = telemetry::logger(settings.log.format, settings.log.level);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let mut signals = Signals::install();
        let daemon = Daemon::start(&settings, log.clone())?;
        systemd::ready("started; connecting", &log);
        let watchdog = systemd::spawn_watchdog(daemon.probe(), log.clone());
        while let Received::Reopen = signals.next().await {
            info!(log, "SIGHUP: reopening sinks");
            daemon.reopen_sinks().await;
        }
        info!(log, "termination signal received");
        systemd::stopping(&log);
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        daemon.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The settings the demo runs the daemon with: everything pointed at the simulator.
pub fn demo_settings(sim_base: &str, queues: &[String], dialect: Dialect) -> Settings {
    let mut settings = Settings::default();
    settings.genesys.client_id = "timelined-demo".into();
    settings.genesys.client_secret = Some(Secret::new("demo-secret"));
    settings.genesys.api_base = Some(sim_base.to_owned());
    settings.genesys.login_base = Some(sim_base.to_owned());
    settings.genesys.dialect = dialect;
    settings.subscription.queues = queues.to_vec();
    settings.log.metrics_interval = Duration::from_secs(10);
    settings.state.directory = None;
    // Any free port: two demos (or tests) side by side must not collide.
    settings.http.listen = "127.0.0.1:0".into();
    settings
}

pub fn demo(duration: Option<Duration>, rate: u32, seed: u64, dialect: Dialect) -> anyhow::Result<ExitCode> {
    let (log, _guard) = telemetry::logger(LogFormat::Text, LogLevel::Info);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let mut signals = Signals::install();
        let config = SimConfig { seed, rate, reorder: true, duplicates: true, ..SimConfig::default() };
        let queues = config.queues.clone();
        let simulator = sim::start(config).await?;
        info!(log, "simulator listening"; "url" => simulator.base_url());
        let settings = demo_settings(&simulator.base_url(), &queues, dialect);
        let daemon = Daemon::start(&settings, log.clone())?;
        match duration {
            Some(duration) => {
                tokio::select! {
                    _ = actix_rt::time::sleep(duration) => {}
                    _ = signals.termination() => {}
                }
            }
            None => signals.termination().await,
        }
        daemon.shutdown().await;
        simulator.stop().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn simulate(config: SimConfig) -> anyhow::Result<ExitCode> {
    let (log, _guard) = telemetry::logger(LogFormat::Text, LogLevel::Info);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let mut signals = Signals::install();
        let simulator = sim::start(config).await?;
        info!(log, "simulator listening"; "url" => simulator.base_url());
        signals.termination().await;
        info!(log, "simulator stopping"; "frames_sent" => simulator.frames_sent());
        simulator.stop().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn replay(input: impl std::io::BufRead, dialect: Dialect) -> anyhow::Result<ExitCode> {
    let settings = Settings::default();
    let rules = timeline_rules(&settings);
    let report = crate::replay::replay(input, dialect, rules, settings.pipeline.max_frame_bytes)?;
    for (line, reason, detail) in &report.bad_lines {
        eprintln!("line {line}: {} ({})", reason.as_str(), printable(detail));
    }
    eprintln!(
        "replayed {} frames: {} timelines, {} bad lines",
        report.frames,
        report.timelines.len(),
        report.bad_lines.len()
    );
    println!("{}", serde_json::to_string_pretty(&report.timelines)?);
    Ok(ExitCode::SUCCESS)
}

/// A JSONL sink at `path`, for tests and the demo.
pub fn jsonl_sink(path: std::path::PathBuf) -> SinkSettings {
    SinkSettings::jsonl(path)
}
