//! Internal events that are counted and logged together (vector's `emit()` habit), so a
//! drop can never be counted without being logged or logged without being counted. Bad
//! input is logged the first time each reason is seen and counted every time: a flood of
//! bad frames must not become a flood of log lines.

use crate::metrics::{DropReason, MalformedLabels, Metrics, Stage};
use crate::wire::MalformedReason;
use slog::{error, warn, Logger};
use std::collections::HashSet;

#[derive(Debug, Default)]
pub struct BadInputLog {
    malformed_logged: HashSet<MalformedReason>,
    drops_logged: HashSet<(Stage, DropReason)>,
}

impl BadInputLog {
    /// A frame or field rejected as bad input.
    pub fn emit(&mut self, metrics: &Metrics, log: &Logger, reason: MalformedReason, detail: &str) {
        metrics.malformed_frames.get_or_create(&MalformedLabels { reason }).inc();
        if self.malformed_logged.insert(reason) {
            warn!(log, "bad input rejected (further ones of this kind are only counted)";
                "reason" => reason.as_str(), "detail" => &*printable(truncate(detail, 200)));
        }
    }

    /// A message dropped at a mailbox (already counted by the mailbox).
    pub fn dropped(&mut self, log: &Logger, stage: Stage, reason: DropReason) {
        if self.drops_logged.insert((stage, reason)) {
            error!(log, "events dropped: a mailbox is full; the affected timelines are marked with a gap \
                         (further drops are only counted in timelined_events_dropped_total)";
                "stage" => stage.as_str(), "reason" => reason.as_str());
        }
    }
}

/// `text` as it may stand in a log line: control characters (a newline that would start a
/// forged line of its own, a terminal escape) written as escapes (`\n`, `\u{1b}`). Text
/// from the network goes through this before it is logged. Borrowed when clean, as it
/// nearly always is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_time() {
        let metrics = Metrics::new();
        let log = Logger::root(slog::Discard, slog::o!());
        let mut bad = BadInputLog::default();
        for _ in 0..3 {
            bad.emit(&metrics, &log, MalformedReason::InvalidJson, "x");
        }
        assert_eq!(metrics.malformed(MalformedReason::InvalidJson), 3);
        assert_eq!(truncate("héllo", 2), "hé");
    }

    #[test]
    fn control_characters_are_escaped_and_clean_text_is_borrowed() {
        assert!(matches!(printable("conv-1 é"), std::borrow::Cow::Borrowed("conv-1 é")));
        assert_eq!(printable("c1\nINFO forged, x: 1"), "c1\\nINFO forged, x: 1");
        assert_eq!(printable("a\r\u{1b}[31m\u{7f}"), "a\\r\\u{1b}[31m\\u{7f}");
    }
}
