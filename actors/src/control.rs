//! The control messages among the three actors that keep one stream up — ConnectionActor,
//! HeartbeatActor, SubscriptionActor — in a module of their own, so that none of the three
//! imports another: each names only the messages it sends and handles.

use crate::connection::Target;
use crate::metrics::ReconnectCause;
use actix::Message;

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
