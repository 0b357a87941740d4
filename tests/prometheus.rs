//! What an ops team's Prometheus sees: a real `prometheus` (Debian's package) scrapes the
//! daemon's `/metrics` on loopback every second while the simulator overflows its timeline
//! mailbox, and the drop count comes back through Prometheus' query API; `promtool check metrics` finds nothing wrong with the text we serve.
//!
//! Needs the `prometheus` and `promtool` binaries (`.ci/run` installs them); without them
//! the test says so and passes — except under CI (`CI` set), where a skip would hide that
//! the check never ran.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use timelined::sim::SimConfig;
use timelined_actors::metrics::{DropReason, Stage};
use timelined_actors::wire::Dialect;

fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(binary)).find(|candidate| candidate.is_file())
}

/// Kills Prometheus when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    // Bound and released: Prometheus binds it a moment later (it fails loudly if taken).
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_prometheus(binary: &Path, dir: &Path, target: std::net::SocketAddr) -> (Running, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: timelined\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    (Running(child), format!("http://127.0.0.1:{port}"))
}

/// The value of an instant query's single sample, if Prometheus has one yet.
async fn query_one(base: &str, query: &str) -> Option<String> {
    let mut response = awc::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query)])
        .ok()?
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["data"]["result"][0]["value"][1].as_str().map(str::to_owned)
}

#[actix_rt::test]
async fn prometheus_reads_the_daemons_drop_count_and_promtool_finds_the_text_clean() {
    let (Some(prometheus), Some(promtool)) = (find("prometheus"), find("promtool")) else {
        let why = "prometheus/promtool not installed (apt-get install prometheus; .ci/run does)";
        assert!(std::env::var_os("CI").is_none(), "CI must run this test: {why}");
        eprintln!("skipped: {why}");
        return;
    };
    // The daemon fed by the simulator, its timeline mailbox too small for the burst.
    let fixture = Fixture::start(
        // As fast as it can play: a burst far larger than the mailbox, however fast the host.
        SimConfig { seed: 71, conversations: 300, rate: 0, ..SimConfig::default() },
        Dialect::Notifications,
        |settings| {
            settings.pipeline.timeline_mailbox = 2;
            // Read regardless, so that the burst overflows rather than being held back.
            settings.pipeline.pause_reading = false;
        },
    )
    .await;
    fixture.finish().await;
    let dropped = fixture.daemon.metrics.dropped(Stage::Timeline, DropReason::MailboxFull);
    assert!(dropped > 0, "the overflow was forced");
    let address = fixture.daemon.http_addr;

    // promtool lints the text a curl (or promtool itself) would get.
    let mut scraped = awc::Client::new().get(format!("http://{address}/metrics")).send().await.unwrap();
    let text = scraped.body().limit(1 << 20).await.unwrap();
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(&text).unwrap();
    let checked = check.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");

    let dir = tempfile::tempdir().unwrap();
    let (_prometheus, base) = start_prometheus(&prometheus, dir.path(), address);
    let query = r#"timelined_events_dropped_total{stage="timeline",reason="mailbox_full"}"#;
    let want = dropped.to_string();
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        if query_one(&base, query).await.as_deref() == Some(want.as_str()) {
            break;
        }
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        assert!(Instant::now() < give_up, "Prometheus never returned {want} for {query}; its log:\n{log}");
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
    // Every drop series is there from the start, at 0, so rate() alerts work on the first drop.
    let quiet = r#"timelined_events_dropped_total{stage="feed",reason="receiver_gone"}"#;
    assert_eq!(query_one(&base, quiet).await.as_deref(), Some("0"));
    assert_eq!(query_one(&base, r#"up{job="timelined"}"#).await.as_deref(), Some("1"));
    fixture.stop().await;
}
