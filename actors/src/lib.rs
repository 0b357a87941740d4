//! timelined's actors and the pure logic they drive.
//!
//! The pure transforms — [`wire`] (frames → events), [`timeline`] (events → timelines) —
//! have no actix and no I/O in them. The actors (`*/actor.rs`) move values between them
//! and own the I/O; the outputs ([`consumer`], [`storage`]) write what the timeline
//! publishes. See `actors/README.md`.

pub mod backfill;
pub mod backoff;
pub mod compact;
pub mod connection;
pub mod consumer;
pub mod control;
pub mod event;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod internal_events;
pub mod mailbox;
pub mod metrics;
pub mod record;
pub mod secret;
pub mod storage;
pub mod subscription;
pub mod timeline;
pub mod token;
pub mod wire;
