//! HeartbeatActor: pings the open socket every `ping_interval`, measures the round trip
//! from the pong, and sends `Stale` when no frame at all (data, heartbeat or pong) arrived
//! within `stale_timeout`. Freshness is read from the shared [`Liveness`], which the
//! ConnectionActor updates on every frame.

use crate::connection::actor::{SendPing, Stale};
use crate::connection::Liveness;
use crate::metrics::Metrics;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    pub ping_interval: Duration,
    pub stale_timeout: Duration,
}

/// An answer to our ping arrived (a `pong` frame or an RFC 6455 Pong).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PongReceived;

pub struct HeartbeatActor {
    config: HeartbeatConfig,
    liveness: Arc<Liveness>,
    ping: Recipient<SendPing>,
    stale: Recipient<Stale>,
    last_ping: Option<Instant>,
    awaiting_pong: Option<Instant>,
    metrics: Arc<Metrics>,
}

impl HeartbeatActor {
    pub fn new(
        config: HeartbeatConfig,
        liveness: Arc<Liveness>,
        ping: Recipient<SendPing>,
        stale: Recipient<Stale>,
        metrics: Arc<Metrics>,
    ) -> Self {
        HeartbeatActor { config, liveness, ping, stale, last_ping: None, awaiting_pong: None, metrics }
    }

    fn tick(&mut self) {
        let Some(generation) = self.liveness.open_generation() else {
            self.last_ping = None;
            return;
        };
        if self.liveness.since_last_frame() >= self.config.stale_timeout {
            let _ = self.stale.try_send(Stale { generation });
            return;
        }
        let now = Instant::now();
        if self.last_ping.is_none_or(|last| now.duration_since(last) >= self.config.ping_interval) {
            self.last_ping = Some(now);
            self.awaiting_pong = Some(now);
            let _ = self.ping.try_send(SendPing);
        }
    }
}

impl Actor for HeartbeatActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Check often enough that staleness is noticed within a fraction of the timeout.
        let check =
            (self.config.stale_timeout / 4).min(self.config.ping_interval).max(Duration::from_millis(50));
        ctx.run_interval(check, |act, _| act.tick());
    }
}

impl Handler<PongReceived> for HeartbeatActor {
    type Result = ();

    fn handle(&mut self, _: PongReceived, _: &mut Context<Self>) {
        if let Some(sent) = self.awaiting_pong.take() {
            self.metrics.heartbeat_rtt_seconds.set(sent.elapsed().as_secs_f64());
        }
    }
}
