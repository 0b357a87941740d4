//! Typed settings: serde defaults, then the TOML file, then
//! `TIMELINED__SECTION__KEY` environment overrides, through the `config` crate. Unknown
//! keys are errors; every error names the key (and the file). The client secret comes
//! only from `$CREDENTIALS_DIRECTORY/client_secret`, `genesys.client_secret_file` or
//! `TIMELINED__GENESYS__CLIENT_SECRET`, and is never printed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};
use std::time::Duration;
use timelined_actors::secret::Secret;
use timelined_actors::storage::jsonl::Fsync;
use timelined_actors::subscription::{Interest, Shard, ShardError, MAX_CHANNELS, MAX_TOPICS_PER_CHANNEL};
use timelined_actors::wire::Dialect;
use zeroize::Zeroizing;

/// Genesys Cloud's region domains; another needs explicit `api_base` and `login_base`.
pub const REGIONS: &[&str] = &[
    "mypurecloud.com",
    "usw2.pure.cloud",
    "use2.us-gov-pure.cloud",
    "cac1.pure.cloud",
    "mypurecloud.ie",
    "euw2.pure.cloud",
    "mypurecloud.de",
    "euc2.pure.cloud",
    "aps1.pure.cloud",
    "mypurecloud.jp",
    "apne2.pure.cloud",
    "apne3.pure.cloud",
    "apse1.pure.cloud",
    "mypurecloud.com.au",
    "sae1.pure.cloud",
    "mec1.pure.cloud",
    "mxc1.pure.cloud",
];

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub genesys: GenesysSettings,
    pub subscription: SubscriptionSettings,
    pub pipeline: PipelineSettings,
    pub heartbeat: HeartbeatSettings,
    pub reconnect: ReconnectSettings,
    pub backfill: BackfillSettings,
    pub state: StateSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub sinks: Vec<SinkSettings>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenesysSettings {
    pub region: String,
    pub dialect: Dialect,
    pub client_id: String,
    /// Only from the environment (`TIMELINED__GENESYS__CLIENT_SECRET`) or a file; a TOML
    /// value is refused.
    #[serde(serialize_with = "redacted")]
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub api_base: Option<String>,
    pub login_base: Option<String>,
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Refresh the access token this long before it expires.
    #[serde(with = "duration")]
    pub token_refresh_margin: Duration,
    /// The longest `Retry-After` honoured on any REST call; a server asking for more is
    /// asked again after this long.
    #[serde(with = "duration")]
    pub max_retry_after: Duration,
}

impl Default for GenesysSettings {
    fn default() -> Self {
        GenesysSettings {
            region: "mypurecloud.com".into(),
            dialect: Dialect::Notifications,
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            api_base: None,
            login_base: None,
            request_timeout: Duration::from_secs(10),
            token_refresh_margin: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(15 * 60),
        }
    }
}

impl GenesysSettings {
    pub fn api_base(&self) -> String {
        self.api_base.clone().unwrap_or_else(|| format!("https://api.{}", self.region))
    }

    pub fn login_base(&self) -> String {
        self.login_base.clone().unwrap_or_else(|| format!("https://login.{}", self.region))
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionSettings {
    pub queues: Vec<String>,
    pub users: Vec<String>,
    pub conversations: Vec<String>,
    pub media: Vec<String>,
    /// `"k/N"`: this instance is k of N (from 0) and takes only its share of the ids
    /// above (see [`Shard`]). Unset: all of them.
    pub shard: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSettings {
    /// Mailbox of the TimelineActor (frames' events waiting to be applied).
    pub timeline_mailbox: usize,
    /// Events queued for the TimelineActor at most, whatever the messages: one 8 MiB frame
    /// can be ~170k events. Past it a message is dropped and counted like a full mailbox.
    pub timeline_mailbox_events: u64,
    /// Mailbox of each ConsumerActor (published joins/leaves and closed timelines).
    pub consumer_mailbox: usize,
    /// Stop reading the socket while the TimelineActor's mailbox is three-quarters full,
    /// until it is half empty: the network holds a burst back instead of the mailbox
    /// dropping it. Off: a full mailbox drops (counted) and the gap is backfilled.
    pub pause_reading: bool,
    #[serde(with = "duration")]
    pub reorder_window: Duration,
    #[serde(with = "duration")]
    pub close_after: Duration,
    /// A conversation with no event for this long is checked once over REST: its end may
    /// have been missed with no other trace.
    #[serde(with = "duration")]
    pub verify_after: Duration,
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    #[serde(with = "duration")]
    pub tombstone_ttl: Duration,
    /// How often the TimelineActor checks for closings, evictions and quiet conversations
    /// (entries are published when their reorder window ends, not on the tick).
    #[serde(with = "duration")]
    pub tick: Duration,
    pub max_frame_bytes: usize,
    /// After an outage, conversations first seen within this long are presumed to have
    /// begun while nobody listened, and are backfilled. Off by default: the search of the
    /// outage window (conversation-details query) finds them; turn on where that query is
    /// not permitted and the stream carries events rather than whole snapshots.
    #[serde(with = "duration")]
    pub gap_grace: Duration,
    /// Events older than this (stream or backfill) are rejected as bad input, counted in
    /// `malformed_frames_total{reason="time_out_of_window"}`.
    #[serde(with = "long_duration")]
    pub max_event_age: Duration,
    /// Events further ahead of this host's clock are rejected likewise.
    #[serde(with = "duration")]
    pub max_event_lead: Duration,
    /// Participants kept per conversation (at most 65535); further ones are refused,
    /// counted in `limits_enforced_total{limit="participants"}`, and the timeline closes
    /// incomplete.
    pub max_participants: usize,
    /// Open timelines kept; past it (checked every tick) the least recently active are
    /// closed incomplete, counted in `limits_enforced_total{limit="open_conversations"}`.
    pub max_open_conversations: usize,
    /// Distinct purposes, media, disconnect types, user and queue ids kept for the life of
    /// the process, and the longest kept; past either a value is left out of the timeline
    /// and counted in `interned_strings_refused_total`.
    pub max_interned_strings: usize,
    pub max_interned_bytes: usize,
}

impl PipelineSettings {
    pub fn time_window(&self) -> timelined_actors::event::TimeWindow {
        timelined_actors::event::TimeWindow { max_age: self.max_event_age, max_lead: self.max_event_lead }
    }
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            timeline_mailbox: 4096,
            timeline_mailbox_events: 500_000,
            consumer_mailbox: 8192,
            pause_reading: true,
            reorder_window: Duration::from_millis(200),
            close_after: Duration::from_secs(2),
            verify_after: Duration::from_secs(15 * 60),
            idle_timeout: Duration::from_secs(4 * 3600),
            tombstone_ttl: Duration::from_secs(3600),
            tick: Duration::from_millis(20),
            max_frame_bytes: 8 << 20,
            gap_grace: Duration::ZERO,
            max_event_age: timelined_actors::event::TimeWindow::default().max_age,
            max_event_lead: timelined_actors::event::TimeWindow::default().max_lead,
            max_participants: timelined_actors::timeline::TimelineRules::default().max_participants,
            max_open_conversations: timelined_actors::timeline::TimelineRules::default()
                .max_open_conversations,
            max_interned_strings: timelined_actors::compact::SymbolLimits::default().count,
            max_interned_bytes: timelined_actors::compact::SymbolLimits::default().bytes,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatSettings {
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    /// No frame at all (data, heartbeat, pong) for this long → reconnect.
    #[serde(with = "duration")]
    pub stale_timeout: Duration,
}

impl Default for HeartbeatSettings {
    fn default() -> Self {
        HeartbeatSettings { ping_interval: Duration::from_secs(15), stale_timeout: Duration::from_secs(45) }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectSettings {
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// After a planned rotation's new socket is open, the old one keeps streaming this
    /// long (frames already on their way still arrive; duplicates are dropped).
    #[serde(with = "duration")]
    pub rotation_overlap: Duration,
}

impl ReconnectSettings {
    pub fn backoff(&self) -> timelined_actors::backoff::BackoffPolicy {
        timelined_actors::backoff::BackoffPolicy { initial: self.initial_backoff, max: self.max_backoff }
    }
}

impl Default for ReconnectSettings {
    fn default() -> Self {
        ReconnectSettings {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            rotation_overlap: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackfillSettings {
    /// REST calls in flight at once (`GET /api/v2/conversations/{id}`).
    pub concurrency: usize,
    /// Tries per conversation before its gap is left unhealed.
    pub max_attempts: u32,
    /// After an outage, conversations that started up to this long before it are searched
    /// for too: a queue sees a conversation only once it reaches it (after an IVR, say).
    #[serde(with = "duration")]
    pub search_lead: Duration,
}

impl Default for BackfillSettings {
    fn default() -> Self {
        BackfillSettings { concurrency: 4, max_attempts: 6, search_lead: Duration::from_secs(3600) }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSettings {
    /// Open timelines are saved here on SIGTERM and at every checkpoint, and resumed from
    /// here on start. Unset = nothing saved (open timelines close incomplete on exit).
    pub directory: Option<PathBuf>,
    #[serde(with = "duration")]
    pub checkpoint_interval: Duration,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            directory: Some(PathBuf::from("/var/lib/timelined")),
            checkpoint_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: String,
    /// Timeline updates the live feed keeps for clients that resume (`Last-Event-ID`).
    pub feed_capacity: usize,
    /// `/feed` streams served at once; one more is answered 503 and counted in
    /// `limits_enforced_total{limit="feed_clients"}`.
    pub max_feed_clients: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { listen: "127.0.0.1:9464".into(), feed_capacity: 10_000, max_feed_clients: 64 }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warning,
    Error,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: LogLevel,
    /// One metrics summary line this often.
    #[serde(with = "duration")]
    pub metrics_interval: Duration,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: LogLevel::Info,
            metrics_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Jsonl,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    pub kind: SinkKind,
    pub path: PathBuf,
    /// When a written line is fsynced; a closed timeline counts as written (and leaves the
    /// checkpoint) only then.
    #[serde(default)]
    pub fsync: Fsync,
    /// Bytes of closed timelines held in memory while the sink cannot be written.
    #[serde(default = "default_hold_bytes")]
    pub hold_bytes: u64,
    /// Beyond `hold_bytes`, held timelines are spilled to the state directory, up to this.
    #[serde(default = "default_spill_bytes")]
    pub spill_bytes: u64,
}

impl SinkSettings {
    /// A JSONL sink at `path` with the default durability settings.
    pub fn jsonl(path: PathBuf) -> Self {
        SinkSettings {
            kind: SinkKind::Jsonl,
            path,
            fsync: Fsync::default(),
            hold_bytes: default_hold_bytes(),
            spill_bytes: default_spill_bytes(),
        }
    }
}

fn default_hold_bytes() -> u64 {
    64 << 20
}

fn default_spill_bytes() -> u64 {
    1 << 30
}

/// A settings error: what is wrong, with the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    // The cause is part of the one-line message, not a separate `caused by`.
    #[error("{file}: {error}")]
    Load { file: String, error: config::ConfigError },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("{key}: cannot read {path}: {error}")]
    SecretFile { key: String, path: String, error: std::io::Error },
}

/// `path`, if only its owner can read it and the owner is us or root: a secret that
/// other users can read is refused rather than used.
fn private_file(key: &str, path: &Path) -> Result<PathBuf, SettingsError> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).map_err(|error| SettingsError::SecretFile {
        key: key.into(),
        path: path.display().to_string(),
        error,
    })?;
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(invalid(
            key,
            format!(
                "{} is readable by group or others (mode {mode:03o}); make it private: chmod 600",
                path.display()
            ),
        ));
    }
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me && metadata.uid() != 0 {
        return Err(invalid(
            key,
            format!("{} is owned by uid {}, not by this user ({me}) or root", path.display(), metadata.uid()),
        ));
    }
    Ok(path.to_path_buf())
}

fn invalid(key: &str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key: key.into(), message: message.into() }
}

const ENV_PREFIX: &str = "TIMELINED";
const LIST_KEYS: &[&str] =
    &["subscription.queues", "subscription.users", "subscription.conversations", "subscription.media"];

impl Settings {
    /// Load from a TOML file and the process environment, resolve the secret, validate.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let file = path.display().to_string();
        let load_error = |error| SettingsError::Load { file: file.clone(), error };
        let file_only = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .build()
            .map_err(load_error)?;
        if file_only.get::<config::Value>("genesys.client_secret").is_ok() {
            return Err(invalid(
                "genesys.client_secret",
                "a secret must not be written in the config file; use systemd LoadCredential=client_secret:…, \
                 genesys.client_secret_file, or TIMELINED__GENESYS__CLIENT_SECRET",
            ));
        }
        let mut environment = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        let settings: Settings = config::Config::builder()
            .add_source(file_only)
            .add_source(environment)
            .build()
            .map_err(load_error)?
            .try_deserialize()
            .map_err(load_error)?;
        settings.resolved(std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from))
    }

    /// Fill the secret from its sources (systemd credential first) and validate.
    pub fn resolved(mut self, credentials_directory: Option<PathBuf>) -> Result<Settings, SettingsError> {
        let from_credentials =
            credentials_directory.map(|dir| dir.join("client_secret")).filter(|p| p.exists());
        // systemd's credential directory is private to the service; a file named in the
        // config is checked for who else could read it.
        let secret_file = match from_credentials {
            Some(path) => Some(path),
            None => match &self.genesys.client_secret_file {
                Some(path) => Some(private_file("genesys.client_secret_file", path)?),
                None => None,
            },
        };
        if let Some(path) = secret_file {
            let text = std::fs::read_to_string(&path).map(Zeroizing::new).map_err(|error| {
                SettingsError::SecretFile {
                    key: "genesys.client_secret_file".into(),
                    path: path.display().to_string(),
                    error,
                }
            })?;
            self.genesys.client_secret = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
        }
        self.validate()?;
        Ok(self)
    }

    /// Every key checked; the first problem is the error, naming its key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_genesys()?;
        self.validate_subscription()?;
        self.validate_sizes()?;
        self.validate_durations()?;
        self.validate_outputs()
    }

    /// Credentials, region and the service's base URLs.
    fn validate_genesys(&self) -> Result<(), SettingsError> {
        let genesys = &self.genesys;
        if genesys.client_id.trim().is_empty() {
            return Err(invalid("genesys.client_id", "must be set (the OAuth client-credentials client id)"));
        }
        if genesys.client_secret.as_ref().is_none_or(Secret::is_empty) {
            return Err(invalid(
                "genesys.client_secret",
                "no client secret: provide $CREDENTIALS_DIRECTORY/client_secret (systemd LoadCredential), \
                 genesys.client_secret_file, or TIMELINED__GENESYS__CLIENT_SECRET",
            ));
        }
        let overridden = genesys.api_base.is_some() && genesys.login_base.is_some();
        if !overridden && !REGIONS.contains(&genesys.region.as_str()) {
            return Err(invalid(
                "genesys.region",
                format!(
                    "unknown region {:?}; one of {} (or set api_base and login_base)",
                    genesys.region,
                    REGIONS.join(", ")
                ),
            ));
        }
        for (key, base) in
            [("genesys.api_base", &genesys.api_base), ("genesys.login_base", &genesys.login_base)]
        {
            if let Some(base) = base {
                if !(base.starts_with("http://") || base.starts_with("https://")) {
                    return Err(invalid(key, format!("{base:?} is not an http(s) URL")));
                }
                timelined_actors::http::transport_allowed(base).map_err(|why| invalid(key, why))?;
            }
        }
        Ok(())
    }

    /// Something to subscribe to, within one channel's topic limit.
    fn validate_subscription(&self) -> Result<(), SettingsError> {
        let genesys = &self.genesys;
        let subscription = &self.subscription;
        if genesys.dialect == Dialect::Notifications
            && subscription.queues.is_empty()
            && subscription.users.is_empty()
            && subscription.conversations.is_empty()
        {
            return Err(invalid(
                "subscription.queues",
                "nothing to subscribe to: list queue ids (or subscription.users / subscription.conversations)",
            ));
        }
        let channels = self.channels()?;
        if genesys.dialect == Dialect::Notifications && channels.iter().all(|c| c.topic_count() == 0) {
            return Err(invalid(
                "subscription.shard",
                "this instance's share of the configured ids is empty: fewer ids than instances",
            ));
        }
        if channels.len() > MAX_CHANNELS {
            let topics: usize = channels.iter().map(Interest::topic_count).sum();
            return Err(invalid(
                "subscription",
                format!(
                    "{topics} topics need {} channels; Genesys allows {MAX_CHANNELS} channels of \
                     {MAX_TOPICS_PER_CHANNEL} topics per OAuth client: spread them over instances \
                     with subscription.shard, each with its own client",
                    channels.len()
                ),
            ));
        }
        Ok(())
    }

    /// This instance's share of the configured ids (`subscription.shard`).
    pub fn shard(&self) -> Result<Shard, SettingsError> {
        match &self.subscription.shard {
            None => Ok(Shard::WHOLE),
            Some(text) => text
                .parse()
                .map_err(|error: ShardError| invalid("subscription.shard", format!("{text:?}: {error}"))),
        }
    }

    /// What each channel subscribes to: this instance's share, spread over channels of at
    /// most [`MAX_TOPICS_PER_CHANNEL`] topics. The analytics stream is one socket with a
    /// filter, never split.
    pub fn channels(&self) -> Result<Vec<Interest>, SettingsError> {
        let subscription = &self.subscription;
        let interest = Interest {
            queues: subscription.queues.clone(),
            users: subscription.users.clone(),
            conversations: subscription.conversations.clone(),
            media: subscription.media.clone(),
        }
        .shard(self.shard()?);
        Ok(match self.genesys.dialect {
            Dialect::Notifications => interest.split(MAX_TOPICS_PER_CHANNEL),
            Dialect::AnalyticsStream => vec![interest],
        })
    }

    /// Capacities and bounds: none may be 0.
    fn validate_sizes(&self) -> Result<(), SettingsError> {
        let pipeline = &self.pipeline;
        for (key, value) in [
            ("pipeline.timeline_mailbox", pipeline.timeline_mailbox),
            (
                "pipeline.timeline_mailbox_events",
                usize::try_from(pipeline.timeline_mailbox_events).unwrap_or(usize::MAX),
            ),
            ("pipeline.consumer_mailbox", pipeline.consumer_mailbox),
            ("pipeline.max_frame_bytes", pipeline.max_frame_bytes),
            ("backfill.concurrency", self.backfill.concurrency),
            ("http.feed_capacity", self.http.feed_capacity),
            ("http.max_feed_clients", self.http.max_feed_clients),
            ("backfill.max_attempts", self.backfill.max_attempts as usize),
            ("pipeline.max_participants", pipeline.max_participants),
            ("pipeline.max_open_conversations", pipeline.max_open_conversations),
            ("pipeline.max_interned_strings", pipeline.max_interned_strings),
            ("pipeline.max_interned_bytes", pipeline.max_interned_bytes),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if pipeline.max_participants > usize::from(u16::MAX) {
            return Err(invalid("pipeline.max_participants", "must be at most 65535"));
        }
        Ok(())
    }

    /// Intervals and timeouts: none may be 0, and those that must follow another do.
    fn validate_durations(&self) -> Result<(), SettingsError> {
        let pipeline = &self.pipeline;
        for (key, value) in [
            ("pipeline.tick", pipeline.tick),
            ("pipeline.close_after", pipeline.close_after),
            ("pipeline.idle_timeout", pipeline.idle_timeout),
            ("pipeline.verify_after", pipeline.verify_after),
            ("reconnect.rotation_overlap", self.reconnect.rotation_overlap),
            ("heartbeat.ping_interval", self.heartbeat.ping_interval),
            ("heartbeat.stale_timeout", self.heartbeat.stale_timeout),
            ("reconnect.initial_backoff", self.reconnect.initial_backoff),
            ("reconnect.connect_timeout", self.reconnect.connect_timeout),
            ("genesys.request_timeout", self.genesys.request_timeout),
            ("genesys.max_retry_after", self.genesys.max_retry_after),
            ("state.checkpoint_interval", self.state.checkpoint_interval),
            ("log.metrics_interval", self.log.metrics_interval),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be longer than 0s"));
            }
        }
        if self.heartbeat.stale_timeout <= self.heartbeat.ping_interval {
            return Err(invalid("heartbeat.stale_timeout", "must be longer than heartbeat.ping_interval"));
        }
        if self.reconnect.max_backoff < self.reconnect.initial_backoff {
            return Err(invalid(
                "reconnect.max_backoff",
                "must not be shorter than reconnect.initial_backoff",
            ));
        }
        Ok(())
    }

    /// Sinks and the HTTP listener.
    fn validate_outputs(&self) -> Result<(), SettingsError> {
        for (index, sink) in self.sinks.iter().enumerate() {
            if let Some(first) = self.sinks[..index].iter().position(|other| other.path == sink.path) {
                return Err(invalid(
                    &format!("sinks[{index}].path"),
                    format!("the same file as sinks[{first}]"),
                ));
            }
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("http.listen", format!("{:?} is not an address:port", self.http.listen)));
        }
        Ok(())
    }

    /// The effective settings as TOML, the secret redacted.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

fn redacted<S: Serializer>(secret: &Option<Secret>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("[redacted]"),
        None => serializer.serialize_str("[not set]"),
    }
}

/// Durations as humans write them: `"30s"`, `"200ms"`, `"4h"`.
mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    /// No setting needs more; a longer one would overflow the clock it is added to.
    const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        let duration = humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}); write it like \"30s\" or \"200ms\""
            ))
        })?;
        if duration > MAX {
            return Err(serde::de::Error::custom(format!("duration {text:?} is longer than a year")));
        }
        Ok(duration)
    }
}

/// Durations of years (`"3650d"`), for bounds on event times: they meet only checked
/// calendar arithmetic, never a clock, so up to a century is accepted.
mod long_duration {
    use super::*;

    const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// In whole days when it is (`"3650d"`, not humantime's months and years of averages).
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let seconds = value.as_secs();
        if value.subsec_nanos() == 0 && seconds.is_multiple_of(86_400) && seconds > 0 {
            serializer.serialize_str(&format!("{}d", seconds / 86_400))
        } else {
            duration::serialize(value, serializer)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        let duration = humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {text:?} ({e}); write it like \"3650d\""))
        })?;
        if duration > MAX {
            return Err(serde::de::Error::custom(format!("duration {text:?} is longer than a century")));
        }
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, toml: &str) -> PathBuf {
        let path = dir.join("timelined.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    const MINIMAL: &str = "[genesys]\nclient_id = \"abc\"\nclient_secret_file = \"SECRET\"\n[subscription]\nqueues = [\"q1\"]\n";

    fn minimal(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
        std::fs::set_permissions(dir.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
        write(dir, &MINIMAL.replace("SECRET", &dir.join("secret").display().to_string()))
    }

    #[test]
    fn defaults_file_and_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(&minimal(dir.path())).unwrap();
        assert_eq!(settings.genesys.client_secret.as_ref().map(Secret::expose), Some("s3cret"));
        assert_eq!(settings.genesys.api_base(), "https://api.mypurecloud.com");
        assert_eq!(settings.pipeline.reorder_window, Duration::from_millis(200));
        let printed = settings.to_toml();
        assert!(printed.contains("[redacted]") && !printed.contains("s3cret"), "{printed}");
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[pipeline]\nreorder_windw = \"1s\"\n");
        let error = Settings::load(&path).unwrap_err().to_string();
        assert!(error.contains("reorder_windw"), "{error}");
    }

    #[test]
    fn a_secret_in_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[genesys]\nclient_id = \"a\"\nclient_secret = \"oops\"\n");
        let error = Settings::load(&path).unwrap_err().to_string();
        assert!(error.starts_with("genesys.client_secret:") && !error.contains("oops"), "{error}");
    }

    #[test]
    fn zero_capacity_and_bad_duration_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let base = minimal(dir.path());
        let text = std::fs::read_to_string(&base).unwrap();
        std::fs::write(&base, format!("{text}[pipeline]\nconsumer_mailbox = 0\n")).unwrap();
        let error = Settings::load(&base).unwrap_err().to_string();
        assert!(error.starts_with("pipeline.consumer_mailbox:"), "{error}");
        std::fs::write(&base, format!("{text}[heartbeat]\nping_interval = \"often\"\n")).unwrap();
        let error = Settings::load(&base).unwrap_err().to_string();
        assert!(error.contains("ping_interval") && error.contains("often"), "{error}");
    }

    #[test]
    fn a_zero_metrics_interval_and_an_absurd_duration_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let base = minimal(dir.path());
        let text = std::fs::read_to_string(&base).unwrap();
        std::fs::write(&base, format!("{text}[log]\nmetrics_interval = \"0s\"\n")).unwrap();
        let error = Settings::load(&base).unwrap_err().to_string();
        assert!(error.starts_with("log.metrics_interval:"), "{error}");
        std::fs::write(&base, format!("{text}[pipeline]\nidle_timeout = \"5000years\"\n")).unwrap();
        let error = Settings::load(&base).unwrap_err().to_string();
        assert!(error.contains("idle_timeout") && error.contains("longer than a year"), "{error}");
    }

    /// Each zero duration is refused naming its key, as the config file spells it.
    #[test]
    fn every_zero_duration_is_named_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let valid = Settings::load(&minimal(dir.path())).unwrap();
        type SetToZero = fn(&mut Settings);
        let zeroes: [(&str, SetToZero); 13] = [
            ("pipeline.tick", |s| s.pipeline.tick = Duration::ZERO),
            ("pipeline.close_after", |s| s.pipeline.close_after = Duration::ZERO),
            ("pipeline.idle_timeout", |s| s.pipeline.idle_timeout = Duration::ZERO),
            ("pipeline.verify_after", |s| s.pipeline.verify_after = Duration::ZERO),
            ("reconnect.rotation_overlap", |s| s.reconnect.rotation_overlap = Duration::ZERO),
            ("heartbeat.ping_interval", |s| s.heartbeat.ping_interval = Duration::ZERO),
            ("heartbeat.stale_timeout", |s| s.heartbeat.stale_timeout = Duration::ZERO),
            ("reconnect.initial_backoff", |s| s.reconnect.initial_backoff = Duration::ZERO),
            ("reconnect.connect_timeout", |s| s.reconnect.connect_timeout = Duration::ZERO),
            ("genesys.request_timeout", |s| s.genesys.request_timeout = Duration::ZERO),
            ("genesys.max_retry_after", |s| s.genesys.max_retry_after = Duration::ZERO),
            ("state.checkpoint_interval", |s| s.state.checkpoint_interval = Duration::ZERO),
            ("log.metrics_interval", |s| s.log.metrics_interval = Duration::ZERO),
        ];
        let rendered = valid.to_toml();
        for (key, zero) in zeroes {
            let (section, name) = key.split_once('.').unwrap();
            assert!(
                rendered.contains(&format!("[{section}]")) && rendered.contains(&format!("\n{name} = ")),
                "{key} is a key of the file:\n{rendered}"
            );
            let mut settings = valid.clone();
            zero(&mut settings);
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.starts_with(&format!("{key}:")), "{key}: {error}");
        }
    }

    /// 20 channels of 1,000 topics are the most one OAuth client holds: one topic more is
    /// refused naming the key, as are a malformed shard and a share with nothing in it.
    #[test]
    fn topics_past_twenty_channels_and_bad_shards_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::load(&minimal(dir.path())).unwrap();
        settings.subscription.queues = (0..20_000).map(|i| format!("q{i}")).collect();
        assert_eq!(settings.channels().unwrap().len(), 20);
        settings.validate().unwrap();
        settings.subscription.users = vec!["one-more".into()];
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.starts_with("subscription: 20001 topics need 21 channels"), "{error}");
        // Half of them in this instance: fits again.
        settings.subscription.shard = Some("1/2".into());
        settings.validate().unwrap();
        assert!(settings.channels().unwrap().len() <= 11);
        settings.subscription.shard = Some("2/2".into());
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.starts_with("subscription.shard: \"2/2\": k must be below N"), "{error}");
        let mut one = Settings::load(&minimal(dir.path())).unwrap();
        let owner = Shard::owner(2, "q1");
        one.subscription.shard = Some(format!("{}/2", 1 - owner));
        let error = one.validate().unwrap_err().to_string();
        assert!(error.starts_with("subscription.shard: this instance's share"), "{error}");
        one.subscription.shard = Some(format!("{owner}/2"));
        one.validate().unwrap();
    }

    #[test]
    fn credentials_directory_wins() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("creds");
        std::fs::create_dir(&credentials).unwrap();
        std::fs::write(credentials.join("client_secret"), "from-systemd").unwrap();
        let mut settings = Settings::default();
        settings.genesys.client_id = "id".into();
        settings.subscription.queues = vec!["q".into()];
        let settings = settings.resolved(Some(credentials)).unwrap();
        assert_eq!(settings.genesys.client_secret.as_ref().map(Secret::expose), Some("from-systemd"));
    }
}
