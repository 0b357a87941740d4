//! Healing gaps over REST (GENESYS.md "Backfill"): `GET /api/v2/conversations/{id}`
//! returns the conversation in the snapshot shape, which decodes into the same events the
//! socket would have carried. The actor that paces and retries the calls is in [`actor`].

pub mod actor;

use crate::metrics::BackfillOutcome;
use std::time::Duration;

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

    /// Worth another try (a 404 is final; so is a body we cannot read).
    pub fn retryable(&self) -> bool {
        !matches!(self, BackfillError::NotFound | BackfillError::BadBody(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify() {
        assert_eq!(BackfillError::from_status(404, None), BackfillError::NotFound);
        assert!(!BackfillError::NotFound.retryable());
        let limited = BackfillError::from_status(429, Some(Duration::from_secs(2)));
        assert_eq!(limited.outcome(), BackfillOutcome::RateLimited);
        assert!(limited.retryable());
        assert!(BackfillError::from_status(503, None).retryable());
    }
}
