//! What the HTTP side reads of the open timelines: the conversations with their starts,
//! and each one as a record. It never holds a [`Timeline`](super::Timeline) itself (only
//! the [`TimelineBook`](super::TimelineBook) writes them), and each read holds one entry's
//! shard lock for that entry only, so a long listing never holds the timeline actor up.

use super::OpenTimelines;
use crate::record::TimelineRecord;
use chrono::{DateTime, Utc};
use std::sync::Arc;

#[derive(Clone)]
pub struct OpenTimelinesView(Arc<OpenTimelines>);

impl OpenTimelinesView {
    pub fn new(open: Arc<OpenTimelines>) -> Self {
        OpenTimelinesView(open)
    }

    /// Every open conversation with its start (none before its first join), unordered.
    pub fn starts(&self) -> Vec<(Option<DateTime<Utc>>, Arc<str>)> {
        self.0.iter().map(|entry| (entry.value().started_at(), entry.key().clone())).collect()
    }

    /// The timeline of `conversation` as it stands, if it is open.
    pub fn record(&self, conversation: &str) -> Option<TimelineRecord> {
        self.0.get(conversation).map(|entry| entry.value().to_record())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
