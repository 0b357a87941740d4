//! The embedded Genesys Cloud simulator.
//!
//! One actix-web server on one port plays a small Genesys Cloud: OAuth client credentials,
//! notification channels and their subscriptions, the streaming WebSocket at each
//! channel's `connectUri`, conversation backfill, the analytics conversation-details query,
//! and the analytics-stream dialect. A seeded generator plays realistic conversations
//! through it, and `/sim/truth` (or [`SimHandle::truth`]) tells what a perfect client would
//! have reconstructed.
//!
//! How it fits together:
//! - `generator` — pure and seeded: scripts conversations, hands out transitions in
//!   event-time order, renders the ground truth.
//! - `protocol` — pure: topic names and every frame body, written from the protocol, not
//!   from the daemon's decoders.
//! - `hub` — the service's state behind one lock; decides which socket gets which frame.
//! - `details` — pure: the conversation-details query, its filters and its pages.
//! - `playback` — paces the generator into the hub at `rate` transitions per second.
//! - `server` and `sockets` — the HTTP handlers and the two WebSocket dialogs.
//! - `outbound` — one queue and writer per socket: reordering, binary frames, stalls and
//!   drops, the record file, counters, and which transitions no listener received.
//! - `faults` — pure: the fault switches' JSON shapes, their checks, the bad frames.
//! - `prerender` — pure: the generator's frames rendered ahead of time, and conversations
//!   held open, for the benchmarks' fast playback ([`SimHandle::stream`]).
//!
//! Faults ([`Fault`]) come from `POST /sim/faults`, [`SimHandle::fault`] or
//! [`SimConfig::faults`]; [`SimHandle::hidden`] is the ground truth of what they hid.

mod details;
mod faults;
mod generator;
mod hostile;
mod hub;
mod outbound;
mod playback;
pub mod prerender;
mod protocol;
mod server;
mod sockets;

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use timelined_actors::record::TimelineRecord;

pub use faults::{parse_faults, Fault, FaultError};
pub use generator::{user_pool, User};
pub use outbound::{SentTransition, StreamReport, TransitionKey};

/// The queues conversations are routed through unless told otherwise.
pub const DEFAULT_QUEUES: [&str; 2] =
    ["5f0c3a7e-1b6d-4e0a-9c2f-3d8b7a41e6c1", "a2d94b18-6e37-4c5b-8f10-7b2e9c0d4a53"];

/// How long [`SimHandle::stop`] waits for clients to answer the Close it sent.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// How long a connection lingers after its socket's last frame before the TCP stream ends.
const DISCONNECT_LINGER: Duration = Duration::from_millis(100);

/// How to run a simulator; see [`SimConfig::default`] for the defaults.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; `127.0.0.1:0` picks a free port (read it back from [`SimHandle::addr`]).
    pub listen: SocketAddr,
    pub seed: u64,
    /// Conversations to play; 0 = endless.
    pub conversations: u64,
    /// Transitions (joins and leaves, missed alerts included) per second of wall time,
    /// across all conversations; 0 = as fast as possible.
    pub rate: u32,
    /// Queue ids conversations are routed through; empty = [`DEFAULT_QUEUES`].
    pub queues: Vec<String>,
    /// Write every text frame sent on any socket to this file, one per line, as sent.
    pub record: Option<PathBuf>,
    /// Deliver data frames slightly out of order (shuffled in groups of ≤ 4, held ≤ 60 ms).
    pub reorder: bool,
    /// Send about 5 % of data frames twice, verbatim.
    pub duplicates: bool,
    /// Server heartbeat on notification sockets; RFC 6455 ping on analytics sockets.
    pub heartbeat_interval: Duration,
    /// `expires_in` of issued tokens (and how long they are honoured).
    pub token_lifetime: Duration,
    /// How long a channel lives unless re-subscribed.
    pub channel_lifetime: Duration,
    /// Conversations in flight at once.
    pub concurrency: usize,
    /// Milliseconds of event time between the first `concurrency` arrivals (each drawn
    /// from the range); small = they are all open at once.
    pub arrival_spacing: std::ops::RangeInclusive<i64>,
    /// Faults applied as soon as the first listener is connected (`--fault`).
    pub faults: Vec<Fault>,
    /// A channel expires when the token that created it does (socket closed with 1000,
    /// the upgrade answers 404 afterwards), as on the real service.
    pub channel_dies_with_token: bool,
    /// Play the seeded generator once somebody listens. `false` leaves the sockets to
    /// what [`SimHandle::stream`] is given (the benchmarks' fast playback).
    pub generate: bool,
    /// Keep the wall-clock time each join or leave was first handed to a socket
    /// ([`SimHandle::take_send_log`]), for send→publish latency.
    pub send_log: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            conversations: 0,
            rate: 200,
            queues: DEFAULT_QUEUES.iter().map(|q| q.to_string()).collect(),
            record: None,
            reorder: false,
            duplicates: false,
            heartbeat_interval: Duration::from_secs(30),
            token_lifetime: Duration::from_secs(86_400),
            channel_lifetime: Duration::from_secs(24 * 60 * 60),
            concurrency: 50,
            arrival_spacing: generator::DEFAULT_ARRIVAL_SPACING,
            faults: Vec::new(),
            channel_dies_with_token: false,
            generate: true,
            send_log: false,
        }
    }
}

/// Starts the server and the (idle until somebody listens) generator. Must be called
/// inside a running actix System / actix-rt runtime; playback runs on it.
/// A fault in `config.faults` that cannot be carried out is an `InvalidInput` error.
pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
    for fault in &config.faults {
        fault
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("fault {fault}: {e}")))?;
    }
    let mut outlet = outbound::Outlet::new(config.record.as_deref())?;
    if config.send_log {
        outlet = outlet.with_send_log();
    }
    let outlet = Arc::new(outlet);
    let hub = Arc::new(hub::Hub::new(hub::Settings::from_config(&config), outlet));
    hub.set_initial_faults(config.faults.clone());
    let data = web::Data::from(hub.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).wrap(from_fn(server::inject_http_faults)).configure(server::routes)
    })
    .workers(1)
    // The daemon owns SIGTERM/SIGINT; the simulator stops when told to.
    .disable_signals()
    // Once a socket's last frame is written (after a Close) the server ignores what the
    // client still sends and ends the TCP connection after this long; actix's default
    // second would make a closed socket go quiet before it ends. (A `drop_socket` ends the
    // connection at once: see `SocketTx::cut_on_abort`.)
    .client_disconnect_timeout(DISCONNECT_LINGER)
    // A streaming service sends each notification when it has it: with Nagle on, a
    // frame can sit behind an unacknowledged one for a delayed-ACK timeout (~40 ms).
    .tcp_nodelay(true)
    .bind(config.listen)?;
    let addr =
        server.addrs().first().copied().ok_or_else(|| io::Error::other("the simulator bound no address"))?;
    let server = server.run();
    let server_handle = server.handle();
    let server_task = actix_rt::spawn(server);

    let playback = if config.generate {
        let generator = generator::Generator::with_spacing(
            config.seed,
            &config.queues,
            config.conversations,
            config.concurrency,
            config.arrival_spacing.clone(),
        );
        actix_rt::spawn(playback::run(hub.clone(), generator, config.rate))
    } else {
        actix_rt::spawn(async {})
    };
    let hostile = actix_rt::spawn(hostile::run(hub.clone()));
    Ok(SimHandle { addr, seed: config.seed, hub, server: server_handle, server_task, playback, hostile })
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    seed: u64,
    hub: Arc<hub::Hub>,
    server: ServerHandle,
    server_task: actix_rt::task::JoinHandle<io::Result<()>>,
    playback: actix_rt::task::JoinHandle<()>,
    hostile: actix_rt::task::JoinHandle<()>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the API, login and analytics-stream base URL at once.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every conversation played so far, in start order (as `GET /sim/truth`).
    pub fn truth(&self) -> Vec<TimelineRecord> {
        self.hub.truth()
    }

    /// The user ids agents are drawn from, for subscribing to user topics.
    pub fn user_ids(&self) -> Vec<String> {
        user_pool(self.seed).into_iter().map(|u| u.id).collect()
    }

    /// True once every conversation (of a finite run) has been played and every frame
    /// it produced has been sent (and recorded). Never true for an endless run.
    pub fn finished(&self) -> bool {
        self.hub.finished()
    }

    /// Text and binary frames sent on every socket so far (not RFC 6455 control frames).
    pub fn frames_sent(&self) -> u64 {
        self.hub.outlet().frames_sent()
    }

    /// Somebody listens: a notifications socket with a topic, or a subscribed
    /// analytics-stream socket.
    pub fn listening(&self) -> bool {
        self.hub.is_listening()
    }

    /// Fast playback: the first listening socket's writer sends `frames` as they are, at
    /// `rate` frames per second (0 = as fast as the client reads), held back only by the
    /// client (nothing is dropped), ahead of anything queued after it. Frames are not
    /// played into the conversation store: `/sim/truth`, backfill and `hidden` know
    /// nothing of them. `None` when nobody listens; the answer resolves once the frames
    /// ran out or the socket went away (`None` if the socket was gone before it started).
    pub fn stream(
        &self,
        frames: impl Iterator<Item = Arc<str>> + Send + 'static,
        rate: u32,
    ) -> Option<impl std::future::Future<Output = Option<StreamReport>> + Send + 'static> {
        let report = self.hub.stream(Box::new(frames), rate)?;
        Some(async move { report.await.ok() })
    }

    /// With [`SimConfig::send_log`]: when each join or leave was first handed to a
    /// socket, since the last call.
    pub fn take_send_log(&self) -> Vec<SentTransition> {
        self.hub.outlet().take_send_log()
    }

    /// Applies a fault now, to what is open now (as `POST /sim/faults`). A fault that
    /// cannot be carried out as written is refused and changes nothing.
    pub fn fault(&self, fault: Fault) -> Result<(), FaultError> {
        fault.validate()?;
        self.hub.apply(&fault);
        Ok(())
    }

    /// Hold playback (`true`) or go on (`false`): nothing is played meanwhile, so what is
    /// open stays open. Sockets, heartbeats and the REST API go on as usual.
    pub fn pause(&self, paused: bool) {
        self.hub.set_paused(paused);
    }

    /// The latest requests the simulator was sent (up to 10,000), as `METHOD target`, the
    /// target as the client wrote it: what a test of request paths looks at.
    pub fn requests(&self) -> Vec<String> {
        self.hub.requests().into_iter().map(|(_, request)| request).collect()
    }

    /// When each request that is exactly `METHOD path` (no query) arrived, oldest first.
    pub fn request_times(&self, request: &str) -> Vec<std::time::Instant> {
        self.hub.requests().into_iter().filter(|(_, r)| r == request).map(|(at, _)| at).collect()
    }

    /// Faults applied so far, by any route (configured ones count once applied).
    pub fn faults_applied(&self) -> u64 {
        self.hub.faults_applied()
    }

    /// The ids of conversations with at least one transition that no listening socket
    /// received (as `GET /sim/hidden`): published while nobody listened, or while every
    /// socket it was meant for was stalled, closing, dropped or over its queue limit. A
    /// transition written to at least one socket is not hidden. Every conversation not in
    /// this set reached a listener whole; one in it may still be rebuilt exactly when a
    /// later snapshot repeated what was lost.
    pub fn hidden(&self) -> BTreeSet<String> {
        self.hub.hidden()
    }

    /// Stops playback, sends every socket a Close, gives clients a moment to answer it,
    /// then stops the server (dropping idle keep-alive connections and any client that
    /// did not answer).
    pub async fn stop(self) {
        self.playback.abort();
        self.hostile.abort();
        self.hub.close_all();
        // actix-server's own graceful stop re-checks open connections only once a
        // second; the closing handshake is what matters here, so wait for that instead.
        let deadline = Instant::now() + CLOSE_GRACE;
        while self.hub.live_sockets() > 0 && Instant::now() < deadline {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        self.server.stop(false).await;
        let _ = self.server_task.await;
    }
}
