//! The control messages among the three actors that keep one stream up — ConnectionActor,
//! HeartbeatActor, SubscriptionActor — and the [`Target`] a `Connect` carries, in a module
//! of their own, so that none of the three imports another: each names only the messages
//! it sends and handles.

use crate::metrics::ReconnectCause;
use crate::wire::Dialect;
use actix::Message;

/// Where to connect and what to send once connected.
#[derive(Clone)]
pub struct Target {
    /// A channel's `connectUri`, or the analytics-stream URL.
    pub url: String,
    pub dialect: Dialect,
    /// Analytics-stream: the filter message sent after `{"status":"connected"}`.
    pub filter: Option<serde_json::Value>,
}

impl std::fmt::Debug for Target {
    // The connectUri carries the channel id, which grants access to the stream.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("dialect", &self.dialect).finish_non_exhaustive()
    }
}

/// Subscription → connection: connect to this target; an open socket is replaced
/// make-before-break.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect(pub Target);

/// Heartbeat → connection: send a health-check ping on the open socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendPing;

/// Heartbeat → connection: nothing arrived on socket `generation` within the stale timeout.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stale {
    pub generation: u64,
}

/// Heartbeat → connection: socket `generation` left a ping unanswered for a whole interval
/// and then answered: it stalled, and what the service sent meanwhile may be lost.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stalled {
    pub generation: u64,
}

/// Connection → heartbeat: an answer to our ping arrived (a `pong` frame or an RFC 6455
/// Pong).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PongReceived;

/// Connection → subscription: the channel can no longer be used; make a new one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelLost {
    pub cause: ReconnectCause,
}

/// Connection → subscription: the server announced it will close the socket soon.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelClosing;
