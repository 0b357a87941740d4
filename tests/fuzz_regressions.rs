//! Replays every saved fuzz input through the function its fuzz target calls, on stable:
//! the crashes the fuzzer found (`fuzz/regressions/<target>/`, fixed since) and the seed
//! inputs (`fuzz/seeds/<target>/`). A decoder that panics on one fails the test for its
//! target, naming the file.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// The saved inputs of `target`, in a stable order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else { continue };
        files.extend(entries.map(|entry| entry.unwrap().path()).filter(|path| path.is_file()));
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = targets::TARGETS.iter().find(|(name, _)| *name == target).expect("a known target");
    let files = inputs(target);
    assert!(!files.is_empty(), "no saved inputs for {target}");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| run(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target} panicked on {failed:?}");
}

#[test]
fn notifications_frame() {
    replay("notifications_frame");
}

#[test]
fn analytics_frame() {
    replay("analytics_frame");
}

#[test]
fn continuation() {
    replay("continuation");
}

#[test]
fn rest_response() {
    replay("rest_response");
}

#[test]
fn checkpoint() {
    replay("checkpoint");
}

#[test]
fn config() {
    replay("config");
}

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = targets::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        ["notifications_frame", "analytics_frame", "continuation", "rest_response", "checkpoint", "config"]
    );
}
