//! The real binary's command line: bad config is a clear error naming the key and a
//! non-zero exit; `check-config` prints the effective settings with the secret redacted.

use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_timelined");
const SECRET: &str = "cli-test-secret-4f1e";

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("timelined.toml");
    std::fs::write(&path, body).unwrap();
    path
}

const VALID: &str = r#"
[genesys]
client_id = "my-client"
[subscription]
queues = ["q1"]
"#;

fn timelined(args: &[&str], secret: Option<&str>) -> Output {
    let mut command = Command::new(BINARY);
    command.args(args).env_remove("CREDENTIALS_DIRECTORY");
    for (key, _) in std::env::vars() {
        if key.starts_with("TIMELINED__") {
            command.env_remove(key);
        }
    }
    if let Some(secret) = secret {
        command.env("TIMELINED__GENESYS__CLIENT_SECRET", secret);
    }
    command.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_rejected(config_body: &str, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), config_body);
    for subcommand in ["check-config", "run"] {
        let output = timelined(&[subcommand, "--config", config.to_str().unwrap()], Some(SECRET));
        let text = stderr(&output);
        assert!(!output.status.success(), "{subcommand} accepted a bad config: {text}");
        assert!(text.contains(key), "{subcommand}: error does not name {key}: {text}");
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
}

#[test]
fn check_config_prints_effective_settings_with_the_secret_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), VALID);
    let output = timelined(&["check-config", "--config", config.to_str().unwrap()], Some(SECRET));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(text.contains("client_id = \"my-client\""), "{text}");
    assert!(text.contains("reorder_window = \"200ms\""), "defaults are shown: {text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert!(!text.contains(SECRET) && !stderr(&output).contains(SECRET));
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), VALID);
    let output = Command::new(BINARY)
        .args(["check-config", "--config", config.to_str().unwrap()])
        .env("TIMELINED__GENESYS__CLIENT_SECRET", SECRET)
        .env("TIMELINED__PIPELINE__TIMELINE_MAILBOX", "77")
        .env("TIMELINED__SUBSCRIPTION__QUEUES", "qa,qb")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(text.contains("timeline_mailbox = 77"), "{text}");
    assert!(text.contains("\"qa\"") && text.contains("\"qb\""), "{text}");
}

#[test]
fn unknown_key_is_named() {
    assert_rejected(&format!("{VALID}\n[heartbeat]\nping_intervall = \"5s\"\n"), "ping_intervall");
}

#[test]
fn zero_capacity_is_named() {
    assert_rejected(&format!("{VALID}\n[pipeline]\ntimeline_mailbox = 0\n"), "pipeline.timeline_mailbox");
}

#[test]
fn bad_duration_is_named() {
    assert_rejected(&format!("{VALID}\n[pipeline]\nreorder_window = \"soonish\"\n"), "reorder_window");
}

#[test]
fn unknown_dialect_is_named() {
    assert_rejected(&VALID.replace("client_id", "dialect = \"carrier-pigeon\"\nclient_id"), "dialect");
}

#[test]
fn missing_secret_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), VALID);
    let output = timelined(&["check-config", "--config", config.to_str().unwrap()], None);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("genesys.client_secret"), "{}", stderr(&output));
}

#[test]
fn secret_in_the_file_is_refused_without_echoing_it() {
    assert_rejected(
        &VALID.replace("client_id", &format!("client_secret = \"{SECRET}\"\nclient_id")),
        "genesys.client_secret",
    );
}

#[test]
fn missing_config_file_is_named() {
    let output = timelined(&["check-config", "--config", "/nonexistent/timelined.toml"], Some(SECRET));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("/nonexistent/timelined.toml"), "{}", stderr(&output));
}

#[test]
fn the_shipped_config_documents_every_key_with_its_default() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/timelined.toml");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&shipped)
        .unwrap()
        .replace("client_id = \"\"", "client_id = \"x\"")
        .replace("queues = []", "queues = [\"q\"]");
    let config = write_config(dir.path(), &text);
    let output = timelined(&["check-config", "--config", config.to_str().unwrap()], Some(SECRET));
    assert!(output.status.success(), "{}", stderr(&output));
    let effective = String::from_utf8_lossy(&output.stdout);
    for line in effective.lines().filter(|l| {
        l.contains(" = ")
            && !l.contains("client_secret")
            && !l.contains("path =")
            && !l.contains("client_id")
            && !l.starts_with("queues")
    }) {
        assert!(text.contains(line), "config/timelined.toml does not show the default `{line}`");
    }
}

#[test]
fn replay_counts_lines_that_are_not_utf8_or_not_json_and_prints_the_good_timelines() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"good-1","participants":[{"id":"p","purpose":"customer","connectedTime":"2026-01-01T09:00:00.000Z","endTime":"2026-01-01T09:01:00.000Z"}]}}"#;
    let mut capture = Vec::new();
    capture.extend_from_slice(b"\xff\xfe not text\n");
    capture.extend_from_slice(good.as_bytes());
    capture.extend_from_slice(b"\nnot json\n{\"topicName\":\"v2.routing.queues.q.conversations\",\"eventBody\":{\"id\":\"bad\nforged line\n");
    capture.extend_from_slice(format!("{}{}\n", "[".repeat(10_000), "]".repeat(10_000)).as_bytes());
    capture.extend_from_slice(
        good.replace("good-1", "future").replace("2026-01-01T09:0", "9999-12-31T09:0").as_bytes(),
    );
    capture.push(b'\n');
    let path = dir.path().join("capture.jsonl");
    std::fs::write(&path, capture).unwrap();
    let output = timelined(&["replay", "--input", path.to_str().unwrap()], None);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"good-1\""), "the good timeline is printed");
    assert!(text.contains("line 1: invalid_json"), "{text}");
    assert!(text.contains("line 7: time_out_of_window"), "{text}");
    assert!(text.contains("7 frames: 1 timelines, 6 bad lines"), "{text}");
}

fn secret_file(dir: &Path, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("client_secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn a_secret_file_others_can_read_is_refused_naming_the_key() {
    for mode in [0o644, 0o640, 0o604] {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_file(dir.path(), mode);
        let body = VALID.replace("client_id", &format!("client_secret_file = {:?}\nclient_id", path));
        let config = write_config(dir.path(), &body);
        let output = timelined(&["check-config", "--config", config.to_str().unwrap()], None);
        let text = stderr(&output);
        assert!(!output.status.success(), "mode {mode:o} accepted");
        assert!(text.contains("genesys.client_secret_file") && text.contains("chmod 600"), "{text}");
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
}

#[test]
fn a_private_secret_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path(), 0o600);
    let body = VALID.replace("client_id", &format!("client_secret_file = {:?}\nclient_id", path));
    let config = write_config(dir.path(), &body);
    let output = timelined(&["check-config", "--config", config.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SECRET));
}

#[test]
fn a_cleartext_api_base_to_another_host_is_refused_naming_the_key() {
    let overrides =
        "api_base = \"http://api.example.com\"\nlogin_base = \"https://login.example.com\"\nclient_id";
    assert_rejected(&VALID.replace("client_id", overrides), "genesys.api_base");
    let overrides =
        "api_base = \"https://api.example.com\"\nlogin_base = \"http://login.example.com\"\nclient_id";
    assert_rejected(&VALID.replace("client_id", overrides), "genesys.login_base");
}

#[test]
fn a_cleartext_api_base_on_loopback_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = "api_base = \"http://127.0.0.1:8080\"\nlogin_base = \"http://localhost:8080\"\nclient_id";
    let config = write_config(dir.path(), &VALID.replace("client_id", overrides));
    let output = timelined(&["check-config", "--config", config.to_str().unwrap()], Some(SECRET));
    assert!(output.status.success(), "{}", stderr(&output));
}
