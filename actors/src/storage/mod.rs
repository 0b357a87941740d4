//! What the daemon keeps on disk, and how it survives crashes, full disks and logrotate:
//! the state file of open timelines ([`state_file`], written by the one [`state_writer`])
//! and the JSONL sink of closed ones ([`jsonl`], writing through `line_file`; what it and
//! its spill already hold is [`read_back`] at start). The formats are pure
//! (`timeline::state`, `record`); these modules own the files.

pub mod jsonl;
mod line_file;
pub mod read_back;
pub mod state_file;
pub mod state_writer;
