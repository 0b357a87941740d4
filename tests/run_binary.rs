//! `timelined run` as a real process against the in-process simulator on loopback: it
//! logs joins, leaves and closed timelines; the client secret, the access tokens and the
//! channel id never appear in what it writes; SIGTERM ends it with exit code 0; transparent
//! huge pages are off for it.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;
use timelined::sim::{SimConfig, DEFAULT_QUEUES};

const BINARY: &str = env!("CARGO_BIN_EXE_timelined");
const SECRET: &str = "run-test-secret-9d3c";

fn contains_sim_token(text: &str) -> bool {
    // The simulator's tokens are `sim-` and 32 hex digits.
    text.match_indices("sim-").any(|(at, _)| {
        let rest = &text[at + 4..];
        rest.len() >= 32 && rest[..32].chars().all(|c| c.is_ascii_hexdigit())
    })
}

#[actix_rt::test]
async fn run_logs_timelines_and_never_a_secret() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(SimConfig { seed: 3, conversations: 30, rate: 2000, ..SimConfig::default() }).await;
    let sink = dir.path().join("timelines.jsonl");
    let config = dir.path().join("timelined.toml");
    let queues: Vec<String> = DEFAULT_QUEUES.iter().map(|q| format!("{q:?}")).collect();
    std::fs::write(
        &config,
        format!(
            "[genesys]\nclient_id = \"run-test\"\napi_base = \"{base}\"\nlogin_base = \"{base}\"\n\
             [subscription]\nqueues = [{queues}]\n[pipeline]\nclose_after = \"300ms\"\n\
             [log]\nlevel = \"debug\"\n[http]\nlisten = \"127.0.0.1:0\"\n[state]\ndirectory = {state:?}\n\
             [[sinks]]\nkind = \"jsonl\"\npath = {sink:?}\n",
            state = dir.path().join("state"),
            base = sim.base_url(),
            queues = queues.join(", "),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(BINARY)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("TIMELINED__GENESYS__CLIENT_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();

    let expected = 30;
    wait_until("the daemon to close every conversation", Duration::from_secs(60), || {
        sim.finished() && read_jsonl(&sink).len() >= expected
    })
    .await;
    // mimalloc asks for huge pages, and khugepaged then grows RSS by time (BENCHMARKS.md,
    // figure 3): the daemon turns them off for itself.
    let process_status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    assert!(
        process_status.lines().any(|line| line.split_whitespace().eq(["THP_enabled:", "0"])),
        "transparent huge pages are on for the daemon:\n{process_status}"
    );
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < give_up, "the daemon did not stop on SIGTERM");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    sim.stop().await;

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(exit.success(), "exit {exit:?}; log:\n{log}");
    assert!(log.contains("participant joined") && log.contains("participant left"), "{log}");
    assert_eq!(log.matches("timeline closed").count(), expected, "one summary line per conversation");
    assert!(!log.contains(SECRET), "the client secret leaked into the log");
    assert!(!contains_sim_token(&log), "an access token leaked into the log");
    assert!(!log.contains("streaming-0-"), "the channel id leaked into the log");
}
