//! HeartbeatActor: pings the open socket every `ping_interval`, measures the round trip
//! from the pong, and sends `Stale` when no frame at all (data, heartbeat or pong) arrived
//! within `stale_timeout`. A ping still unanswered when the next is due means the socket
//! stalled: when it answers at last, `Stalled` tells the connection that what was sent
//! meanwhile may be lost. Freshness is read from the shared [`Liveness`], which the
//! ConnectionActor updates on every frame.

use crate::control::{PongReceived, SendPing, Stale, Stalled};
use crate::health::Liveness;
use crate::metrics::Metrics;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    pub ping_interval: Duration,
    pub stale_timeout: Duration,
}

pub struct HeartbeatActor {
    config: HeartbeatConfig,
    liveness: Arc<Liveness>,
    ping: Recipient<SendPing>,
    stale: Recipient<Stale>,
    stalled: Recipient<Stalled>,
    /// The socket pinged: a new one starts afresh.
    generation: Option<u64>,
    last_ping: Option<Instant>,
    /// When the oldest unanswered ping was sent.
    awaiting_pong: Option<Instant>,
    /// A ping went unanswered for a whole interval on this socket.
    missed_pong: bool,
    metrics: Arc<Metrics>,
}

impl HeartbeatActor {
    pub fn new(
        config: HeartbeatConfig,
        liveness: Arc<Liveness>,
        ping: Recipient<SendPing>,
        stale: Recipient<Stale>,
        stalled: Recipient<Stalled>,
        metrics: Arc<Metrics>,
    ) -> Self {
        HeartbeatActor {
            config,
            liveness,
            ping,
            stale,
            stalled,
            generation: None,
            last_ping: None,
            awaiting_pong: None,
            missed_pong: false,
            metrics,
        }
    }

    fn tick(&mut self) {
        let open = self.liveness.open_generation();
        if open != self.generation {
            self.generation = open;
            self.last_ping = None;
            self.awaiting_pong = None;
            self.missed_pong = false;
        }
        let Some(generation) = open else {
            return;
        };
        if self.liveness.since_last_frame() >= self.config.stale_timeout {
            // One per check at most, to an actor that reads frames from its stream rather
            // than its mailbox: queued whatever the mailbox holds; fails only at shutdown.
            self.stale.do_send(Stale { generation }); // one per check interval; lost only if the connection actor stopped (shutdown)
            return;
        }
        let now = Instant::now();
        if self.last_ping.is_none_or(|last| now.duration_since(last) >= self.config.ping_interval) {
            self.last_ping = Some(now);
            match self.awaiting_pong {
                Some(_) => self.missed_pong = true,
                None => self.awaiting_pong = Some(now),
            }
            // One per ping interval, as for `Stale`.
            self.ping.do_send(SendPing); // one per ping interval; lost only if the connection actor stopped (shutdown)
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
        if std::mem::take(&mut self.missed_pong) {
            if let Some(generation) = self.generation {
                // Control, not data: queued even into a full mailbox, or the stall would
                // go unhealed.
                self.stalled.do_send(Stalled { generation }); // once per stall; lost only if the connection actor stopped (shutdown)
            }
        }
    }
}
