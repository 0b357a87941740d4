//! Restarts of the real binary in the middle of a stream. SIGTERM: what is complete is
//! written, open timelines are saved, exit 0; the next start resumes and backfills them.
//! SIGKILL: the next start resumes from the last checkpoint, and what was closed after it
//! (already in the sink) is not written again. Either way no timeline is lost or written
//! twice, and every resumed one closes equal to the truth, marked healed.

mod common;

use common::process::*;
use common::*;
use std::path::Path;
use std::time::Duration;
use timelined::sim::SimConfig;

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
    let dir = Scratch::new();
    let sim = simulator(SimConfig {
        seed,
        conversations: 60,
        rate: 300,
        reorder: true,
        duplicates: true,
        ..SimConfig::default()
    })
    .await;
    let spec = ConfigSpec::new(dir.path());
    let config = spec.write(dir.path(), &sim);
    let sink = spec.sink.clone();
    let log = dir.path().join("stderr.log");

    let mut first = DaemonProcess::start(&config, &log, spec.http);
    wait_until("some timelines closed by the first daemon", Duration::from_secs(30), || {
        read_jsonl(&sink).len() >= 10 && saved_open(dir.path()) > 0
    })
    .await;
    assert!(!sim.finished(), "interrupted mid-stream");
    if kill {
        first.signal("KILL");
        first.wait_exit(Duration::from_secs(30)).await;
    } else {
        let exit = first.terminate().await;
        assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
        assert!(saved_open(dir.path()) > 0, "open timelines were saved");
    }

    let mut second = DaemonProcess::start(&config, &log, spec.http);
    wait_until("the second daemon to close every conversation", Duration::from_secs(60), || {
        sim.finished() && sink_holds_all(&sink, &sim.truth())
    })
    .await;
    assert!(second.terminate().await.success());
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
