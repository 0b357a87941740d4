//! [`TimelineBook`]: every open [`Timeline`] (in a `DashMap` the HTTP side reads), the
//! reorder window's releases, closing and idle eviction, tombstones of the recently
//! closed, and the gaps to backfill.

use super::conversation::Due;
use super::state::{SavedState, Snapshot, Unwritten};
use super::{Applied, ChannelSet, GapCause, Timeline, TimelineRules};
use crate::backfill::BackfillRequest;
use crate::event::ParticipantEvent;
use crate::record::{EntryRecord, TimelineRecord};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A published join or leave, for the log and the live feed.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineUpdate {
    pub conversation_id: Arc<str>,
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
    /// Among the least recently active when more than `max_open_conversations` were open:
    /// closed incomplete.
    Evicted,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Ended => "ended",
            CloseReason::Idle => "idle",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Evicted => "evicted",
        }
    }
}

/// What one [`TimelineBook::tick`] produced.
#[derive(Debug, Default)]
pub struct Tick {
    pub updates: Vec<TimelineUpdate>,
    pub closed: Vec<(TimelineRecord, CloseReason)>,
    /// How many of `closed` were evicted to keep within `max_open_conversations`.
    pub evicted: usize,
}

impl Tick {
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.closed.is_empty()
    }
}

/// Every open timeline by conversation id: the TimelineActor writes it, the HTTP side reads it.
/// Boxed: a hash table is up to half empty after it grows, and an empty slot then costs
/// a pointer rather than a whole timeline.
pub type OpenTimelines = DashMap<Arc<str>, Box<Timeline>>;

/// What a restore made of a saved state's open timelines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Reopened, to be backfilled.
    pub resumed: usize,
    /// Saved as open, but a sink already has them (closed and written meanwhile).
    pub already_written: usize,
}

/// Every open timeline, plus tombstones of the recently closed.
///
/// Nothing here scans every open timeline in steady state, so the cost of an event does
/// not grow with the number open: releases wait in arrival order (the reorder window is
/// the same for all), and each timeline has one entry in a queue of checks ordered by when
/// it is next due (end of its quiet period, verification, eviction).
pub struct TimelineBook {
    rules: TimelineRules,
    open: Arc<OpenTimelines>,
    /// Conversations that took an entry, in arrival order, with when it arrived.
    releases: VecDeque<(Instant, Arc<str>)>,
    /// When each open timeline is next due for a check: one entry each, its `check_at`
    /// (an entry left behind when that moved would linger until the old time — up to
    /// `idle_timeout` — and the queue would grow with every conversation closed).
    checks: BTreeSet<(Instant, Arc<str>)>,
    tombstones: HashSet<Arc<str>>,
    /// The tombstones in the order they were laid, with when: expired from the front.
    tombstone_ages: VecDeque<(Instant, Arc<str>)>,
    backfills: Vec<BackfillRequest>,
    /// Each channel's stream, by channel index (grown as channels are heard from).
    streams: Vec<ChannelStream>,
}

/// What a socket gap was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// A socket was lost, stalled or dropped frames while running.
    Socket,
    /// The daemon was down: the first socket of a channel after a restart.
    Restart,
}

/// What the book knows of one channel's stream.
#[derive(Clone, Debug, Default)]
struct ChannelStream {
    /// After a socket outage, conversations first seen on it before this are marked gapped.
    new_are_gapped_until: Option<Instant>,
    /// The event time of the first live event since the stream last (re)started, once
    /// one has come: what was published before it no listening socket could carry.
    resumed_at: Option<DateTime<Utc>>,
}

/// How often a timeline that cannot close yet (entries held, a backfill awaited) is
/// looked at again.
const RECHECK_INTERVAL: Duration = Duration::from_millis(250);

impl TimelineBook {
    pub fn new(rules: TimelineRules, open: Arc<OpenTimelines>) -> Self {
        TimelineBook {
            rules,
            open,
            releases: VecDeque::new(),
            checks: BTreeSet::new(),
            tombstones: HashSet::new(),
            tombstone_ages: VecDeque::new(),
            backfills: Vec::new(),
            streams: Vec::new(),
        }
    }

    /// Channel `channel`'s stream (indexes past [`ChannelSet::CAPACITY`] share the last).
    fn stream(&mut self, channel: usize) -> &mut ChannelStream {
        let channel = channel.min(ChannelSet::CAPACITY - 1);
        if self.streams.len() <= channel {
            self.streams.resize(channel + 1, ChannelStream::default());
        }
        &mut self.streams[channel]
    }

    /// Where the stream left off for a conversation carried by `channels` (every channel
    /// heard from, if none yet): the latest restart among them, `None` while one of them
    /// has not streamed since its last outage (then everything is presumed missed).
    fn resumed_at(&self, channels: ChannelSet) -> Option<DateTime<Utc>> {
        let mut latest: Option<DateTime<Utc>> = None;
        for (index, stream) in self.streams.iter().enumerate() {
            if channels.is_empty() || channels.contains(index) {
                let resumed = stream.resumed_at?;
                latest = Some(latest.map_or(resumed, |latest| latest.max(resumed)));
            }
        }
        latest
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    #[cfg(test)]
    pub(super) fn pending_checks(&self) -> usize {
        self.checks.len()
    }

    /// An event from the only channel (replay, one socket).
    pub fn apply(&mut self, event: ParticipantEvent, now: Instant) -> Applied {
        self.apply_from(0, event, now)
    }

    /// An event that channel `channel`'s socket carried.
    pub fn apply_from(&mut self, channel: usize, event: ParticipantEvent, now: Instant) -> Applied {
        if self.tombstones.contains(&*event.conversation) {
            return Applied::AfterClose;
        }
        let close_after = self.rules.close_after;
        let stream = self.stream(channel);
        stream.resumed_at.get_or_insert(event.at);
        let gapped_until = stream.new_are_gapped_until;
        let (conversation, applied, first_seen, check) = match self.open.get_mut(&*event.conversation) {
            Some(mut timeline) => {
                timeline.seen_on(channel);
                let applied = timeline.apply_live(event, now, self.rules.max_participants);
                (timeline.id().clone(), applied, false, None)
            }
            None => {
                let conversation = event.conversation.clone();
                let mut timeline = Timeline::new(conversation.clone(), now);
                timeline.seen_on(channel);
                timeline.reschedule(now + close_after);
                let applied = timeline.apply_live(event, now, self.rules.max_participants);
                self.open.insert(conversation.clone(), Box::new(timeline));
                (conversation, applied, true, Some(now + close_after))
            }
        };
        match check {
            Some(due) => {
                self.checks.insert((due, conversation.clone()));
            }
            None if applied == Applied::Accepted => self.due_by(&conversation, now + close_after),
            None => {}
        }
        if first_seen && gapped_until.is_some_and(|until| now < until) {
            self.mark_gap(&conversation, now, GapCause::Outage);
        }
        if applied == Applied::Accepted {
            self.held(conversation, now);
        }
        applied
    }

    /// `conversation` took an entry that waits out the reorder window from `now`.
    fn held(&mut self, conversation: Arc<str>, now: Instant) {
        // The events of one frame share their conversation: one release entry covers them.
        let same =
            self.releases.back().is_some_and(|(arrived, last)| *arrived == now && *last == conversation);
        if !same {
            self.releases.push_back((now, conversation));
        }
    }

    /// Open `conversation` if it is not open yet (a gap before any event, a restored
    /// state), with its first check due at the end of the quiet period.
    fn open_if_new(&mut self, conversation: &str, now: Instant) {
        if self.open.contains_key(conversation) {
            return;
        }
        let conversation: Arc<str> = conversation.into();
        let mut timeline = Timeline::new(conversation.clone(), now);
        let due = now + self.rules.close_after;
        timeline.reschedule(due);
        self.checks.insert((due, conversation.clone()));
        self.open.insert(conversation, Box::new(timeline));
    }

    /// Mark a conversation as having missed events; an unknown one is opened so that the
    /// gap is reported when it closes rather than lost. A closed one stays closed. The
    /// backfill to ask for is queued for [`TimelineBook::take_backfills`].
    pub fn mark_gap(&mut self, conversation: &str, now: Instant, cause: GapCause) {
        if self.tombstones.contains(conversation) {
            return;
        }
        self.open_if_new(conversation, now);
        let Some(epoch) = self.open.get_mut(conversation).map(|mut timeline| timeline.mark_gap(cause)) else {
            return;
        };
        self.backfills.push(BackfillRequest { conversation: conversation.to_owned(), epoch });
    }

    /// The only channel's socket was down (replay, one socket): see [`Self::socket_gap_on`].
    pub fn socket_gap(&mut self, now: Instant, grace: Duration) {
        self.socket_gap_on(0, Outage::Socket, now, grace);
    }

    /// Channel `channel`'s socket was down from some time until `now`: every open
    /// conversation it carried may have missed events, and so may any conversation first
    /// seen on it within `grace` from now (it may have begun while nobody listened). One
    /// no socket carried yet (restored, opened by a gap) is marked too — after a restart
    /// only if no backfill for it is awaited: the restart is every channel's outage, and
    /// the first channel back asked for it.
    pub fn socket_gap_on(&mut self, channel: usize, outage: Outage, now: Instant, grace: Duration) {
        let missed: Vec<Arc<str>> = self
            .open
            .iter()
            .filter(|t| {
                let channels = t.channels();
                channels.contains(channel)
                    || (channels.is_empty() && !(outage == Outage::Restart && t.awaits_backfill()))
            })
            .map(|t| t.key().clone())
            .collect();
        for conversation in &missed {
            self.mark_gap(conversation, now, GapCause::Outage);
        }
        let stream = self.stream(channel);
        stream.new_are_gapped_until = Some(now + grace);
        stream.resumed_at = None;
    }

    /// Backfills asked for since the last call.
    pub fn take_backfills(&mut self) -> Vec<BackfillRequest> {
        std::mem::take(&mut self.backfills)
    }

    /// Apply a backfill's answer: its events (deduplicated like any others), then the
    /// healing. A conversation closed meanwhile stays closed. Returns how many events were
    /// refused for a participant past the limit.
    pub fn backfilled(
        &mut self,
        request: &BackfillRequest,
        events: Vec<ParticipantEvent>,
        succeeded: bool,
        now: Instant,
    ) -> usize {
        if self.tombstones.contains(request.conversation.as_str()) {
            return 0;
        }
        self.open_if_new(&request.conversation, now);
        let Some(channels) = self.open.get(request.conversation.as_str()).map(|t| t.channels()) else {
            return 0;
        };
        let resumed_at = self.resumed_at(channels);
        let Some(mut timeline) = self.open.get_mut(request.conversation.as_str()) else {
            return 0;
        };
        let (accepted, refused) = timeline.apply_backfill(
            request.epoch,
            events,
            succeeded,
            resumed_at,
            now,
            self.rules.max_participants,
        );
        let conversation = timeline.id().clone();
        drop(timeline);
        if accepted {
            self.held(conversation.clone(), now);
        }
        // Parked until its verification or eviction while the backfill was awaited: what it
        // brought (an end, say) is looked at after the quiet period, not hours later.
        self.due_by(&conversation, now + self.rules.close_after);
        refused
    }

    /// Make `conversation`'s next check no later than `due` (a timeline parked until its
    /// verification or eviction is due again at the end of a new quiet period).
    fn due_by(&mut self, conversation: &Arc<str>, due: Instant) {
        let Some(mut timeline) = self.open.get_mut(conversation) else {
            return;
        };
        if timeline.check_at() > due {
            let from = timeline.reschedule(due);
            drop(timeline);
            self.checks.remove(&(from, conversation.clone()));
            self.checks.insert((due, conversation.clone()));
        }
    }

    /// Open since before `instant`.
    pub fn open_since_before(&self, conversation: &str, instant: Instant) -> bool {
        self.open.get(conversation).is_some_and(|t| t.first_seen() < instant)
    }

    /// A backfill for this conversation is already on its way (it will cover what the
    /// socket missed so far).
    pub fn backfill_pending(&self, conversation: &str) -> bool {
        self.open.get(conversation).is_some_and(|t| t.awaits_backfill())
    }

    /// The latest event time of any open timeline (where a resumed stream left off).
    pub fn latest_entry_time(&self) -> Option<DateTime<Utc>> {
        self.open.iter().filter_map(|t| t.latest_entry_time()).max()
    }

    /// When the oldest held entry's reorder window ends (the next [`TimelineBook::release`]
    /// with something to publish).
    pub fn next_release(&self) -> Option<Instant> {
        self.releases.front().map(|(arrived, _)| *arrived + self.rules.reorder_window)
    }

    /// Publish what the reorder window lets go, in event-time order per conversation.
    pub fn release(&mut self, now: Instant) -> Vec<TimelineUpdate> {
        let window = self.rules.reorder_window;
        let mut updates = Vec::new();
        while let Some((arrived, _)) = self.releases.front() {
            if now.saturating_duration_since(*arrived) < window {
                break;
            }
            let Some((_, conversation)) = self.releases.pop_front() else {
                break;
            };
            let Some(mut timeline) = self.open.get_mut(&conversation) else {
                continue;
            };
            for (entry, late) in timeline.release(now, window) {
                updates.push(TimelineUpdate { conversation_id: conversation.clone(), entry, late });
            }
        }
        updates
    }

    /// Publish what the reorder window lets go; close what has ended or idled out, and ask
    /// for the backfills that quiet timelines call for.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut tick = Tick { updates: self.release(now), ..Tick::default() };
        self.evict_over_limit(now, &mut tick);
        while self.checks.first().is_some_and(|(due, _)| *due <= now) {
            let Some((due, conversation)) = self.checks.pop_first() else {
                break;
            };
            self.check(&conversation, due, now, &mut tick);
        }
        let ttl = self.rules.tombstone_ttl;
        while self.tombstone_ages.front().is_some_and(|(laid, _)| now.saturating_duration_since(*laid) >= ttl)
        {
            if let Some((_, conversation)) = self.tombstone_ages.pop_front() {
                self.tombstones.remove(&conversation);
            }
        }
        tick
    }

    /// A timeline's check came due: close it, evict it, or ask for what its quiet calls
    /// for; then set its next check.
    fn check(&mut self, conversation: &Arc<str>, due: Instant, now: Instant, tick: &mut Tick) {
        let rules = &self.rules;
        let verdict = {
            let Some(mut timeline) = self.open.get_mut(conversation) else {
                return;
            };
            if timeline.check_at() != due {
                return;
            }
            timeline.due(now, rules)
        };
        let (close, suspect) = match verdict {
            Due::Close(reason) => (Some(reason), false),
            Due::Backfill => (None, true),
            Due::Wait => (None, false),
        };
        if let Some(reason) = close {
            self.close(conversation, reason, now, tick);
            return;
        }
        if suspect {
            // The stream is live meanwhile, so what the backfill brings counts as missed
            // only if the stream had gone past it.
            self.mark_gap(conversation, now, GapCause::Outage);
        }
        if let Some(mut timeline) = self.open.get_mut(conversation) {
            let next = timeline.next_check(now, &self.rules, RECHECK_INTERVAL);
            timeline.reschedule(next);
            self.checks.insert((next, conversation.clone()));
        }
    }

    /// More open than `max_open_conversations` (a flood of distinct ids): close the least
    /// recently active, incomplete, down to 1% under the limit so that the scan that
    /// finds them is paid once per many new conversations, not once each.
    fn evict_over_limit(&mut self, now: Instant, tick: &mut Tick) {
        let limit = self.rules.max_open_conversations;
        if self.open.len() <= limit {
            return;
        }
        let excess = self.open.len() - limit + limit / 100;
        let mut by_activity: Vec<(Instant, Arc<str>)> =
            self.open.iter().map(|t| (t.last_arrival(), t.key().clone())).collect();
        if excess < by_activity.len() {
            by_activity.select_nth_unstable(excess);
            by_activity.truncate(excess);
        }
        for (_, conversation) in by_activity {
            if let Some(mut timeline) = self.open.get_mut(&conversation) {
                timeline.truncate();
            }
            self.close(&conversation, CloseReason::Evicted, now, tick);
            tick.evicted += 1;
        }
    }

    fn close(&mut self, conversation: &str, reason: CloseReason, now: Instant, tick: &mut Tick) {
        let Some((conversation, mut timeline)) = self.open.remove(conversation) else {
            return;
        };
        self.checks.remove(&(timeline.check_at(), conversation.clone()));
        // Whatever is still held is published now, in order, before the summary.
        for (entry, late) in timeline.release(now, Duration::ZERO) {
            tick.updates.push(TimelineUpdate { conversation_id: conversation.clone(), entry, late });
        }
        tick.closed.push((timeline.to_record(), reason));
        self.lay_tombstone(conversation, now);
    }

    fn lay_tombstone(&mut self, conversation: Arc<str>, now: Instant) {
        if self.tombstones.insert(conversation.clone()) {
            self.tombstone_ages.push_back((now, conversation));
        }
    }

    /// Close, without waiting out the quiet period, every timeline whose participants have
    /// all left (shutdown: what is complete is written, the rest is saved).
    pub fn close_finished(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        let finished: Vec<Arc<str>> =
            self.open.iter().filter(|t| t.finished()).map(|t| t.key().clone()).collect();
        for conversation in finished {
            self.close(&conversation, CloseReason::Ended, now, &mut tick);
        }
        tick
    }

    /// Publish every held entry now, whatever the reorder window says (shutdown).
    pub fn release_all(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        for (_, conversation) in std::mem::take(&mut self.releases) {
            if let Some(mut timeline) = self.open.get_mut(&conversation) {
                for (entry, late) in timeline.release(now, Duration::ZERO) {
                    tick.updates.push(TimelineUpdate { conversation_id: conversation.clone(), entry, late });
                }
            }
        }
        tick
    }

    /// What to save: every open timeline as it stands (held entries included), the closed
    /// ones not yet durable in every sink (as open), and the tombstones of the rest.
    pub fn snapshot(&self, unwritten: &Unwritten) -> Snapshot {
        let unwritten = unwritten.records();
        let pending: HashSet<&str> = unwritten.iter().map(|r| r.conversation_id.as_str()).collect();
        let closed = self.tombstones.iter().filter(|c| !pending.contains(&***c)).cloned().collect();
        Snapshot::new(self.open.clone(), unwritten, closed)
    }

    /// Resume from a saved state: its timelines reopen, its tombstones stand again, and
    /// those `already_closed` (found in a sink: closed after the state was saved, or saved
    /// as open while their line was not yet durable) stay closed. Everything reopened is
    /// marked with a gap, to be backfilled: events were missed while the daemon was down.
    pub fn restore(&mut self, state: SavedState, already_closed: &HashSet<String>, now: Instant) -> Restored {
        for conversation in state.closed.iter().chain(already_closed.iter()) {
            self.lay_tombstone(conversation.as_str().into(), now);
        }
        let mut restored = Restored::default();
        for record in state.open {
            if self.tombstones.contains(record.conversation_id.as_str()) {
                restored.already_written += 1;
                continue;
            }
            let mut timeline = Timeline::restore(record, now);
            let due = now + self.rules.close_after;
            timeline.reschedule(due);
            let conversation = timeline.id().clone();
            self.checks.insert((due, conversation.clone()));
            self.open.insert(conversation, Box::new(timeline));
            restored.resumed += 1;
        }
        restored
    }

    /// Close every open timeline (shutdown, end of replay input): complete ones as
    /// complete, the rest flagged incomplete.
    pub fn close_all(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        let conversations: Vec<Arc<str>> = self.open.iter().map(|t| t.key().clone()).collect();
        for conversation in conversations {
            self.close(&conversation, CloseReason::Shutdown, now, &mut tick);
        }
        tick
    }
}

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
