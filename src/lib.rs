//! timelined: rebuilds Genesys Cloud conversation join/leave timelines from the live
//! notification stream. This crate is the binary's library: settings, logging, wiring
//! of the actors (from `timelined-actors`), replay, and the embedded simulator.

pub mod bench;
pub mod cli;
pub mod daemon;
pub mod http;
pub mod replay;
pub mod settings;
pub mod sim;
pub mod systemd;
pub mod telemetry;
