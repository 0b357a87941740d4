//! One conversation being rebuilt: its participants, their joins and leaves (held until
//! the reorder window passes, then published in event-time order), and its gap
//! accounting. Its fields are its own: the book drives it only through the methods here.

use super::{CloseReason, TimelineRules};
use crate::compact::{CompactId, Symbol};
use crate::event::{Action, Fingerprint, ParticipantEvent};
use crate::record::{EntryRecord, ParticipantRecord, TimelineRecord};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Event times are kept as milliseconds since the epoch, the precision of every output.
type Millis = i64;

pub(super) fn millis(at: DateTime<Utc>) -> Millis {
    at.timestamp_millis()
}

fn time(at: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at).unwrap_or_default()
}

/// An event time or none, in 8 bytes (an `Option<i64>` takes 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp(Millis);

impl Stamp {
    const NONE: Stamp = Stamp(Millis::MIN);

    fn get(self) -> Option<Millis> {
        (self != Stamp::NONE).then_some(self.0)
    }

    fn is_some(self) -> bool {
        self != Stamp::NONE
    }

    fn is_none(self) -> bool {
        self == Stamp::NONE
    }
}

impl From<Option<Millis>> for Stamp {
    fn from(at: Option<Millis>) -> Self {
        // `Millis::MIN` is not a time chrono can hold, so it never stands for a real one.
        at.map_or(Stamp::NONE, Stamp)
    }
}

/// One participant as far as it is known. Interned details and a packed id keep it at
/// 56 bytes: a timeline is mostly its participants, and an open conversation should cost
/// at most about 1 KiB.
#[derive(Clone, Debug)]
struct ParticipantState {
    id: CompactId,
    purpose: Option<Symbol>,
    user: Option<Symbol>,
    queue: Option<Symbol>,
    disconnect_type: Option<Symbol>,
    joined: Stamp,
    left: Stamp,
}

impl ParticipantState {
    fn slot(&self, action: Action) -> Option<Millis> {
        match action {
            Action::Joined => self.joined.get(),
            Action::Left => self.left.get(),
        }
    }

    fn entry(&self, action: Action) -> Option<EntryRecord> {
        self.slot(action).map(|at| EntryRecord {
            at: time(at),
            action,
            participant_id: self.id.to_string(),
            purpose: self.purpose.map(|p| p.as_str().to_owned()),
        })
    }
}

/// A join or leave not yet published: which participant's, and when it arrived.
#[derive(Clone, Copy, Debug)]
struct HeldEntry {
    participant: u16,
    action: Action,
    arrived: Instant,
}

/// Where an entry sits in event-time order (its participant by index into `participants`).
#[derive(Clone, Copy, Debug)]
struct EntryKey {
    at: Millis,
    action: Action,
    participant: u16,
}

/// One conversation being rebuilt. Its entries are not stored twice: each is a
/// participant's join or leave, published unless it is still `held`.
#[derive(Clone, Debug)]
pub struct Timeline {
    conversation: Arc<str>,
    participants: Vec<ParticipantState>,
    media: Vec<Symbol>,
    /// Short SHA-256 fingerprints of the events taken (see [`Fingerprint::short`]).
    seen: Vec<u64>,
    /// Lookups by participant id and fingerprint once there are too many to scan.
    index: Option<Box<Index>>,
    /// Participants were refused past [`TimelineRules::max_participants`]: incomplete.
    truncated: bool,
    held: Vec<HeldEntry>,
    /// The latest entry (in event-time order) published so far: an entry released after it
    /// that sorts before it is late.
    last_published: Option<EntryKey>,
    gaps: u32,
    /// Increases with every gap; a backfill heals the gaps up to the epoch it was asked for.
    gap_epoch: u32,
    /// The epoch the last successful backfill covered.
    healed_epoch: u32,
    /// Gaps marked since the last backfill answer: suspected until a backfill shows what
    /// was missed.
    suspected: u32,
    /// A backfill was asked for and has not answered: do not close yet.
    backfill_pending: bool,
    /// A backfill was asked for because a leave came without its join (asked once).
    orphans_backfilled: bool,
    /// Checked over REST since its last event (see `TimelineRules::verify_after`).
    verified_while_quiet: bool,
    recovered_since_gap: bool,
    /// A suspected gap has a cause that proves a loss (see [`GapCause`]).
    certain_loss: bool,
    /// The latest event time the live stream delivered for this conversation: a backfilled
    /// event before it was missed; one after it may only be ahead of the stream.
    live_latest: Stamp,
    /// The channels whose sockets carried its events: a socket gap on one of them may have
    /// lost some; one on another channel cannot have.
    channels: ChannelSet,
    /// When this conversation was first seen (opened).
    first_seen: Instant,
    last_arrival: Instant,
    /// When the book next looks at it for closing, eviction and its quiet checks.
    check_at: Instant,
}

/// Past this many participants a timeline indexes them: a scan of a few is faster and
/// smaller than a hash table, a scan of thousands per event would stall the actor.
const INDEX_FROM: usize = 16;

/// `participants` and `seen` as hash tables, kept beside the vectors they index.
#[derive(Clone, Debug, Default)]
struct Index {
    participants: std::collections::HashMap<CompactId, u16>,
    seen: std::collections::HashSet<u64>,
}

/// What a timeline's check found (see [`Timeline::due`]).
pub(super) enum Due {
    Close(CloseReason),
    Backfill,
    Wait,
}

/// Why a conversation is marked with a gap — which decides what a backfill must bring to
/// prove that events were really missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapCause {
    /// Events may have been missed (the socket or the daemon was down, a leave came
    /// without its join, the conversation went quiet for long) while the stream goes on:
    /// a backfill racing it can bring events that were only in flight, so only those
    /// older than what the stream has since delivered prove a loss.
    Outage,
    /// Events were certainly missed (dropped at a full mailbox): any event the backfill
    /// brings was missed.
    Loss,
}

/// What applying one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Applied {
    Accepted,
    /// Seen before (same fingerprint), or a second, different time for a join/leave already
    /// known: the first one seen stands.
    Duplicate,
    /// The conversation was closed already: neither reopened nor written twice.
    AfterClose,
    /// A participant past [`TimelineRules::max_participants`]: refused.
    OverLimit,
}

/// A set of channel indexes (from 0), as bits: at most [`ChannelSet::CAPACITY`] channels,
/// above the 20 one OAuth client may hold. A larger index is taken as the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelSet(u32);

impl ChannelSet {
    pub const CAPACITY: usize = 32;

    fn bit(channel: usize) -> u32 {
        1 << channel.min(Self::CAPACITY - 1)
    }

    pub fn insert(&mut self, channel: usize) {
        self.0 |= Self::bit(channel);
    }

    pub fn contains(&self, channel: usize) -> bool {
        self.0 & Self::bit(channel) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..Self::CAPACITY).filter(|channel| self.contains(*channel))
    }
}

impl Timeline {
    pub fn new(conversation: Arc<str>, now: Instant) -> Self {
        Timeline {
            conversation,
            participants: Vec::new(),
            media: Vec::new(),
            seen: Vec::new(),
            index: None,
            truncated: false,
            held: Vec::new(),
            last_published: None,
            gaps: 0,
            gap_epoch: 0,
            healed_epoch: 0,
            suspected: 0,
            backfill_pending: false,
            orphans_backfilled: false,
            verified_while_quiet: false,
            recovered_since_gap: false,
            certain_loss: false,
            live_latest: Stamp::NONE,
            channels: ChannelSet::default(),
            first_seen: now,
            last_arrival: now,
            check_at: now,
        }
    }

    /// Rebuild a timeline saved by [`TimelineBook::saved_state`]: its entries count as
    /// published (they were logged before the restart).
    pub fn restore(record: TimelineRecord, now: Instant) -> Self {
        let mut timeline = Timeline::new(record.conversation_id.as_str().into(), now);
        timeline.media = record.media_types.iter().filter_map(|m| Symbol::intern(m)).collect();
        // A file is outside input too: what no live timeline could hold is not taken up.
        let limit = usize::from(u16::MAX);
        timeline.truncated = record.participants.len() > limit;
        for p in record.participants.into_iter().take(limit) {
            for (action, at) in [(Action::Joined, p.joined_at), (Action::Left, p.left_at)] {
                if let Some(at) = at {
                    let fingerprint = Fingerprint::of(&record.conversation_id, &p.participant_id, action, at);
                    timeline.seen.push(fingerprint.short());
                }
            }
            timeline.participants.push(ParticipantState {
                id: CompactId::new(&p.participant_id),
                purpose: p.purpose.as_deref().and_then(Symbol::intern),
                user: p.user_id.as_deref().and_then(Symbol::intern),
                queue: p.queue_id.as_deref().and_then(Symbol::intern),
                joined: p.joined_at.map(millis).into(),
                left: p.left_at.map(millis).into(),
                disconnect_type: p.disconnect_type.as_deref().and_then(Symbol::intern),
            });
        }
        timeline.index_if_large();
        timeline.last_published = timeline.entry_keys().max_by(|a, b| timeline.order(a, b));
        timeline.gaps = record.gaps;
        if record.gaps > 0 && !record.healed {
            timeline.gap_epoch = 1;
        }
        timeline
    }

    /// A participant left without having joined, the conversation has been quiet for the
    /// quiet period (a reordered join would have come), nothing is awaited, and no backfill
    /// was asked for that yet: the join was missed.
    fn shows_missed_joins(&self, now: Instant, rules: &TimelineRules) -> bool {
        !self.orphans_backfilled
            && now.saturating_duration_since(self.last_arrival) >= rules.close_after
            && !self.has_held()
            && !self.backfill_pending
            && self.participants.iter().any(|p| p.left.is_some() && p.joined.is_none())
    }

    /// Quiet for `verify_after`, not checked since, nothing awaited: worth asking the API
    /// whether it ended unseen.
    fn needs_verifying(&self, now: Instant, rules: &TimelineRules) -> bool {
        !self.verified_while_quiet
            && !self.backfill_pending
            && now.saturating_duration_since(self.last_arrival) >= rules.verify_after
    }

    /// Every participant has left and nothing is held or awaited: complete as far as we
    /// know, whatever the quiet period says.
    pub(super) fn finished(&self) -> bool {
        !self.has_held() && !self.backfill_pending && self.all_left()
    }

    pub fn latest_entry_time(&self) -> Option<DateTime<Utc>> {
        self.participants.iter().flat_map(|p| [p.joined.get(), p.left.get()]).flatten().max().map(time)
    }

    pub fn conversation(&self) -> &str {
        &self.conversation
    }

    /// The conversation's id, as the book's map and schedule key it.
    pub fn id(&self) -> &Arc<str> {
        &self.conversation
    }

    /// When the book next looks at it: its place in the book's schedule.
    pub(super) fn check_at(&self) -> Instant {
        self.check_at
    }

    /// Move its next check to `at`; returns the one it replaces (for the book to unschedule).
    pub(super) fn reschedule(&mut self, at: Instant) -> Instant {
        std::mem::replace(&mut self.check_at, at)
    }

    /// The channels whose sockets carried its events (none yet: restored, or opened by a
    /// gap or a search).
    pub(super) fn channels(&self) -> ChannelSet {
        self.channels
    }

    pub(super) fn seen_on(&mut self, channel: usize) {
        self.channels.insert(channel);
    }

    pub(super) fn first_seen(&self) -> Instant {
        self.first_seen
    }

    /// A backfill was asked for and has not answered.
    pub(super) fn awaits_backfill(&self) -> bool {
        self.backfill_pending
    }

    /// Its check came due at `now`: close it, ask for a backfill (noting that it was asked,
    /// so a quiet stretch asks once), or wait.
    pub(super) fn due(&mut self, now: Instant, rules: &TimelineRules) -> Due {
        if self.closable(now, rules) {
            Due::Close(CloseReason::Ended)
        } else if self.idle(now, rules) {
            Due::Close(CloseReason::Idle)
        } else if self.shows_missed_joins(now, rules) {
            // A leave whose join never came (past the quiet period) proves events were
            // missed — a conversation first seen mid-way. Backfill it, once.
            self.orphans_backfilled = true;
            Due::Backfill
        } else if self.needs_verifying(now, rules) {
            // Quiet for long, it may have ended unseen (its last frames lost with no other
            // trace): ask once per quiet stretch.
            self.verified_while_quiet = true;
            Due::Backfill
        } else {
            Due::Wait
        }
    }

    /// Apply an event of the live stream; it also moves the watermark that a backfill's
    /// events are judged by.
    pub fn apply_live(&mut self, event: ParticipantEvent, now: Instant, max_participants: usize) -> Applied {
        let at = millis(event.at);
        self.live_latest = Some(self.live_latest.get().map_or(at, |latest| latest.max(at))).into();
        self.apply(event, now, max_participants)
    }

    /// Apply a backfill's answer for the gaps up to `epoch`: its events (deduplicated like
    /// any others), then the healing. `stream_resumed_at` is the event time of the first
    /// live event since the stream last (re)started, if one has come. Returns whether any
    /// event was new, and how many were refused for a participant past the limit.
    pub(super) fn apply_backfill(
        &mut self,
        epoch: u32,
        events: Vec<ParticipantEvent>,
        succeeded: bool,
        stream_resumed_at: Option<DateTime<Utc>>,
        now: Instant,
        max_participants: usize,
    ) -> (bool, usize) {
        let mut refused = 0;
        // Missed = an event the stream had already gone past for this conversation, or one
        // from before the stream (re)started (no socket listened then). Any other may just
        // not have arrived yet: it proves nothing lost. With the stream not yet back,
        // everything the backfill brings happened while nobody listened.
        let (latest, resumed) = (self.live_latest.get(), stream_resumed_at.map(millis));
        let missed_by = |at: Millis| match (latest, resumed) {
            (None, None) => true,
            _ => latest.is_some_and(|latest| at <= latest) || resumed.is_some_and(|resumed| at < resumed),
        };
        let certain = self.certain_loss;
        let mut recovered = false;
        let mut accepted = false;
        for event in events {
            let at = millis(event.at);
            let missed = certain || missed_by(at);
            match self.apply(event, now, max_participants) {
                Applied::Accepted => {
                    accepted = true;
                    recovered |= missed;
                }
                Applied::OverLimit => refused += 1,
                Applied::Duplicate | Applied::AfterClose => {}
            }
        }
        if recovered {
            self.recovered();
        }
        self.backfilled(epoch, succeeded);
        (accepted, refused)
    }

    /// The earliest join: when the conversation started, as far as we know.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.participants.iter().filter_map(|p| p.joined.get()).min().map(time)
    }

    pub(super) fn last_arrival(&self) -> Instant {
        self.last_arrival
    }

    /// Something of it was not kept (participants refused, the timeline evicted): it
    /// closes incomplete.
    pub(super) fn truncate(&mut self) {
        self.truncated = true;
    }

    /// Build the index once the timeline is large enough to need it.
    fn index_if_large(&mut self) {
        if self.index.is_some() || self.participants.len() < INDEX_FROM {
            return;
        }
        let participants =
            self.participants.iter().enumerate().map(|(i, p)| (p.id.clone(), i as u16)).collect();
        let seen = self.seen.iter().copied().collect();
        self.index = Some(Box::new(Index { participants, seen }));
    }

    fn has_seen(&self, fingerprint: u64) -> bool {
        match &self.index {
            Some(index) => index.seen.contains(&fingerprint),
            None => self.seen.contains(&fingerprint),
        }
    }

    fn participant_index(&self, id: &CompactId) -> Option<usize> {
        match &self.index {
            Some(index) => index.participants.get(id).map(|&i| usize::from(i)),
            None => self.participants.iter().position(|p| p.id == *id),
        }
    }

    pub fn apply(&mut self, event: ParticipantEvent, now: Instant, max_participants: usize) -> Applied {
        let fingerprint = event.fingerprint.short();
        if self.has_seen(fingerprint) {
            return Applied::Duplicate;
        }
        let index = match self.participant_index(&event.participant) {
            Some(index) => index,
            // Indices are u16: the limit holds below that whatever the setting says.
            None if self.participants.len() < max_participants.min(usize::from(u16::MAX)) => {
                self.participants.push(ParticipantState {
                    id: event.participant.clone(),
                    purpose: None,
                    user: None,
                    queue: None,
                    disconnect_type: None,
                    joined: Stamp::NONE,
                    left: Stamp::NONE,
                });
                let index = self.participants.len() - 1;
                match &mut self.index {
                    Some(lookup) => {
                        lookup.participants.insert(event.participant, index as u16);
                    }
                    None => self.index_if_large(),
                }
                index
            }
            None => {
                self.truncated = true;
                return Applied::OverLimit;
            }
        };
        let state = &mut self.participants[index];
        let slot = match event.action {
            Action::Joined => &mut state.joined,
            Action::Left => &mut state.left,
        };
        if slot.is_some() {
            return Applied::Duplicate;
        }
        *slot = Stamp::from(Some(millis(event.at)));
        self.seen.push(fingerprint);
        if let Some(index) = &mut self.index {
            index.seen.insert(fingerprint);
        }
        self.verified_while_quiet = false;
        fill(&mut state.purpose, event.purpose);
        fill(&mut state.user, event.user);
        fill(&mut state.queue, event.queue);
        if event.action == Action::Left {
            fill(&mut state.disconnect_type, event.disconnect_type);
        }
        if let Some(media) = event.media.filter(|media| !self.media.contains(media)) {
            self.media.push(media);
        }
        self.held.push(HeldEntry { participant: index as u16, action: event.action, arrived: now });
        self.last_arrival = now;
        Applied::Accepted
    }

    fn key(&self, held: &HeldEntry) -> EntryKey {
        let at = self.participants[usize::from(held.participant)].slot(held.action).unwrap_or_default();
        EntryKey { at, action: held.action, participant: held.participant }
    }

    /// Event time, then leave before join, then participant id: [`EntryRecord::sort_key`].
    fn order(&self, a: &EntryKey, b: &EntryKey) -> std::cmp::Ordering {
        let id = |key: &EntryKey| &self.participants[usize::from(key.participant)].id;
        (a.at, a.action).cmp(&(b.at, b.action)).then_with(|| id(a).cmp(id(b)))
    }

    /// Every entry, held or not, unsorted.
    fn entry_keys(&self) -> impl Iterator<Item = EntryKey> + '_ {
        self.participants.iter().enumerate().flat_map(|(index, p)| {
            [(Action::Joined, p.joined.get()), (Action::Left, p.left.get())]
                .into_iter()
                .filter_map(move |(action, at)| Some(EntryKey { at: at?, action, participant: index as u16 }))
        })
    }

    /// Entries whose reorder window has passed, in event-time order, each with whether it
    /// is late (it sorts before an entry published earlier). An entry never overtakes an
    /// earlier (event-time) entry that is still held.
    pub(super) fn release(&mut self, now: Instant, window: Duration) -> Vec<(EntryRecord, bool)> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let mut held = std::mem::take(&mut self.held);
        held.sort_by(|a, b| self.order(&self.key(a), &self.key(b)));
        let ready = held.iter().take_while(|h| now.saturating_duration_since(h.arrived) >= window).count();
        let mut released = Vec::with_capacity(ready);
        for entry in held.drain(..ready) {
            let key = self.key(&entry);
            let late = self.last_published.is_some_and(|last| self.order(&key, &last).is_lt());
            if !late {
                self.last_published = Some(key);
            }
            let participant = &self.participants[usize::from(entry.participant)];
            if let Some(record) = participant.entry(entry.action) {
                released.push((record, late));
            }
        }
        // What stays held keeps its buffer; an emptied one gives it back (most timelines
        // spend most of their life holding nothing).
        if !held.is_empty() {
            self.held = held;
        }
        released
    }

    fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Every participant seen has both joined and left.
    fn all_left(&self) -> bool {
        !self.participants.is_empty()
            && self.participants.iter().all(|p| p.joined.is_some() && p.left.is_some())
    }

    pub(super) fn closable(&self, now: Instant, rules: &TimelineRules) -> bool {
        self.finished() && now.saturating_duration_since(self.last_arrival) >= rules.close_after
    }

    pub(super) fn idle(&self, now: Instant, rules: &TimelineRules) -> bool {
        now.saturating_duration_since(self.last_arrival) >= rules.idle_timeout
    }

    /// When this timeline next needs looking at, having just been looked at `now`: the end
    /// of its quiet period; while something is held or awaited, soon again; then when it
    /// is due for verifying, or for eviction.
    pub(super) fn next_check(&self, now: Instant, rules: &TimelineRules, poll: Duration) -> Instant {
        let quiet_ends = self.last_arrival + rules.close_after;
        let idle_at = self.last_arrival + rules.idle_timeout;
        let next = if quiet_ends > now {
            quiet_ends
        } else if self.has_held() || self.backfill_pending {
            now + poll
        } else if !self.verified_while_quiet {
            (self.last_arrival + rules.verify_after).min(idle_at)
        } else {
            idle_at
        };
        next.max(now + Duration::from_millis(1))
    }

    /// Record that events of this conversation were missed (dropped, sent while no
    /// socket was up, or before it was first seen). Returns the epoch a backfill must
    /// cover to heal it.
    pub fn mark_gap(&mut self, cause: GapCause) -> u32 {
        self.certain_loss |= cause == GapCause::Loss;
        self.gaps += 1;
        self.suspected += 1;
        self.gap_epoch += 1;
        self.backfill_pending = true;
        self.gap_epoch
    }

    /// A backfill brought events this timeline did not have: the suspected gap was real.
    fn recovered(&mut self) {
        if self.suspected > 0 {
            self.recovered_since_gap = true;
        }
    }

    /// A backfill answered: the gaps up to `epoch` are healed if it succeeded. A gap that
    /// came after it was asked for waits for its own backfill. Suspected gaps that turn
    /// out to have lost nothing (no backfill since brought a new event) are withdrawn:
    /// the timeline only reports gaps that were real.
    fn backfilled(&mut self, epoch: u32, succeeded: bool) {
        if epoch < self.gap_epoch {
            return;
        }
        self.backfill_pending = false;
        if succeeded {
            self.healed_epoch = epoch;
            if !self.recovered_since_gap {
                self.gaps -= self.suspected;
            }
        }
        self.suspected = 0;
        self.recovered_since_gap = false;
        self.certain_loss = false;
    }

    fn unhealed(&self) -> bool {
        self.healed_epoch < self.gap_epoch
    }

    /// The timeline as it stands, in the output schema. Held entries are included, in order.
    pub fn to_record(&self) -> TimelineRecord {
        let mut keys: Vec<EntryKey> = self.entry_keys().collect();
        keys.sort_by(|a, b| self.order(a, b));
        let entries = keys
            .iter()
            .filter_map(|key| self.participants[usize::from(key.participant)].entry(key.action))
            .collect();
        let mut participants: Vec<ParticipantRecord> = self
            .participants
            .iter()
            .map(|p| ParticipantRecord {
                participant_id: p.id.to_string(),
                purpose: p.purpose.map(|s| s.as_str().to_owned()),
                user_id: p.user.map(|s| s.as_str().to_owned()),
                queue_id: p.queue.map(|s| s.as_str().to_owned()),
                joined_at: p.joined.get().map(time),
                left_at: p.left.get().map(time),
                disconnect_type: p.disconnect_type.map(|s| s.as_str().to_owned()),
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
        let mut media_types: Vec<String> = self.media.iter().map(|m| m.as_str().to_owned()).collect();
        media_types.sort();
        TimelineRecord {
            conversation_id: self.conversation.to_string(),
            media_types,
            started_at: self.started_at(),
            ended_at: if all_left {
                self.participants.iter().filter_map(|p| p.left.get()).max().map(time)
            } else {
                None
            },
            complete: all_left && !self.unhealed() && !self.truncated,
            gaps: self.gaps,
            healed: self.gaps > 0 && !self.unhealed(),
            participants,
            entries,
        }
    }
}

/// First value seen wins: a later snapshot never rewrites who a participant was.
fn fill(slot: &mut Option<Symbol>, value: Option<Symbol>) {
    if slot.is_none() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_every_open_timeline_holds_many_of_stays_small() {
        // About 1 KiB per open conversation at most; a timeline is mostly its participants.
        assert!(std::mem::size_of::<ParticipantState>() <= 56, "{}", std::mem::size_of::<ParticipantState>());
        assert!(std::mem::size_of::<Timeline>() <= 224, "{}", std::mem::size_of::<Timeline>());
    }
}
