//! `timelined replay`: frames recorded by the simulator (`--record`), one per line, back
//! through the same decoder and timeline logic as the live daemon. At the end of input
//! every timeline is closed: complete ones as complete, the rest flagged incomplete.

use std::io::BufRead;
use std::time::Instant;
use timelined_actors::event::TimeWindow;
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

/// Replay `input`, reading lines of at most `max_line_bytes` (the daemon's frame limit):
/// a longer line, or one that is not UTF-8 or not a frame, is a bad line and the replay
/// goes on. Only a read error of the input itself ends it.
pub fn replay(
    mut input: impl BufRead,
    dialect: Dialect,
    rules: TimelineRules,
    max_line_bytes: usize,
) -> std::io::Result<ReplayReport> {
    let now = Instant::now();
    let (window, wall_clock) = (TimeWindow::default(), chrono::Utc::now());
    let mut book = TimelineBook::new(rules, Default::default());
    let mut report = ReplayReport::default();
    let mut line = Vec::new();
    let mut number = 0;
    while let Some(fits) = read_line(&mut input, &mut line, max_line_bytes)? {
        number += 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        report.frames += 1;
        if !fits {
            let detail = format!("a line longer than the {max_line_bytes}-byte frame limit");
            report.bad_lines.push((number, MalformedReason::Oversized, detail));
            continue;
        }
        match wire::decode(dialect, RawFrame::Text(&line)) {
            Ok(Decoded::Events(mut decoded)) => {
                for rejection in decoded.rejected {
                    report.bad_lines.push((number, rejection.reason, rejection.detail));
                }
                // The daemon's window, so a capture replays as it was taken live.
                if let Some((_, detail)) = window.retain(&mut decoded.events, wall_clock) {
                    report.bad_lines.push((number, MalformedReason::TimeOutOfWindow, detail));
                }
                for event in decoded.events {
                    book.apply(event, now);
                }
            }
            Ok(_) => {}
            Err(error) => report.bad_lines.push((number, error.reason, error.detail)),
        }
    }
    let mut timelines: Vec<TimelineRecord> =
        book.close_all(now).closed.into_iter().map(|(record, _)| record).collect();
    timelines.sort_by(|a, b| (a.started_at, &a.conversation_id).cmp(&(b.started_at, &b.conversation_id)));
    report.timelines = timelines;
    Ok(report)
}

/// Read the next line (without its newline) into `line`, keeping at most `limit` bytes:
/// `None` at the end of input, `Some(false)` when the line was longer and its rest was
/// skipped, so one huge line costs no more memory than one frame.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>, limit: usize) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut fits = true;
    let mut read_any = false;
    loop {
        let buffer = match input.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buffer.is_empty() {
            return Ok(read_any.then_some(fits));
        }
        read_any = true;
        let (chunk, ends_line) = match buffer.iter().position(|&byte| byte == b'\n') {
            Some(end) => (&buffer[..end], true),
            None => (buffer, false),
        };
        let room = limit.saturating_sub(line.len());
        if chunk.len() > room {
            fits = false;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len() + usize::from(ends_line);
        input.consume(used);
        if ends_line {
            return Ok(Some(fits));
        }
    }
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
        let report =
            replay(input.as_bytes(), Dialect::Notifications, TimelineRules::default(), 1 << 20).unwrap();
        assert_eq!(report.frames, 4);
        assert_eq!(report.bad_lines.len(), 1);
        assert_eq!(report.bad_lines[0].0, 2);
        assert_eq!(report.timelines.len(), 2);
        assert!(report.timelines[0].complete, "c ended: complete");
        assert!(!report.timelines[1].complete, "d never ended: incomplete");
    }
}

#[cfg(test)]
mod hostile_lines {
    use super::*;

    const FRAME: &str = r#"{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"c","participants":[{"id":"p","purpose":"customer","connectedTime":"2026-01-01T09:00:00.000Z","endTime":"2026-01-01T09:01:00.000Z"}]}}"#;

    #[test]
    fn a_line_that_is_not_utf8_is_a_bad_line_and_the_replay_goes_on() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"topicName\":\"\xff\xfe\"}\n");
        input.extend_from_slice(FRAME.as_bytes());
        input.push(b'\n');
        let report = replay(&input[..], Dialect::Notifications, TimelineRules::default(), 1 << 20).unwrap();
        assert_eq!(report.frames, 2);
        assert_eq!(report.bad_lines.len(), 1, "{:?}", report.bad_lines);
        assert_eq!(report.bad_lines[0].0, 1);
        assert_eq!(report.timelines.len(), 1);
        assert!(report.timelines[0].complete);
    }

    #[test]
    fn a_line_past_the_limit_is_skipped_whole_and_the_next_line_is_read() {
        let limit = FRAME.len() + 10;
        let long = "x".repeat(limit * 3);
        let input = format!("{long}\n{FRAME}\n{FRAME}");
        let report =
            replay(input.as_bytes(), Dialect::Notifications, TimelineRules::default(), limit).unwrap();
        assert_eq!(report.frames, 3);
        assert_eq!(report.bad_lines.len(), 1);
        assert_eq!((report.bad_lines[0].0, report.bad_lines[0].1), (1, MalformedReason::Oversized));
        assert_eq!(report.timelines.len(), 1, "the last line needs no newline");
    }

    #[test]
    fn lines_are_read_across_buffer_boundaries() {
        let input = format!("{FRAME}\n{FRAME}\n");
        let reader = std::io::BufReader::with_capacity(7, input.as_bytes());
        let report = replay(reader, Dialect::Notifications, TimelineRules::default(), 1 << 20).unwrap();
        assert_eq!((report.frames, report.bad_lines.len()), (2, 0));
    }
}
