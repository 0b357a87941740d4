//! OAuth client-credentials tokens: the response and error shapes,
//! when a cached token must be refreshed, and what an error means. The actor that owns
//! the token and does the HTTP is in [`actor`].

pub mod actor;

use crate::metrics::TokenOutcome;
use crate::secret::Secret;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// A bearer token and when it stops being usable.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub value: Secret,
    pub expires_at: Instant,
}

/// The decoder of the login server's token response body (`serde_json::from_slice`).
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
}

/// The longest token lifetime believed (Genesys issues 24 h): a larger `expires_in` would
/// put the refresh out of reach, or overflow the time it is added to.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl TokenResponse {
    /// `expires_in`, at most [`MAX_TOKEN_LIFETIME`].
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.expires_in).min(MAX_TOKEN_LIFETIME)
    }
}

#[derive(Deserialize)]
pub(crate) struct ErrorResponse {
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// 400/401: bad client id or secret. A configuration error, not a transient one.
    #[error("the login server rejected the client credentials ({0}); check genesys.client_id and the client secret")]
    Rejected(String),
    #[error("rate limited by the login server; retry after {0:?}")]
    RateLimited(Option<Duration>),
    #[error("login server error: HTTP {0}")]
    Server(u16),
    #[error("could not reach the login server: {0}")]
    Network(String),
    #[error("unexpected token response: {0}")]
    BadResponse(String),
}

impl TokenError {
    /// The `outcome` label of `timelined_token_refreshes_total`.
    pub fn outcome(&self) -> TokenOutcome {
        match self {
            TokenError::Rejected(_) => TokenOutcome::Rejected,
            TokenError::RateLimited(_) => TokenOutcome::RateLimited,
            TokenError::Server(_) | TokenError::BadResponse(_) => TokenOutcome::ServerError,
            TokenError::Network(_) => TokenOutcome::NetworkError,
        }
    }

    /// The decoder of the login server's error answers (the body of a 400/401/403).
    pub fn from_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        match status {
            429 => TokenError::RateLimited(retry_after),
            400 | 401 | 403 => {
                let reason = serde_json::from_slice::<ErrorResponse>(body)
                    .ok()
                    .and_then(|e| e.error_description.or(e.error))
                    .unwrap_or_else(|| format!("HTTP {status}"));
                TokenError::Rejected(reason)
            }
            other => TokenError::Server(other),
        }
    }
}

/// A cached token is refreshed `margin` before it expires (and at the latest at half its
/// lifetime for very short-lived tokens).
pub fn refresh_at(issued: Instant, lifetime: Duration, margin: Duration) -> Instant {
    let lead = margin.min(lifetime / 2);
    issued + lifetime.saturating_sub(lead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_expires_in_is_held_to_a_day_and_schedules_in_range() {
        let response = TokenResponse { access_token: "t".into(), expires_in: u64::MAX };
        assert_eq!(response.lifetime(), MAX_TOKEN_LIFETIME);
        let now = Instant::now();
        let due = refresh_at(now, response.lifetime(), Duration::from_secs(300));
        assert_eq!(due, now + MAX_TOKEN_LIFETIME - Duration::from_secs(300));
    }

    #[test]
    fn refresh_is_scheduled_ahead_of_expiry() {
        let now = Instant::now();
        assert_eq!(
            refresh_at(now, Duration::from_secs(86400), Duration::from_secs(300)),
            now + Duration::from_secs(86100)
        );
        assert_eq!(
            refresh_at(now, Duration::from_secs(60), Duration::from_secs(300)),
            now + Duration::from_secs(30)
        );
    }

    #[test]
    fn errors_are_classified_and_carry_no_secret() {
        let body = br#"{"error":"invalid_client","error_description":"client not found"}"#;
        let err = TokenError::from_status(401, body, None);
        assert_eq!(err, TokenError::Rejected("client not found".into()));
        assert_eq!(err.outcome(), TokenOutcome::Rejected);
        assert_eq!(
            TokenError::from_status(429, b"", Some(Duration::from_secs(2))).outcome(),
            TokenOutcome::RateLimited
        );
        assert_eq!(TokenError::from_status(503, b"", None), TokenError::Server(503));
    }
}
