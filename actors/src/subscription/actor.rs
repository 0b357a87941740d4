//! SubscriptionActor: owns the desired subscription and the notification channel. It
//! creates a channel and subscribes over REST (or, in the analytics-stream dialect, builds
//! the filter the socket sends), then hands the ConnectionActor a [`Target`]. A lost
//! channel or a `socket_closing` starts the same cycle again; failures retry with backoff.

use super::{Channel, Interest, SubscriptionEntities, TopicRef};
use crate::backoff::Backoff;
use crate::connection::actor::Connect;
use crate::connection::Target;
use crate::metrics::ReconnectCause;
use crate::token::actor::{GetToken, Invalidate, TokenActor};
use crate::token::TokenError;
use crate::wire::Dialect;
use actix::prelude::*;
use slog::{info, warn, Logger};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SubscriptionConfig {
    pub api_base: String,
    pub dialect: Dialect,
    pub interest: Interest,
    pub request_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// The channel can no longer be used; make a new one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelLost {
    pub cause: ReconnectCause,
}

/// The server announced it will close the socket soon.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelClosing;

#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("no access token: {0}")]
    Token(#[from] TokenError),
    #[error("{endpoint}: unauthorized (401)")]
    Unauthorized { endpoint: &'static str },
    #[error("{endpoint}: HTTP {status}")]
    Http {
        endpoint: &'static str,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{endpoint}: {error}")]
    Network { endpoint: &'static str, error: String },
    #[error("every topic was rejected")]
    AllRejected,
    #[error("token actor unavailable")]
    Mailbox,
}

pub struct SubscriptionActor {
    config: SubscriptionConfig,
    tokens: Addr<TokenActor>,
    connect: Recipient<Connect>,
    backoff: Backoff,
    establishing: bool,
    log: Logger,
}

impl SubscriptionActor {
    pub fn new(
        config: SubscriptionConfig,
        tokens: Addr<TokenActor>,
        connect: Recipient<Connect>,
        log: Logger,
    ) -> Self {
        SubscriptionActor {
            backoff: Backoff::new(config.backoff_initial, config.backoff_max),
            config,
            tokens,
            connect,
            establishing: false,
            log,
        }
    }

    fn establish(&mut self, ctx: &mut Context<Self>) {
        if self.establishing {
            return;
        }
        self.establishing = true;
        let config = self.config.clone();
        let tokens = self.tokens.clone();
        let log = self.log.clone();
        ctx.spawn(setup(config, tokens, log).into_actor(self).map(|result, act, ctx| {
            act.establishing = false;
            match result {
                Ok(target) => {
                    act.backoff.reset();
                    let _ = act.connect.try_send(Connect(target));
                }
                Err(error) => {
                    if matches!(error, SetupError::Unauthorized { .. }) {
                        act.tokens.do_send(Invalidate);
                    }
                    let mut delay = act.backoff.next_delay(&mut rand::rng());
                    if let SetupError::Http { retry_after: Some(wait), .. } = &error {
                        delay = delay.max(*wait);
                    }
                    warn!(act.log, "subscription setup failed; retrying"; "error" => %error, "retry_in_ms" => delay.as_millis() as u64);
                    ctx.run_later(delay, |act, ctx| act.establish(ctx));
                }
            }
        }));
    }
}

fn websocket_url(http_base: &str) -> String {
    let base = http_base.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

async fn setup(
    config: SubscriptionConfig,
    tokens: Addr<TokenActor>,
    log: Logger,
) -> Result<Target, SetupError> {
    if config.dialect == Dialect::AnalyticsStream {
        return Ok(Target {
            url: format!(
                "{}/api/v2/analytics/conversations/stream",
                websocket_url(&config.api_base)
            ),
            dialect: Dialect::AnalyticsStream,
            filter: Some(config.interest.analytics_filter()),
        });
    }
    let token = tokens.send(GetToken).await.map_err(|_| SetupError::Mailbox)??;
    let client = awc::Client::builder()
        .timeout(config.request_timeout)
        .bearer_auth(token.value.expose())
        .finish();
    let api = config.api_base.trim_end_matches('/');

    const CREATE: &str = "create channel";
    let mut response = client
        .post(format!("{api}/api/v2/notifications/channels"))
        .send()
        .await
        .map_err(|e| SetupError::Network {
            endpoint: CREATE,
            error: e.to_string(),
        })?;
    check(CREATE, response.status().as_u16(), response.headers())?;
    let channel: Channel = response.json().await.map_err(|e| SetupError::Network {
        endpoint: CREATE,
        error: e.to_string(),
    })?;

    const SUBSCRIBE: &str = "subscribe";
    let topics = config.interest.topics();
    let body: Vec<TopicRef> = topics.iter().map(|id| TopicRef { id }).collect();
    let mut response = client
        .put(format!(
            "{api}/api/v2/notifications/channels/{}/subscriptions",
            channel.id
        ))
        .send_json(&body)
        .await
        .map_err(|e| SetupError::Network {
            endpoint: SUBSCRIBE,
            error: e.to_string(),
        })?;
    check(SUBSCRIBE, response.status().as_u16(), response.headers())?;
    let entities: SubscriptionEntities =
        response
            .json()
            .limit(16 << 20)
            .await
            .map_err(|e| SetupError::Network {
                endpoint: SUBSCRIBE,
                error: e.to_string(),
            })?;
    let rejected: Vec<_> = entities
        .entities
        .iter()
        .filter(|e| e.state.as_deref().is_some_and(|s| s != "Permitted"))
        .collect();
    for topic in &rejected {
        warn!(log, "topic rejected"; "topic" => &topic.id, "reason" => topic.rejection_reason.as_deref().unwrap_or("unknown"));
    }
    if !topics.is_empty() && rejected.len() == topics.len() {
        return Err(SetupError::AllRejected);
    }
    info!(log, "channel created and subscribed"; "topics" => topics.len() - rejected.len(), "expires" => ?channel.expires);
    Ok(Target {
        url: channel.connect_uri,
        dialect: Dialect::Notifications,
        filter: None,
    })
}

fn check(
    endpoint: &'static str,
    status: u16,
    headers: &awc::http::header::HeaderMap,
) -> Result<(), SetupError> {
    match status {
        200..=299 => Ok(()),
        401 => Err(SetupError::Unauthorized { endpoint }),
        status => Err(SetupError::Http {
            endpoint,
            status,
            retry_after: crate::http::retry_after(headers),
        }),
    }
}

impl Actor for SubscriptionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.establish(ctx);
    }
}

impl Handler<ChannelLost> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, lost: ChannelLost, ctx: &mut Context<Self>) {
        info!(self.log, "channel lost; creating a new one"; "cause" => lost.cause.as_str());
        if self.config.dialect == Dialect::AnalyticsStream {
            // The stream refused our token or dropped us: a fresh token for the next try.
            self.tokens.do_send(Invalidate);
        }
        self.establish(ctx);
    }
}

impl Handler<ChannelClosing> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, _: ChannelClosing, ctx: &mut Context<Self>) {
        self.establish(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_follows_the_api_scheme() {
        assert_eq!(
            websocket_url("https://api.mypurecloud.com/"),
            "wss://api.mypurecloud.com"
        );
        assert_eq!(websocket_url("http://127.0.0.1:8900"), "ws://127.0.0.1:8900");
    }
}
