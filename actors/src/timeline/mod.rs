//! Timeline reconstruction — pure, no actix. A [`Timeline`] is one conversation's
//! participants and entries; a [`TimelineBook`] holds every open timeline (in a `DashMap`
//! that the HTTP side reads), the reorder window, closing, idle eviction and tombstones.
//!
//! Time: entries are ordered by *event* time; the reorder window and the quiet period are
//! measured in *arrival* (wall) time, passed in as `now` so tests drive the clock.

pub mod actor;
mod book;
pub mod state;

pub use book::{BackfillRequest, CloseReason, GapLedger, Tick, TimelineBook, TimelineUpdate};

use crate::event::{Action, Fingerprint, ParticipantEvent};
use crate::record::{EntryRecord, ParticipantRecord, TimelineRecord};
use chrono::{DateTime, Utc};

use std::collections::{BTreeMap, BTreeSet, HashSet};

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
    /// A conversation with no event for this long is checked once over REST (its end may
    /// have been missed, and nothing else would show it).
    pub verify_after: Duration,
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
            verify_after: Duration::from_secs(15 * 60),
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
    /// A backfill was asked for because a leave came without its join (asked once).
    orphans_backfilled: bool,
    /// Checked over REST since its last event (see `TimelineRules::verify_after`).
    verified_while_quiet: bool,
    /// When this conversation was first seen (opened).
    first_seen: Instant,
    /// The latest event time the live stream delivered for this conversation: a backfilled
    /// event before it was missed; one after it may only be ahead of the stream.
    live_latest: Option<DateTime<Utc>>,
    /// Gaps marked since the last backfill answer: suspected until a backfill shows what
    /// was missed.
    suspected: u32,
    recovered_since_gap: bool,
    /// A suspected gap has a cause that proves a loss (see [`GapCause`]).
    certain_loss: bool,
    last_arrival: Instant,
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
            orphans_backfilled: false,
            verified_while_quiet: false,
            live_latest: None,
            first_seen: now,
            suspected: 0,
            recovered_since_gap: false,
            certain_loss: false,
            last_arrival: now,
        }
    }

    /// Rebuild a timeline saved by [`TimelineBook::saved_state`]: its entries count as
    /// published (they were logged before the restart).
    pub fn restore(record: TimelineRecord, now: Instant) -> Self {
        let mut timeline = Timeline::new(record.conversation_id.clone(), now);
        timeline.media = record.media_types.into_iter().collect();
        for p in record.participants {
            for (action, at) in [(Action::Joined, p.joined_at), (Action::Left, p.left_at)] {
                if let Some(at) = at {
                    timeline.seen.insert(Fingerprint::of(
                        &record.conversation_id,
                        &p.participant_id,
                        action,
                        at,
                    ));
                }
            }
            let state = ParticipantState {
                purpose: p.purpose,
                user: p.user_id,
                queue: p.queue_id,
                joined_at: p.joined_at,
                left_at: p.left_at,
                disconnect_type: p.disconnect_type,
            };
            timeline.participants.insert(p.participant_id, state);
        }
        timeline.published = record.entries;
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
            && self.participants.values().any(|p| p.left_at.is_some() && p.joined_at.is_none())
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
    fn finished(&self) -> bool {
        !self.has_held() && !self.backfill_pending && self.all_left()
    }

    pub fn latest_entry_time(&self) -> Option<DateTime<Utc>> {
        self.published.iter().chain(self.held.iter().map(|h| &h.entry)).map(|e| e.at).max()
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
        self.verified_while_quiet = false;
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
        self.finished() && now.saturating_duration_since(self.last_arrival) >= rules.close_after
    }

    fn idle(&self, now: Instant, rules: &TimelineRules) -> bool {
        now.saturating_duration_since(self.last_arrival) >= rules.idle_timeout
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
    pub fn recovered(&mut self) {
        if self.suspected > 0 {
            self.recovered_since_gap = true;
        }
    }

    /// A backfill answered: the gaps up to `epoch` are healed if it succeeded. A gap that
    /// came after it was asked for waits for its own backfill. Suspected gaps that turn
    /// out to have lost nothing (no backfill since brought a new event) are withdrawn:
    /// the timeline only reports gaps that were real.
    pub fn backfilled(&mut self, epoch: u32, succeeded: bool) {
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

#[cfg(test)]
mod tests;
