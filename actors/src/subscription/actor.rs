//! SubscriptionActor: owns the desired subscription and the notification channel. It
//! creates a channel and subscribes over REST (or, in the analytics-stream dialect, builds
//! the filter the socket sends), then hands the ConnectionActor a [`Target`]. A lost
//! channel starts the same cycle again; failures retry with backoff. Before the channel
//! expires, on `socket_closing` and after every token refresh (a channel can die with its
//! token) it rotates: a new channel is subscribed and handed over while the old socket
//! still streams — the ConnectionActor makes the new socket before it breaks the old.

use super::{Channel, Interest, SubscriptionEntities, TopicRef};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::control::{ChannelClosing, ChannelLost, Connect, Target};
use crate::health::Liveness;
use crate::internal_events::printable;
use crate::metrics::ReconnectCause;
use crate::token::actor::{GetToken, Invalidate, NotifyRefresh, TokenActor, TokenRefreshed};
use crate::token::TokenError;
use crate::wire::Dialect;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use slog::{info, warn, Logger};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SubscriptionConfig {
    pub api_base: String,
    pub dialect: Dialect,
    pub interest: Interest,
    pub request_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// How much later than the channel before it this channel rotates (see
    /// [`rotation_stagger`]); zero for the first.
    pub rotation_delay: Duration,
}

/// How far apart the channels of one instance rotate. Each rotation holds one more channel
/// until its old socket retires, and one OAuth client holds at most 20: spreading the
/// rotations that a token refresh (or channels made together expiring together) starts
/// over the first half of the refresh margin keeps that to one or two at a time. At 20
/// channels of a 5-minute margin they are 7.5 s apart, past the 5 s overlap.
pub fn rotation_stagger(token_refresh_margin: Duration, channels: usize) -> Duration {
    let channels = u32::try_from(channels.max(1)).unwrap_or(u32::MAX);
    token_refresh_margin / 2 / channels
}

#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("no access token: {0}")]
    Token(#[from] TokenError),
    #[error("{endpoint}: unauthorized (401)")]
    Unauthorized { endpoint: &'static str },
    #[error("{endpoint}: HTTP {status}")]
    Http { endpoint: &'static str, status: u16, retry_after: Option<Duration> },
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
    rotation: Option<SpawnHandle>,
    /// This channel's facts: whether it is subscribed is set here.
    liveness: Arc<Liveness>,
    log: Logger,
}

/// Rotate this long before a channel expires: a fifth of its life, at most ten minutes.
fn rotation_lead(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(600))
}

impl SubscriptionActor {
    pub fn new(
        config: SubscriptionConfig,
        tokens: Addr<TokenActor>,
        connect: Recipient<Connect>,
        liveness: Arc<Liveness>,
        log: Logger,
    ) -> Self {
        SubscriptionActor {
            backoff: config.backoff.start(),
            config,
            tokens,
            connect,
            establishing: false,
            rotation: None,
            liveness,
            log,
        }
    }

    fn schedule_rotation(&mut self, expires: Option<DateTime<Utc>>, ctx: &mut Context<Self>) {
        if let Some(previous) = self.rotation.take() {
            ctx.cancel_future(previous);
        }
        let Some(lifetime) = expires.and_then(|at| (at - Utc::now()).to_std().ok()) else {
            return;
        };
        let delay =
            lifetime.saturating_sub(rotation_lead(lifetime)).saturating_sub(self.config.rotation_delay);
        self.rotation = Some(ctx.run_later(delay, |act, ctx| {
            info!(act.log, "channel expires soon; rotating");
            act.rotation = None;
            act.establish(ctx);
        }));
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
                Ok((target, expires)) => {
                    act.backoff.reset();
                    act.liveness.set_subscribed(true);
                    act.schedule_rotation(expires, ctx);
                    // Control, not data: queued even into a full mailbox (a lost
                    // `Connect` would leave a subscribed channel unread).
                    act.connect.do_send(Connect(target)); // once per channel made; lost only if the connection actor stopped (shutdown)
                }
                Err(error) => {
                    if matches!(error, SetupError::Unauthorized { .. }) {
                        act.tokens.do_send(Invalidate); // once per refused setup, paced by the backoff; lost only at shutdown
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
) -> Result<(Target, Option<DateTime<Utc>>), SetupError> {
    if config.dialect == Dialect::AnalyticsStream {
        let target = Target {
            url: format!("{}/api/v2/analytics/conversations/stream", websocket_url(&config.api_base)),
            dialect: Dialect::AnalyticsStream,
            filter: Some(config.interest.analytics_filter()),
        };
        return Ok((target, None));
    }
    let token = tokens.send(GetToken).await.map_err(|_| SetupError::Mailbox)??;
    let client =
        awc::Client::builder().timeout(config.request_timeout).bearer_auth(token.value.expose()).finish();
    let api = config.api_base.trim_end_matches('/');

    const CREATE: &str = "create channel";
    let mut response = client
        .post(format!("{api}/api/v2/notifications/channels"))
        .send()
        .await
        .map_err(|e| SetupError::Network { endpoint: CREATE, error: e.to_string() })?;
    check(CREATE, response.status().as_u16(), response.headers(), config.max_retry_after)?;
    let channel: Channel =
        response.json().await.map_err(|e| SetupError::Network { endpoint: CREATE, error: e.to_string() })?;

    if let Err(why) = crate::http::transport_allowed(&channel.connect_uri) {
        // Refused before subscribing: the stream would carry conversations in cleartext.
        return Err(SetupError::Network { endpoint: CREATE, error: format!("connectUri {why}") });
    }
    const SUBSCRIBE: &str = "subscribe";
    let Some(channel_id) = crate::http::path_segment(&channel.id) else {
        // Refused, not escaped: a crafted id could walk the API host with our token.
        return Err(SetupError::Network {
            endpoint: CREATE,
            error: "channel id unsafe in a URL path".into(),
        });
    };
    let topics = config.interest.topics();
    let body: Vec<TopicRef> = topics.iter().map(|id| TopicRef { id }).collect();
    let mut response = client
        .put(format!("{api}/api/v2/notifications/channels/{channel_id}/subscriptions"))
        .send_json(&body)
        .await
        .map_err(|e| SetupError::Network { endpoint: SUBSCRIBE, error: e.to_string() })?;
    check(SUBSCRIBE, response.status().as_u16(), response.headers(), config.max_retry_after)?;
    let entities: SubscriptionEntities = response
        .json()
        .limit(16 << 20)
        .await
        .map_err(|e| SetupError::Network { endpoint: SUBSCRIBE, error: e.to_string() })?;
    let rejected: Vec<_> =
        entities.entities.iter().filter(|e| e.state.as_deref().is_some_and(|s| s != "Permitted")).collect();
    for topic in &rejected {
        warn!(log, "topic rejected"; "topic" => &*printable(&topic.id),
            "reason" => &*printable(topic.rejection_reason.as_deref().unwrap_or("unknown")));
    }
    if !topics.is_empty() && rejected.len() == topics.len() {
        return Err(SetupError::AllRejected);
    }
    info!(log, "channel created and subscribed"; "topics" => topics.len() - rejected.len(), "expires" => ?channel.expires);
    let target = Target { url: channel.connect_uri, dialect: Dialect::Notifications, filter: None };
    Ok((target, channel.expires))
}

fn check(
    endpoint: &'static str,
    status: u16,
    headers: &awc::http::header::HeaderMap,
    max_retry_after: Duration,
) -> Result<(), SetupError> {
    match status {
        200..=299 => Ok(()),
        401 => Err(SetupError::Unauthorized { endpoint }),
        status => Err(SetupError::Http {
            endpoint,
            status,
            retry_after: crate::http::retry_after(headers, max_retry_after),
        }),
    }
}

impl Actor for SubscriptionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.tokens.do_send(NotifyRefresh(ctx.address().recipient())); // once, at start; lost only if the token actor stopped (shutdown)
        self.establish(ctx);
    }
}

impl Handler<ChannelLost> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, lost: ChannelLost, ctx: &mut Context<Self>) {
        if lost.cause == ReconnectCause::ConnectFailed {
            // A rotation's new socket would not open; the old one still streams.
            let delay = self.backoff.next_delay(&mut rand::rng());
            ctx.run_later(delay, |act, ctx| act.establish(ctx));
            return;
        }
        info!(self.log, "channel lost; creating a new one"; "cause" => lost.cause.as_str());
        self.liveness.set_subscribed(false);
        if self.config.dialect == Dialect::AnalyticsStream {
            // The stream refused our token or dropped us: a fresh token for the next try.
            self.tokens.do_send(Invalidate); // once per lost channel; lost only if the token actor stopped (shutdown)
        }
        self.establish(ctx);
    }
}

impl Handler<TokenRefreshed> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, _: TokenRefreshed, ctx: &mut Context<Self>) {
        if self.config.dialect == Dialect::Notifications {
            let delay = self.config.rotation_delay;
            info!(self.log, "token refreshed; rotating the channel before the old token expires";
                "in_ms" => delay.as_millis() as u64);
            ctx.run_later(delay, |act, ctx| act.establish(ctx));
        }
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
    fn rotation_leads_expiry_by_a_fifth_capped_at_ten_minutes() {
        assert_eq!(rotation_lead(Duration::from_secs(10)), Duration::from_secs(2));
        assert_eq!(rotation_lead(Duration::from_secs(86400)), Duration::from_secs(600));
    }

    #[test]
    fn rotations_spread_over_half_the_refresh_margin() {
        let margin = Duration::from_secs(300);
        assert_eq!(rotation_stagger(margin, 20), Duration::from_millis(7_500));
        assert_eq!(rotation_stagger(margin, 3), Duration::from_secs(50));
        assert_eq!(rotation_stagger(margin, 0), Duration::from_secs(150));
        // The last of 20 starts within the first half of the margin.
        assert!(rotation_stagger(margin, 20) * 19 < margin / 2);
    }

    #[test]
    fn websocket_url_follows_the_api_scheme() {
        assert_eq!(websocket_url("https://api.mypurecloud.com/"), "wss://api.mypurecloud.com");
        assert_eq!(websocket_url("http://127.0.0.1:8900"), "ws://127.0.0.1:8900");
    }
}
