//! Restarts of the real binary in the middle of a stream. SIGTERM: what is complete is
//! written, open timelines are saved, exit 0; the next start resumes and backfills them.
//! SIGKILL: the next start resumes from the last checkpoint, and what was closed after it
//! (already in the sink) is not written again. Either way no timeline is lost or written
//! twice, and every resumed one closes equal to the truth, marked healed.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use timelined::sim::{SimConfig, SimHandle, DEFAULT_QUEUES};

const BINARY: &str = env!("CARGO_BIN_EXE_timelined");

fn write_config(dir: &Path, sim: &SimHandle) -> std::path::PathBuf {
    let config = dir.join("timelined.toml");
    let queues: Vec<String> = DEFAULT_QUEUES.iter().map(|q| format!("{q:?}")).collect();
    std::fs::write(
        &config,
        format!(
            "[genesys]\nclient_id = \"restart\"\napi_base = \"{base}\"\nlogin_base = \"{base}\"\n\
             [subscription]\nqueues = [{queues}]\n[pipeline]\nclose_after = \"300ms\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[state]\ndirectory = {state:?}\ncheckpoint_interval = \"200ms\"\n\
             [[sinks]]\nkind = \"jsonl\"\npath = {sink:?}\n",
            base = sim.base_url(),
            queues = queues.join(", "),
            state = dir.join("state"),
            sink = dir.join("timelines.jsonl"),
        ),
    )
    .unwrap();
    config
}

/// A daemon process, killed when the test ends however it ends (no orphan left running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path, log: &Path) -> Running {
    Running(
        Command::new(BINARY)
            .args(["run", "--config", config.to_str().unwrap()])
            .env("TIMELINED__GENESYS__CLIENT_SECRET", "restart-secret")
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

async fn wait_exit(Running(child): &mut Running) -> std::process::ExitStatus {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            return exit;
        }
        assert!(Instant::now() < give_up, "the daemon did not exit");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn terminate(daemon: &mut Running) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]).status().unwrap();
    wait_exit(daemon).await
}

fn saved_open(dir: &Path) -> usize {
    let path = dir.join("state").join("open-timelines.json");
    let Ok(text) = std::fs::read_to_string(path) else { return 0 };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["open"].as_array().map_or(0, Vec::len)
}

/// Play 60 conversations, interrupt the first daemon with `interrupt` once some have
/// closed, finish with a second one; check the sink against the truth.
async fn interrupted_run(seed: u64, kill: bool) -> (usize, String) {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(SimConfig {
        seed,
        conversations: 60,
        rate: 300,
        reorder: true,
        duplicates: true,
        ..SimConfig::default()
    })
    .await;
    let config = write_config(dir.path(), &sim);
    let sink = dir.path().join("timelines.jsonl");
    let log = dir.path().join("stderr.log");

    let mut first = start(&config, &log);
    wait_until("some timelines closed by the first daemon", Duration::from_secs(30), || {
        read_jsonl(&sink).len() >= 10 && saved_open(dir.path()) > 0
    })
    .await;
    assert!(!sim.finished(), "interrupted mid-stream");
    if kill {
        first.0.kill().unwrap();
        wait_exit(&mut first).await;
    } else {
        let exit = terminate(&mut first).await;
        assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
        assert!(saved_open(dir.path()) > 0, "open timelines were saved");
    }

    let mut second = start(&config, &log);
    wait_until("the second daemon to close every conversation", Duration::from_secs(60), || {
        sim.finished() && sink_holds_all(&sink, &sim.truth())
    })
    .await;
    assert!(terminate(&mut second).await.success());
    let healed =
        assert_equal_or_healed(if kill { "sigkill" } else { "sigterm" }, &read_jsonl(&sink), &sim.truth());
    sim.stop().await;
    (healed, std::fs::read_to_string(&log).unwrap())
}

#[actix_rt::test]
async fn sigterm_mid_stream_saves_and_the_next_start_resumes_without_loss_or_duplicates() {
    let (healed, log) = interrupted_run(31, false).await;
    assert!(healed > 0, "resumed timelines were backfilled and healed");
    assert!(log.contains("open timelines saved for the next start"), "{log}");
    assert!(log.contains("resumed open timelines"), "{log}");
}

#[actix_rt::test]
async fn sigkill_restart_resumes_from_the_checkpoint_without_loss_or_duplicates() {
    let (healed, log) = interrupted_run(32, true).await;
    assert!(healed > 0, "resumed timelines were backfilled and healed");
    assert!(log.contains("resumed open timelines"), "{log}");
}
