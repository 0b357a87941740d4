//! The hostile peer (`Fault::Hostile`): for a while, frames no honest service sends, to
//! every open socket beside the normal stream, cycling through the shapes a daemon on the
//! open network must survive — event times far ahead, long past and unparsable; fresh user
//! and queue ids in every frame; a snapshot of 50,000 participants; frames just under the
//! 8 MiB limit, back to back; JSON nested 10,000 deep; a binary frame that is not UTF-8 —
//! and, now and then, a `Retry-After` of centuries on the next backfill. Every conversation
//! it names starts with `hostile-`, so a test can tell them from the played ones.

use super::faults::{Fault, FaultFrame};
use super::hub::Hub;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of a "just under the limit" frame: the daemon's default `max_frame_bytes` is 8 MiB.
const BIG_FRAME: usize = (8 << 20) - 4096;
const CROWD: usize = 50_000;
const NESTING: usize = 10_000;
/// The heavy shapes (the crowd, the big frames) come once per this many frames.
const HEAVY_EVERY: u64 = 64;

/// While a `Fault::Hostile` lasts, send its frames at its rate; sleep otherwise.
pub(crate) async fn run(hub: Arc<Hub>) {
    let mut sent = 0u64;
    loop {
        match hub.hostile_rate() {
            Some(rate) => {
                for frame in frames(sent) {
                    hub.offer_to_every_socket(frame);
                }
                if sent % HEAVY_EVERY == HEAVY_EVERY / 2 {
                    hub.apply(&Fault::Http {
                        path: "/api/v2/conversations/".into(),
                        status: 429,
                        retry_after: Some(10_000_000_000),
                        count: 1,
                    });
                }
                sent += 1;
                actix_rt::time::sleep(Duration::from_secs_f64(1.0 / f64::from(rate.max(1)))).await;
            }
            None => actix_rt::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The frames of turn `n`: one light shape each turn, the heavy ones now and then.
fn frames(n: u64) -> Vec<FaultFrame> {
    if n.is_multiple_of(HEAVY_EVERY) {
        return vec![crowd(n)];
    }
    if n % HEAVY_EVERY == 1 {
        return vec![big(n), big(n + 1)];
    }
    let frame = match n % 6 {
        0 => FaultFrame::Text(joined_at(&format!("hostile-future-{n}"), "9999-12-31T23:59:59.000Z")),
        1 => FaultFrame::Text(joined_at(&format!("hostile-past-{n}"), "0001-01-01T00:00:00.000Z")),
        2 => FaultFrame::Text(joined_at(&format!("hostile-unparsable-{n}"), "the day after tomorrow")),
        3 => FaultFrame::Text(fresh_ids(n)),
        4 => FaultFrame::Text(format!("{}{}", "[".repeat(NESTING), "]".repeat(NESTING))),
        _ => FaultFrame::Binary([0xff, 0xfe, 0xfd].iter().copied().cycle().take(1024).collect()),
    };
    vec![frame]
}

fn snapshot(conversation: &str, participants: &str) -> String {
    format!(
        r#"{{"topicName":"v2.routing.queues.q.conversations","eventBody":{{"id":"{conversation}","participants":[{participants}]}}}}"#
    )
}

fn joined_at(conversation: &str, time: &str) -> String {
    snapshot(conversation, &format!(r#"{{"id":"p","purpose":"customer","connectedTime":"{time}"}}"#))
}

/// A finished conversation of 100 agents, each with a user and a queue id never seen before.
fn fresh_ids(n: u64) -> String {
    let participants: Vec<String> = (0..100)
        .map(|p| {
            format!(
                r#"{{"id":"p{p}","purpose":"agent","userId":"hostile-user-{n}-{p}","queueId":"hostile-queue-{n}-{p}",
                    "connectedTime":"2026-01-01T09:00:00.000Z","endTime":"2026-01-01T09:01:00.000Z"}}"#
            )
        })
        .collect();
    snapshot(&format!("hostile-ids-{n}"), &participants.join(","))
}

fn crowd(n: u64) -> FaultFrame {
    let participants: Vec<String> = (0..CROWD)
        .map(|p| {
            format!(r#"{{"id":"c{p}","purpose":"customer","connectedTime":"2026-01-01T09:00:00.000Z"}}"#)
        })
        .collect();
    FaultFrame::Text(snapshot(&format!("hostile-crowd-{n}"), &participants.join(",")))
}

/// Valid JSON just under the frame limit: a conversation with no participants and a pad.
fn big(n: u64) -> FaultFrame {
    let head = snapshot(&format!("hostile-big-{n}"), "");
    let pad = BIG_FRAME.saturating_sub(head.len() + 16);
    let mut text = head;
    text.truncate(text.len() - 2); // reopen the eventBody object
    text.push_str(&format!(r#","pad":"{}"}}}}"#, "x".repeat(pad)));
    FaultFrame::Text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frame: &FaultFrame) -> &str {
        match frame {
            FaultFrame::Text(text) => text,
            FaultFrame::Binary(_) => "",
        }
    }

    #[test]
    fn every_shape_comes_round_and_the_heavy_ones_are_what_they_say() {
        let turns: Vec<Vec<FaultFrame>> = (0..HEAVY_EVERY).map(frames).collect();
        let crowd = text(&turns[0][0]);
        let value: serde_json::Value = serde_json::from_str(crowd).unwrap();
        assert_eq!(value["eventBody"]["participants"].as_array().unwrap().len(), CROWD);
        assert_eq!(turns[1].len(), 2, "big frames back to back");
        for big in &turns[1] {
            let big = text(big);
            assert!(big.len() <= 8 << 20 && big.len() > BIG_FRAME - 64, "{}", big.len());
            serde_json::from_str::<serde_json::Value>(big).expect("a big frame is valid JSON");
        }
        let light: Vec<&FaultFrame> = turns[2..].iter().flatten().collect();
        assert!(light.iter().any(|f| text(f).contains("9999-12-31")));
        assert!(light.iter().any(|f| text(f).contains("0001-01-01")));
        assert!(light.iter().any(|f| text(f).contains("the day after tomorrow")));
        assert!(light.iter().any(|f| text(f).contains("hostile-queue-")));
        assert!(light.iter().any(|f| text(f).starts_with("[[[[")));
        assert!(light
            .iter()
            .any(|f| matches!(f, FaultFrame::Binary(bytes) if std::str::from_utf8(bytes).is_err())));
    }
}
