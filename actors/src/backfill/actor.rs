//! BackfillActor: the REST worker that heals gaps. It takes `BackfillRequest`s from the
//! TimelineActor, keeps at most one per conversation queued (a newer gap widens the
//! request), runs at most `concurrency` calls at once, and retries: 429 after
//! `Retry-After` (jittered, pausing every call), 401 after refreshing the token, 5xx and
//! network errors with backoff, up to `max_attempts`. Every answer — events or a final
//! failure — goes back to the TimelineActor as a `BackfillResult`.

use super::{BackfillError, BackfillRequest};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::event::ParticipantEvent;
use crate::internal_events::printable;
use crate::metrics::{BackfillLabels, BackfillOutcome, Metrics};
use crate::subscription::Interest;
use crate::token::actor::{GetToken, Invalidate, TokenActor};
use actix::prelude::*;
use rand::Rng;
use slog::{debug, warn, Logger};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BackfillConfig {
    pub api_base: String,
    /// What each channel subscribes to, by channel index: its queues and users are
    /// searched after its outage.
    pub channels: Vec<Interest>,
    /// How far before the outage the search starts: a conversation is seen on a queue
    /// only once it reaches it, possibly long after it started (in an IVR, say).
    pub search_lead: Duration,
    pub request_timeout: Duration,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub backoff: BackoffPolicy,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// Event times accepted in an answer; the rest are rejected and counted.
    pub time_window: crate::event::TimeWindow,
}

/// Heal these conversations' gaps: what one tick of the timeline found.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Backfill(pub Vec<BackfillRequest>);

/// Find the conversations on channel `channel`'s queues and users that started in this
/// event-time window (its outage).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Discover {
    pub channel: usize,
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
}

/// Conversations found by a [`Discover`] search of channel `channel`'s outage.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Discovered {
    pub channel: usize,
    pub conversations: Vec<String>,
}

/// What a backfill found: the conversation's events, or that it could not be had.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BackfillResult {
    pub request: BackfillRequest,
    pub events: Vec<ParticipantEvent>,
    pub succeeded: bool,
}

pub struct BackfillActor {
    config: BackfillConfig,
    tokens: Addr<TokenActor>,
    results: Recipient<BackfillResult>,
    discovered: Recipient<Discovered>,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    /// Conversations waiting for a call, with the newest epoch asked for.
    wanted: HashMap<String, u32>,
    in_flight: HashSet<String>,
    attempts: HashMap<String, u32>,
    paused_until: Option<Instant>,
    backoff: Backoff,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl BackfillActor {
    pub fn new(
        config: BackfillConfig,
        tokens: Addr<TokenActor>,
        results: Recipient<BackfillResult>,
        discovered: Recipient<Discovered>,
        metrics: Arc<Metrics>,
        log: Logger,
    ) -> Self {
        BackfillActor {
            backoff: config.backoff.start(),
            config,
            tokens,
            results,
            discovered,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            wanted: HashMap::new(),
            in_flight: HashSet::new(),
            attempts: HashMap::new(),
            paused_until: None,
            metrics,
            log,
        }
    }

    fn enqueue(&mut self, request: BackfillRequest) {
        let epoch = self.wanted.entry(request.conversation.clone()).or_insert(0);
        *epoch = (*epoch).max(request.epoch);
        self.requeue(request.conversation);
    }

    /// Put a wanted conversation in line, unless it is in line or in flight already (the
    /// newest epoch wanted is kept in `wanted` meanwhile).
    fn requeue(&mut self, conversation: String) {
        if self.wanted.contains_key(&conversation)
            && !self.in_flight.contains(&conversation)
            && self.queued.insert(conversation.clone())
        {
            self.queue.push_back(conversation);
        }
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if let Some(until) = self.paused_until {
            let now = Instant::now();
            if now < until {
                ctx.run_later(until - now, |act, ctx| act.pump(ctx));
                return;
            }
            self.paused_until = None;
        }
        while self.in_flight.len() < self.config.concurrency {
            let Some(conversation) = self.queue.pop_front() else {
                break;
            };
            self.queued.remove(&conversation);
            let Some(epoch) = self.wanted.remove(&conversation) else {
                continue;
            };
            self.in_flight.insert(conversation.clone());
            let request = BackfillRequest { conversation, epoch };
            let call = fetch(self.config.clone(), self.tokens.clone(), request.conversation.clone());
            ctx.spawn(call.into_actor(self).map(move |result, act, ctx| act.answered(request, result, ctx)));
        }
    }

    fn answered(
        &mut self,
        request: BackfillRequest,
        result: Result<Vec<ParticipantEvent>, BackfillError>,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight.remove(&request.conversation);
        let outcome = result.as_ref().map_or_else(BackfillError::outcome, |_| BackfillOutcome::Ok);
        self.metrics.backfills.get_or_create(&BackfillLabels { outcome }).inc();
        match result {
            Ok(mut events) => {
                if let Some((refused, detail)) =
                    self.config.time_window.retain(&mut events, chrono::Utc::now())
                {
                    let reason = crate::wire::MalformedReason::TimeOutOfWindow;
                    self.metrics
                        .malformed_frames
                        .get_or_create(&crate::metrics::MalformedLabels { reason })
                        .inc_by(refused as u64);
                    warn!(self.log, "backfill answer had events outside the time window; rejected";
                        "conversation" => &*printable(&request.conversation), "events" => refused, "detail" => detail);
                }
                self.backoff.reset();
                self.attempts.remove(&request.conversation);
                debug!(self.log, "backfilled"; "conversation" => &*printable(&request.conversation), "events" => events.len());
                self.deliver(BackfillResult { request, events, succeeded: true }, ctx);
            }
            Err(error) => {
                let attempts = self.attempts.entry(request.conversation.clone()).or_insert(0);
                *attempts += 1;
                if !error.retryable() || *attempts >= self.config.max_attempts {
                    warn!(self.log, "backfill failed for good; the timeline stays marked with its gap";
                        "conversation" => &*printable(&request.conversation), "error" => %error, "attempts" => *attempts);
                    self.attempts.remove(&request.conversation);
                    self.deliver(BackfillResult { request, events: Vec::new(), succeeded: false }, ctx);
                } else {
                    let delay = match &error {
                        // Jittered, never past the configured cap.
                        BackfillError::RateLimited(Some(wait)) => (*wait
                            + wait.mul_f64(rand::rng().random::<f64>() * 0.2))
                        .min(self.config.max_retry_after),
                        BackfillError::Unauthorized => {
                            self.tokens.do_send(Invalidate); // once per refused call, at most `concurrency` in flight; lost only at shutdown
                            self.config.backoff.initial
                        }
                        _ => self.backoff.next_delay(&mut rand::rng()),
                    };
                    if matches!(error, BackfillError::RateLimited(_)) {
                        // The limit is per client: every call waits, not just this one.
                        self.paused_until = Some(Instant::now() + delay);
                    }
                    debug!(self.log, "backfill retry"; "conversation" => &*printable(&request.conversation), "error" => %error,
                        "retry_in_ms" => delay.as_millis() as u64);
                    ctx.run_later(delay, move |act, ctx| {
                        act.enqueue(request);
                        act.pump(ctx);
                    });
                }
            }
        }
        self.pump(ctx);
    }

    fn deliver(&mut self, result: BackfillResult, ctx: &mut Context<Self>) {
        let conversation = result.request.conversation.clone();
        let results = self.results.clone();
        // Results are few and must not be dropped: wait for room rather than drop. It fails
        // only once the timeline actor is gone (shutdown), when nothing is left to heal.
        let log = self.log.clone();
        ctx.spawn(
            async move {
                if results.send(result).await.is_err() {
                    debug!(log, "backfill answered after the timeline stopped; dropped");
                }
            }
            .into_actor(self),
        );
        // A gap marked while this call was in flight asks again.
        self.requeue(conversation);
    }
}

async fn fetch(
    config: BackfillConfig,
    tokens: Addr<TokenActor>,
    conversation: String,
) -> Result<Vec<ParticipantEvent>, BackfillError> {
    let Some(conversation) = crate::http::path_segment(&conversation) else {
        return Err(BackfillError::UnsafeId);
    };
    let token = tokens
        .send(GetToken)
        .await
        .map_err(|e| BackfillError::Network(e.to_string()))?
        .map_err(|e| BackfillError::Network(e.to_string()))?;
    let client = awc::Client::builder().timeout(config.request_timeout).finish();
    let url = format!("{}/api/v2/conversations/{}", config.api_base.trim_end_matches('/'), conversation);
    let mut response = client
        .get(url)
        .bearer_auth(token.value.expose())
        .send()
        .await
        .map_err(|e| BackfillError::Network(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(BackfillError::from_status(
            status,
            crate::http::retry_after(response.headers(), config.max_retry_after),
        ));
    }
    let body = response.body().limit(16 << 20).await.map_err(|e| BackfillError::Network(e.to_string()))?;
    let decoded =
        crate::wire::decode_conversation(&body).map_err(|e| BackfillError::BadBody(e.to_string()))?;
    Ok(decoded.events)
}

/// Every conversation that started in `[from, to)` on the configured queues and users,
/// page by page; a rate limit or server error is retried a few times.
async fn search(
    config: BackfillConfig,
    scope: Interest,
    tokens: Addr<TokenActor>,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, BackfillError> {
    const MAX_PAGES: u32 = 100;
    let url =
        format!("{}/api/v2/analytics/conversations/details/query", config.api_base.trim_end_matches('/'));
    let client = awc::Client::builder().timeout(config.request_timeout).finish();
    let mut found = Vec::new();
    let mut backoff = config.backoff.start();
    let mut page = 1;
    let mut attempts = 0;
    while page <= MAX_PAGES {
        let token = tokens
            .send(GetToken)
            .await
            .map_err(|e| BackfillError::Network(e.to_string()))?
            .map_err(|e| BackfillError::Network(e.to_string()))?;
        let body = super::details_query(from, to, &scope.queues, &scope.users, page);
        let answer = match client.post(&url).bearer_auth(token.value.expose()).send_json(&body).await {
            Ok(mut response) if response.status().as_u16() == 200 => response
                .json::<super::DetailsPage>()
                .limit(16 << 20)
                .await
                .map_err(|e| BackfillError::BadBody(e.to_string())),
            Ok(response) => Err(BackfillError::from_status(
                response.status().as_u16(),
                crate::http::retry_after(response.headers(), config.max_retry_after),
            )),
            Err(error) => Err(BackfillError::Network(error.to_string())),
        };
        match answer {
            Ok(details) => {
                let count = details.conversations.len();
                found.extend(details.conversations.into_iter().map(|c| c.conversation_id));
                let total = details.total_hits.unwrap_or(0) as usize;
                if count < super::DETAILS_PAGE_SIZE as usize || found.len() >= total {
                    return Ok(found);
                }
                page += 1;
            }
            Err(error) if error.retryable() && attempts + 1 < config.max_attempts => {
                attempts += 1;
                if error == BackfillError::Unauthorized {
                    tokens.do_send(Invalidate); // once per refused attempt of the search; lost only at shutdown
                }
                let delay = match &error {
                    BackfillError::RateLimited(Some(wait)) => *wait,
                    _ => backoff.next_delay(&mut rand::rng()),
                };
                actix_rt::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(found)
}

impl Handler<Discover> for BackfillActor {
    type Result = ();

    fn handle(&mut self, Discover { channel, from, to }: Discover, ctx: &mut Context<Self>) {
        let Some(scope) = self.config.channels.get(channel).cloned() else {
            return; // no such channel: nothing subscribed there to search
        };
        if scope.queues.is_empty() && scope.users.is_empty() {
            return;
        }
        // `from` is an event time from the network: near chrono's limits the lead saturates.
        let from = chrono::TimeDelta::from_std(self.config.search_lead)
            .ok()
            .and_then(|lead| from.checked_sub_signed(lead))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let call = search(self.config.clone(), scope, self.tokens.clone(), from, to);
        ctx.spawn(call.into_actor(self).map(move |result, act, _| match result {
            Ok(ids) => {
                debug!(act.log, "outage searched"; "conversations" => ids.len());
                act.discovered.do_send(Discovered { channel, conversations: ids });
                // once per outage searched; lost only if the timeline actor stopped (shutdown)
            }
            Err(error) => {
                act.metrics.backfills.get_or_create(&BackfillLabels { outcome: error.outcome() }).inc();
                warn!(act.log, "could not search the outage for conversations missed entirely";
                    "error" => %error, "from" => from.to_rfc3339(), "to" => to.to_rfc3339());
            }
        }));
    }
}

impl Actor for BackfillActor {
    type Context = Context<Self>;
}

impl Handler<Backfill> for BackfillActor {
    type Result = ();

    fn handle(&mut self, Backfill(requests): Backfill, ctx: &mut Context<Self>) {
        for request in requests {
            self.enqueue(request);
        }
        self.pump(ctx);
    }
}
