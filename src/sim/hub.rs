//! The simulated service's state, behind one lock: issued tokens, notification channels
//! with their topics and socket, analytics-stream listeners, the conversations played
//! so far (for backfill and `/sim/truth`), and the faults switched on (carried out in
//! `hub/fault_state.rs`; what each fault is: `faults.rs`).
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

/// Channels one client may hold; creating one more evicts the oldest, as the service does.
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

    // ---- OAuth ------------------------------------------------------------------------

    /// Issues a bearer token; returns it with its `expires_in` in seconds.
    pub(crate) fn issue_token(&self) -> (String, u64) {
        let mut state = self.lock();
        let now = Instant::now();
        state.tokens.retain(|_, expires| *expires > now);
        let token = format!("sim-{:032x}", state.rng.random::<u128>());
        let lifetime = self.settings.token_lifetime;
        // A lifetime past the clock's range (a test of hostile `expires_in`) never ends.
        let expires = now.checked_add(lifetime).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        state.tokens.insert(token.clone(), expires);
        (token, lifetime.as_secs())
    }

    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        self.lock().tokens.get(token).is_some_and(|expires| *expires > Instant::now())
    }

    // ---- Notification channels ---------------------------------------------------------

    /// A new channel for the client holding `token` (with `channel_dies_with_token`, the
    /// channel dies with it).
    pub(crate) fn create_channel(&self, token: &str) -> ChannelInfo {
        let mut state = self.lock();
        let id = format!("streaming-0-{:032x}", state.rng.random::<u128>());
        let lifetime = self.settings.channel_lifetime;
        while state.channels.len() >= MAX_CHANNELS {
            if let Some(mut evicted) = state.channels.pop_front() {
                evicted.close_socket("channel evicted");
            }
        }
        let dies_at =
            if self.settings.channel_dies_with_token { state.tokens.get(token).copied() } else { None };
        state.channels.push_back(Channel {
            id: id.clone(),
            topics: BTreeSet::new(),
            expires_at: Instant::now() + lifetime,
            dies_at,
            socket: None,
        });
        let expires = Utc::now() + lifetime;
        let connect_uri = match state.connect_uri_fault.take() {
            Some((uri, remaining)) => {
                if remaining > 1 {
                    state.connect_uri_fault = Some((uri.clone(), remaining - 1));
                }
                Some(uri)
            }
            None => None,
        };
        ChannelInfo { id, expires: format_millis(&expires), connect_uri }
    }

    pub(crate) fn channel_is_alive(&self, channel_id: &str) -> bool {
        let now = Instant::now();
        self.lock().channels.iter().any(|c| c.id == channel_id && c.is_alive(now))
    }

    /// The REST subscriptions call on a channel. PUT and POST answer one entity per
    /// requested topic (in request order); GET lists the channel's topics; DELETE empties it.
    pub(crate) fn subscriptions(
        &self,
        channel_id: &str,
        op: SubscriptionOp,
        requested: Vec<String>,
    ) -> Result<Vec<TopicState>, SubscriptionError> {
        let mut state = self.lock();
        let now = Instant::now();
        let lifetime = self.settings.channel_lifetime;
        let channel = state
            .channels
            .iter_mut()
            .find(|c| c.id == channel_id && c.is_alive(now))
            .ok_or(SubscriptionError::UnknownChannel)?;
        let mut requested_unique = Vec::new();
        for topic in requested {
            if !requested_unique.contains(&topic) {
                requested_unique.push(topic);
            }
        }
        let answer = |topics: &[String]| -> Vec<TopicState> {
            topics
                .iter()
                .map(|t| TopicState { id: t.clone(), rejection: protocol::check_topic(t).err() })
                .collect()
        };
        let entities = match op {
            SubscriptionOp::List => {
                return Ok(channel
                    .topics
                    .iter()
                    .map(|t| TopicState { id: t.clone(), rejection: None })
                    .collect())
            }
            SubscriptionOp::RemoveAll => {
                channel.topics.clear();
                return Ok(Vec::new());
            }
            SubscriptionOp::Replace => {
                if requested_unique.len() > MAX_TOPICS {
                    return Err(SubscriptionError::TooManyTopics);
                }
                let entities = answer(&requested_unique);
                channel.topics = permitted(&entities);
                entities
            }
            SubscriptionOp::Add => {
                let entities = answer(&requested_unique);
                let mut topics = channel.topics.clone();
                topics.extend(permitted(&entities));
                if topics.len() > MAX_TOPICS {
                    return Err(SubscriptionError::TooManyTopics);
                }
                channel.topics = topics;
                entities
            }
        };
        // Subscribing again is what keeps a channel alive past its first day.
        channel.expires_at = now + lifetime;
        self.wake_playback(&mut state);
        Ok(entities)
    }

    /// Makes `tx` the channel's socket, closing the one it had. `false`: no such channel.
    pub(crate) fn attach_socket(&self, channel_id: &str, socket_id: u64, tx: SocketTx) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        let Some(channel) = state.channels.iter_mut().find(|c| c.id == channel_id && c.is_alive(now)) else {
            return false;
        };
        channel.close_socket("another socket connected to this channel");
        channel.socket = Some((socket_id, tx.clone()));
        state.sockets.insert(socket_id, OpenSocket { tx, dialect: Dialect::Notifications });
        self.live_sockets.fetch_add(1, Ordering::SeqCst);
        self.wake_playback(&mut state);
        true
    }

    /// Forgets a socket whose reader has ended (either dialect); called once per socket
    /// that [`Hub::attach_socket`] or [`Hub::register_socket`] accepted.
    pub(crate) fn detach_socket(&self, socket_id: u64) {
        self.live_sockets.fetch_sub(1, Ordering::SeqCst);
        let mut state = self.lock();
        state.sockets.remove(&socket_id);
        state.analytics.remove(&socket_id);
        for channel in &mut state.channels {
            if channel.socket.as_ref().is_some_and(|(id, _)| *id == socket_id) {
                channel.socket = None;
            }
        }
    }

    /// A `{"message":"subscribe"}` on the socket: adds the permitted topics and queues the
    /// reply (404 when the socket no longer owns a live channel).
    pub(crate) fn subscribe_on_socket(
        &self,
        channel_id: &str,
        socket_id: u64,
        topics: Vec<String>,
        correlation_id: Option<&serde_json::Value>,
        reply_to: &SocketTx,
    ) {
        let mut state = self.lock();
        let now = Instant::now();
        let channel = state.channels.iter_mut().find(|c| {
            c.id == channel_id && c.is_alive(now) && c.socket.as_ref().is_some_and(|(id, _)| *id == socket_id)
        });
        let alive = match channel {
            Some(channel) => {
                let permitted = topics.into_iter().filter(|t| protocol::check_topic(t).is_ok());
                let mut wanted = channel.topics.clone();
                wanted.extend(permitted);
                if wanted.len() <= MAX_TOPICS {
                    channel.topics = wanted;
                }
                true
            }
            None => false,
        };
        reply_to.offer(Outbound::Control(protocol::subscribe_reply(alive, correlation_id).into()));
        if alive {
            self.wake_playback(&mut state);
        }
    }

    /// When the socket's channel ends, or `None` once the socket no longer owns a live
    /// channel (replaced, evicted, expired).
    pub(crate) fn socket_deadline(&self, channel_id: &str, socket_id: u64) -> Option<ChannelDeadline> {
        self.lock()
            .channels
            .iter()
            .find(|c| c.id == channel_id && c.socket.as_ref().is_some_and(|(id, _)| *id == socket_id))
            .map(|c| ChannelDeadline { expires_at: c.expires_at, dies_at: c.dies_at })
    }

    /// Drops an expired channel and closes its socket.
    pub(crate) fn expire_channel(&self, channel_id: &str) {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(index) = state.channels.iter().position(|c| c.id == channel_id && !c.is_alive(now)) {
            if let Some(mut channel) = state.channels.remove(index) {
                channel.close_socket("channel expired");
            }
        }
    }

    pub(crate) fn next_socket_id(&self) -> u64 {
        self.next_socket.fetch_add(1, Ordering::SeqCst)
    }

    /// A seeded correlation id for frames built outside [`Hub::publish`].
    pub(crate) fn correlation_id(&self) -> String {
        seeded_uuid(&mut self.lock().rng)
    }

    // ---- Analytics stream ---------------------------------------------------------------

    /// Registers an analytics socket as soon as it opens, so `close_all` reaches it.
    pub(crate) fn register_socket(&self, socket_id: u64, tx: SocketTx) {
        self.live_sockets.fetch_add(1, Ordering::SeqCst);
        self.lock().sockets.insert(socket_id, OpenSocket { tx, dialect: Dialect::Analytics });
    }

    /// Sets (or replaces) an analytics socket's filter and queues `{"status":"subscribed"}`
    /// ahead of any event it matches.
    pub(crate) fn subscribe_analytics(&self, socket_id: u64, tx: &SocketTx, filter: AnalyticsFilter) {
        let mut state = self.lock();
        tx.offer(Outbound::Control(protocol::ANALYTICS_SUBSCRIBED.into()));
        state.analytics.insert(socket_id, AnalyticsListener { tx: tx.clone(), filter });
        self.wake_playback(&mut state);
    }

    // ---- Playback ----------------------------------------------------------------------

    /// Plays one transition: updates the conversation store and queues its frames on
    /// every socket with a matching subscription. The transition's [`Ticket`] learns who
    /// should have received it, so a loss to a fault is known (see `outbound.rs`).
    pub(crate) fn publish(&self, step: &Step) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.record(step);
        let ticket = Ticket::new(&self.outlet, &step.conversation.id, self.send_log_key(step));
        if !state.is_listening() {
            // Nobody connected: whatever this transition carried is lost for good.
            ticket.owe();
        }

        let now = Instant::now();
        let topics = protocol::topics_for(step);
        let mut bodies: [Option<String>; 3] = [None, None, None];
        let duplicates = self.settings.duplicates;
        for channel in &state.channels {
            if !channel.is_alive(now) {
                continue;
            }
            for (topic, kind) in &topics {
                if !channel.topics.contains(topic) {
                    continue;
                }
                let Some((_, tx)) = &channel.socket else {
                    // Subscribed, but no socket to carry it.
                    ticket.owe();
                    continue;
                };
                let body = bodies[body_slot(*kind)].get_or_insert_with(|| protocol::body(*kind, step));
                let correlation_id = seeded_uuid(&mut state.rng);
                let frame: Arc<str> = protocol::notification(topic, body, &correlation_id).into();
                send_data(tx, frame, &ticket, duplicates, &mut state.rng);
            }
        }

        if state.analytics.is_empty() {
            return;
        }
        let Some(event) = protocol::analytics_event(step) else {
            return;
        };
        let frame: Arc<str> = event.into();
        for listener in state.analytics.values() {
            if listener.filter.matches(&step.conversation) {
                send_data(&listener.tx, frame.clone(), &ticket, duplicates, &mut state.rng);
            }
        }
    }

    /// The join or leave `step` is, for the send log (none without one, or for a missed
    /// alert's end).
    fn send_log_key(&self, step: &Step) -> Option<TransitionKey> {
        if !self.outlet.keeps_send_log() {
            return None;
        }
        let participant = step.participant();
        participant.connected_at?;
        Some(TransitionKey {
            conversation: step.conversation.id.clone(),
            participant: participant.id.clone(),
            joined: step.transition().kind == generator::TransitionKind::Connected,
        })
    }

    /// Hands `frames` to the first listening socket (the oldest notification channel with
    /// a socket and a topic, else an analytics listener), whose writer plays them at
    /// `rate` frames per second. `None` when nobody listens. The frames are sent as they
    /// are, whatever the socket subscribed to: the benchmarks' fast playback.
    pub(crate) fn stream(
        &self,
        frames: Box<dyn Iterator<Item = Arc<str>> + Send>,
        rate: u32,
    ) -> Option<tokio::sync::oneshot::Receiver<StreamReport>> {
        let state = self.lock();
        let tx = state
            .channels
            .iter()
            .filter(|c| !c.topics.is_empty())
            .find_map(|c| c.socket.as_ref().map(|(_, tx)| tx))
            .or_else(|| state.analytics.values().next().map(|l| &l.tx))?;
        let (done, report) = tokio::sync::oneshot::channel();
        tx.offer(Outbound::Stream(FrameStream { frames, rate, done })).then_some(report)
    }

    /// The conversation as it stands now, in the full snapshot shape.
    pub(crate) fn conversation(&self, conversation_id: &str) -> Option<String> {
        let state = self.lock();
        let order = state.order_by_id.get(conversation_id)?;
        let played = state.conversations.get(order)?;
        Some(protocol::conversation_resource(&played.conversation, played.played))
    }

    /// One page of the conversation-details query over the conversations played so far
    /// (an endless run searches the ones it still keeps).
    pub(crate) fn details(&self, query: &DetailsQuery) -> String {
        let state = self.lock();
        details::answer(query, state.conversations.values().map(|p| (&*p.conversation, p.played)))
    }

    /// Every conversation played so far, in start order.
    pub(crate) fn truth(&self) -> Vec<TimelineRecord> {
        self.lock().conversations.values().map(|p| generator::timeline(&p.conversation, p.played)).collect()
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

    fn record(&mut self, step: &Step) {
        let conversation = &step.conversation;
        if let Some(order) = self.order_by_id.get(&conversation.id) {
            if let Some(played) = self.conversations.get_mut(order) {
                played.played = played.played.max(step.played());
            }
            return;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.order_by_id.insert(conversation.id.clone(), order);
        self.conversations
            .insert(order, Played { conversation: conversation.clone(), played: step.played() });
        if self.conversations.len() > MAX_RETAINED {
            // The oldest conversation ended long ago in any realistic run; an open one is
            // kept until it has ended.
            if let Some(entry) = self.conversations.first_entry() {
                let oldest = entry.get();
                if oldest.played == oldest.conversation.transitions.len() {
                    let played = entry.remove();
                    self.order_by_id.remove(&played.conversation.id);
                }
            }
        }
    }
}

fn body_slot(kind: BodyKind) -> usize {
    match kind {
        BodyKind::Full => 0,
        BodyKind::Flat => 1,
        BodyKind::Detail => 2,
    }
}

fn permitted(entities: &[TopicState]) -> BTreeSet<String> {
    entities.iter().filter(|e| e.rejection.is_none()).map(|e| e.id.clone()).collect()
}

/// Queues a data frame, and with `duplicates` on sometimes queues it twice, verbatim.
fn send_data(tx: &SocketTx, frame: Arc<str>, ticket: &Arc<Ticket>, duplicates: bool, rng: &mut ChaCha8Rng) {
    if duplicates && rng.random_bool(DUPLICATE_RATE) {
        tx.offer_data(frame.clone(), ticket);
    }
    tx.offer_data(frame, ticket);
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
    fn the_twenty_first_channel_evicts_the_oldest() {
        let hub = hub();
        let first = hub.create_channel("sim-token");
        assert!(first.id.starts_with("streaming-0-"));
        for _ in 0..MAX_CHANNELS {
            hub.create_channel("sim-token");
        }
        assert!(!hub.channel_is_alive(&first.id));
        assert_eq!(hub.lock().channels.len(), MAX_CHANNELS);
    }

    #[test]
    fn subscriptions_replace_add_list_and_reject() {
        let hub = hub();
        let channel = hub.create_channel("sim-token").id;
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
        let unplugged = hub.create_channel("sim-token").id;
        hub.subscriptions(&unplugged, SubscriptionOp::Replace, queue_topics.clone()).unwrap();
        // Somebody listens, but to a topic nothing is published on.
        let listening = hub.create_channel("sim-token").id;
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
        let idle = hub.create_channel("sim-token").id;
        let connected = hub.create_channel("sim-token").id;
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
        let channel = hub.create_channel(&token).id;
        let (tx, _writer) = test_socket(hub.outlet());
        assert!(hub.attach_socket(&channel, 1, tx));
        let deadline = hub.socket_deadline(&channel, 1).unwrap();
        let dies_at = deadline.dies_at.expect("dies with its token");
        assert!(dies_at < deadline.expires_at);
        assert_eq!(Some(&dies_at), hub.lock().tokens.get(&token));
    }
}
