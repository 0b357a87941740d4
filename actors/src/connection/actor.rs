//! ConnectionActor: owns one streaming WebSocket (awc) at a time. It connects to the
//! [`Target`] the SubscriptionActor gives it, decodes every frame, and hands events to the
//! TimelineActor through its bounded mailbox, pongs to the HeartbeatActor and channel
//! news to the SubscriptionActor. It runs under `actix::Supervisor`: a lost socket stops
//! it, the restart waits out a jittered backoff and reconnects. Each socket has a
//! generation id so that anything arriving from an older socket is ignored.

use super::{Fragment, FrameKind, Reassembly, ReassemblyError};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::control::{ChannelClosing, ChannelLost, Connect, PongReceived, SendPing, Stale, Stalled, Target};
use crate::health::Liveness;
use crate::internal_events::BadInputLog;
use crate::mailbox::Mailbox;
use crate::metrics::{CauseLabels, ChannelLabels, Metrics, ReconnectCause};
use crate::timeline::actor::{ParticipantEvents, SocketGap};
use crate::timeline::{GapLedger, Outage};
use crate::token::actor::{GetToken, TokenActor};
use crate::wire::{self, Decoded, Dialect, MalformedReason, RawFrame};
use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use actix_http::ws::Item;
use awc::error::{WsClientError, WsProtocolError};
use awc::ws::{self, Codec, Frame};
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::stream::{self, SplitSink, StreamExt};
use slog::{debug, info, warn, Logger};
use std::sync::Arc;
use std::time::Duration;

type WsSink = SplitSink<actix_codec::Framed<BoxedSocket, Codec>, ws::Message>;

#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    pub max_frame_bytes: usize,
    /// How long the old socket of a make-before-break rotation keeps streaming after the
    /// new one is open.
    pub rotation_overlap: Duration,
    pub connect_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// Stop reading while the timeline's mailbox holds this many messages, until it holds
    /// half as many (none: never; a full mailbox drops).
    pub pause_reading_at: Option<i64>,
    /// Event times accepted from the stream; the rest are rejected as bad input.
    pub time_window: crate::event::TimeWindow,
    /// This channel's index (from 0): it labels the events, gaps and metrics.
    pub channel: usize,
    /// Open timelines were resumed from a save: the time the daemon was down is an outage,
    /// healed (`SocketGap`) once the first socket streams — not before, or what happens
    /// between the backfill and the first frame would be missed.
    pub resumed: bool,
}

/// Connecting to a channel's `connectUri` failed this many times in a row: the channel is
/// given up and a new one asked for, rather than retrying one that never answers until
/// it expires a day later.
pub const CONNECT_FAILURES_PER_CHANNEL: u32 = 3;

/// Stop reading: close the socket and do not reconnect.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Where the ConnectionActor sends what it reads.
pub struct ConnectionLinks {
    pub timeline: Mailbox<ParticipantEvents>,
    pub gaps: Arc<GapLedger>,
    pub pong: Recipient<PongReceived>,
    pub channel_lost: Recipient<ChannelLost>,
    pub channel_closing: Recipient<ChannelClosing>,
    pub socket_gap: Recipient<SocketGap>,
    pub tokens: Addr<TokenActor>,
}

#[derive(Message)]
#[rtype(result = "()")]
enum SocketEvent {
    Frame(u64, Result<Frame, WsProtocolError>),
    End(u64),
}

pub struct ConnectionActor {
    config: ConnectionConfig,
    links: ConnectionLinks,
    target: Option<Target>,
    generation: u64,
    /// The socket generation whose `socket_closing` was passed on (repeats are not).
    closing_announced: u64,
    /// A ping was sent and no answer passed on since: the next answer is, further ones not.
    ping_unanswered: bool,
    sink: Option<SinkWrite<ws::Message, WsSink>>,
    /// The previous socket during a make-before-break rotation, still streaming.
    retiring: Option<(u64, SinkWrite<ws::Message, WsSink>)>,
    /// Since when no socket has been streaming (after one had been, or since start after a
    /// resume): the outage to heal.
    outage: Option<Outage>,
    ever_opened: bool,
    reassembly: Reassembly,
    backoff: Backoff,
    /// Connects to the current target that failed since it last streamed.
    failed_connects: u32,
    /// Set when a socket was lost: the restart waits out the backoff before reconnecting.
    reconnect_pending: bool,
    /// No frame yet on the current socket: the backoff resets on the first one, so a
    /// server that accepts and immediately drops cannot make us spin.
    awaiting_first_frame: bool,
    liveness: Arc<Liveness>,
    bad_input: BadInputLog,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl ConnectionActor {
    pub fn new(
        config: ConnectionConfig,
        links: ConnectionLinks,
        liveness: Arc<Liveness>,
        metrics: Arc<Metrics>,
        log: Logger,
    ) -> Self {
        let outage = config.resumed.then_some(Outage::Restart);
        metrics.connection_up.get_or_create(&ChannelLabels { channel: config.channel }).set(0);
        ConnectionActor {
            reassembly: Reassembly::new(config.max_frame_bytes),
            backoff: config.backoff.start(),
            failed_connects: 0,
            config,
            links,
            target: None,
            generation: 0,
            closing_announced: 0,
            ping_unanswered: false,
            sink: None,
            retiring: None,
            outage,
            ever_opened: false,
            reconnect_pending: false,
            awaiting_first_frame: false,
            liveness,
            bad_input: BadInputLog::default(),
            metrics,
            log,
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(target) = self.target.clone() else {
            return;
        };
        match self.sink.take() {
            Some(open) => {
                if let Some((_, mut older)) = self.retiring.replace((self.generation, open)) {
                    older.close();
                }
                info!(self.log, "rotating: connecting the new socket before closing the old one");
            }
            None => self.close_socket(),
        }
        self.generation += 1;
        let generation = self.generation;
        let tokens = self.links.tokens.clone();
        let config = self.config.clone();
        let opening = async move {
            let token = match target.dialect {
                Dialect::AnalyticsStream => Some(
                    tokens
                        .send(GetToken)
                        .await
                        .map_err(|e| ConnectFailure::Other(e.to_string()))?
                        .map_err(|e| ConnectFailure::Other(e.to_string()))?,
                ),
                Dialect::Notifications => None,
            };
            let client = awc::Client::builder()
                .timeout(config.connect_timeout)
                .max_http_version(awc::http::Version::HTTP_11)
                .finish();
            let (_, framed) = client
                .ws(target.url.as_str())
                .max_frame_size(config.max_frame_bytes)
                .connect()
                .await
                .map_err(ConnectFailure::from)?;
            Ok((framed, token))
        };
        ctx.spawn(opening.into_actor(self).map(move |result, act, ctx| match result {
            Ok((framed, token)) => act.opened(generation, framed, token, ctx),
            Err(failure) => act.connect_failed(generation, failure, ctx),
        }));
    }

    fn opened(
        &mut self,
        generation: u64,
        framed: actix_codec::Framed<BoxedSocket, Codec>,
        token: Option<crate::token::AccessToken>,
        ctx: &mut Context<Self>,
    ) {
        if generation != self.generation {
            return; // superseded while connecting
        }
        let (sink, socket) = framed.split();
        let events = socket
            .map(move |frame| SocketEvent::Frame(generation, frame))
            .chain(stream::once(async move { SocketEvent::End(generation) }));
        ctx.add_stream(events);
        let mut sink = SinkWrite::new(sink, ctx);
        if let Some(token) = token {
            let hello = serde_json::json!({ "token": token.value.expose() }).to_string();
            let _ = sink.write(ws::Message::Text(hello.into()));
        }
        self.sink = Some(sink);
        self.failed_connects = 0;
        self.reassembly.reset();
        self.awaiting_first_frame = true;
        self.liveness.opened(generation);
        self.connection_up(true);
        self.ever_opened = true;
        info!(self.log, "streaming socket connected"; "generation" => generation);
        if let Some((old_generation, _)) = self.retiring {
            // Frames already on their way down the old socket still arrive: it is closed
            // only after an overlap, and what both deliver is deduplicated downstream.
            self.metrics.reconnects.get_or_create(&CauseLabels { cause: ReconnectCause::Rotation }).inc();
            info!(self.log, "rotation: the new socket streams; the old one closes after the overlap";
                "overlap_ms" => self.config.rotation_overlap.as_millis() as u64);
            ctx.run_later(self.config.rotation_overlap, move |act, _| act.retire(old_generation));
        }
        if let Some(outage) = self.outage.take() {
            // Control, not data: queued even into a full mailbox (a bounded send would
            // lose it, and the outage would go unhealed).
            self.socket_gap(outage);
        }
    }

    fn connection_up(&self, up: bool) {
        self.metrics
            .connection_up
            .get_or_create(&ChannelLabels { channel: self.config.channel })
            .set(i64::from(up));
    }

    /// Tell the timeline this channel's socket missed what was sent during `outage`.
    fn socket_gap(&self, outage: Outage) {
        self.metrics.socket_gaps.get_or_create(&ChannelLabels { channel: self.config.channel }).inc();
        let gap = SocketGap { channel: self.config.channel, outage };
        self.links.socket_gap.do_send(gap); // once per outage or stall; lost only if the timeline actor stopped, with nothing left to heal
    }

    fn connect_failed(&mut self, generation: u64, failure: ConnectFailure, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        if let Some((old_generation, old)) = self.retiring.take() {
            // The rotation failed: keep streaming on the old socket, try again later.
            warn!(self.log, "rotation failed; staying on the current socket"; "error" => failure.to_string());
            self.generation = old_generation;
            self.sink = Some(old);
            self.connection_up(true);
            self.channel_lost(ReconnectCause::ConnectFailed);
            return;
        }
        match failure {
            ConnectFailure::ChannelGone(status) => {
                warn!(self.log, "streaming upgrade refused: the channel is gone"; "status" => status);
                self.target = None;
                self.channel_lost(ReconnectCause::ChannelGone);
                self.lost(generation, ReconnectCause::ChannelGone, ctx);
            }
            ConnectFailure::Other(error) => {
                warn!(self.log, "streaming connect failed"; "error" => error);
                self.failed_connects = self.failed_connects.saturating_add(1);
                let channel = self.target.as_ref().is_some_and(|t| t.dialect == Dialect::Notifications);
                if channel && self.failed_connects >= CONNECT_FAILURES_PER_CHANNEL {
                    warn!(self.log, "the channel's connectUri keeps failing; asking for a new channel";
                        "attempts" => self.failed_connects);
                    self.target = None;
                    self.channel_lost(ReconnectCause::ChannelGone);
                    self.lost(generation, ReconnectCause::ChannelGone, ctx);
                    return;
                }
                self.lost(generation, ReconnectCause::ConnectFailed, ctx);
            }
        }
    }

    /// Tell the heartbeat its ping was answered: queued whatever its mailbox holds, since a
    /// lost one would read as a stall. Answers nobody asked for (a peer may send any number)
    /// are not passed on.
    fn pong(&mut self) {
        if std::mem::take(&mut self.ping_unanswered) {
            self.links.pong.do_send(PongReceived); // one per ping sent; lost only if the heartbeat actor stopped (shutdown)
        }
    }

    /// Tell the subscription actor its channel is no use. Control, not data: queued even
    /// into a full mailbox (a lost one would leave us with no channel).
    fn channel_lost(&self, cause: ReconnectCause) {
        self.links.channel_lost.do_send(ChannelLost { cause }); // once per lost socket; lost only if the subscription actor stopped (shutdown)
    }

    /// The socket of `generation` is gone: count it and let the supervisor restart us.
    fn lost(&mut self, generation: u64, cause: ReconnectCause, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        self.metrics.reconnects.get_or_create(&CauseLabels { cause }).inc();
        self.close_socket();
        if let Some((_, mut old)) = self.retiring.take() {
            old.close();
        }
        // Events published from now until a socket streams again are lost: the outage to
        // heal once one does.
        if self.ever_opened && self.outage.is_none() {
            self.outage = Some(Outage::Socket);
        }
        self.generation += 1;
        if self.target.is_some() {
            warn!(self.log, "streaming socket lost; reconnecting"; "cause" => cause.as_str());
        }
        self.reconnect_pending = true;
        ctx.stop();
    }

    /// Socket `generation` ended (closed, failed, or declared gone). The retiring socket of
    /// a rotation just goes away; the current one is lost and reconnected.
    fn ended(&mut self, generation: u64, cause: ReconnectCause, ctx: &mut Context<Self>) {
        if self.retiring.as_ref().is_some_and(|(retiring, _)| *retiring == generation) {
            if let Some((_, mut old)) = self.retiring.take() {
                old.close();
            }
            return;
        }
        self.lost(generation, cause, ctx);
    }

    /// Close the old socket of a rotation once the overlap is over.
    fn retire(&mut self, generation: u64) {
        if self.retiring.as_ref().is_some_and(|(retiring, _)| *retiring == generation) {
            if let Some((_, mut old)) = self.retiring.take() {
                let _ = old.write(ws::Message::Close(Some(ws::CloseCode::Normal.into())));
                old.close();
                info!(self.log, "rotation complete: the old socket is closed");
            }
        }
    }

    fn accepts(&self, generation: u64) -> bool {
        generation == self.generation
            || self.retiring.as_ref().is_some_and(|(retiring, _)| *retiring == generation)
    }

    fn sink_of(&mut self, generation: u64) -> Option<&mut SinkWrite<ws::Message, WsSink>> {
        if generation == self.generation {
            self.sink.as_mut()
        } else {
            self.retiring.as_mut().filter(|(retiring, _)| *retiring == generation).map(|(_, sink)| sink)
        }
    }

    fn close_socket(&mut self) {
        if let Some(mut sink) = self.sink.take() {
            let _ = sink.write(ws::Message::Close(Some(ws::CloseCode::Normal.into())));
            sink.close();
        }
        self.liveness.closed(self.generation);
        self.connection_up(false);
    }

    fn frame(&mut self, generation: u64, frame: Frame, ctx: &mut Context<Self>) {
        self.liveness.frame_seen();
        self.metrics.last_frame_timestamp_seconds.set(unix_now_seconds());
        if self.awaiting_first_frame {
            self.awaiting_first_frame = false;
            self.backoff.reset();
        }
        match frame {
            Frame::Text(bytes) => self.message(generation, FrameKind::Text, bytes, ctx),
            Frame::Binary(bytes) => self.message(generation, FrameKind::Binary, bytes, ctx),
            Frame::Continuation(item) => {
                let fragment = match item {
                    Item::FirstText(bytes) => Fragment::First(FrameKind::Text, bytes),
                    Item::FirstBinary(bytes) => Fragment::First(FrameKind::Binary, bytes),
                    Item::Continue(bytes) => Fragment::Continue(bytes),
                    Item::Last(bytes) => Fragment::Last(bytes),
                };
                match self.reassembly.push(fragment) {
                    Ok(Some((kind, bytes))) => self.message(generation, kind, bytes, ctx),
                    Ok(None) => {}
                    Err(error @ ReassemblyError::Oversized { .. }) => {
                        self.bad_input.emit(
                            &self.metrics,
                            &self.log,
                            MalformedReason::Oversized,
                            &error.to_string(),
                        );
                        self.ended(generation, ReconnectCause::Error, ctx);
                    }
                    Err(error @ ReassemblyError::Orphan) => {
                        self.bad_input.emit(
                            &self.metrics,
                            &self.log,
                            MalformedReason::WrongType,
                            &error.to_string(),
                        );
                    }
                }
            }
            Frame::Ping(payload) => {
                if let Some(sink) = self.sink_of(generation) {
                    let _ = sink.write(ws::Message::Pong(payload));
                }
            }
            Frame::Pong(_) => {
                self.pong();
            }
            Frame::Close(reason) => {
                debug!(self.log, "server closed the socket"; "reason" => ?reason);
                if let Some(sink) = self.sink_of(generation) {
                    let _ = sink.write(ws::Message::Close(reason));
                }
                self.ended(generation, ReconnectCause::Closed, ctx);
            }
        }
    }

    /// Backpressure: while the timeline's mailbox is nearly full, read nothing more (a
    /// waiting context polls none of its streams) — TCP holds the rest back.
    fn hold_back(&mut self, ctx: &mut Context<Self>) {
        let Some(pause_at) = self.config.pause_reading_at else {
            return;
        };
        let depth = self.links.timeline.depth_gauge();
        if depth.get() < pause_at {
            return;
        }
        let resume_at = pause_at / 2;
        ctx.wait(
            async move {
                while depth.get() > resume_at {
                    actix_rt::time::sleep(Duration::from_millis(1)).await;
                }
            }
            .into_actor(self),
        );
    }

    fn message(&mut self, generation: u64, kind: FrameKind, bytes: Bytes, ctx: &mut Context<Self>) {
        self.metrics.frames_received.inc();
        let dialect = self.target.as_ref().map(|t| t.dialect).unwrap_or_default();
        let raw = match kind {
            FrameKind::Text => RawFrame::Text(&bytes),
            FrameKind::Binary => RawFrame::Binary(&bytes),
        };
        let decoded = match wire::decode(dialect, raw) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.bad_input.emit(&self.metrics, &self.log, error.reason, &error.detail);
                return;
            }
        };
        match decoded {
            Decoded::Events(mut decoded) => {
                for rejection in &decoded.rejected {
                    self.bad_input.emit(&self.metrics, &self.log, rejection.reason, &rejection.detail);
                }
                let now = chrono::Utc::now();
                if let Some((refused, detail)) = self.config.time_window.retain(&mut decoded.events, now) {
                    for _ in 0..refused {
                        self.bad_input.emit(
                            &self.metrics,
                            &self.log,
                            MalformedReason::TimeOutOfWindow,
                            &detail,
                        );
                    }
                }
                if decoded.events.is_empty() {
                    return;
                }
                self.metrics.events_received.inc_by(decoded.events.len() as u64);
                let events = ParticipantEvents { channel: self.config.channel, events: decoded.events };
                if let Err(dropped) = self.links.timeline.send(events) {
                    self.links.gaps.mark_all(dropped.message.events.iter().map(|e| &*e.conversation));
                    self.bad_input.dropped(&self.log, self.links.timeline.stage(), dropped.reason);
                }
                self.hold_back(ctx);
            }
            Decoded::Pong => {
                self.pong();
            }
            Decoded::Heartbeat | Decoded::Ignored => {}
            Decoded::Subscribed => info!(self.log, "subscription confirmed on the socket"),
            Decoded::Connected => {
                let filter = self.target.as_ref().and_then(|t| t.filter.clone());
                if let (Some(filter), Some(sink)) = (filter, self.sink_of(generation)) {
                    let _ = sink.write(ws::Message::Text(filter.to_string().into()));
                }
            }
            Decoded::SocketClosing
                if generation != self.generation || generation == self.closing_announced => {}
            Decoded::SocketClosing => {
                info!(self.log, "server announced socket_closing");
                self.closing_announced = generation;
                // Control, not data: queued even into a full mailbox, or the rotation is missed.
                self.links.channel_closing.do_send(ChannelClosing); // once per socket; lost only if the subscription actor stopped (shutdown)
            }
            Decoded::ChannelGone if generation != self.generation => {
                self.ended(generation, ReconnectCause::ChannelGone, ctx)
            }
            Decoded::ChannelGone => {
                warn!(self.log, "the server says the channel is gone");
                self.target = None;
                self.channel_lost(ReconnectCause::ChannelGone);
                self.lost(generation, ReconnectCause::ChannelGone, ctx);
            }
            Decoded::StreamError(message) => {
                warn!(self.log, "analytics stream refused us"; "message" => message);
                self.target = None;
                self.channel_lost(ReconnectCause::ChannelGone);
                self.lost(generation, ReconnectCause::ChannelGone, ctx);
            }
        }
    }
}

#[derive(Debug)]
enum ConnectFailure {
    /// 401/403/404 on the upgrade: the channel (or its token) is gone.
    ChannelGone(u16),
    Other(String),
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectFailure::ChannelGone(status) => {
                write!(f, "upgrade refused with {status}: the channel is gone")
            }
            ConnectFailure::Other(error) => f.write_str(error),
        }
    }
}

impl From<WsClientError> for ConnectFailure {
    fn from(error: WsClientError) -> Self {
        match error {
            WsClientError::InvalidResponseStatus(status) if matches!(status.as_u16(), 401 | 403 | 404) => {
                ConnectFailure::ChannelGone(status.as_u16())
            }
            other => ConnectFailure::Other(other.to_string()),
        }
    }
}

fn unix_now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.target.is_none() {
            return;
        }
        if self.reconnect_pending {
            self.reconnect_pending = false;
            let delay = self.backoff.next_delay(&mut rand::rng());
            debug!(self.log, "reconnecting after backoff"; "delay_ms" => delay.as_millis() as u64);
            ctx.run_later(delay, |act, ctx| act.connect(ctx));
        } else {
            self.connect(ctx);
        }
    }
}

impl Supervised for ConnectionActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.sink = None;
        self.retiring = None;
        self.reassembly.reset();
    }
}

impl WriteHandler<WsProtocolError> for ConnectionActor {
    fn error(&mut self, error: WsProtocolError, _: &mut Context<Self>) -> Running {
        warn!(self.log, "socket write failed"; "error" => %error);
        Running::Continue
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<SocketEvent> for ConnectionActor {
    fn handle(&mut self, event: SocketEvent, ctx: &mut Context<Self>) {
        match event {
            SocketEvent::Frame(generation, _) | SocketEvent::End(generation) if !self.accepts(generation) => {
            }
            SocketEvent::Frame(generation, Ok(frame)) => self.frame(generation, frame, ctx),
            SocketEvent::Frame(generation, Err(error)) => {
                let reason = match error {
                    WsProtocolError::Overflow => MalformedReason::Oversized,
                    _ => MalformedReason::WrongType,
                };
                self.bad_input.emit(&self.metrics, &self.log, reason, &error.to_string());
                self.ended(generation, ReconnectCause::Error, ctx);
            }
            // A Close frame is handled when it arrives: an end without one is a drop.
            SocketEvent::End(generation) => self.ended(generation, ReconnectCause::Dropped, ctx),
        }
    }

    // Each socket ends with its own `End` item; the default would stop the actor.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Stalled> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, Stalled { generation }: Stalled, _: &mut Context<Self>) {
        if generation != self.generation || self.sink.is_none() {
            return; // that socket is gone: its loss is healed as an outage already
        }
        self.metrics.stream_stalls.inc();
        warn!(self.log, "the socket stalled (a ping went unanswered for a whole interval); healing what it may have lost";
            "generation" => generation);
        // As when a socket comes back: queued even into a full mailbox.
        self.socket_gap(Outage::Socket);
    }
}

impl Handler<Connect> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, Connect(target): Connect, ctx: &mut Context<Self>) {
        self.target = Some(target);
        self.failed_connects = 0;
        self.connect(ctx);
    }
}

impl Handler<SendPing> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, _: SendPing, _: &mut Context<Self>) {
        let dialect = self.target.as_ref().map(|t| t.dialect);
        if let Some(sink) = self.sink.as_mut() {
            let ping = match dialect {
                Some(Dialect::AnalyticsStream) => ws::Message::Ping(Bytes::from_static(b"timelined")),
                _ => ws::Message::Text(r#"{"message":"ping"}"#.into()),
            };
            self.ping_unanswered |= sink.write(ping).is_ok();
        }
    }
}

impl Handler<Stale> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, Stale { generation }: Stale, ctx: &mut Context<Self>) {
        if generation == self.generation && self.sink.is_some() {
            warn!(self.log, "streaming socket is stale"; "silent_for_ms" => self.liveness.since_last_frame().as_millis() as u64);
            self.lost(generation, ReconnectCause::Stale, ctx);
        }
    }
}

impl Handler<Shutdown> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) {
        self.target = None;
        self.close_socket();
        self.generation += 1;
        info!(self.log, "streaming socket closed for shutdown");
    }
}
