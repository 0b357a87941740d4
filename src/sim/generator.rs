//! The seeded conversation generator: pure, no I/O, no clocks.
//!
//! A [`Generator`] scripts whole conversations up front (who joins, who leaves, when, and
//! why) from one `ChaCha8Rng`, then hands out their transitions — a participant connecting
//! or ending — one [`Step`] at a time in global event-time order. The same seed, queues and
//! limits always yield the same steps, so a failing run can be replayed exactly.
//!
//! Event times are realistic (IVR for tens of seconds, calls for minutes), start at
//! 2026-01-01T09:00:00Z and never tie within one conversation: every scripted instant is at least one
//! millisecond after the previous one. The playback loop (`playback.rs`) compresses them
//! into wall time; the protocol writers (`protocol.rs`) render the conversation as it
//! stands after a step; [`timeline`] renders the ground truth for `/sim/truth`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timelined_actors::record::{EntryAction, EntryRecord, ParticipantRecord, TimelineRecord};

/// Size of the agent pool. Small on purpose: user topics then see several conversations.
const USER_POOL_SIZE: usize = 12;
/// Salt so the user pool depends on the seed alone, not on how many conversations ran.
const USER_POOL_SALT: u64 = 0x7573_6572_706f_6f6c;
/// Milliseconds of event time between the first arrivals, by default: a contact centre
/// already at work.
pub const DEFAULT_ARRIVAL_SPACING: std::ops::RangeInclusive<i64> = 200..=8_000;
/// 2026-01-01T09:00:00Z: the event time of the first conversation's earliest possible start.
const EPOCH_MILLIS: i64 = 1_767_258_000_000;

fn at_millis(millis: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::milliseconds(millis)
}

/// A seeded random UUID (the `uuid` crate's v4 feature would use the OS rng instead).
pub fn seeded_uuid(rng: &mut impl Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Media {
    Voice,
    Chat,
    Message,
}

impl Media {
    /// The name in timelines and in the analytics-stream `channel` field.
    pub fn name(self) -> &'static str {
        match self {
            Media::Voice => "voice",
            Media::Chat => "chat",
            Media::Message => "message",
        }
    }

    /// The session list key of a full snapshot participant, and the per-media topic suffix.
    pub fn sessions_key(self) -> &'static str {
        match self {
            Media::Voice => "calls",
            Media::Chat => "chats",
            Media::Message => "messages",
        }
    }

    /// The `mediaType` of detail events.
    pub fn detail_name(self) -> &'static str {
        match self {
            Media::Voice => "VOICE",
            Media::Chat => "CHAT",
            Media::Message => "MESSAGE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Customer,
    Ivr,
    Workflow,
    Acd,
    Agent,
    External,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Customer => "customer",
            Purpose::Ivr => "ivr",
            Purpose::Workflow => "workflow",
            Purpose::Acd => "acd",
            Purpose::Agent => "agent",
            Purpose::External => "external",
        }
    }

    /// The participant segment of a detail-event topic. Detail events have no `external`
    /// category; an external party is a customer-side participant there.
    pub fn detail_category(self) -> &'static str {
        match self {
            Purpose::Customer | Purpose::External => "customer",
            Purpose::Agent => "user",
            Purpose::Acd => "acd",
            Purpose::Ivr | Purpose::Workflow => "flow",
        }
    }

    /// Session direction as snapshots write it; an external party was dialled out to.
    pub fn direction(self) -> &'static str {
        match self {
            Purpose::External => "outbound",
            _ => "inbound",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
}

/// The agents conversations are routed to; depends on the seed only, so a client can
/// subscribe to their user topics before the simulator starts.
pub fn user_pool(seed: u64) -> Vec<User> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ USER_POOL_SALT);
    (1..=USER_POOL_SIZE).map(|n| User { id: seeded_uuid(&mut rng), name: format!("Agent {n:02}") }).collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub id: String,
    pub purpose: Purpose,
    pub user: Option<User>,
    pub queue_id: Option<String>,
    pub name: String,
    /// The media session's id (detail events' `sessionId`).
    pub session_id: String,
    /// When the participant appears in the conversation: alerted (agents) or connected.
    pub appeared_at: DateTime<Utc>,
    /// `None`: alerted and never connected (a missed alert) — not a join.
    pub connected_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
    /// Lower-case dotted, as snapshots carry it.
    pub disconnect_type: &'static str,
}

impl Participant {
    pub fn is_visible_at(&self, now: DateTime<Utc>) -> bool {
        self.appeared_at <= now
    }

    pub fn connected_by(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.connected_at.filter(|at| *at <= now)
    }

    pub fn ended_by(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(self.ended_at).filter(|at| *at <= now)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionKind {
    Connected,
    Ended,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: DateTime<Utc>,
    /// Index into [`Conversation::participants`].
    pub participant: usize,
    pub kind: TransitionKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Creation order within one generator.
    pub seq: u64,
    pub id: String,
    pub media: Media,
    pub queue_id: String,
    pub queue_name: String,
    pub flow_id: String,
    pub participants: Vec<Participant>,
    /// Strictly increasing in time.
    pub transitions: Vec<Transition>,
}

impl Conversation {
    /// The event time of the conversation as it stands after `played` transitions.
    pub fn time_after(&self, played: usize) -> Option<DateTime<Utc>> {
        played.checked_sub(1).and_then(|last| self.transitions.get(last)).map(|t| t.at)
    }
}

/// One transition to play: `conversation.transitions[index]`.
#[derive(Clone, Debug)]
pub struct Step {
    pub conversation: Arc<Conversation>,
    pub index: usize,
}

impl Step {
    pub fn transition(&self) -> &Transition {
        &self.conversation.transitions[self.index]
    }

    pub fn participant(&self) -> &Participant {
        &self.conversation.participants[self.transition().participant]
    }

    /// How many of the conversation's transitions have been played once this one is.
    pub fn played(&self) -> usize {
        self.index + 1
    }

    #[cfg(test)]
    pub fn is_last(&self) -> bool {
        self.played() == self.conversation.transitions.len()
    }
}

/// The ground truth for one conversation after `played` transitions, in the timeline
/// schema: only participants that connected, missed alerts left out.
pub fn timeline(conversation: &Conversation, played: usize) -> TimelineRecord {
    let played = played.min(conversation.transitions.len());
    let mut participants: Vec<ParticipantRecord> = Vec::new();
    let mut entries = Vec::new();
    let mut ended_at = None;
    for transition in &conversation.transitions[..played] {
        let participant = &conversation.participants[transition.participant];
        if participant.connected_at.is_none() {
            continue;
        }
        match transition.kind {
            TransitionKind::Connected => participants.push(ParticipantRecord {
                participant_id: participant.id.clone(),
                purpose: Some(participant.purpose.as_str().to_owned()),
                user_id: participant.user.as_ref().map(|u| u.id.clone()),
                queue_id: participant.queue_id.clone(),
                joined_at: Some(transition.at),
                left_at: None,
                disconnect_type: None,
            }),
            TransitionKind::Ended => {
                if let Some(record) = participants.iter_mut().find(|p| p.participant_id == participant.id) {
                    record.left_at = Some(transition.at);
                    record.disconnect_type = Some(participant.disconnect_type.to_owned());
                }
                ended_at = Some(transition.at);
            }
        }
        entries.push(EntryRecord {
            at: transition.at,
            action: match transition.kind {
                TransitionKind::Connected => EntryAction::Joined,
                TransitionKind::Ended => EntryAction::Left,
            },
            participant_id: participant.id.clone(),
            purpose: Some(participant.purpose.as_str().to_owned()),
        });
    }
    participants.sort_by(|a, b| (a.joined_at, &a.participant_id).cmp(&(b.joined_at, &b.participant_id)));
    entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    // The customer is first in and last out, so "all played" and "everyone has left" agree.
    let complete =
        played == conversation.transitions.len() && participants.iter().all(|p| p.left_at.is_some());
    TimelineRecord {
        conversation_id: conversation.id.clone(),
        media_types: vec![conversation.media.name().to_owned()],
        started_at: participants.first().and_then(|p| p.joined_at),
        ended_at: if complete { ended_at } else { None },
        complete,
        gaps: 0,
        healed: false,
        participants,
        entries,
    }
}

/// Plays conversations' transitions in global event-time order.
pub struct Generator {
    rng: ChaCha8Rng,
    queues: Vec<String>,
    users: Vec<User>,
    /// One flow per media, as an org usually has.
    flows: [String; 3],
    /// `None`: endless.
    limit: Option<u64>,
    created: u64,
    agenda: BinaryHeap<Reverse<Due>>,
}

/// The next transition of one conversation, ordered by (time, creation order).
struct Due {
    at: DateTime<Utc>,
    seq: u64,
    index: usize,
    conversation: Arc<Conversation>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Generator {
    /// `conversations == 0` is endless; `concurrency` conversations are in flight at once
    /// (a finished one is replaced by a new one shortly after, in event time).
    pub fn new(seed: u64, queues: &[String], conversations: u64, concurrency: usize) -> Self {
        Generator::with_spacing(seed, queues, conversations, concurrency, DEFAULT_ARRIVAL_SPACING)
    }

    /// As [`Generator::new`], the first `concurrency` arrivals `spacing` milliseconds of
    /// event time apart (each drawn from the range).
    pub fn with_spacing(
        seed: u64,
        queues: &[String],
        conversations: u64,
        concurrency: usize,
        spacing: std::ops::RangeInclusive<i64>,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let flows = [seeded_uuid(&mut rng), seeded_uuid(&mut rng), seeded_uuid(&mut rng)];
        let queues = if queues.is_empty() {
            super::DEFAULT_QUEUES.iter().map(|q| q.to_string()).collect()
        } else {
            queues.to_vec()
        };
        let mut generator = Generator {
            rng,
            queues,
            users: user_pool(seed),
            flows,
            limit: (conversations > 0).then_some(conversations),
            created: 0,
            agenda: BinaryHeap::new(),
        };
        // Stagger the first arrivals over a few minutes so the stream looks like a
        // contact centre already at work rather than fifty calls in one millisecond.
        let mut start = EPOCH_MILLIS;
        for _ in 0..concurrency.max(1) {
            if !generator.can_create() {
                break;
            }
            start += generator.rng.random_range(spacing.clone());
            generator.create(start);
        }
        generator
    }

    /// True when every conversation has been played (never for an endless generator).
    pub fn is_exhausted(&self) -> bool {
        self.agenda.is_empty()
    }

    fn can_create(&self) -> bool {
        self.limit.is_none_or(|limit| self.created < limit)
    }

    fn create(&mut self, start_millis: i64) {
        let seq = self.created;
        self.created += 1;
        let queue_index = self.rng.random_range(0..self.queues.len());
        let route = Route {
            queue_id: self.queues[queue_index].clone(),
            queue_name: format!("Queue {}", queue_index + 1),
            flows: &self.flows,
            users: &self.users,
        };
        let conversation = Arc::new(script(&mut self.rng, seq, start_millis, &route));
        self.agenda.push(Reverse(Due { at: conversation.transitions[0].at, seq, index: 0, conversation }));
    }
}

impl Iterator for Generator {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let Reverse(due) = self.agenda.pop()?;
        let step = Step { conversation: due.conversation, index: due.index };
        if let Some(next) = step.conversation.transitions.get(step.played()) {
            self.agenda.push(Reverse(Due {
                at: next.at,
                seq: due.seq,
                index: step.played(),
                conversation: step.conversation.clone(),
            }));
        } else if self.can_create() {
            // The replacement arrives after this one ended, so event time never runs back.
            let gap = self.rng.random_range(500..=20_000);
            let start = step.transition().at.timestamp_millis() + gap;
            self.create(start);
        }
        Some(step)
    }
}

/// What a conversation is routed through.
struct Route<'a> {
    queue_id: String,
    queue_name: String,
    flows: &'a [String; 3],
    users: &'a [User],
}

/// Writes one conversation's script: a cursor that only moves forward, so every instant
/// in it is distinct.
struct Script<'r> {
    rng: &'r mut ChaCha8Rng,
    now: i64,
    participants: Vec<Participant>,
    transitions: Vec<Transition>,
}

impl Script<'_> {
    /// Moves the cursor forward by a random span (milliseconds, at least 1).
    fn wait(&mut self, min: i64, max: i64) {
        self.now += self.rng.random_range(min.max(1)..=max.max(1));
    }

    fn now(&self) -> DateTime<Utc> {
        at_millis(self.now)
    }

    /// A participant appears at the cursor without connecting yet (an agent being alerted).
    fn alert(&mut self, draft: Draft) -> usize {
        let id = seeded_uuid(self.rng);
        let session_id = seeded_uuid(self.rng);
        self.participants.push(Participant {
            id,
            purpose: draft.purpose,
            user: draft.user,
            queue_id: draft.queue_id,
            name: draft.name,
            session_id,
            appeared_at: self.now(),
            connected_at: None,
            // Overwritten by `end`; every scripted participant ends.
            ended_at: self.now(),
            disconnect_type: "system",
        });
        self.participants.len() - 1
    }

    fn connect(&mut self, participant: usize) {
        let at = self.now();
        self.participants[participant].connected_at = Some(at);
        self.transitions.push(Transition { at, participant, kind: TransitionKind::Connected });
    }

    /// A participant appears and connects at the cursor.
    fn join(&mut self, draft: Draft) -> usize {
        let participant = self.alert(draft);
        self.connect(participant);
        participant
    }

    fn end(&mut self, participant: usize, disconnect_type: &'static str) {
        let at = self.now();
        let ended = &mut self.participants[participant];
        ended.ended_at = at;
        ended.disconnect_type = disconnect_type;
        self.transitions.push(Transition { at, participant, kind: TransitionKind::Ended });
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.rng.random_range(0..choices.len())]
    }
}

struct Draft {
    purpose: Purpose,
    user: Option<User>,
    queue_id: Option<String>,
    name: String,
}

impl Draft {
    fn plain(purpose: Purpose, name: String) -> Self {
        Draft { purpose, user: None, queue_id: None, name }
    }

    fn agent(user: &User, queue_id: &str) -> Self {
        Draft {
            purpose: Purpose::Agent,
            user: Some(user.clone()),
            queue_id: Some(queue_id.to_owned()),
            name: user.name.clone(),
        }
    }
}

/// The shapes, all seeded: customer → optional IVR/flow → acd (queue) → missed alerts →
/// agent, then a plain talk, a consult/conference (second agent or external party joins
/// while the first is connected, then leaves) or a blind transfer (the first agent leaves
/// with `transfer`, a second joins), and the customer leaves last.
fn script(rng: &mut ChaCha8Rng, seq: u64, start_millis: i64, route: &Route<'_>) -> Conversation {
    let media = match rng.random_range(0..100) {
        0..60 => Media::Voice,
        60..85 => Media::Chat,
        _ => Media::Message,
    };
    let id = seeded_uuid(rng);
    // Agents for this conversation, all distinct: up to two missed alerts and two agents.
    let mut agents: Vec<&User> = route.users.iter().collect();
    agents.shuffle(rng);
    let mut agents = agents.into_iter();
    let flow_id = route.flows[match media {
        Media::Voice => 0,
        Media::Chat => 1,
        Media::Message => 2,
    }]
    .clone();

    let mut s = Script { rng, now: start_millis, participants: Vec::new(), transitions: Vec::new() };
    let customer = s.customer(media);
    s.through_a_flow(media);
    let acd = s.queued(route);
    s.missed_alerts(&mut agents, route);
    let first_user = agents.next().unwrap_or(&route.users[0]);
    let first = s.first_agent(first_user, acd, route);
    let second_user = agents.next().unwrap_or(&route.users[1 % route.users.len()]);
    let last_agent = s.after_the_first_agent(first, second_user, route);
    s.hang_up(last_agent, customer);

    Conversation {
        seq,
        id,
        media,
        queue_id: route.queue_id.clone(),
        queue_name: route.queue_name.clone(),
        flow_id,
        participants: s.participants,
        transitions: s.transitions,
    }
}

/// The phases of [`script`], in the order they draw from the seeded generator.
impl Script<'_> {
    /// The customer joins: a phone number or a guest name.
    fn customer(&mut self, media: Media) -> usize {
        let name = match media {
            Media::Voice => format!("+1 317-555-{:04}", self.rng.random_range(0..10_000)),
            _ => format!("Guest {:04}", self.rng.random_range(0..10_000)),
        };
        self.join(Draft::plain(Purpose::Customer, name))
    }

    /// A voice call goes through the IVR; a chat or message through a flow half the time.
    fn through_a_flow(&mut self, media: Media) {
        let flow = match media {
            Media::Voice => Some(Purpose::Ivr),
            _ if self.rng.random_bool(0.5) => Some(Purpose::Workflow),
            _ => None,
        };
        if let Some(purpose) = flow {
            self.wait(300, 1_500);
            let name = match purpose {
                Purpose::Ivr => "Main IVR",
                _ => "Inbound Message Flow",
            };
            let flow = self.join(Draft::plain(purpose, name.to_owned()));
            self.wait(15_000, 90_000);
            self.end(flow, "transfer");
        }
    }

    /// The queue (acd) participant joins.
    fn queued(&mut self, route: &Route<'_>) -> usize {
        self.wait(200, 800);
        self.join(Draft {
            purpose: Purpose::Acd,
            user: None,
            queue_id: Some(route.queue_id.clone()),
            name: route.queue_name.clone(),
        })
    }

    /// None, one or two agents are alerted and do not answer.
    fn missed_alerts<'u>(&mut self, agents: &mut impl Iterator<Item = &'u User>, route: &Route<'_>) {
        let missed = match self.rng.random_range(0..100) {
            0..60 => 0,
            60..90 => 1,
            _ => 2,
        };
        for user in agents.by_ref().take(missed) {
            self.wait(5_000, 60_000);
            let alerted = self.alert(Draft::agent(user, &route.queue_id));
            self.wait(8_000, 20_000);
            self.end(alerted, "timeout");
        }
    }

    /// The first agent answers, and the queue hands the conversation over.
    fn first_agent(&mut self, user: &User, acd: usize, route: &Route<'_>) -> usize {
        self.wait(2_000, 30_000);
        let first = self.alert(Draft::agent(user, &route.queue_id));
        self.wait(2_000, 10_000);
        self.connect(first);
        self.wait(50, 500);
        self.end(acd, "transfer");
        self.wait(30_000, 300_000);
        first
    }

    /// A plain talk, a consult or conference, or a blind transfer. Returns the agent still
    /// on at the end.
    fn after_the_first_agent(&mut self, first: usize, second_user: &User, route: &Route<'_>) -> usize {
        match self.rng.random_range(0..100) {
            // A plain call: nobody else joins.
            0..50 => first,
            // Consult or conference: someone joins while the first agent stays on.
            50..75 => {
                let second = if self.rng.random_bool(0.6) {
                    self.wait(1_000, 5_000);
                    let second = self.alert(Draft::agent(second_user, &route.queue_id));
                    self.wait(3_000, 10_000);
                    self.connect(second);
                    second
                } else {
                    self.wait(5_000, 20_000);
                    let number = format!("+1 317-555-{:04}", self.rng.random_range(0..10_000));
                    self.join(Draft::plain(Purpose::External, number))
                };
                self.wait(20_000, 180_000);
                let why = self.pick(&["client", "endpoint", "transfer.conference"]);
                self.end(second, why);
                self.wait(10_000, 120_000);
                first
            }
            // Blind transfer: the first agent hands over and leaves before the second connects.
            _ => {
                self.end(first, "transfer");
                self.wait(200, 2_000);
                let second = self.alert(Draft::agent(second_user, &route.queue_id));
                self.wait(3_000, 10_000);
                self.connect(second);
                self.wait(30_000, 300_000);
                second
            }
        }
    }

    /// Either side ends it; the customer's session is torn down last.
    fn hang_up(&mut self, last_agent: usize, customer: usize) {
        if self.rng.random_bool(0.5) {
            // The agent ends the interaction; the customer's side follows.
            let why = self.pick(&["client", "endpoint"]);
            self.end(last_agent, why);
            self.wait(100, 2_000);
            self.end(customer, "peer");
        } else {
            // The customer hangs up: the agent is released by the peer, the customer's own
            // session is torn down last.
            self.end(last_agent, "peer");
            self.wait(50, 500);
            self.end(customer, "endpoint");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn queues() -> Vec<String> {
        vec!["q-one".to_owned(), "q-two".to_owned()]
    }

    fn played(seed: u64, conversations: u64) -> Vec<Step> {
        Generator::new(seed, &queues(), conversations, 5).collect()
    }

    #[test]
    fn the_same_seed_plays_the_same_steps() {
        let first = played(42, 30);
        let second = played(42, 30);
        assert_eq!(first.len(), second.len());
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(a.index, b.index);
            assert_eq!(a.conversation, b.conversation);
        }
        let other = played(43, 30);
        assert_ne!(first[0].conversation.id, other[0].conversation.id);
    }

    #[test]
    fn a_finite_generator_plays_every_transition_of_every_conversation_once() {
        let steps = played(7, 40);
        let conversations: HashSet<&str> = steps.iter().map(|s| s.conversation.id.as_str()).collect();
        assert_eq!(conversations.len(), 40);
        let expected: usize = {
            let mut seen = HashMap::new();
            for step in &steps {
                seen.insert(&step.conversation.id, step.conversation.transitions.len());
            }
            seen.values().sum()
        };
        assert_eq!(steps.len(), expected);
    }

    #[test]
    fn steps_come_in_global_event_time_order() {
        let steps = played(3, 60);
        for pair in steps.windows(2) {
            assert!(pair[0].transition().at <= pair[1].transition().at);
        }
    }

    #[test]
    fn times_within_a_conversation_are_distinct_and_ordered() {
        for step in played(11, 50).iter().filter(|s| s.index == 0) {
            let conversation = &step.conversation;
            for pair in conversation.transitions.windows(2) {
                assert!(pair[0].at < pair[1].at, "{}", conversation.id);
            }
            for participant in &conversation.participants {
                assert!(participant.appeared_at <= participant.ended_at);
                if let Some(connected) = participant.connected_at {
                    assert!(participant.appeared_at <= connected);
                    assert!(connected < participant.ended_at);
                }
            }
        }
    }

    #[test]
    fn the_mix_has_every_shape() {
        let conversations: Vec<Arc<Conversation>> =
            played(5, 120).into_iter().filter(|s| s.index == 0).map(|s| s.conversation).collect();
        let has = |f: &dyn Fn(&Conversation) -> bool| conversations.iter().any(|c| f(c));
        assert!(has(&|c| c.media == Media::Voice));
        assert!(has(&|c| c.media == Media::Chat));
        assert!(has(&|c| c.media == Media::Message));
        assert!(has(&|c| c.participants.iter().any(|p| p.purpose == Purpose::Ivr)));
        assert!(has(&|c| c
            .participants
            .iter()
            .any(|p| p.connected_at.is_none() && p.disconnect_type == "timeout")));
        assert!(has(&|c| c
            .participants
            .iter()
            .any(|p| p.purpose == Purpose::Agent && p.disconnect_type == "transfer")));
        assert!(has(&|c| c.participants.iter().any(|p| p.purpose == Purpose::External)));
        // A consult: two agents connected at the same time.
        assert!(has(&|c| {
            let agents: Vec<&Participant> = c
                .participants
                .iter()
                .filter(|p| p.purpose == Purpose::Agent && p.connected_at.is_some())
                .collect();
            agents.iter().any(|a| {
                agents.iter().any(|b| {
                    a.id != b.id && a.connected_at < b.connected_at && b.connected_at < Some(a.ended_at)
                })
            })
        }));
    }

    #[test]
    fn agents_carry_a_pool_user_and_the_queue() {
        let pool: HashSet<String> = user_pool(9).into_iter().map(|u| u.id).collect();
        for step in played(9, 30).iter().filter(|s| s.index == 0) {
            for participant in &step.conversation.participants {
                match participant.purpose {
                    Purpose::Agent => {
                        let user = participant.user.as_ref().expect("agent has a user");
                        assert!(pool.contains(&user.id));
                        assert_eq!(participant.queue_id.as_ref(), Some(&step.conversation.queue_id));
                    }
                    Purpose::Acd => assert!(participant.queue_id.is_some()),
                    _ => assert!(participant.user.is_none()),
                }
            }
        }
    }

    #[test]
    fn the_truth_leaves_out_missed_alerts_and_keeps_entries_sorted() {
        for step in played(13, 80).iter().filter(|s| s.is_last()) {
            let conversation = &step.conversation;
            let truth = timeline(conversation, step.played());
            let missed: HashSet<&str> = conversation
                .participants
                .iter()
                .filter(|p| p.connected_at.is_none())
                .map(|p| p.id.as_str())
                .collect();
            assert!(truth.participants.iter().all(|p| !missed.contains(p.participant_id.as_str())));
            assert!(truth.entries.iter().all(|e| !missed.contains(e.participant_id.as_str())));
            assert_eq!(truth.entries.len(), truth.participants.len() * 2);
            for pair in truth.entries.windows(2) {
                assert!(pair[0].sort_key() < pair[1].sort_key());
            }
            for pair in truth.participants.windows(2) {
                assert!(pair[0].joined_at <= pair[1].joined_at);
            }
            assert!(truth.complete);
            assert!(truth.participants.iter().all(|p| p.left_at.is_some() && p.disconnect_type.is_some()));
            assert_eq!(truth.started_at, truth.entries.first().map(|e| e.at));
            assert_eq!(truth.ended_at, truth.entries.last().map(|e| e.at));
            assert_eq!(truth.participants[0].purpose.as_deref(), Some("customer"));
            assert_eq!(
                truth.entries.last().map(|e| e.participant_id.as_str()),
                Some(truth.participants[0].participant_id.as_str()),
                "the customer leaves last"
            );
            assert_eq!(truth.media_types, vec![conversation.media.name()]);
            assert_eq!((truth.gaps, truth.healed), (0, false));
        }
    }

    #[test]
    fn a_partly_played_conversation_is_open() {
        let step = played(17, 1).into_iter().next().expect("one step");
        let truth = timeline(&step.conversation, 1);
        assert!(!truth.complete);
        assert_eq!(truth.ended_at, None);
        assert_eq!(truth.participants.len(), 1);
        assert_eq!(truth.participants[0].left_at, None);
        assert_eq!(truth.entries.len(), 1);
    }
}
