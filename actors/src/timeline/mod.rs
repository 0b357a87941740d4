//! Timeline reconstruction — pure, no actix. A [`Timeline`] is one conversation's
//! participants and entries; a [`TimelineBook`] holds every open timeline (in a `DashMap`
//! that the HTTP side reads), the reorder window, closing, idle eviction and tombstones.
//!
//! Time: entries are ordered by *event* time; the reorder window and the quiet period are
//! measured in *arrival* (wall) time, passed in as `now` so tests drive the clock.

pub mod actor;

use crate::event::{Action, Fingerprint, ParticipantEvent};
use crate::record::{EntryRecord, ParticipantRecord, TimelineRecord};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The closing rules (`[pipeline]` settings).
#[derive(Clone, Debug)]
pub struct TimelineRules {
    /// How long an event is held after arrival so a later-arriving, earlier event can
    /// still be published before it.
    pub reorder_window: Duration,
    /// Quiet period after the last event before a conversation whose participants have all
    /// left is closed.
    pub close_after: Duration,
    /// A conversation with no event for this long is closed as incomplete.
    pub idle_timeout: Duration,
    /// How long a closed conversation is remembered so late frames neither reopen it nor
    /// write it twice.
    pub tombstone_ttl: Duration,
}

impl Default for TimelineRules {
    fn default() -> Self {
        TimelineRules {
            reorder_window: Duration::from_millis(200),
            close_after: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(4 * 3600),
            tombstone_ttl: Duration::from_secs(3600),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct ParticipantState {
    purpose: Option<String>,
    user: Option<String>,
    queue: Option<String>,
    joined_at: Option<DateTime<Utc>>,
    left_at: Option<DateTime<Utc>>,
    disconnect_type: Option<String>,
}

#[derive(Clone, Debug)]
struct HeldEntry {
    entry: EntryRecord,
    arrived: Instant,
}

/// One conversation being rebuilt.
#[derive(Clone, Debug)]
pub struct Timeline {
    conversation: String,
    media: BTreeSet<String>,
    participants: BTreeMap<String, ParticipantState>,
    seen: HashSet<Fingerprint>,
    held: Vec<HeldEntry>,
    published: Vec<EntryRecord>,
    gaps: u32,
    /// Increases with every gap; a backfill heals the gaps up to the epoch it was asked for.
    gap_epoch: u32,
    /// The epoch the last successful backfill covered.
    healed_epoch: u32,
    /// A backfill was asked for and has not answered: do not close yet.
    backfill_pending: bool,
    last_arrival: Instant,
}

/// What applying one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Accepted,
    /// Seen before (same fingerprint), or a second, different time for a join/leave already
    /// known: the first one seen stands.
    Duplicate,
    /// The conversation was closed already: neither reopened nor written twice.
    AfterClose,
}

impl Timeline {
    pub fn new(conversation: String, now: Instant) -> Self {
        Timeline {
            conversation,
            media: BTreeSet::new(),
            participants: BTreeMap::new(),
            seen: HashSet::new(),
            held: Vec::new(),
            published: Vec::new(),
            gaps: 0,
            gap_epoch: 0,
            healed_epoch: 0,
            backfill_pending: false,
            last_arrival: now,
        }
    }

    pub fn conversation(&self) -> &str {
        &self.conversation
    }

    pub fn apply(&mut self, event: ParticipantEvent, now: Instant) -> Applied {
        if !self.seen.insert(event.fingerprint) {
            return Applied::Duplicate;
        }
        let state = self.participants.entry(event.participant.clone()).or_default();
        let slot = match event.action {
            Action::Joined => &mut state.joined_at,
            Action::Left => &mut state.left_at,
        };
        if slot.is_some() {
            return Applied::Duplicate;
        }
        *slot = Some(event.at);
        fill(&mut state.purpose, event.purpose.clone());
        fill(&mut state.user, event.user);
        fill(&mut state.queue, event.queue);
        if event.action == Action::Left {
            fill(&mut state.disconnect_type, event.disconnect_type);
        }
        if let Some(media) = event.media {
            self.media.insert(media);
        }
        self.held.push(HeldEntry {
            entry: EntryRecord {
                at: event.at,
                action: event.action,
                participant_id: event.participant,
                purpose: event.purpose,
            },
            arrived: now,
        });
        self.last_arrival = now;
        Applied::Accepted
    }

    /// Entries whose reorder window has passed, in event-time order. An entry never
    /// overtakes an earlier (event-time) entry that is still held.
    fn release(&mut self, now: Instant, window: Duration) -> Vec<EntryRecord> {
        if self.held.is_empty() {
            return Vec::new();
        }
        self.held.sort_by(|a, b| a.entry.sort_key().cmp(&b.entry.sort_key()));
        let ready =
            self.held.iter().take_while(|held| now.saturating_duration_since(held.arrived) >= window).count();
        let released: Vec<EntryRecord> = self.held.drain(..ready).map(|held| held.entry).collect();
        self.published.extend(released.iter().cloned());
        released
    }

    fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Every participant seen has both joined and left.
    fn all_left(&self) -> bool {
        !self.participants.is_empty()
            && self.participants.values().all(|p| p.joined_at.is_some() && p.left_at.is_some())
    }

    fn closable(&self, now: Instant, rules: &TimelineRules) -> bool {
        !self.has_held()
            && !self.backfill_pending
            && self.all_left()
            && now.saturating_duration_since(self.last_arrival) >= rules.close_after
    }

    fn idle(&self, now: Instant, rules: &TimelineRules) -> bool {
        now.saturating_duration_since(self.last_arrival) >= rules.idle_timeout
    }

    /// Record that events of this conversation were missed (dropped, sent while no
    /// socket was up, or before it was first seen). Returns the epoch a backfill must
    /// cover to heal it.
    pub fn mark_gap(&mut self) -> u32 {
        self.gaps += 1;
        self.gap_epoch += 1;
        self.backfill_pending = true;
        self.gap_epoch
    }

    /// A backfill answered: the gaps up to `epoch` are healed if it succeeded. A gap that
    /// came after it was asked for waits for its own backfill.
    pub fn backfilled(&mut self, epoch: u32, succeeded: bool) {
        if epoch < self.gap_epoch {
            return;
        }
        self.backfill_pending = false;
        if succeeded {
            self.healed_epoch = epoch;
        }
    }

    fn unhealed(&self) -> bool {
        self.healed_epoch < self.gap_epoch
    }

    /// The timeline as it stands, in the output schema. Held entries are included, in order.
    pub fn to_record(&self) -> TimelineRecord {
        let mut entries: Vec<EntryRecord> =
            self.published.iter().chain(self.held.iter().map(|h| &h.entry)).cloned().collect();
        entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let mut participants: Vec<ParticipantRecord> = self
            .participants
            .iter()
            .map(|(id, p)| ParticipantRecord {
                participant_id: id.clone(),
                purpose: p.purpose.clone(),
                user_id: p.user.clone(),
                queue_id: p.queue.clone(),
                joined_at: p.joined_at,
                left_at: p.left_at,
                disconnect_type: p.disconnect_type.clone(),
            })
            .collect();
        participants.sort_by(|a, b| {
            (a.joined_at.is_none(), a.joined_at, &a.participant_id).cmp(&(
                b.joined_at.is_none(),
                b.joined_at,
                &b.participant_id,
            ))
        });
        let all_left = self.all_left();
        TimelineRecord {
            conversation_id: self.conversation.clone(),
            media_types: self.media.iter().cloned().collect(),
            started_at: self.participants.values().filter_map(|p| p.joined_at).min(),
            ended_at: if all_left {
                self.participants.values().filter_map(|p| p.left_at).max()
            } else {
                None
            },
            complete: all_left && !self.unhealed(),
            gaps: self.gaps,
            healed: self.gaps > 0 && !self.unhealed(),
            participants,
            entries,
        }
    }
}

/// First value seen wins: a later snapshot never rewrites who a participant was.
fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Ask for a conversation's current state over REST, to heal its gaps up to `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackfillRequest {
    pub conversation: String,
    pub epoch: u32,
}

/// A published join or leave, for the log and the live feed.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineUpdate {
    pub conversation_id: String,
    pub entry: EntryRecord,
    /// Published after an entry with a later event time (it arrived past the window).
    pub late: bool,
}

/// Why a timeline was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Every participant left and the quiet period passed.
    Ended,
    /// No event for `idle_timeout`: closed incomplete.
    Idle,
    /// The daemon is stopping, or the input (replay) ended.
    Shutdown,
}

/// What one [`TimelineBook::tick`] produced.
#[derive(Debug, Default)]
pub struct Tick {
    pub updates: Vec<TimelineUpdate>,
    pub closed: Vec<(TimelineRecord, CloseReason)>,
}

/// Every open timeline, plus tombstones of the recently closed.
pub struct TimelineBook {
    rules: TimelineRules,
    open: Arc<DashMap<String, Timeline>>,
    /// Conversations holding entries in the reorder window: only these are visited for
    /// release on every tick.
    holding: HashSet<String>,
    tombstones: HashMap<String, Instant>,
    last_sweep: Option<Instant>,
    backfills: Vec<BackfillRequest>,
    /// After a socket outage, conversations first seen before this are marked gapped.
    new_are_gapped_until: Option<Instant>,
}

/// Closing and eviction are checked at most this often: they scan every open timeline.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

impl TimelineBook {
    pub fn new(rules: TimelineRules, open: Arc<DashMap<String, Timeline>>) -> Self {
        TimelineBook {
            rules,
            open,
            holding: HashSet::new(),
            tombstones: HashMap::new(),
            last_sweep: None,
            backfills: Vec::new(),
            new_are_gapped_until: None,
        }
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn apply(&mut self, event: ParticipantEvent, now: Instant) -> Applied {
        if self.tombstones.contains_key(&event.conversation) {
            return Applied::AfterClose;
        }
        let conversation = event.conversation.clone();
        let first_seen = !self.open.contains_key(&conversation);
        let applied = self
            .open
            .entry(conversation.clone())
            .or_insert_with(|| Timeline::new(conversation.clone(), now))
            .apply(event, now);
        if first_seen && self.new_are_gapped_until.is_some_and(|until| now < until) {
            self.mark_gap(&conversation, now);
        }
        if applied == Applied::Accepted {
            self.holding.insert(conversation);
        }
        applied
    }

    /// Mark a conversation as having missed events; an unknown one is opened so that the
    /// gap is reported when it closes rather than lost. A closed one stays closed. The
    /// backfill to ask for is queued for [`TimelineBook::take_backfills`].
    pub fn mark_gap(&mut self, conversation: &str, now: Instant) {
        if self.tombstones.contains_key(conversation) {
            return;
        }
        let epoch = self
            .open
            .entry(conversation.to_owned())
            .or_insert_with(|| Timeline::new(conversation.to_owned(), now))
            .mark_gap();
        self.backfills.push(BackfillRequest { conversation: conversation.to_owned(), epoch });
    }

    /// The socket was down from some time until `now`: every open conversation may have
    /// missed events, and so may any conversation first seen within `grace` from now (it
    /// may have begun while nobody listened).
    pub fn socket_gap(&mut self, now: Instant, grace: Duration) {
        let open: Vec<String> = self.open.iter().map(|t| t.key().clone()).collect();
        for conversation in &open {
            self.mark_gap(conversation, now);
        }
        self.new_are_gapped_until = Some(now + grace);
    }

    /// Backfills asked for since the last call.
    pub fn take_backfills(&mut self) -> Vec<BackfillRequest> {
        std::mem::take(&mut self.backfills)
    }

    /// Apply a backfill's answer: its events (deduplicated like any others), then the
    /// healing. A conversation closed meanwhile stays closed.
    pub fn backfilled(
        &mut self,
        request: &BackfillRequest,
        events: Vec<ParticipantEvent>,
        succeeded: bool,
        now: Instant,
    ) {
        for event in events {
            self.apply(event, now);
        }
        if let Some(mut timeline) = self.open.get_mut(&request.conversation) {
            timeline.backfilled(request.epoch, succeeded);
        }
    }

    pub fn is_open(&self, conversation: &str) -> bool {
        self.open.contains_key(conversation)
    }

    /// Publish what the reorder window lets go, close what has ended or idled out.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        let window = self.rules.reorder_window;
        let mut drained = Vec::new();
        for conversation in &self.holding {
            let Some(mut timeline) = self.open.get_mut(conversation) else {
                drained.push(conversation.clone());
                continue;
            };
            let last_published = timeline.published.last().map(|e| e.sort_key_owned());
            let released = timeline.release(now, window);
            let mut previous = last_published;
            for entry in released {
                let key = entry.sort_key_owned();
                let late = previous.as_ref().is_some_and(|p| key < *p);
                if !late {
                    previous = Some(key);
                }
                tick.updates.push(TimelineUpdate { conversation_id: conversation.clone(), entry, late });
            }
            if !timeline.has_held() {
                drained.push(conversation.clone());
            }
        }
        for conversation in drained {
            self.holding.remove(&conversation);
        }
        if self.last_sweep.is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_INTERVAL) {
            self.last_sweep = Some(now);
            self.sweep(now, &mut tick);
        }
        tick
    }

    fn sweep(&mut self, now: Instant, tick: &mut Tick) {
        let rules = &self.rules;
        let finished: Vec<(String, CloseReason)> = self
            .open
            .iter()
            .filter_map(|t| {
                if t.closable(now, rules) {
                    Some((t.key().clone(), CloseReason::Ended))
                } else if t.idle(now, rules) {
                    Some((t.key().clone(), CloseReason::Idle))
                } else {
                    None
                }
            })
            .collect();
        for (conversation, reason) in finished {
            self.close(&conversation, reason, now, tick);
        }
        let ttl = self.rules.tombstone_ttl;
        self.tombstones.retain(|_, closed| now.saturating_duration_since(*closed) < ttl);
    }

    fn close(&mut self, conversation: &str, reason: CloseReason, now: Instant, tick: &mut Tick) {
        let Some((conversation, mut timeline)) = self.open.remove(conversation) else {
            return;
        };
        // Whatever is still held is published now, in order, before the summary.
        for entry in timeline.release(now, Duration::ZERO) {
            tick.updates.push(TimelineUpdate { conversation_id: conversation.clone(), entry, late: false });
        }
        self.holding.remove(&conversation);
        tick.closed.push((timeline.to_record(), reason));
        self.tombstones.insert(conversation, now);
    }

    /// Close every open timeline (shutdown, end of replay input): complete ones as
    /// complete, the rest flagged incomplete.
    pub fn close_all(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        let conversations: Vec<String> = self.open.iter().map(|t| t.key().clone()).collect();
        for conversation in conversations {
            self.close(&conversation, CloseReason::Shutdown, now, &mut tick);
        }
        tick
    }
}

impl EntryRecord {
    fn sort_key_owned(&self) -> (DateTime<Utc>, Action, String) {
        (self.at, self.action, self.participant_id.clone())
    }
}

#[cfg(test)]
mod tests;

/// Conversations whose events were dropped before reaching the TimelineActor (its mailbox
/// was full, so it cannot be told by message). It drains this on every tick.
#[derive(Debug, Default)]
pub struct GapLedger(std::sync::Mutex<HashSet<String>>);

impl GapLedger {
    pub fn mark_all<'a>(&self, conversations: impl IntoIterator<Item = &'a str>) {
        let mut marked = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for conversation in conversations {
            if !marked.contains(conversation) {
                marked.insert(conversation.to_owned());
            }
        }
    }

    pub fn drain(&self) -> Vec<String> {
        let mut marked = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        marked.drain().collect()
    }
}
