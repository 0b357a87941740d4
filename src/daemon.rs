//! Builds the actor system from settings and takes it down in order: the outputs, the
//! token, one TimelineActor (with its backfill worker), and per notification channel a
//! connection, heartbeat and subscription. Every data hop goes through a [`Mailbox`] (one
//! long-lived sender per downstream); control messages are plain actix sends
//! (ARCHITECTURE.md lists who sends what to whom).

use crate::http::feed::{Feed, FeedOutput};
use crate::http::{self, HttpState};
use crate::settings::{Settings, SinkKind};
use actix::dev::channel;
use actix::prelude::*;
use dashmap::DashMap;
use slog::{info, o, Logger};
use std::sync::Arc;
use timelined_actors::backfill::actor::{BackfillActor, BackfillConfig};
use timelined_actors::connection::actor::{ConnectionActor, ConnectionConfig, ConnectionLinks, Shutdown};
use timelined_actors::consumer::actor::{ConsumerActor, Flush, Reopen};
use timelined_actors::consumer::{LogOutput, Output};
use timelined_actors::health::Health;
use timelined_actors::health::Liveness;
use timelined_actors::heartbeat::actor::{HeartbeatActor, HeartbeatConfig};
use timelined_actors::mailbox::{Inbox, Mailbox};
use timelined_actors::metrics::{Metrics, Stage};
use timelined_actors::storage::jsonl::{self, JsonlSink, SinkConfig, SinkLinks};
use timelined_actors::storage::read_back;
use timelined_actors::storage::state_file;
use timelined_actors::storage::state_writer::StateWriter;
use timelined_actors::subscription::actor::{rotation_stagger, SubscriptionActor, SubscriptionConfig};
use timelined_actors::subscription::Interest;
use timelined_actors::timeline::actor::Publication;
use timelined_actors::timeline::actor::{
    Alive, CloseAll, ConsumerLink, Drain, Persist, Settle, TimelineActor, TimelineActorConfig, TimelineLinks,
};
use timelined_actors::timeline::state::{StateStore, Unwritten};
use timelined_actors::timeline::{GapLedger, OpenTimelines, OpenTimelinesView, TimelineBook, TimelineRules};
use timelined_actors::token::actor::{TokenActor, TokenConfig};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("sinks[{index}].path: cannot open {path}: {source}")]
    Sink { index: usize, path: String, source: std::io::Error },
    #[error("genesys.client_secret: not set")]
    NoSecret,
    #[error("http.listen: cannot listen on {listen}: {error}")]
    Http { listen: String, error: std::io::Error },
    #[error("state.directory: cannot create {path}: {error}")]
    StateDirectory { path: String, error: std::io::Error },
    /// Settings `check-config` would refuse (the daemon is started without it in tests).
    #[error("{0}")]
    Settings(Box<crate::settings::SettingsError>),
}

/// A running pipeline.
pub struct Daemon {
    /// Where `/metrics`, `/readyz`, `/timelines` and `/feed` are served.
    pub http_addr: std::net::SocketAddr,
    http: actix_web::dev::ServerHandle,
    pub metrics: Arc<Metrics>,
    /// Every open timeline, read-only for the HTTP side.
    pub timelines: Arc<OpenTimelines>,
    /// Each channel's facts, by channel index.
    pub channels: Vec<Arc<Liveness>>,
    pub health: Arc<Health>,
    probe: Probe,
    saves_state: bool,
    connections: Vec<Addr<ConnectionActor>>,
    timeline: Addr<TimelineActor>,
    consumers: Vec<Addr<ConsumerActor>>,
    /// The JSONL sinks among `consumers` (reopened on SIGHUP).
    sinks: Vec<(String, Addr<ConsumerActor>)>,
    arbiters: Vec<Arbiter>,
    metrics_line: actix_rt::task::JoinHandle<()>,
    log: Logger,
}

/// Each actor's configuration, as the settings describe it.
fn token_config(settings: &Settings, client_secret: timelined_actors::secret::Secret) -> TokenConfig {
    TokenConfig {
        login_base: settings.genesys.login_base(),
        client_id: settings.genesys.client_id.clone(),
        client_secret,
        refresh_margin: settings.genesys.token_refresh_margin,
        request_timeout: settings.genesys.request_timeout,
        backoff: settings.reconnect.backoff(),
        max_retry_after: settings.genesys.max_retry_after,
    }
}

fn backfill_config(settings: &Settings, channels: Vec<Interest>) -> BackfillConfig {
    BackfillConfig {
        api_base: settings.genesys.api_base(),
        channels,
        search_lead: settings.backfill.search_lead,
        request_timeout: settings.genesys.request_timeout,
        concurrency: settings.backfill.concurrency,
        max_attempts: settings.backfill.max_attempts,
        backoff: settings.reconnect.backoff(),
        time_window: settings.pipeline.time_window(),
        max_retry_after: settings.genesys.max_retry_after,
    }
}

fn connection_config(settings: &Settings, channel: usize, resumed: bool) -> ConnectionConfig {
    ConnectionConfig {
        channel,
        max_frame_bytes: settings.pipeline.max_frame_bytes,
        connect_timeout: settings.reconnect.connect_timeout,
        rotation_overlap: settings.reconnect.rotation_overlap,
        backoff: settings.reconnect.backoff(),
        pause_reading_at: settings
            .pipeline
            .pause_reading
            .then(|| (settings.pipeline.timeline_mailbox * 3 / 4).max(1) as i64),
        time_window: settings.pipeline.time_window(),
        resumed,
    }
}

fn heartbeat_config(settings: &Settings) -> HeartbeatConfig {
    HeartbeatConfig {
        ping_interval: settings.heartbeat.ping_interval,
        stale_timeout: settings.heartbeat.stale_timeout,
    }
}

fn subscription_config(
    settings: &Settings,
    channel: usize,
    channels: usize,
    interest: Interest,
) -> SubscriptionConfig {
    let stagger = rotation_stagger(settings.genesys.token_refresh_margin, channels);
    SubscriptionConfig {
        rotation_delay: stagger.saturating_mul(u32::try_from(channel).unwrap_or(u32::MAX)),
        api_base: settings.genesys.api_base(),
        dialect: settings.genesys.dialect,
        interest,
        request_timeout: settings.genesys.request_timeout,
        backoff: settings.reconnect.backoff(),
        max_retry_after: settings.genesys.max_retry_after,
    }
}

/// Bind `http.listen` and serve `state` there.
fn serve_http(
    settings: &Settings,
    state: HttpState,
) -> Result<(std::net::SocketAddr, actix_web::dev::ServerHandle), DaemonError> {
    let listen = &settings.http.listen;
    let address = listen.parse().map_err(|_| DaemonError::Http {
        listen: listen.clone(),
        error: std::io::Error::other("not an address:port"),
    })?;
    http::start(address, state).map_err(|error| DaemonError::Http { listen: listen.clone(), error })
}

/// The daemon's outputs, each a ConsumerActor on its own arbiter with its own mailbox.
struct Outputs {
    consumers: Vec<Addr<ConsumerActor>>,
    /// The JSONL sinks among `consumers`, by path.
    sinks: Vec<(String, Addr<ConsumerActor>)>,
    arbiters: Vec<Arbiter>,
    /// What the TimelineActor publishes to.
    publications: Vec<ConsumerLink>,
}

/// Start every output: the log, the live feed, the benchmarks' extra probes and the
/// configured sinks (the state directory made first: a sink spills into it).
fn start_outputs(
    settings: &Settings,
    extra_outputs: Vec<(Stage, Box<dyn Output>)>,
    feed: &Arc<Feed>,
    unwritten: &Arc<Unwritten>,
    health: &Arc<Health>,
    metrics: &Arc<Metrics>,
    log: &Logger,
) -> Result<Outputs, DaemonError> {
    let mut consumers = Vec::new();
    let mut sinks = Vec::new();
    let mut arbiters = Vec::new();
    let mut publications = Vec::new();
    let consumer_capacity = settings.pipeline.consumer_mailbox;
    // (stage, output, the sink's path if it is a durable sink)
    let mut outputs: Vec<(Stage, Box<dyn Output>, Option<String>)> = vec![
        (Stage::Log, Box::new(LogOutput::new(log.clone())), None),
        (Stage::Feed, Box::new(FeedOutput(feed.clone())), None),
    ];
    outputs.extend(extra_outputs.into_iter().map(|(stage, output)| (stage, output, None)));
    if let Some(directory) = &settings.state.directory {
        std::fs::create_dir_all(directory)
            .map_err(|error| DaemonError::StateDirectory { path: directory.display().to_string(), error })?;
    }
    for (index, sink) in settings.sinks.iter().enumerate() {
        match sink.kind {
            SinkKind::Jsonl => {
                let path = sink.path.display().to_string();
                let config = SinkConfig {
                    path: sink.path.clone(),
                    fsync: sink.fsync,
                    hold_bytes: sink.hold_bytes,
                    spill: settings.state.directory.as_ref().map(|d| jsonl::spill_path(d, &sink.path)),
                    spill_bytes: sink.spill_bytes,
                };
                let links = SinkLinks {
                    unwritten: unwritten.clone(),
                    health: health.clone(),
                    metrics: metrics.clone(),
                    log: log.new(o!("sink" => path.clone())),
                };
                let output = JsonlSink::open(config, links).map_err(|source| DaemonError::Sink {
                    index,
                    path: path.clone(),
                    source,
                })?;
                outputs.push((Stage::Sink, Box::new(output), Some(path)));
            }
        }
    }
    for (stage, output, sink) in outputs {
        let wants_updates = output.wants_updates();
        let inbox = Inbox::new(stage, consumer_capacity, metrics);
        let (arbiter, consumer) = start_consumer(output, inbox.clone(), log);
        arbiters.push(arbiter);
        let mailbox = Mailbox::<Publication>::new(consumer.clone().recipient(), inbox, metrics.clone());
        publications.push(ConsumerLink { mailbox, wants_updates, durable: sink.is_some() });
        if let Some(path) = sink {
            sinks.push((path, consumer.clone()));
        }
        consumers.push(consumer);
    }
    Ok(Outputs { consumers, sinks, arbiters, publications })
}

/// The closing rules the settings describe (replay uses the same).
pub fn timeline_rules(settings: &Settings) -> TimelineRules {
    let pipeline = &settings.pipeline;
    TimelineRules {
        reorder_window: pipeline.reorder_window,
        close_after: pipeline.close_after,
        verify_after: pipeline.verify_after,
        idle_timeout: pipeline.idle_timeout,
        tombstone_ttl: pipeline.tombstone_ttl,
        max_participants: pipeline.max_participants,
        max_open_conversations: pipeline.max_open_conversations,
    }
}

/// Each output on its own arbiter (thread): a sink that blocks on I/O fills its own
/// mailbox — counted — and holds up neither the pipeline nor the other outputs.
fn start_consumer(output: Box<dyn Output>, inbox: Inbox, log: &Logger) -> (Arbiter, Addr<ConsumerActor>) {
    let log = log.clone();
    let arbiter = Arbiter::new();
    let consumer = ConsumerActor::start_in_arbiter(&arbiter.handle(), move |ctx| {
        ctx.set_mailbox_capacity(inbox.capacity());
        ConsumerActor::new(output, inbox, log)
    });
    (arbiter, consumer)
}

impl Daemon {
    /// Start every actor. Must run inside an actix `System`.
    pub fn start(settings: &Settings, log: Logger) -> Result<Daemon, DaemonError> {
        Daemon::start_with(settings, log, Vec::new())
    }

    /// As [`Daemon::start`], with more outputs (each its own ConsumerActor and mailbox,
    /// counted under `stage`): the benchmarks' probes.
    pub fn start_with(
        settings: &Settings,
        log: Logger,
        extra_outputs: Vec<(Stage, Box<dyn Output>)>,
    ) -> Result<Daemon, DaemonError> {
        timelined_actors::compact::Symbol::set_limits(timelined_actors::compact::SymbolLimits {
            count: settings.pipeline.max_interned_strings,
            bytes: settings.pipeline.max_interned_bytes,
        });
        let interests = settings.channels().map_err(|error| DaemonError::Settings(Box::new(error)))?;
        let shared = Shared {
            metrics: Arc::new(Metrics::new()),
            timelines: Arc::new(DashMap::new()),
            channels: interests.iter().map(|_| Arc::new(Liveness::default())).collect(),
            gaps: Arc::new(GapLedger::default()),
            health: Arc::new(Health::default()),
        };
        let secret = settings.genesys.client_secret.clone().ok_or(DaemonError::NoSecret)?;

        let feed = Feed::new(settings.http.feed_capacity);
        let unwritten = Arc::new(Unwritten::new(settings.sinks.len()));
        let Outputs { consumers, sinks, mut arbiters, publications } =
            start_outputs(settings, extra_outputs, &feed, &unwritten, &shared.health, &shared.metrics, &log)?;
        let tokens = TokenActor::new(
            token_config(settings, secret),
            shared.health.clone(),
            shared.metrics.clone(),
            log.new(o!("actor" => "token")),
        )
        .start();
        let stage =
            start_timeline(settings, &shared, interests.clone(), publications, unwritten, &tokens, &log)?;
        let connections = interests
            .into_iter()
            .zip(shared.channels.clone())
            .enumerate()
            .map(|(index, (interest, liveness))| {
                let channel = ChannelSpec { index, interest, liveness };
                start_stream(settings, &shared, channel, &stage, &tokens, &log)
            })
            .collect();
        let TimelineStage { address: timeline, arbiter, .. } = stage;
        arbiters.push(arbiter);
        let Shared { metrics, timelines, channels, health, .. } = shared;

        let metrics_line =
            actix_rt::spawn(metrics_line(metrics.clone(), settings.log.metrics_interval, log.clone()));
        info!(log, "timelined started"; "dialect" => ?settings.genesys.dialect, "api" => settings.genesys.api_base(),
            "channels" => channels.len());
        let stale_timeout = settings.heartbeat.stale_timeout;
        let probe = Probe {
            timeline: timeline.clone(),
            health: health.clone(),
            channels: channels.clone(),
            metrics: metrics.clone(),
            stale_timeout,
        };
        let readiness_probe = probe.clone();
        let (http_addr, http) = serve_http(
            settings,
            HttpState {
                metrics: metrics.clone(),
                timelines: OpenTimelinesView::new(timelines.clone()),
                readiness: Arc::new(move || readiness_probe.readiness()),
                feed,
                feed_clients: Default::default(),
                max_feed_clients: settings.http.max_feed_clients,
            },
        )?;
        info!(log, "http listening"; "address" => %http_addr);
        Ok(Daemon {
            http_addr,
            http,
            metrics,
            timelines,
            channels,
            health,
            probe,
            saves_state: settings.state.directory.is_some(),
            connections,
            timeline,
            consumers,
            sinks,
            arbiters,
            metrics_line,
            log,
        })
    }

    /// `Ok` when subscribed with a fresh socket; else why not (for `/readyz`).
    pub fn readiness(&self) -> Result<(), String> {
        self.probe().readiness()
    }

    /// A cheap, clonable view for the watchdog and the HTTP side.
    pub fn probe(&self) -> Probe {
        self.probe.clone()
    }

    /// Open every JSONL sink's file anew (SIGHUP: logrotate renamed them). Answers whether
    /// all of them could be; one that could not keeps its lines held and retries.
    pub async fn reopen_sinks(&self) -> bool {
        let mut all = true;
        for (path, sink) in &self.sinks {
            match sink.send(Reopen).await {
                Ok(Ok(())) => info!(self.log, "sink reopened"; "path" => path),
                Ok(Err(error)) => {
                    all = false;
                    slog::error!(self.log, "cannot reopen sink; holding its timelines and retrying";
                        "path" => path, "error" => %error);
                }
                Err(_) => {
                    all = false;
                    slog::error!(self.log, "sink consumer gone; cannot reopen"; "path" => path);
                }
            }
        }
        all
    }

    /// Stop reading; publish what is held and write out what is finished; save the rest
    /// for the next start (or, without a state directory or if the save fails, close it
    /// incomplete and write it out); flush every output.
    pub async fn shutdown(self) {
        info!(self.log, "shutting down");
        for connection in &self.connections {
            if connection.send(Shutdown).await.is_err() {
                // Gone already: nothing is being read, which is what Shutdown asks.
                slog::debug!(self.log, "connection actor gone before shutdown");
            }
        }
        if self.saves_state {
            if self.timeline.send(Settle).await.is_err() {
                slog::error!(self.log, "timeline actor gone before shutdown; what it held is lost");
            }
            // Written (and synced) before the save, so the save need not keep them.
            self.deliver_closed().await;
            self.flush_outputs().await;
            match self.timeline.send(Persist).await {
                Ok(Ok(save)) => {
                    if save.superseded_checkpoint {
                        info!(self.log, "shutdown save superseded a checkpoint in flight");
                    }
                    info!(self.log, "open timelines saved for the next start"; "count" => save.saved);
                }
                Ok(Err(error)) => {
                    slog::error!(self.log, "could not save open timelines; writing them to the sinks as incomplete";
                        "error" => %error);
                    self.close_all().await;
                }
                Err(_) => slog::error!(self.log, "timeline actor gone before saving"),
            }
        } else {
            self.close_all().await;
        }
        self.flush_outputs().await;
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        self.http.stop(true).await;
        self.metrics_line.abort();
        log_metrics(&self.metrics, &self.log);
        info!(self.log, "timelined stopped");
    }

    async fn close_all(&self) {
        if self.timeline.send(CloseAll).await.is_err() {
            slog::error!(self.log, "timeline actor gone before closing the open timelines");
        }
        self.deliver_closed().await;
    }

    /// Closed timelines that found a consumer's mailbox full are still waiting: offer
    /// them until every one is taken (or the stop timeout would be near).
    async fn deliver_closed(&self) {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Ok(waiting) = self.timeline.send(Drain).await {
            if waiting == 0 || std::time::Instant::now() > give_up {
                if waiting > 0 {
                    slog::error!(self.log, "closed timelines not delivered before exit"; "count" => waiting);
                }
                break;
            }
            actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn flush_outputs(&self) {
        for consumer in &self.consumers {
            if consumer.send(Flush).await.is_err() {
                slog::error!(self.log, "an output's consumer is gone before its flush");
            }
        }
    }
}

/// What the watchdog, `STATUS=` and `/readyz` read of a running daemon.
#[derive(Clone)]
pub struct Probe {
    timeline: Addr<TimelineActor>,
    health: Arc<Health>,
    channels: Vec<Arc<Liveness>>,
    metrics: Arc<Metrics>,
    stale_timeout: std::time::Duration,
}

impl Probe {
    pub fn readiness(&self) -> Result<(), String> {
        self.health.readiness(&self.channels, self.stale_timeout)
    }

    /// The actor system answers within `within`: the TimelineActor's loop is turning.
    pub async fn alive(&self, within: std::time::Duration) -> bool {
        matches!(actix_rt::time::timeout(within, self.timeline.send(Alive)).await, Ok(Ok(())))
    }

    /// One line for `systemctl status` (`STATUS=`).
    pub fn status_line(&self) -> String {
        let state = match self.readiness() {
            Ok(()) => "streaming".to_owned(),
            Err(why) => format!("not ready: {why}"),
        };
        format!(
            "{state}; {} open conversations, {} closed, {} events dropped",
            self.metrics.open_conversations.get(),
            self.metrics.closed(true) + self.metrics.closed(false),
            self.metrics.dropped_total()
        )
    }
}

/// What the actors and the HTTP side share, made once per daemon.
struct Shared {
    metrics: Arc<Metrics>,
    timelines: Arc<OpenTimelines>,
    /// Each channel's facts, by channel index.
    channels: Vec<Arc<Liveness>>,
    gaps: Arc<GapLedger>,
    health: Arc<Health>,
}

/// The running TimelineActor: its address, the inbox that bounds what the connection
/// sends it, whether it resumed saved timelines, and the thread it runs on.
struct TimelineStage {
    address: Addr<TimelineActor>,
    inbox: Inbox,
    resumed: bool,
    arbiter: Arbiter,
}

/// The TimelineActor on a thread of its own (decoding, on the connection's, and timeline
/// work use both cores), with what it resumed from the state directory, the state writer,
/// and the BackfillActor it asks.
fn start_timeline(
    settings: &Settings,
    shared: &Shared,
    channels: Vec<Interest>,
    publications: Vec<ConsumerLink>,
    unwritten: Arc<Unwritten>,
    tokens: &Addr<TokenActor>,
    log: &Logger,
) -> Result<TimelineStage, DaemonError> {
    // The timeline and the backfill worker need each other's address: the timeline's
    // mailbox exists first, the actor runs once the backfill worker has started.
    let inbox = Inbox::new(Stage::Timeline, settings.pipeline.timeline_mailbox, &shared.metrics)
        .with_weight_capacity(settings.pipeline.timeline_mailbox_events);
    let (sender, receiver) = channel::channel::<TimelineActor>(inbox.capacity());
    let address = Addr::new(sender);
    let channel_count = channels.len();
    let backfill = BackfillActor::new(
        backfill_config(settings, channels),
        tokens.clone(),
        address.clone().recipient(),
        address.clone().recipient(),
        shared.metrics.clone(),
        log.new(o!("actor" => "backfill")),
    )
    .start();
    let book = resume(settings, shared.timelines.clone(), log);
    let resumed = book.open_count() > 0;
    let state = match &settings.state.directory {
        Some(directory) => {
            let writer = StateWriter::start(
                directory.clone(),
                shared.health.clone(),
                shared.metrics.clone(),
                log.new(o!("actor" => "state")),
            )
            .map_err(|error| DaemonError::StateDirectory { path: directory.display().to_string(), error })?;
            Some(Box::new(writer) as Box<dyn StateStore>)
        }
        None => None,
    };
    let actor = TimelineActor::new(
        book,
        inbox.clone(),
        TimelineLinks {
            consumers: publications,
            gaps: shared.gaps.clone(),
            backfill: Some(backfill.clone().recipient()),
            discover: Some(backfill.recipient()),
            state,
            unwritten,
        },
        TimelineActorConfig {
            tick_interval: settings.pipeline.tick,
            gap_grace: settings.pipeline.gap_grace,
            checkpoint_interval: settings.state.checkpoint_interval,
            channels: channel_count,
        },
        shared.metrics.clone(),
        log.new(o!("actor" => "timeline")),
    );
    let arbiter = Arbiter::new();
    arbiter.spawn_fn(move || {
        Context::with_receiver(receiver).run(actor);
    });
    Ok(TimelineStage { address, inbox, resumed, arbiter })
}

/// One notification channel: its index (from 0), what it subscribes to, its facts.
struct ChannelSpec {
    index: usize,
    interest: Interest,
    liveness: Arc<Liveness>,
}

/// The three actors that keep channel `channel`'s stream up: the supervised
/// ConnectionActor, and the HeartbeatActor and SubscriptionActor it talks to. Each needs
/// the others' addresses: the heartbeat's and subscription's contexts exist first, and run
/// once the connection has started. Every channel feeds the one timeline, through the one
/// inbox that bounds what all of them queue there.
fn start_stream(
    settings: &Settings,
    shared: &Shared,
    ChannelSpec { index: channel, interest, liveness }: ChannelSpec,
    timeline: &TimelineStage,
    tokens: &Addr<TokenActor>,
    log: &Logger,
) -> Addr<ConnectionActor> {
    let log = log.new(o!("channel" => channel));
    let heartbeat_context = Context::<HeartbeatActor>::new();
    let subscription_context = Context::<SubscriptionActor>::new();
    let links = ConnectionLinks {
        timeline: Mailbox::new(
            timeline.address.clone().recipient(),
            timeline.inbox.clone(),
            shared.metrics.clone(),
        ),
        gaps: shared.gaps.clone(),
        pong: heartbeat_context.address().recipient(),
        channel_lost: subscription_context.address().recipient(),
        channel_closing: subscription_context.address().recipient(),
        socket_gap: timeline.address.clone().recipient(),
        tokens: tokens.clone(),
    };
    let connection_config = connection_config(settings, channel, timeline.resumed);
    let connection = {
        let (liveness, metrics, log) =
            (liveness.clone(), shared.metrics.clone(), log.new(o!("actor" => "connection")));
        Supervisor::start(move |_| ConnectionActor::new(connection_config, links, liveness, metrics, log))
    };
    heartbeat_context.run(HeartbeatActor::new(
        heartbeat_config(settings),
        liveness.clone(),
        connection.clone().recipient(),
        connection.clone().recipient(),
        connection.clone().recipient(),
        shared.metrics.clone(),
    ));
    subscription_context.run(SubscriptionActor::new(
        subscription_config(settings, channel, shared.channels.len(), interest),
        tokens.clone(),
        connection.clone().recipient(),
        liveness,
        log.new(o!("actor" => "subscription")),
    ));
    connection
}

/// The timeline book to start with: empty, or resumed from the state directory (those a
/// sink already holds, or holds spilled, left closed; the rest backfilled once the first
/// socket streams). A state file that cannot be used is reported, never fatal.
fn resume(settings: &Settings, timelines: Arc<OpenTimelines>, log: &Logger) -> TimelineBook {
    let mut book = TimelineBook::new(timeline_rules(settings), timelines);
    let Some(directory) = &settings.state.directory else {
        return book;
    };
    let loaded = state_file::load(directory);
    if let Some(problem) = &loaded.problem {
        slog::error!(log, "saved state unusable; starting without it"; "error" => %problem);
    }
    let Some(saved) = loaded.state else {
        return book;
    };
    let mut already_closed = std::collections::HashSet::new();
    for sink in &settings.sinks {
        let spill = jsonl::spill_path(directory, &sink.path);
        for (path, found) in [
            (&sink.path, read_back::closed_in_sink(&sink.path, jsonl::RECENT_TAIL_BYTES)),
            (&spill, read_back::spilled(&spill)),
        ] {
            match found {
                Ok(ids) => already_closed.extend(ids),
                Err(error) => slog::warn!(log, "cannot read what a sink holds, to avoid writing it twice";
                    "path" => path.display().to_string(), "error" => %error),
            }
        }
    }
    let saved_at = saved.saved_at;
    let now = std::time::Instant::now();
    let restored = book.restore(saved, &already_closed, now);
    info!(log, "resumed open timelines; backfilling what was missed while down";
        "already_written" => restored.already_written, "count" => restored.resumed,
        "saved_at" => saved_at.to_rfc3339());
    book
}

async fn metrics_line(metrics: Arc<Metrics>, every: std::time::Duration, log: Logger) {
    let mut interval = actix_rt::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        log_metrics(&metrics, &log);
    }
}

/// The one-line summary supervisors and on-call read.
fn log_metrics(metrics: &Metrics, log: &Logger) {
    // Listed last-first: slog hands key-values to the formatter in reverse.
    info!(log, "metrics";
        "closed_incomplete" => metrics.closed(false),
        "closed_complete" => metrics.closed(true),
        "open_conversations" => metrics.open_conversations.get(),
        "rtt_ms" => (metrics.heartbeat_rtt_seconds.get() * 1000.0).round(),
        "reconnects" => metrics.reconnects_total(),
        "duplicates" => metrics.duplicate_events.get(),
        "events_dropped" => metrics.dropped_total(),
        "events_received" => metrics.events_received.get(),
        "frames_received" => metrics.frames_received.get(),
    );
}
