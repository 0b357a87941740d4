//! Healing gaps over REST: `GET /api/v2/conversations/{id}`
//! returns the conversation in the snapshot shape, which decodes into the same events the
//! socket would have carried. A conversation that began and ended while no socket was up
//! is never seen at all: after an outage the conversations that started within it (in
//! event time) are found with the analytics conversation-details query and backfilled
//! too. The actor that paces and retries the calls is in [`actor`].

pub mod actor;

use crate::metrics::BackfillOutcome;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::Duration;

/// Ask for a conversation's current state over REST, to heal its gaps up to `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackfillRequest {
    pub conversation: String,
    pub epoch: u32,
}

/// Slack on each side of an outage's event-time window: clocks and ordering are not exact.
const WINDOW_SLACK: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Tracks the outage in *event* time: the last event seen before the socket went down,
/// and the first one after it came back. Event time, not wall time, because that is what
/// the details query filters on (and a replayed or simulated stream runs at its own pace).
#[derive(Debug, Default)]
pub struct OutageWindow {
    latest: Option<DateTime<Utc>>,
    outage_from: Option<DateTime<Utc>>,
}

impl OutageWindow {
    /// The stream (or a restart) lost events from the latest seen event on.
    pub fn socket_gap(&mut self) {
        if self.outage_from.is_none() {
            self.outage_from = self.latest;
        }
    }

    /// An event arrived live; if it is the first after an outage, the window to search.
    pub fn observed(&mut self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.latest = Some(self.latest.map_or(at, |latest| latest.max(at)));
        let from = self.outage_from.take()?;
        // Event times come from the network: near chrono's limits the slack saturates.
        let start = from.checked_sub_signed(WINDOW_SLACK).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let end = at.max(from).checked_add_signed(WINDOW_SLACK).unwrap_or(DateTime::<Utc>::MAX_UTC);
        Some((start, end))
    }

    /// Resume knowing the latest event time seen before a restart.
    pub fn resumed(&mut self, latest: Option<DateTime<Utc>>) {
        self.latest = latest;
        self.socket_gap();
    }
}

/// `POST /api/v2/analytics/conversations/details/query` body: conversations that started
/// in `[from, to)` on any of the queues or users, one page of them.
pub fn details_query(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    queues: &[String],
    users: &[String],
    page: u32,
) -> serde_json::Value {
    let predicates: Vec<serde_json::Value> = queues
        .iter()
        .map(|q| ("queueId", q))
        .chain(users.iter().map(|u| ("userId", u)))
        .map(|(dimension, value)| {
            serde_json::json!({"type": "dimension", "dimension": dimension, "operator": "matches", "value": value})
        })
        .collect();
    serde_json::json!({
        "interval": format!("{}/{}", crate::record::format_millis(&from), crate::record::format_millis(&to)),
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": DETAILS_PAGE_SIZE, "pageNumber": page},
        "segmentFilters": [{"type": "or", "predicates": predicates}],
    })
}

pub const DETAILS_PAGE_SIZE: u32 = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailsPage {
    #[serde(default)]
    pub conversations: Vec<ConversationSummary>,
    pub total_hits: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub conversation_id: String,
}

/// Why one backfill call did not yield the conversation.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackfillError {
    #[error("conversation not found (404)")]
    NotFound,
    #[error("rate limited (429)")]
    RateLimited(Option<Duration>),
    #[error("unauthorized (401)")]
    Unauthorized,
    #[error("HTTP {0}")]
    Http(u16),
    #[error("{0}")]
    Network(String),
    #[error("unusable response: {0}")]
    BadBody(String),
    /// The conversation id could not stand in a URL path (see `http::path_segment`).
    #[error("conversation id unsafe in a URL path; not fetched")]
    UnsafeId,
}

impl BackfillError {
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            404 => BackfillError::NotFound,
            429 => BackfillError::RateLimited(retry_after),
            401 => BackfillError::Unauthorized,
            other => BackfillError::Http(other),
        }
    }

    /// The `outcome` label of `timelined_backfills_total`.
    pub fn outcome(&self) -> BackfillOutcome {
        match self {
            BackfillError::NotFound => BackfillOutcome::NotFound,
            BackfillError::RateLimited(_) => BackfillOutcome::RateLimited,
            _ => BackfillOutcome::Error,
        }
    }

    /// Worth another try (a 404 is final; so is a body we cannot read, or an unsafe id).
    pub fn retryable(&self) -> bool {
        !matches!(self, BackfillError::NotFound | BackfillError::BadBody(_) | BackfillError::UnsafeId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_258_000 + minute * 60, 0).unwrap()
    }

    #[test]
    fn an_outage_window_spans_last_event_before_to_first_after() {
        let mut window = OutageWindow::default();
        assert_eq!(window.observed(at(0)), None, "no outage yet");
        assert_eq!(window.observed(at(5)), None);
        window.socket_gap();
        window.socket_gap(); // a second loss before recovery widens nothing
        assert_eq!(window.observed(at(30)), Some((at(4), at(31))));
        assert_eq!(window.observed(at(31)), None, "asked once per outage");
    }

    #[test]
    fn an_event_time_at_the_limits_of_time_opens_a_window_without_overflow() {
        let mut window = OutageWindow::default();
        let last = DateTime::<Utc>::MAX_UTC - chrono::TimeDelta::seconds(1);
        assert_eq!(window.observed(last), None);
        window.socket_gap();
        assert_eq!(window.observed(last), Some((last - WINDOW_SLACK, DateTime::<Utc>::MAX_UTC)));
        let mut early = OutageWindow::default();
        early.resumed(Some(DateTime::<Utc>::MIN_UTC));
        assert_eq!(early.observed(DateTime::<Utc>::MIN_UTC).map(|w| w.0), Some(DateTime::<Utc>::MIN_UTC));
    }

    #[test]
    fn a_restart_searches_from_the_last_saved_event() {
        let mut window = OutageWindow::default();
        window.resumed(Some(at(10)));
        assert_eq!(window.observed(at(12)), Some((at(9), at(13))));
        let mut fresh = OutageWindow::default();
        fresh.resumed(None);
        assert_eq!(fresh.observed(at(1)), None, "nothing was known: nothing to search");
    }

    #[test]
    fn the_details_query_names_every_queue_and_user() {
        let body = details_query(at(0), at(1), &["q1".into()], &["u1".into()], 2);
        assert_eq!(body["interval"], "2026-01-01T09:00:00.000Z/2026-01-01T09:01:00.000Z");
        assert_eq!(body["paging"]["pageNumber"], 2);
        let predicates = body["segmentFilters"][0]["predicates"].as_array().unwrap();
        assert_eq!(predicates.len(), 2);
        assert_eq!(predicates[1]["dimension"], "userId");
    }

    #[test]
    fn statuses_classify() {
        assert_eq!(BackfillError::from_status(404, None), BackfillError::NotFound);
        assert!(!BackfillError::NotFound.retryable());
        let limited = BackfillError::from_status(429, Some(Duration::from_secs(2)));
        assert_eq!(limited.outcome(), BackfillOutcome::RateLimited);
        assert!(limited.retryable());
        assert!(BackfillError::from_status(503, None).retryable());
        assert!(!BackfillError::UnsafeId.retryable(), "an unsafe id is never fetched, however often");
        assert_eq!(BackfillError::UnsafeId.outcome(), BackfillOutcome::Error);
    }
}
