//! The simulated service's state, behind one lock: issued tokens, notification channels
//! with their topics and socket, analytics-stream listeners, the conversations played
//! so far (for backfill and `/sim/truth`), and the faults switched on. This file holds the
//! state and playback's control; `hub/service.rs` the tokens, channels and listeners,
//! `hub/playback.rs` what a played transition does, `hub/fault_state.rs` the faults (what
//! each fault is: `faults.rs`).
//!
//! The HTTP handlers and socket dialogs (worker runtime) and the playback loop (caller's
//! runtime) meet here. The lock is never held across an `.await`: anything a socket should
//! send is `offer`ed to its queue while locked, so a reply and the data that follows it
//! leave in the order they were decided.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason};
use chrono::Utc;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timelined_actors::record::{format_millis, TimelineRecord};
use tokio::sync::watch;

use super::details::{self, DetailsQuery};
use super::faults::{self, BadFrameIds, Dialect, Fault, FaultFrame};
use super::generator::{self, seeded_uuid, Conversation, Step};
use super::outbound::{FrameStream, Outbound, Outlet, SocketTx, StreamReport, Ticket, TransitionKey};
use super::protocol::{self, BodyKind, MAX_TOPICS};
use super::{SimConfig, DEFAULT_QUEUES};

mod fault_state;
mod playback;
mod service;

/// Channels one client may hold. Creating one more replaces the oldest channel without an
/// open socket, as the service documents; with a socket open on every one it is refused.
const MAX_CHANNELS: usize = 20;
/// Share of data frames sent twice when duplicates are on.
const DUPLICATE_RATE: f64 = 0.05;
/// An endless run keeps at most this many conversations for backfill and truth, so a
/// simulator left running for days does not grow without bound.
const MAX_RETAINED: usize = 100_000;
/// Salt for the ids the service hands out (tokens, channels, correlation ids).
const IDS_SALT: u64 = 0x6964_7320_7361_6c74;

/// What the hub needs from [`SimConfig`].
pub(crate) struct Settings {
    pub token_lifetime: Duration,
    pub channel_lifetime: Duration,
    pub heartbeat_interval: Duration,
    pub reorder: bool,
    pub duplicates: bool,
    pub seed: u64,
    pub channel_dies_with_token: bool,
    /// The queue the `malformed` fault's snapshots claim to come from.
    pub malformed_queue: String,
}

impl Settings {
    pub(crate) fn from_config(config: &SimConfig) -> Self {
        Settings {
            token_lifetime: config.token_lifetime,
            channel_lifetime: config.channel_lifetime,
            heartbeat_interval: config.heartbeat_interval,
            reorder: config.reorder,
            duplicates: config.duplicates,
            seed: config.seed,
            channel_dies_with_token: config.channel_dies_with_token,
            malformed_queue: config.queues.first().map_or(DEFAULT_QUEUES[0], String::as_str).to_owned(),
        }
    }

    /// How long before a channel expires its socket gets `v2.system.socket_closing`:
    /// a minute, as the real service does, or half the lifetime when that is shorter.
    pub(crate) fn closing_notice(&self) -> Duration {
        Duration::from_secs(60).min(self.channel_lifetime / 2)
    }
}

pub(crate) struct Hub {
    pub(crate) settings: Settings,
    outlet: Arc<Outlet>,
    state: Mutex<State>,
    /// Flips to true once somebody listens; playback waits for it.
    playing: watch::Sender<bool>,
    /// While true, playback holds (the test's hand on the stream: see `SimHandle::pause`).
    paused: watch::Sender<bool>,
    exhausted: AtomicBool,
    next_socket: AtomicU64,
    /// Sockets whose reader is still running: the client has not closed yet.
    live_sockets: AtomicU64,
    faults_applied: AtomicU64,
}

/// Requests remembered for [`Hub::requests`].
const REQUESTS_KEPT: usize = 10_000;

struct State {
    rng: ChaCha8Rng,
    tokens: HashMap<String, Instant>,
    /// Oldest first.
    channels: VecDeque<Channel>,
    analytics: BTreeMap<u64, AnalyticsListener>,
    /// Every open socket of either dialect, so a stop or a fault reaches them all. Ordered,
    /// so a fault that draws ids from the seeded rng visits sockets in a repeatable order.
    sockets: BTreeMap<u64, OpenSocket>,
    /// `SimConfig::faults`, applied when the first listener arrives.
    initial_faults: Vec<Fault>,
    /// Injected HTTP errors still to answer, oldest first.
    http_faults: VecDeque<HttpFault>,
    /// `Fault::ConnectUri`: the `connectUri` for the next channels, and how many.
    connect_uri_fault: Option<(String, u64)>,
    /// `Fault::Hostile`: until when, at how many frames a second.
    hostile: Option<(Instant, u32)>,
    /// The latest requests (when, and method and request target as sent), oldest first.
    requests: VecDeque<(Instant, String)>,
    /// Keyed by play order, which is start order: steps come in event-time order and a
    /// conversation's first step is its start.
    conversations: BTreeMap<u64, Played>,
    order_by_id: HashMap<String, u64>,
    next_order: u64,
}

struct OpenSocket {
    tx: SocketTx,
    dialect: Dialect,
}

struct HttpFault {
    path: String,
    answer: HttpAnswer,
    remaining: u64,
}

/// An injected HTTP error: what to answer instead of serving the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HttpAnswer {
    pub status: u16,
    pub retry_after: Option<u64>,
}

struct Channel {
    id: String,
    topics: BTreeSet<String>,
    expires_at: Instant,
    /// With `channel_dies_with_token`: when the token that created it expires.
    dies_at: Option<Instant>,
    socket: Option<(u64, SocketTx)>,
}

impl Channel {
    fn is_alive(&self, now: Instant) -> bool {
        self.expires_at > now && self.dies_at.is_none_or(|dies_at| dies_at > now)
    }

    fn close_socket(&mut self, description: &str) {
        if let Some((_, tx)) = self.socket.take() {
            tx.offer(Outbound::Close(Some(CloseReason {
                code: CloseCode::Normal,
                description: Some(description.to_owned()),
            })));
        }
    }
}

struct AnalyticsListener {
    tx: SocketTx,
    filter: AnalyticsFilter,
}

/// The analytics-stream filter: an optional interaction id and a set of channels
/// (empty = every channel).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AnalyticsFilter {
    pub conversation: Option<String>,
    pub channels: Vec<String>,
}

impl AnalyticsFilter {
    fn matches(&self, conversation: &Conversation) -> bool {
        self.conversation.as_ref().is_none_or(|id| *id == conversation.id)
            && (self.channels.is_empty()
                || self.channels.iter().any(|c| c.eq_ignore_ascii_case(conversation.media.name())))
    }
}

struct Played {
    conversation: Arc<Conversation>,
    played: usize,
}

/// A freshly created notification channel.
pub(crate) struct ChannelInfo {
    pub id: String,
    pub expires: String,
    /// Handed out instead of the channel's own `connectUri` (`Fault::ConnectUri`).
    pub connect_uri: Option<String>,
}

/// When a socket's channel ends: `expires_at` is announced with `socket_closing`
/// beforehand; `dies_at` (the creating token expired) is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChannelDeadline {
    pub expires_at: Instant,
    pub dies_at: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubscriptionOp {
    Replace,
    Add,
    List,
    RemoveAll,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SubscriptionError {
    UnknownChannel,
    TooManyTopics,
}

/// One entity of a subscriptions response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TopicState {
    pub id: String,
    /// `None`: permitted.
    pub rejection: Option<&'static str>,
}

impl Hub {
    pub(crate) fn new(settings: Settings, outlet: Arc<Outlet>) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(settings.seed ^ IDS_SALT);
        Hub {
            settings,
            outlet,
            state: Mutex::new(State {
                rng,
                tokens: HashMap::new(),
                channels: VecDeque::new(),
                analytics: BTreeMap::new(),
                sockets: BTreeMap::new(),
                initial_faults: Vec::new(),
                http_faults: VecDeque::new(),
                connect_uri_fault: None,
                hostile: None,
                requests: VecDeque::new(),
                conversations: BTreeMap::new(),
                order_by_id: HashMap::new(),
                next_order: 0,
            }),
            playing: watch::Sender::new(false),
            paused: watch::Sender::new(false),
            exhausted: AtomicBool::new(false),
            next_socket: AtomicU64::new(1),
            live_sockets: AtomicU64::new(0),
            faults_applied: AtomicU64::new(0),
        }
    }

    /// Faults to apply when the first listener arrives (`SimConfig::faults`).
    pub(crate) fn set_initial_faults(&self, faults: Vec<Fault>) {
        self.lock().initial_faults = faults;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge the whole simulated service.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn outlet(&self) -> &Arc<Outlet> {
        &self.outlet
    }

    pub(crate) fn playing(&self) -> watch::Receiver<bool> {
        self.playing.subscribe()
    }

    pub(crate) fn paused(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    pub(crate) fn mark_exhausted(&self) {
        self.exhausted.store(true, Ordering::SeqCst);
    }

    /// Every conversation played and every data frame sent.
    pub(crate) fn finished(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst) && self.outlet.pending() == 0
    }

    /// Starts playback the first time somebody is listening: a connected notifications
    /// socket with at least one topic, or a subscribed analytics-stream socket. The
    /// configured faults are applied at that moment, to that listener.
    fn wake_playback(&self, state: &mut State) {
        if state.is_listening() && !*self.playing.borrow() {
            for fault in std::mem::take(&mut state.initial_faults) {
                self.apply_locked(state, &fault);
            }
            self.playing.send_replace(true);
        }
    }

    /// Somebody listens now (see [`State::is_listening`]).
    pub(crate) fn is_listening(&self) -> bool {
        self.lock().is_listening()
    }

    /// Sockets whose client has not closed its end yet.
    pub(crate) fn live_sockets(&self) -> u64 {
        self.live_sockets.load(Ordering::SeqCst)
    }

    /// Closes every socket (the simulator is stopping).
    pub(crate) fn close_all(&self) {
        let mut state = self.lock();
        for (_, socket) in std::mem::take(&mut state.sockets) {
            socket.tx.offer(Outbound::Close(Some(CloseReason {
                code: CloseCode::Away,
                description: Some("simulator stopping".to_owned()),
            })));
        }
        state.forget_listeners();
    }
}

impl State {
    /// A connected notifications socket with at least one topic, or a subscribed
    /// analytics-stream socket.
    fn is_listening(&self) -> bool {
        !self.analytics.is_empty() || self.channels.iter().any(|c| c.socket.is_some() && !c.topics.is_empty())
    }

    /// No socket listens any more (they are closing): publishing skips them. They stay
    /// in `sockets` until their readers end.
    fn forget_listeners(&mut self) {
        self.analytics.clear();
        for channel in &mut self.channels {
            channel.socket = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::generator::Generator;
    use crate::sim::outbound::test_socket;

    fn hub() -> Hub {
        let config = SimConfig::default();
        Hub::new(Settings::from_config(&config), Arc::new(Outlet::new(None).unwrap()))
    }

    #[test]
    fn tokens_are_valid_until_they_expire() {
        let hub = hub();
        let (token, expires_in) = hub.issue_token();
        assert_eq!(expires_in, 86_400);
        assert!(hub.token_is_valid(&token));
        assert!(!hub.token_is_valid("sim-unknown"));
    }

    #[test]
    fn the_twenty_first_channel_evicts_the_oldest_unconnected_or_is_refused() {
        let hub = hub();
        let first = hub.create_channel("sim-token").unwrap();
        assert!(first.id.starts_with("streaming-0-"));
        let mut writers = Vec::new();
        let mut ids = vec![first.id.clone()];
        for _ in 1..MAX_CHANNELS {
            ids.push(hub.create_channel("sim-token").unwrap().id);
        }
        // The oldest has a socket: the oldest without one goes.
        let (tx, writer) = test_socket(hub.outlet());
        assert!(hub.attach_socket(&ids[0], 1, tx));
        writers.push(writer);
        hub.create_channel("sim-token").unwrap();
        assert!(hub.channel_is_alive(&ids[0]));
        assert!(!hub.channel_is_alive(&ids[1]));
        assert_eq!(hub.lock().channels.len(), MAX_CHANNELS);
        // A socket on every channel: the 21st is refused and nothing is evicted.
        let alive: Vec<String> = hub.lock().channels.iter().map(|c| c.id.clone()).collect();
        for (socket, id) in alive.iter().enumerate().skip(1) {
            let (tx, writer) = test_socket(hub.outlet());
            assert!(hub.attach_socket(id, socket as u64 + 1, tx));
            writers.push(writer);
        }
        assert!(hub.create_channel("sim-token").is_none());
        assert!(alive.iter().all(|id| hub.channel_is_alive(id)));
    }

    #[test]
    fn subscriptions_replace_add_list_and_reject() {
        let hub = hub();
        let channel = hub.create_channel("sim-token").unwrap().id;
        let queue = "v2.routing.queues.q.conversations".to_owned();
        let user = "v2.users.u.conversations.calls".to_owned();
        let entities = hub
            .subscriptions(&channel, SubscriptionOp::Replace, vec![queue.clone(), "v2.bogus".to_owned()])
            .unwrap();
        assert_eq!(entities.len(), 2);
        assert_eq!(entities[0].rejection, None);
        assert!(entities[1].rejection.is_some());
        hub.subscriptions(&channel, SubscriptionOp::Add, vec![user.clone()]).unwrap();
        let listed = hub.subscriptions(&channel, SubscriptionOp::List, Vec::new()).unwrap();
        let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec![queue.as_str(), user.as_str()]);
        hub.subscriptions(&channel, SubscriptionOp::RemoveAll, Vec::new()).unwrap();
        assert!(hub.subscriptions(&channel, SubscriptionOp::List, Vec::new()).unwrap().is_empty());
        let too_many = (0..=MAX_TOPICS).map(|n| format!("v2.users.u{n}.conversations")).collect();
        assert_eq!(
            hub.subscriptions(&channel, SubscriptionOp::Replace, too_many),
            Err(SubscriptionError::TooManyTopics)
        );
        assert_eq!(
            hub.subscriptions("streaming-0-nope", SubscriptionOp::List, Vec::new()),
            Err(SubscriptionError::UnknownChannel)
        );
    }

    #[test]
    fn truth_lists_conversations_in_start_order_as_played() {
        let hub = hub();
        let steps: Vec<Step> = Generator::new(4, &[], 6, 3).collect();
        for step in &steps {
            hub.publish(step);
        }
        let truth = hub.truth();
        assert_eq!(truth.len(), 6);
        assert!(truth.iter().all(|t| t.complete));
        for pair in truth.windows(2) {
            assert!(pair[0].started_at <= pair[1].started_at);
        }
        let first = &truth[0].conversation_id;
        let snapshot = hub.conversation(first).expect("played conversation");
        assert!(snapshot.contains(first.as_str()));
        assert!(hub.conversation("unknown").is_none());
    }

    fn steps(conversations: u64) -> Vec<Step> {
        Generator::new(9, &DEFAULT_QUEUES.map(str::to_owned), conversations, 3).collect()
    }

    fn ids<'s>(steps: impl IntoIterator<Item = &'s Step>) -> BTreeSet<String> {
        steps.into_iter().map(|s| s.conversation.id.clone()).collect()
    }

    #[test]
    fn transitions_published_with_nobody_listening_are_all_hidden() {
        let hub = hub();
        let steps = steps(5);
        for step in &steps {
            hub.publish(step);
        }
        assert_eq!(hub.hidden().len(), 5);
        assert_eq!(hub.hidden(), ids(&steps));
    }

    #[test]
    fn a_transition_written_to_a_socket_is_not_hidden_and_one_lost_on_the_way_is() {
        let hub = hub();
        let (tx, mut writer) = test_socket(hub.outlet());
        hub.register_socket(1, tx.clone());
        hub.subscribe_analytics(1, &tx, AnalyticsFilter::default());
        let steps = steps(8);
        let (written, lost) = steps.split_at(steps.len() / 2);
        for step in written {
            hub.publish(step);
        }
        writer.drain(true);
        assert!(hub.hidden().is_empty());
        for step in lost {
            hub.publish(step);
        }
        writer.drain(false);
        // A missed alert's end has no analytics event: nothing was owed for it.
        let carried = lost.iter().filter(|s| protocol::analytics_event(s).is_some());
        assert_eq!(hub.hidden(), ids(carried));
    }

    #[test]
    fn a_subscribed_channel_without_a_socket_is_owed_its_frames() {
        let hub = hub();
        let queue_topics: Vec<String> =
            DEFAULT_QUEUES.iter().map(|q| format!("v2.routing.queues.{q}.conversations")).collect();
        let unplugged = hub.create_channel("sim-token").unwrap().id;
        hub.subscriptions(&unplugged, SubscriptionOp::Replace, queue_topics.clone()).unwrap();
        // Somebody listens, but to a topic nothing is published on.
        let listening = hub.create_channel("sim-token").unwrap().id;
        hub.subscriptions(&listening, SubscriptionOp::Replace, vec!["v2.users.nobody.conversations".into()])
            .unwrap();
        let (tx, mut writer) = test_socket(hub.outlet());
        assert!(hub.attach_socket(&listening, 1, tx));
        let steps = steps(6);
        for step in &steps {
            hub.publish(step);
        }
        assert_eq!(writer.drain(true), 0);
        let on_queue_topics =
            steps.iter().filter(|s| protocol::topics_for(s).iter().any(|(t, _)| queue_topics.contains(t)));
        let expected = ids(on_queue_topics);
        assert!(!expected.is_empty());
        assert_eq!(hub.hidden(), expected);
    }

    #[test]
    fn faults_reach_every_open_socket_and_count() {
        let hub = hub();
        let (tx, mut writer) = test_socket(hub.outlet());
        hub.register_socket(1, tx);
        hub.apply(&Fault::Malformed { count: 7 });
        hub.apply(&Fault::Oversized { bytes: 10 });
        hub.apply(&Fault::Inject { text: Some("x".into()), binary: None });
        assert_eq!(writer.drain(true), 9);
        let (token, _) = hub.issue_token();
        hub.apply(&Fault::RevokeToken);
        assert!(!hub.token_is_valid(&token));
        assert_eq!(hub.faults_applied(), 4);
    }

    #[test]
    fn http_faults_match_by_prefix_count_down_and_spare_sim_paths() {
        let hub = hub();
        hub.apply(&Fault::Http { path: "/api/v2/".into(), status: 503, retry_after: None, count: 2 });
        hub.apply(&Fault::Http { path: "/".into(), status: 500, retry_after: Some(1), count: 1 });
        assert_eq!(hub.take_http_fault("/sim/truth"), None);
        let answer = |status, retry_after| Some(HttpAnswer { status, retry_after });
        assert_eq!(hub.take_http_fault("/api/v2/conversations/c"), answer(503, None));
        assert_eq!(hub.take_http_fault("/oauth/token"), answer(500, Some(1)));
        assert_eq!(hub.take_http_fault("/oauth/token"), None);
        assert_eq!(hub.take_http_fault("/api/v2/notifications/channels"), answer(503, None));
        assert_eq!(hub.take_http_fault("/api/v2/notifications/channels"), None);
    }

    #[test]
    fn evicting_and_expiring_forget_channels() {
        let hub = hub();
        let idle = hub.create_channel("sim-token").unwrap().id;
        let connected = hub.create_channel("sim-token").unwrap().id;
        let (tx, mut writer) = test_socket(hub.outlet());
        assert!(hub.attach_socket(&connected, 1, tx));
        hub.apply(&Fault::ExpireChannel);
        assert!(hub.channel_is_alive(&idle), "expire_channel takes channels with a socket");
        assert!(!hub.channel_is_alive(&connected));
        assert_eq!(writer.drain(true), 1, "the socket got its Close");
        hub.apply(&Fault::EvictChannel);
        assert!(!hub.channel_is_alive(&idle));
    }

    #[test]
    fn a_channel_can_die_with_its_token() {
        let config = SimConfig {
            channel_dies_with_token: true,
            token_lifetime: Duration::from_secs(60),
            ..SimConfig::default()
        };
        let hub = Hub::new(Settings::from_config(&config), Arc::new(Outlet::new(None).unwrap()));
        let (token, _) = hub.issue_token();
        let channel = hub.create_channel(&token).unwrap().id;
        let (tx, _writer) = test_socket(hub.outlet());
        assert!(hub.attach_socket(&channel, 1, tx));
        let deadline = hub.socket_deadline(&channel, 1).unwrap();
        let dies_at = deadline.dies_at.expect("dies with its token");
        assert!(dies_at < deadline.expires_at);
        assert_eq!(Some(&dies_at), hub.lock().tokens.get(&token));
    }
}
