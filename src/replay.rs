//! `timelined replay`: frames recorded by the simulator (`--record`), one per line, back
//! through the same decoder and timeline logic as the live daemon. At the end of input
//! every timeline is closed: complete ones as complete, the rest flagged incomplete.

use std::io::BufRead;
use std::time::Instant;
use timelined_actors::record::TimelineRecord;
use timelined_actors::timeline::{TimelineBook, TimelineRules};
use timelined_actors::wire::{self, Decoded, Dialect, MalformedReason, RawFrame};

#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Ordered by start time, then conversation id.
    pub timelines: Vec<TimelineRecord>,
    pub frames: u64,
    /// Lines that were not a usable frame, by reason.
    pub bad_lines: Vec<(usize, MalformedReason, String)>,
}

pub fn replay(input: impl BufRead, dialect: Dialect, rules: TimelineRules) -> std::io::Result<ReplayReport> {
    let now = Instant::now();
    let mut book = TimelineBook::new(rules, Default::default());
    let mut report = ReplayReport::default();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        report.frames += 1;
        match wire::decode(dialect, RawFrame::Text(line.as_bytes())) {
            Ok(Decoded::Events(decoded)) => {
                for rejection in decoded.rejected {
                    report.bad_lines.push((index + 1, rejection.reason, rejection.detail));
                }
                for event in decoded.events {
                    book.apply(event, now);
                }
            }
            Ok(_) => {}
            Err(error) => report.bad_lines.push((index + 1, error.reason, error.detail)),
        }
    }
    let mut timelines: Vec<TimelineRecord> =
        book.close_all(now).closed.into_iter().map(|(record, _)| record).collect();
    timelines.sort_by(|a, b| (a.started_at, &a.conversation_id).cmp(&(b.started_at, &b.conversation_id)));
    report.timelines = timelines;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_counted_and_the_rest_replayed() {
        let input = concat!(
            r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"c","participants":[{"id":"p","purpose":"customer","connectedTime":"2026-01-01T09:00:00.000Z","endTime":"2026-01-01T09:01:00.000Z"}]}}"#,
            "\n",
            "not json\n",
            r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#,
            "\n",
            r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"d","participants":[{"id":"p","purpose":"customer","connectedTime":"2026-01-01T09:00:05.000Z"}]}}"#,
            "\n",
        );
        let report = replay(input.as_bytes(), Dialect::Notifications, TimelineRules::default()).unwrap();
        assert_eq!(report.frames, 4);
        assert_eq!(report.bad_lines.len(), 1);
        assert_eq!(report.bad_lines[0].0, 2);
        assert_eq!(report.timelines.len(), 2);
        assert!(report.timelines[0].complete, "c ended: complete");
        assert!(!report.timelines[1].complete, "d never ended: incomplete");
    }
}
