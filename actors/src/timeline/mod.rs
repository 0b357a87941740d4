//! Timeline reconstruction — pure, no actix. A [`Timeline`] is one conversation's
//! participants and entries; a [`TimelineBook`] holds every open timeline (in a `DashMap`
//! that the HTTP side reads), the reorder window, closing, idle eviction and tombstones.
//!
//! Time: entries are ordered by *event* time; the reorder window and the quiet period are
//! measured in *arrival* (wall) time, passed in as `now` so tests drive the clock.

pub mod actor;
mod book;
mod conversation;
pub mod state;
mod view;

pub use book::{CloseReason, GapLedger, OpenTimelines, Outage, Restored, Tick, TimelineBook, TimelineUpdate};
pub use conversation::{Applied, ChannelSet, GapCause, Timeline};
pub use view::OpenTimelinesView;

use std::time::Duration;

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
    /// Participants kept per conversation; further ones are refused (counted) and the
    /// timeline closes incomplete. Far beyond any real conversation: a snapshot of tens of
    /// thousands is an attack or a bug upstream.
    pub max_participants: usize,
    /// Open timelines kept; past it the least recently active are closed incomplete.
    pub max_open_conversations: usize,
}

impl Default for TimelineRules {
    fn default() -> Self {
        TimelineRules {
            reorder_window: Duration::from_millis(200),
            close_after: Duration::from_secs(2),
            verify_after: Duration::from_secs(15 * 60),
            idle_timeout: Duration::from_secs(4 * 3600),
            tombstone_ttl: Duration::from_secs(3600),
            max_participants: 1000,
            max_open_conversations: 100_000,
        }
    }
}

#[cfg(test)]
mod tests;
