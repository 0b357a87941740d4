//! The two WebSocket dialogs the simulator speaks once an upgrade is accepted.
//!
//! Each socket gets three tasks on the HTTP worker: the writer (`outbound.rs`), a reader
//! that answers what the client sends, and a keeper that sends what the server volunteers
//! on a clock. The notifications keeper sends heartbeats and, before the channel expires,
//! `v2.system.socket_closing` and then the close; the analytics-stream keeper sends RFC 6455
//! pings. Readers and keepers only `offer` to the socket's queue, so every frame leaves
//! through the one writer in the order it was decided.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, MessageStream, Session};
use futures_util::future::{select, Either};
use serde_json::Value;

use super::hub::{AnalyticsFilter, Hub};
use super::outbound::{spawn_writer, Outbound, SocketTx, WriterOptions};
use super::protocol;

/// Client frames are small (pings, subscribe lists); this bounds a hostile one.
const MAX_CLIENT_FRAME: usize = 4 * 1024 * 1024;
/// Keeps a zero heartbeat interval from spinning.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Serves a notifications socket on `channel_id`; its queue's sender (for
/// [`SocketTx::cut_on_abort`]), or `None` when the channel is unknown or expired: the
/// caller refuses the upgrade (the session is dropped unused).
pub(crate) fn open_notifications(
    hub: Arc<Hub>,
    channel_id: String,
    session: Session,
    stream: MessageStream,
) -> Option<SocketTx> {
    let socket_id = hub.next_socket_id();
    let tx = spawn_writer(
        session,
        hub.outlet().clone(),
        WriterOptions {
            reorder: hub.settings.reorder,
            binary_every: None,
            seed: hub.settings.seed ^ socket_id,
        },
    );
    if !hub.attach_socket(&channel_id, socket_id, tx.clone()) {
        return None;
    }
    let stream = stream
        .max_frame_size(MAX_CLIENT_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_CLIENT_FRAME);
    actix_rt::spawn(read_notifications(hub.clone(), channel_id.clone(), socket_id, stream, tx.clone()));
    actix_rt::spawn(keep_notifications(hub, channel_id, socket_id, tx.clone()));
    Some(tx)
}

/// Serves an analytics-stream socket: token, then filter, then events. Returns its
/// queue's sender (for [`SocketTx::cut_on_abort`]).
pub(crate) fn open_analytics(hub: Arc<Hub>, session: Session, stream: MessageStream) -> SocketTx {
    let socket_id = hub.next_socket_id();
    let tx = spawn_writer(
        session,
        hub.outlet().clone(),
        WriterOptions {
            reorder: hub.settings.reorder,
            // The seed's clients must cope with binary data frames: every third is one.
            binary_every: Some(3),
            seed: hub.settings.seed ^ socket_id,
        },
    );
    hub.register_socket(socket_id, tx.clone());
    let stream = stream
        .max_frame_size(MAX_CLIENT_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_CLIENT_FRAME);
    actix_rt::spawn(read_analytics(hub.clone(), socket_id, stream, tx.clone()));
    actix_rt::spawn(keep_analytics(hub.settings.heartbeat_interval, tx.clone()));
    tx
}

/// What a reader does with one client message.
enum Incoming {
    Text(String),
    /// Already answered (ping) or nothing to answer (pong).
    Handled,
    /// The client is done (Close answered, or the stream failed).
    End,
}

/// Answers the control frames every dialog shares and hands text (or UTF-8 binary) on.
fn triage(message: Result<AggregatedMessage, actix_ws::ProtocolError>, tx: &SocketTx) -> Incoming {
    match message {
        Ok(AggregatedMessage::Text(text)) => Incoming::Text(text.to_string()),
        Ok(AggregatedMessage::Binary(bytes)) => match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Incoming::Text(text),
            Err(_) => Incoming::Handled,
        },
        Ok(AggregatedMessage::Ping(payload)) => {
            tx.offer(Outbound::Pong(payload));
            Incoming::Handled
        }
        Ok(AggregatedMessage::Pong(_)) => Incoming::Handled,
        Ok(AggregatedMessage::Close(reason)) => {
            // Echo the status code, as RFC 6455 asks of the side that did not start closing.
            tx.offer(Outbound::Close(reason.map(|r| CloseReason { code: r.code, description: None })));
            Incoming::End
        }
        Err(_) => Incoming::End,
    }
}

async fn read_notifications(
    hub: Arc<Hub>,
    channel_id: String,
    socket_id: u64,
    mut stream: AggregatedMessageStream,
    tx: SocketTx,
) {
    while let Some(message) = stream.recv().await {
        match triage(message, &tx) {
            Incoming::Text(text) => on_notifications_text(&hub, &channel_id, socket_id, &tx, &text),
            Incoming::Handled => {}
            Incoming::End => break,
        }
    }
    hub.detach_socket(socket_id);
    tx.offer(Outbound::Close(None));
}

/// `{"message":"ping"}` → pong; `{"message":"subscribe","topics":[…]}` → topics added and
/// a `result` reply. Anything else is ignored, as the service does.
fn on_notifications_text(hub: &Hub, channel_id: &str, socket_id: u64, tx: &SocketTx, text: &str) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match message.get("message").and_then(Value::as_str) {
        Some("ping") => {
            tx.offer(Outbound::Control(protocol::PONG.into()));
        }
        Some("subscribe") => {
            // Topics as plain strings, or as `{"id": …}` like the REST body: accept both.
            let topics = message
                .get("topics")
                .and_then(Value::as_array)
                .map(|topics| {
                    topics
                        .iter()
                        .filter_map(|t| t.as_str().or_else(|| t.get("id").and_then(Value::as_str)))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            hub.subscribe_on_socket(channel_id, socket_id, topics, message.get("correlationId"), tx);
        }
        _ => {}
    }
}

/// Heartbeats every interval; a closing notice ahead of the channel's expiry; the close at
/// expiry, or when the channel dies with its token (re-subscribing over REST pushes the
/// expiry back, and the keeper follows it).
async fn keep_notifications(hub: Arc<Hub>, channel_id: String, socket_id: u64, tx: SocketTx) {
    let heartbeat = hub.settings.heartbeat_interval.max(MIN_INTERVAL);
    let notice = hub.settings.closing_notice();
    let mut next_heartbeat = Instant::now() + heartbeat;
    let mut noticed_for = None;
    loop {
        let Some(deadline) = hub.socket_deadline(&channel_id, socket_id) else {
            return;
        };
        let expires_at = deadline.expires_at;
        // A channel that dies with its token goes without notice.
        let ends_at = deadline.dies_at.map_or(expires_at, |dies_at| dies_at.min(expires_at));
        let now = Instant::now();
        if now >= ends_at {
            hub.expire_channel(&channel_id);
            return;
        }
        let notice_at = expires_at.checked_sub(notice).unwrap_or(now);
        if now >= notice_at && noticed_for != Some(expires_at) {
            let frame = protocol::socket_closing(&hub.correlation_id());
            tx.offer(Outbound::Control(frame.into()));
            noticed_for = Some(expires_at);
        }
        if now >= next_heartbeat {
            tx.offer(Outbound::Control(protocol::HEARTBEAT.into()));
            next_heartbeat = now + heartbeat;
        }
        let mut wake = next_heartbeat.min(ends_at);
        if noticed_for != Some(expires_at) {
            wake = wake.min(notice_at);
        }
        let sleep = pin!(tokio::time::sleep_until(wake.into()));
        if let Either::Right(_) = select(sleep, pin!(tx.closed())).await {
            return;
        }
    }
}

async fn read_analytics(hub: Arc<Hub>, socket_id: u64, mut stream: AggregatedMessageStream, tx: SocketTx) {
    let mut connected = false;
    while let Some(message) = stream.recv().await {
        let text = match triage(message, &tx) {
            Incoming::Text(text) => text,
            Incoming::Handled => continue,
            Incoming::End => break,
        };
        match on_analytics_text(&hub, socket_id, &tx, connected, &text) {
            Some(now_connected) => connected = now_connected,
            None => break,
        }
    }
    hub.detach_socket(socket_id);
    tx.offer(Outbound::Close(None));
}

/// One analytics-stream message; returns whether the socket is connected now, or `None`
/// when the socket has been refused.
fn on_analytics_text(hub: &Hub, socket_id: u64, tx: &SocketTx, connected: bool, text: &str) -> Option<bool> {
    let message: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if !connected {
        let token = message.get("token").and_then(Value::as_str);
        if token.is_some_and(|t| hub.token_is_valid(t)) {
            tx.offer(Outbound::Control(protocol::ANALYTICS_CONNECTED.into()));
            return Some(true);
        }
        let why =
            if token.is_some() { "invalid or expired token" } else { "expected {\"token\": …} first" };
        tx.offer(Outbound::Control(protocol::analytics_error(why).into()));
        tx.offer(Outbound::Close(Some(CloseReason {
            code: CloseCode::Policy,
            description: Some(why.to_owned()),
        })));
        return None;
    }
    match message.get("filter") {
        Some(filter) if filter.is_object() || filter.is_null() => {
            hub.subscribe_analytics(socket_id, tx, parse_filter(filter));
        }
        _ => {
            tx.offer(Outbound::Control(protocol::analytics_error("expected {\"filter\": {…}}").into()));
        }
    }
    Some(true)
}

/// `{"id": "<interaction>"?, "channels": ["voice", …]?}`; absent or null parts match all.
fn parse_filter(filter: &Value) -> AnalyticsFilter {
    AnalyticsFilter {
        conversation: filter.get("id").and_then(Value::as_str).map(str::to_owned),
        channels: filter
            .get("channels")
            .and_then(Value::as_array)
            .map(|channels| channels.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

/// RFC 6455 pings every interval: the analytics stream's heartbeat.
async fn keep_analytics(interval: Duration, tx: SocketTx) {
    let interval = interval.max(MIN_INTERVAL);
    loop {
        let sleep = pin!(tokio::time::sleep(interval));
        if let Either::Right(_) = select(sleep, pin!(tx.closed())).await {
            return;
        }
        tx.offer(Outbound::Ping);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_default_to_everything() {
        assert_eq!(parse_filter(&Value::Null), AnalyticsFilter::default());
        let filter = parse_filter(&serde_json::json!({"id": "c1", "channels": ["voice", 3]}));
        assert_eq!(filter.conversation.as_deref(), Some("c1"));
        assert_eq!(filter.channels, vec!["voice".to_owned()]);
    }
}
