//! The generator's frames rendered ahead of time, for the benchmarks' fast playback
//! ([`super::SimHandle::stream`]): pure, seeded, no I/O.
//!
//! Playing through the hub renders every frame while it paces, takes the hub's lock and
//! books a ticket per transition; that tops out well below what a client can read. These
//! iterators render the very same frames (the `protocol` writers, from the same seeded
//! [`Generator`]) so that a benchmark can render them before the clock starts, then
//! stream them straight from a socket's writer. Each frame says how many joins and leaves
//! a decoder finds in it and how many of those no earlier frame carried, so a benchmark
//! knows what to expect without decoding anything itself.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::generator::{seeded_uuid, Conversation, Generator, Purpose, Step, TransitionKind};
use super::protocol::{self, BodyKind};

/// Salt for the frames' correlation ids.
const CORRELATION_SALT: u64 = 0x6672_616d_6573;
/// Conversations in flight while [`held`] conversations are being opened.
const HELD_CONCURRENCY: usize = 1_000;

/// One data frame, as a socket would send it.
#[derive(Clone, Debug)]
pub struct RenderedFrame {
    pub text: Arc<str>,
    /// Joins and leaves a decoder finds in it (a snapshot repeats the earlier ones).
    pub events: u32,
    /// Those of them that no earlier frame of the conversation carried: the timeline
    /// entries it adds.
    pub new_events: u32,
}

/// Which frames to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Full conversation snapshots on `v2.routing.queues.{id}.conversations`, as a
    /// client subscribed to every queue topic receives them (the default dialect).
    QueueSnapshots,
    /// `{"events":[…]}` frames of the analytics stream, one join or leave each.
    AnalyticsEvents,
}

/// An iterator of [`RenderedFrame`]s; see [`endless`] and [`held`].
pub struct Frames {
    generator: Generator,
    shape: Shape,
    rng: ChaCha8Rng,
    /// Play each conversation only up to its hold point.
    hold: bool,
}

/// Every frame an endless play of the seeded generator yields in `shape`, with
/// `concurrency` conversations in flight: the frames the hub would send.
pub fn endless(seed: u64, queues: &[String], concurrency: usize, shape: Shape) -> Frames {
    Frames {
        generator: Generator::new(seed, queues, 0, concurrency),
        shape,
        rng: ChaCha8Rng::seed_from_u64(seed ^ CORRELATION_SALT),
        hold: false,
    }
}

/// `count` conversations, each played until an agent has taken it from the queue (the
/// customer, IVR or flow, queue and agent joined; the IVR and the queue left) and then
/// held: nothing more of it is ever played, so every one stays open.
pub fn held(seed: u64, queues: &[String], count: u64, shape: Shape) -> Frames {
    Frames {
        generator: Generator::new(seed, queues, count.max(1), HELD_CONCURRENCY),
        shape,
        rng: ChaCha8Rng::seed_from_u64(seed ^ CORRELATION_SALT),
        hold: true,
    }
}

impl Iterator for Frames {
    type Item = RenderedFrame;

    fn next(&mut self) -> Option<RenderedFrame> {
        loop {
            let step = self.generator.next()?;
            if self.hold && hold_point(&step.conversation).is_some_and(|last| step.index > last) {
                continue;
            }
            let frame = match self.shape {
                Shape::QueueSnapshots => queue_snapshot(&step, &mut self.rng),
                Shape::AnalyticsEvents => analytics(&step),
            };
            if frame.is_some() {
                return frame;
            }
        }
    }
}

/// The index of the transition a held conversation stops after: the queue (acd)
/// participant leaving, which it does once the first agent has connected.
pub(crate) fn hold_point(conversation: &Conversation) -> Option<usize> {
    conversation.transitions.iter().position(|t| {
        t.kind == TransitionKind::Ended && conversation.participants[t.participant].purpose == Purpose::Acd
    })
}

/// The full snapshot on the conversation's queue topic, if the step publishes there
/// (the conversation has entered the queue).
fn queue_snapshot(step: &Step, rng: &mut ChaCha8Rng) -> Option<RenderedFrame> {
    let (topic, _) = protocol::topics_for(step)
        .into_iter()
        .find(|(topic, kind)| *kind == BodyKind::Full && topic.starts_with("v2.routing.queues."))?;
    let conversation = &step.conversation;
    let played = step.played();
    let body = protocol::full_snapshot(conversation, played);
    let text = protocol::notification(&topic, &body, &seeded_uuid(rng));
    let events = snapshot_events(conversation, played);
    // Every step from the queue participant's arrival on is published on the queue topic;
    // the first one carries everything before it.
    let before = match conversation.time_after(played - 1) {
        Some(now) if in_queue(conversation, now) => snapshot_events(conversation, played - 1),
        _ => 0,
    };
    Some(RenderedFrame { text: text.into(), events, new_events: events - before })
}

fn in_queue(conversation: &Conversation, now: DateTime<Utc>) -> bool {
    conversation.participants.iter().any(|p| p.purpose == Purpose::Acd && p.is_visible_at(now))
}

/// Joins and leaves in the snapshot after `played` transitions: a join for every
/// participant that connected, a leave for every one of those that ended.
fn snapshot_events(conversation: &Conversation, played: usize) -> u32 {
    let Some(now) = conversation.time_after(played) else {
        return 0;
    };
    conversation
        .participants
        .iter()
        .filter(|p| p.connected_by(now).is_some())
        .map(|p| if p.ended_by(now).is_some() { 2 } else { 1 })
        .sum()
}

fn analytics(step: &Step) -> Option<RenderedFrame> {
    let text = protocol::analytics_event(step)?;
    Some(RenderedFrame { text: text.into(), events: 1, new_events: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::DEFAULT_QUEUES;
    use std::collections::HashMap;

    fn queues() -> Vec<String> {
        DEFAULT_QUEUES.map(str::to_owned).to_vec()
    }

    /// Counts joins and leaves in a rendered snapshot the way a decoder does: by reading
    /// `connectedTime` and `endTime` of each participant.
    fn decoded(text: &str) -> (String, u32) {
        let frame: serde_json::Value = serde_json::from_str(text).unwrap();
        let body = &frame["eventBody"];
        let events = body["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p.get("connectedTime").is_some())
            .map(|p| if p.get("endTime").is_some() { 2 } else { 1 })
            .sum();
        (body["id"].as_str().unwrap().to_owned(), events)
    }

    #[test]
    fn snapshot_frames_count_what_a_decoder_finds_and_what_is_new() {
        let mut seen: HashMap<String, u32> = HashMap::new();
        for frame in endless(3, &queues(), 20, Shape::QueueSnapshots).take(2_000) {
            assert!(frame.text.contains("\"topicName\":\"v2.routing.queues."));
            let (conversation, events) = decoded(&frame.text);
            assert_eq!(frame.events, events);
            let before = seen.insert(conversation, events).unwrap_or(0);
            assert_eq!(frame.new_events, events - before, "{}", frame.text);
        }
    }

    #[test]
    fn the_same_seed_renders_the_same_frames() {
        let first: Vec<Arc<str>> =
            endless(5, &queues(), 10, Shape::QueueSnapshots).take(50).map(|f| f.text).collect();
        let again: Vec<Arc<str>> =
            endless(5, &queues(), 10, Shape::QueueSnapshots).take(50).map(|f| f.text).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn analytics_frames_carry_one_join_or_leave_each() {
        for frame in endless(7, &queues(), 10, Shape::AnalyticsEvents).take(200) {
            assert!(frame.text.starts_with("{\"events\":[{"));
            assert_eq!((frame.events, frame.new_events), (1, 1));
        }
    }

    #[test]
    fn held_conversations_stay_open_with_an_agent_talking() {
        let mut latest: HashMap<String, serde_json::Value> = HashMap::new();
        for frame in held(9, &queues(), 40, Shape::QueueSnapshots) {
            let value: serde_json::Value = serde_json::from_str(&frame.text).unwrap();
            let body = value["eventBody"].clone();
            latest.insert(body["id"].as_str().unwrap().to_owned(), body);
        }
        assert_eq!(latest.len(), 40);
        for body in latest.values() {
            let participants = body["participants"].as_array().unwrap();
            let open = |purpose: &str| {
                participants.iter().any(|p| {
                    p["purpose"] == purpose && p.get("connectedTime").is_some() && p.get("endTime").is_none()
                })
            };
            assert!(open("customer") && open("agent"), "{body}");
            let acd = participants.iter().find(|p| p["purpose"] == "acd").unwrap();
            assert!(acd.get("endTime").is_some(), "the queue has handed it over");
        }
    }
}
