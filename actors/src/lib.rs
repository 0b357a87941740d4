//! timelined's actors and the pure logic they drive.
//!
//! The pure transforms — [`wire`] (frames → events), [`timeline`] (events → timelines),
//! [`consumer`] rendering (timelines → output) — have no actix in them. The actors move
//! values between them and own the I/O; see `actors/README.md`.

pub mod event;
pub mod record;
pub mod wire;
pub mod timeline;
pub mod mailbox;
pub mod metrics;
