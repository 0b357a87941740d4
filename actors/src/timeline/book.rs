//! [`TimelineBook`]: every open [`Timeline`] (in a `DashMap` the HTTP side reads), the
//! reorder window's releases, closing and idle eviction, tombstones of the recently
//! closed, and the gaps to backfill.

use super::state::SavedState;
use super::{Applied, GapCause, Timeline, TimelineRules};
use crate::event::{Action, ParticipantEvent};
use crate::record::{EntryRecord, TimelineRecord};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let at = event.at;
        let applied = {
            let mut timeline = self
                .open
                .entry(conversation.clone())
                .or_insert_with(|| Timeline::new(conversation.clone(), now));
            timeline.live_latest = Some(timeline.live_latest.map_or(at, |latest| latest.max(at)));
            timeline.apply(event, now)
        };
        if first_seen && self.new_are_gapped_until.is_some_and(|until| now < until) {
            self.mark_gap(&conversation, now, GapCause::Outage);
        }
        if applied == Applied::Accepted {
            self.holding.insert(conversation);
        }
        applied
    }

    /// Mark a conversation as having missed events; an unknown one is opened so that the
    /// gap is reported when it closes rather than lost. A closed one stays closed. The
    /// backfill to ask for is queued for [`TimelineBook::take_backfills`].
    pub fn mark_gap(&mut self, conversation: &str, now: Instant, cause: GapCause) {
        if self.tombstones.contains_key(conversation) {
            return;
        }
        let epoch = self
            .open
            .entry(conversation.to_owned())
            .or_insert_with(|| Timeline::new(conversation.to_owned(), now))
            .mark_gap(cause);
        self.backfills.push(BackfillRequest { conversation: conversation.to_owned(), epoch });
    }

    /// The socket was down from some time until `now`: every open conversation may have
    /// missed events, and so may any conversation first seen within `grace` from now (it
    /// may have begun while nobody listened).
    pub fn socket_gap(&mut self, now: Instant, grace: Duration) {
        let open: Vec<String> = self.open.iter().map(|t| t.key().clone()).collect();
        for conversation in &open {
            self.mark_gap(conversation, now, GapCause::Outage);
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
        if self.tombstones.contains_key(&request.conversation) {
            return;
        }
        let conversation = request.conversation.clone();
        let mut timeline =
            self.open.entry(conversation.clone()).or_insert_with(|| Timeline::new(conversation.clone(), now));
        // Missed = an event the stream had already gone past. One later than anything the
        // stream delivered may just not have arrived yet: it proves nothing lost.
        let watermark = timeline.live_latest;
        let certain = timeline.certain_loss;
        let mut recovered = false;
        let mut accepted = false;
        for event in events {
            let at = event.at;
            if timeline.apply(event, now) == Applied::Accepted {
                accepted = true;
                recovered |= certain || watermark.is_none_or(|latest| at <= latest);
            }
        }
        if recovered {
            timeline.recovered();
        }
        timeline.backfilled(request.epoch, succeeded);
        drop(timeline);
        if accepted {
            self.holding.insert(conversation);
        }
    }

    /// Open since before `instant`.
    pub fn open_since_before(&self, conversation: &str, instant: Instant) -> bool {
        self.open.get(conversation).is_some_and(|t| t.first_seen < instant)
    }

    /// A backfill for this conversation is already on its way (it will cover what the
    /// socket missed so far).
    pub fn backfill_pending(&self, conversation: &str) -> bool {
        self.open.get(conversation).is_some_and(|t| t.backfill_pending)
    }

    /// The latest event time of any open timeline (where a resumed stream left off).
    pub fn latest_entry_time(&self) -> Option<DateTime<Utc>> {
        self.open.iter().filter_map(|t| t.latest_entry_time()).max()
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
        let rules = self.rules.clone();
        // A leave whose join never came (past the quiet period) proves events were missed —
        // a conversation first seen mid-way. Backfill it, once.
        self.mark_suspect_where(now, |t| t.shows_missed_joins(now, &rules), |t| t.orphans_backfilled = true);
        // A conversation quiet for long may have ended unseen (its last frames lost with
        // no other trace): ask once per quiet stretch.
        self.mark_suspect_where(now, |t| t.needs_verifying(now, &rules), |t| t.verified_while_quiet = true);
        let ttl = self.rules.tombstone_ttl;
        self.tombstones.retain(|_, closed| now.saturating_duration_since(*closed) < ttl);
    }

    /// Mark every open timeline `select` picks with a suspected gap, after `note` records
    /// that it was asked (so it is asked once). The stream is live meanwhile, so what the
    /// backfill brings counts as missed only if the stream had gone past it.
    fn mark_suspect_where(
        &mut self,
        now: Instant,
        select: impl Fn(&Timeline) -> bool,
        note: impl Fn(&mut Timeline),
    ) {
        let picked: Vec<String> = self.open.iter().filter(|t| select(t)).map(|t| t.key().clone()).collect();
        for conversation in picked {
            if let Some(mut timeline) = self.open.get_mut(&conversation) {
                note(&mut timeline);
            }
            self.mark_gap(&conversation, now, GapCause::Outage);
        }
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

    /// Close, without waiting out the quiet period, every timeline whose participants have
    /// all left (shutdown: what is complete is written, the rest is saved).
    pub fn close_finished(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        let finished: Vec<String> =
            self.open.iter().filter(|t| t.finished()).map(|t| t.key().clone()).collect();
        for conversation in finished {
            self.close(&conversation, CloseReason::Ended, now, &mut tick);
        }
        tick
    }

    /// Publish every held entry now, whatever the reorder window says (shutdown).
    pub fn release_all(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        for conversation in std::mem::take(&mut self.holding) {
            if let Some(mut timeline) = self.open.get_mut(&conversation) {
                for entry in timeline.release(now, Duration::ZERO) {
                    tick.updates.push(TimelineUpdate {
                        conversation_id: conversation.clone(),
                        entry,
                        late: false,
                    });
                }
            }
        }
        tick
    }

    /// What to save: every open timeline as it stands (held entries included) and the
    /// tombstones.
    pub fn saved_state(&self) -> SavedState {
        let open = self.open.iter().map(|t| t.to_record()).collect();
        let closed = self.tombstones.keys().cloned().collect();
        SavedState::new(open, closed)
    }

    /// Resume from a saved state: its timelines reopen, its tombstones stand again, and
    /// those `already_closed` (found in a sink: closed after the state was saved) stay
    /// closed. Everything reopened is marked with a gap, to be backfilled: events were
    /// missed while the daemon was down.
    pub fn restore(&mut self, state: SavedState, already_closed: &HashSet<String>, now: Instant) -> usize {
        for conversation in state.closed.into_iter().chain(already_closed.iter().cloned()) {
            self.tombstones.insert(conversation, now);
        }
        let mut restored = 0;
        for record in state.open {
            if self.tombstones.contains_key(&record.conversation_id) {
                continue;
            }
            self.open.insert(record.conversation_id.clone(), Timeline::restore(record, now));
            restored += 1;
        }
        restored
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
