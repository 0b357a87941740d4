//! TokenActor: owns the OAuth token. `GetToken` answers from the cache or joins the one
//! request in flight (single-flight); the token is refreshed ahead of `expires_in`;
//! `Invalidate` (after a 401 elsewhere) forces a new one. Failures are retried here, in
//! one place: 429 after `Retry-After` (jittered), 5xx and network errors with exponential
//! backoff, rejected credentials — a configuration error, logged plainly — at the capped
//! backoff. Waiters keep waiting meanwhile; a still-valid token keeps being served.

use super::{refresh_at, AccessToken, TokenError, TokenResponse};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::health::Health;
use crate::internal_events::printable;
use crate::metrics::{Metrics, TokenLabels, TokenOutcome};
use crate::secret::Secret;
use actix::prelude::*;
use rand::Rng;
use slog::{error, info, warn, Logger};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Clone, Debug)]
pub struct TokenConfig {
    pub login_base: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_margin: Duration,
    pub request_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

#[derive(Message)]
#[rtype(result = "Result<AccessToken, TokenError>")]
pub struct GetToken;

/// The token was refused by an API (401): drop it so the next `GetToken` fetches anew.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Invalidate;

/// A new token was obtained (the channel may die with the old one: rotate it).
#[derive(Clone, Message)]
#[rtype(result = "()")]
pub struct TokenRefreshed {
    pub expires_at: Instant,
}

/// Tell `recipient` about every refresh after the first token.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifyRefresh(pub Recipient<TokenRefreshed>);

pub struct TokenActor {
    config: TokenConfig,
    token: Option<AccessToken>,
    refresh_due: Option<Instant>,
    waiters: Vec<oneshot::Sender<Result<AccessToken, TokenError>>>,
    in_flight: bool,
    timer: Option<SpawnHandle>,
    backoff: Backoff,
    refreshed: Vec<Recipient<TokenRefreshed>>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl TokenActor {
    pub fn new(config: TokenConfig, health: Arc<Health>, metrics: Arc<Metrics>, log: Logger) -> Self {
        TokenActor {
            backoff: config.backoff.start(),
            config,
            token: None,
            refresh_due: None,
            waiters: Vec::new(),
            in_flight: false,
            timer: None,
            refreshed: Vec::new(),
            health,
            metrics,
            log,
        }
    }

    fn fetch(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        self.in_flight = true;
        let config = self.config.clone();
        let request = async move {
            let client = awc::Client::builder().timeout(config.request_timeout).finish();
            let url = format!("{}/oauth/token", config.login_base.trim_end_matches('/'));
            let mut response = client
                .post(url)
                .basic_auth(&config.client_id, config.client_secret.expose())
                .send_form(&[("grant_type", "client_credentials")])
                .await
                .map_err(|e| TokenError::Network(e.to_string()))?;
            let status = response.status().as_u16();
            let retry_after = crate::http::retry_after(response.headers(), config.max_retry_after);
            let body = response.body().await.map_err(|e| TokenError::Network(e.to_string()))?;
            if status != 200 {
                return Err(TokenError::from_status(status, &body, retry_after));
            }
            serde_json::from_slice::<TokenResponse>(&body).map_err(|e| TokenError::BadResponse(e.to_string()))
        };
        let issued = Instant::now();
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| act.fetched(result, issued, ctx)));
    }

    fn fetched(
        &mut self,
        result: Result<TokenResponse, TokenError>,
        issued: Instant,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = false;
        let outcome = result.as_ref().map_or_else(TokenError::outcome, |_| TokenOutcome::Ok);
        self.metrics.token_refreshes.get_or_create(&TokenLabels { outcome }).inc();
        match result {
            Ok(response) => {
                let lifetime = response.lifetime();
                let token =
                    AccessToken { value: Secret::new(response.access_token), expires_at: issued + lifetime };
                let due = refresh_at(issued, lifetime, self.config.refresh_margin);
                info!(self.log, "access token obtained"; "expires_in_s" => response.expires_in);
                let first = self.token.is_none() && self.refresh_due.is_none();
                self.token = Some(token.clone());
                self.refresh_due = Some(due);
                self.backoff.reset();
                self.health.token_obtained();
                self.timer = Some(
                    ctx.run_later(due.saturating_duration_since(Instant::now()), |act, ctx| act.fetch(ctx)),
                );
                for waiter in self.waiters.drain(..) {
                    // A waiter that gave up (its request timed out) needs no answer.
                    let _ = waiter.send(Ok(token.clone()));
                }
                if !first {
                    let news = TokenRefreshed { expires_at: token.expires_at };
                    // Once a token lifetime, to actors that rotate their channel on it: queued
                    // whatever their mailbox holds; one gone is forgotten.
                    self.refreshed.retain(|r| r.connected());
                    for recipient in &self.refreshed {
                        recipient.do_send(news.clone()); // once per token to each subscriber; connected ones only (checked above)
                    }
                }
            }
            Err(problem) => {
                let delay = match &problem {
                    // Jittered, never past the configured cap.
                    TokenError::RateLimited(Some(wait)) => (*wait
                        + wait.mul_f64(rand::rng().random::<f64>() * 0.2))
                    .min(self.config.max_retry_after),
                    // Bad credentials will not fix themselves quickly: try at the slowest pace.
                    TokenError::Rejected(_) => self.config.backoff.max,
                    _ => self.backoff.next_delay(&mut rand::rng()),
                };
                let still_valid = self.token.as_ref().is_some_and(|t| Instant::now() < t.expires_at);
                match &problem {
                    TokenError::Rejected(_) => {
                        error!(self.log, "configuration error: the login server rejected the client credentials; \
                                          check genesys.client_id and the client secret";
                            "detail" => &*printable(&problem.to_string()), "retry_in_s" => delay.as_secs());
                        self.health.token_failed(Some(problem.to_string()));
                    }
                    _ => {
                        warn!(self.log, "access token request failed; retrying";
                            "error" => %problem, "outcome" => outcome.as_str(), "retry_in_ms" => delay.as_millis() as u64);
                        if !still_valid {
                            self.health.token_failed(None);
                        }
                    }
                }
                self.timer = Some(ctx.run_later(delay, |act, ctx| act.fetch(ctx)));
            }
        }
    }

    fn cached(&self, now: Instant) -> Option<AccessToken> {
        match (&self.token, self.refresh_due) {
            (Some(token), Some(due)) if now < due => Some(token.clone()),
            // Past the refresh point but not expired: still usable while refreshing.
            (Some(token), _) if now < token.expires_at => Some(token.clone()),
            _ => None,
        }
    }
}

impl Actor for TokenActor {
    type Context = Context<Self>;
}

impl Handler<GetToken> for TokenActor {
    type Result = ResponseFuture<Result<AccessToken, TokenError>>;

    fn handle(&mut self, _: GetToken, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(token) = self.cached(Instant::now()) {
            return Box::pin(async move { Ok(token) });
        }
        let (sender, receiver) = oneshot::channel();
        self.waiters.push(sender);
        if self.timer.is_none() {
            self.fetch(ctx);
        }
        Box::pin(async move {
            receiver.await.unwrap_or_else(|_| Err(TokenError::Network("token actor stopped".into())))
        })
    }
}

impl Handler<Invalidate> for TokenActor {
    type Result = ();

    fn handle(&mut self, _: Invalidate, ctx: &mut Context<Self>) {
        self.token = None;
        // A refresh is due at once (unless one is in flight or a retry is already waiting
        // out a rate limit).
        if !self.in_flight && self.refresh_due.is_some() {
            self.refresh_due = None;
            self.fetch(ctx);
        }
    }
}

impl Handler<NotifyRefresh> for TokenActor {
    type Result = ();

    fn handle(&mut self, NotifyRefresh(recipient): NotifyRefresh, _: &mut Context<Self>) {
        self.refreshed.push(recipient);
    }
}
