//! The real binary as a child process against the simulator: its config, signals, exit,
//! log, and its HTTP side (`/metrics`, `/readyz`).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use timelined::sim::{SimHandle, DEFAULT_QUEUES};

pub const BINARY: &str = env!("CARGO_BIN_EXE_timelined");

/// A loopback port nobody uses now (bound and released: the daemon binds it a moment later
/// and fails loudly if it was taken meanwhile).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What a test's config says beyond the simulator's address.
pub struct ConfigSpec {
    /// `state.directory` (none: nothing saved).
    pub state: Option<PathBuf>,
    pub checkpoint_interval: &'static str,
    /// The JSONL sink, and extra keys of its table (`fsync = "always"`, …).
    pub sink: PathBuf,
    pub sink_keys: String,
    /// Whole extra tables (`[pipeline]` …).
    pub sections: String,
    pub http: SocketAddr,
}

impl ConfigSpec {
    pub fn new(dir: &Path) -> ConfigSpec {
        ConfigSpec {
            state: Some(dir.join("state")),
            checkpoint_interval: "200ms",
            sink: dir.join("timelines.jsonl"),
            sink_keys: String::new(),
            sections: "[pipeline]\nclose_after = \"300ms\"\n".into(),
            http: SocketAddr::from(([127, 0, 0, 1], free_port())),
        }
    }

    pub fn write(&self, dir: &Path, sim: &SimHandle) -> PathBuf {
        let config = dir.join("timelined.toml");
        let queues: Vec<String> = DEFAULT_QUEUES.iter().map(|q| format!("{q:?}")).collect();
        let state = match &self.state {
            Some(state) => format!(
                "[state]\ndirectory = {state:?}\ncheckpoint_interval = {:?}\n",
                self.checkpoint_interval
            ),
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "[genesys]\nclient_id = \"test\"\napi_base = \"{base}\"\nlogin_base = \"{base}\"\n\
                 [subscription]\nqueues = [{queues}]\n{sections}\
                 [http]\nlisten = \"{http}\"\n{state}\
                 [[sinks]]\nkind = \"jsonl\"\npath = {sink:?}\n{sink_keys}",
                base = sim.base_url(),
                queues = queues.join(", "),
                sections = self.sections,
                http = self.http,
                sink = self.sink,
                sink_keys = self.sink_keys,
            ),
        )
        .unwrap();
        config
    }
}

/// A daemon process, killed when the test ends however it ends (no orphan left running).
pub struct DaemonProcess {
    child: Child,
    pub http: SocketAddr,
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DaemonProcess {
    /// Start `timelined run`, its stderr appended to `log`.
    pub fn start(config: &Path, log: &Path, http: SocketAddr) -> DaemonProcess {
        let child = Command::new(BINARY)
            .args(["run", "--config", config.to_str().unwrap()])
            .env("TIMELINED__GENESYS__CLIENT_SECRET", "test-secret")
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
            .spawn()
            .unwrap();
        DaemonProcess { child, http }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send `signal` (`TERM`, `HUP`, `KILL`, …).
    pub fn signal(&self, signal: &str) {
        let sent =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -{signal} {}", self.pid());
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let give_up = Instant::now() + within;
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(Instant::now() < give_up, "the daemon did not exit within {within:?}");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, and its exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(60)).await
    }

    /// `GET path`: the status and the body, or `None` if it does not answer (yet).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = std::net::TcpStream::connect_timeout(&self.http, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.http).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        Some((status, body))
    }

    /// A sample of `/metrics` by its name and labels as printed
    /// (`timelined_output_errors_total{output="sink"}`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics")?;
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

/// Every `key=value` of the log lines containing `message`, in order (text format:
/// `… INFO message, key: value, key: value`).
pub fn log_values(log: &str, message: &str, key: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(message))
        .filter_map(|line| {
            let start = line.find(&format!("{key}: "))? + key.len() + 2;
            Some(line[start..].split(',').next()?.trim().to_owned())
        })
        .collect()
}

/// Whether this test may do what needs root (mount a filesystem). Not root: skipped with a
/// note — except under CI, where a skip would hide that the check never ran.
pub fn can_mount(test: &str) -> bool {
    let root = is_root();
    if !root {
        assert!(std::env::var_os("CI").is_none(), "CI must run {test}: it needs root to mount a filesystem");
        eprintln!("{test}: skipped (needs root to mount a filesystem)");
    }
    root
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A tmpfs of `size` mounted at `at` for the test's life (unmounted when dropped).
pub struct Tmpfs {
    pub at: PathBuf,
}

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs", at.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs at {}", at.display());
        Tmpfs { at: at.to_path_buf() }
    }

    /// Remount read-only (or read-write again).
    pub fn read_only(&self, read_only: bool) {
        let option = if read_only { "remount,ro" } else { "remount,rw" };
        let status = Command::new("mount").args(["-o", option, self.at.to_str().unwrap()]).status().unwrap();
        assert!(status.success(), "mount -o {option} {}", self.at.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// A temporary directory that is kept — and named on stderr — when the test fails, so the
/// daemon's log and files in it can be read afterwards.
pub struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch(Some(tempfile::tempdir().unwrap()))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().map(|dir| dir.path()).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!("test failed: its files are kept in {}", dir.keep().display());
            }
        }
    }
}
