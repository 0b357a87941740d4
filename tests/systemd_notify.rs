//! Under systemd: with `NOTIFY_SOCKET` and `WATCHDOG_USEC` set, the real binary sends
//! `READY=1`, then `WATCHDOG=1` again and again (with a `STATUS=` line), then
//! `STOPPING=1` on SIGTERM, and exits 0.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use timelined::sim::{SimConfig, DEFAULT_QUEUES};

const BINARY: &str = env!("CARGO_BIN_EXE_timelined");

/// Collect datagrams until `done` says the sequence is complete or the deadline passes.
fn receive_until(socket: &UnixDatagram, deadline: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let give_up = Instant::now() + deadline;
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    while !done(&messages) && Instant::now() < give_up {
        if let Ok(n) = socket.recv(&mut buffer) {
            messages.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }
    messages
}

#[actix_rt::test]
async fn ready_then_watchdog_then_stopping() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(SimConfig { seed: 4, rate: 100, ..SimConfig::default() }).await;
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let config = dir.path().join("timelined.toml");
    std::fs::write(
        &config,
        format!(
            "[genesys]\nclient_id = \"sd\"\napi_base = \"{base}\"\nlogin_base = \"{base}\"\n\
             [subscription]\nqueues = [{queue:?}]\n[http]\nlisten = \"127.0.0.1:0\"\n[state]\ndirectory = {state:?}\n",
            base = sim.base_url(),
            queue = DEFAULT_QUEUES[0],
            state = dir.path().join("state"),
        ),
    )
    .unwrap();
    let mut child = Command::new(BINARY)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("TIMELINED__GENESYS__CLIENT_SECRET", "sd-secret")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The receiving blocks; the simulator needs this runtime: receive on a thread.
    let receiver = std::thread::spawn(move || {
        let before_stop = receive_until(&socket, Duration::from_secs(20), |m| {
            m.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3
        });
        (socket, before_stop)
    });
    let give_up = Instant::now() + Duration::from_secs(25);
    while !receiver.is_finished() {
        assert!(Instant::now() < give_up, "no watchdog pings");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let (socket, before_stop) = receiver.join().unwrap();
    assert!(before_stop[0].contains("READY=1"), "READY=1 comes first: {before_stop:?}");
    assert!(before_stop.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3, "{before_stop:?}");
    assert!(
        before_stop.iter().any(|m| m.contains("STATUS=") && m.contains("open conversations")),
        "{before_stop:?}"
    );

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let stopping = std::thread::spawn(move || {
        receive_until(&socket, Duration::from_secs(20), |m| m.iter().any(|m| m.contains("STOPPING=1")))
    });
    let give_up = Instant::now() + Duration::from_secs(25);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < give_up, "no exit after SIGTERM");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    let after = stopping.join().unwrap();
    assert!(after.iter().any(|m| m.contains("STOPPING=1")), "{after:?}");
    assert!(exit.success(), "{exit:?}");
    sim.stop().await;
}
