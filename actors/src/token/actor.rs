//! TokenActor: owns the OAuth token. `GetToken` answers from the cache or joins the one
//! request in flight (single-flight); the token is refreshed ahead of `expires_in`;
//! `Invalidate` (after a 401 elsewhere) forces the next `GetToken` to fetch anew.

use super::{refresh_at, AccessToken, TokenError, TokenResponse};
use crate::metrics::{Metrics, TokenLabels, TokenOutcome};
use crate::secret::Secret;
use actix::prelude::*;
use slog::{info, warn, Logger};
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
}

#[derive(Message)]
#[rtype(result = "Result<AccessToken, TokenError>")]
pub struct GetToken;

/// The token was refused by an API (401): drop it so the next `GetToken` fetches anew.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Invalidate;

pub struct TokenActor {
    config: TokenConfig,
    token: Option<AccessToken>,
    refresh_due: Option<Instant>,
    waiters: Vec<oneshot::Sender<Result<AccessToken, TokenError>>>,
    in_flight: bool,
    refresh_timer: Option<SpawnHandle>,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl TokenActor {
    pub fn new(config: TokenConfig, metrics: Arc<Metrics>, log: Logger) -> Self {
        TokenActor {
            config,
            token: None,
            refresh_due: None,
            waiters: Vec::new(),
            in_flight: false,
            refresh_timer: None,
            metrics,
            log,
        }
    }

    fn fetch(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
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
            let retry_after = crate::http::retry_after(response.headers());
            let body = response
                .body()
                .await
                .map_err(|e| TokenError::Network(e.to_string()))?;
            if status != 200 {
                return Err(TokenError::from_status(status, &body, retry_after));
            }
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| TokenError::BadResponse(e.to_string()))?;
            Ok(parsed)
        };
        let issued = Instant::now();
        ctx.spawn(
            request
                .into_actor(self)
                .map(move |result, act, ctx| act.fetched(result, issued, ctx)),
        );
    }

    fn fetched(
        &mut self,
        result: Result<TokenResponse, TokenError>,
        issued: Instant,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = false;
        let outcome = match &result {
            Ok(_) => TokenOutcome::Ok,
            Err(e) => e.outcome(),
        };
        self.metrics
            .token_refreshes
            .get_or_create(&TokenLabels { outcome })
            .inc();
        let answer = match result {
            Ok(response) => {
                let lifetime = Duration::from_secs(response.expires_in);
                let token = AccessToken {
                    value: Secret::new(response.access_token),
                    expires_at: issued + lifetime,
                };
                let due = refresh_at(issued, lifetime, self.config.refresh_margin);
                info!(self.log, "access token obtained"; "expires_in_s" => response.expires_in);
                self.token = Some(token.clone());
                self.refresh_due = Some(due);
                if let Some(timer) = self.refresh_timer.take() {
                    ctx.cancel_future(timer);
                }
                self.refresh_timer = Some(
                    ctx.run_later(due.saturating_duration_since(Instant::now()), |act, ctx| {
                        act.fetch(ctx)
                    }),
                );
                Ok(token)
            }
            Err(error) => {
                warn!(self.log, "access token request failed"; "error" => %error, "outcome" => outcome.as_str());
                Err(error)
            }
        };
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(answer.clone());
        }
    }

    fn cached(&self, now: Instant) -> Option<AccessToken> {
        match (&self.token, self.refresh_due) {
            (Some(token), Some(due)) if now < due => Some(token.clone()),
            // Past the refresh point but not expired: still usable while the refresh runs.
            (Some(token), _) if now < token.expires_at && self.in_flight => Some(token.clone()),
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
        self.fetch(ctx);
        Box::pin(async move {
            receiver
                .await
                .unwrap_or_else(|_| Err(TokenError::Network("token actor stopped".into())))
        })
    }
}

impl Handler<Invalidate> for TokenActor {
    type Result = ();

    fn handle(&mut self, _: Invalidate, _: &mut Context<Self>) {
        self.token = None;
        self.refresh_due = None;
    }
}
