//! The `timelined` command line: parse arguments, call into the library.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use timelined::settings::Settings;
use timelined::{cli, sim};
use timelined_actors::wire::Dialect;

// glibc's malloc serialised the pipeline's threads on its arena locks (a buffer allocated on
// the socket's thread and freed on a consumer's): perf showed ~10 % of the main thread
// waiting in `__lll_lock_wait_private`. mimalloc frees cross-thread without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks for transparent huge pages on its arena (`MADV_HUGEPAGE`), and khugepaged
/// then makes every 2 MiB range the heap ever touched resident in full: the churn benchmark's
/// RSS stepped up by a third ~11 minutes in, the time khugepaged took to reach the arena.
/// Off for the whole process, so that resident memory follows what is allocated.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: transparent huge pages stay on (prctl: {error}); resident memory may step up");
    }
}

#[derive(Parser)]
#[command(
    name = "timelined",
    version,
    about = "Rebuilds Genesys Cloud conversation join/leave timelines in real time"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Simulator and daemon in one process, text logs to the terminal.
    Demo {
        /// Stop after this long (e.g. 30s); endless without it.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Join/leave transitions per second.
        #[arg(long, default_value_t = 60)]
        rate: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value = "notifications")]
        dialect: DialectArg,
    },
    /// Run the embedded Genesys Cloud simulator.
    Simulate {
        #[arg(long, default_value = "127.0.0.1:8900")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Conversations to play; 0 = endless.
        #[arg(long, default_value_t = 0)]
        conversations: u64,
        /// Join/leave transitions per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Queue ids to route conversations through
        /// [default: 5b1c0d8e-…, 9f4a7c2e-… — see DEFAULT_QUEUES in src/sim/mod.rs]
        #[arg(long, value_delimiter = ',')]
        queues: Vec<String>,
        /// Write every frame sent, one JSON per line (input for `replay`).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Deliver frames slightly out of order.
        #[arg(long)]
        reorder: bool,
        /// Re-send some frames.
        #[arg(long)]
        duplicates: bool,
    },
    /// Frames in, timelines out (one JSON array on stdout).
    Replay {
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        #[arg(long, value_enum, default_value = "notifications")]
        dialect: DialectArg,
    },
    /// Validate the settings and print them (secrets redacted).
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run one benchmark figure against the embedded simulator (BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        figure: timelined::bench::Figure,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DialectArg {
    Notifications,
    AnalyticsStream,
}

impl From<DialectArg> for Dialect {
    fn from(value: DialectArg) -> Self {
        match value {
            DialectArg::Notifications => Dialect::Notifications,
            DialectArg::AnalyticsStream => Dialect::AnalyticsStream,
        }
    }
}

fn main() -> ExitCode {
    without_transparent_huge_pages();
    // A panic anywhere ends the process (systemd restarts it): never a silently dead actor.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        timelined::telemetry::write_out_pending();
        std::process::exit(70);
    }));
    cli::install_crypto_provider();
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::CheckConfig { config } => {
            let settings = Settings::load(&config)?;
            print!("{}", settings.to_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => {
            let settings = Settings::load(&config)?;
            cli::run(settings)
        }
        Command::Demo { duration, rate, seed, dialect } => cli::demo(duration, rate, seed, dialect.into()),
        Command::Simulate { listen, seed, conversations, rate, queues, record, reorder, duplicates } => {
            let mut config = sim::SimConfig {
                listen,
                seed,
                conversations,
                rate,
                record,
                reorder,
                duplicates,
                ..Default::default()
            };
            if !queues.is_empty() {
                config.queues = queues;
            }
            cli::simulate(config)
        }
        Command::Replay { input, dialect } => {
            let file = std::fs::File::open(&input).with_context(|| format!("--input {}", input.display()))?;
            cli::replay(std::io::BufReader::new(file), dialect.into())
        }
        Command::Bench { figure } => timelined::bench::run(figure),
    }
}
