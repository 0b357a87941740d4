//! Socket health (heartbeats and `{"message":"ping"}`): the
//! HeartbeatActor pings on its own schedule and declares the socket stale when nothing
//! has arrived within the timeout. It lives in its own actor because a flooded actor
//! never runs its own timers.

pub mod actor;
