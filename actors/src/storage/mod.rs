//! What the daemon keeps on disk, and how it survives crashes, full disks and logrotate:
//! the state file of open timelines ([`state_file`], written by the one [`state_writer`])
//! and the JSONL sink of closed ones ([`jsonl`]). The formats are pure
//! (`timeline::state`, `record`); these modules own the files.

pub mod jsonl;
pub mod state_file;
pub mod state_writer;
