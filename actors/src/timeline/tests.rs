use super::state::Unwritten;
use super::*;
use crate::backfill::BackfillRequest;
use crate::event::EventDetails;
use crate::event::{Action, ParticipantEvent};
use crate::record::TimelineRecord;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_767_258_000_000 + ms).unwrap()
}

fn event(participant: &str, action: Action, ms: i64, purpose: &str) -> ParticipantEvent {
    ParticipantEvent::new(
        "conv-1".into(),
        participant,
        action,
        at(ms),
        EventDetails {
            purpose: Some(purpose.into()),
            media: Some("voice".into()),
            disconnect_type: (action == Action::Left).then(|| "peer".into()),
            ..Default::default()
        },
    )
}

/// IVR → agent → transfer → second agent, customer throughout.
fn conversation() -> Vec<ParticipantEvent> {
    vec![
        event("cust", Action::Joined, 0, "customer"),
        event("ivr", Action::Joined, 10, "ivr"),
        event("ivr", Action::Left, 5_000, "ivr"),
        event("acd", Action::Joined, 5_001, "acd"),
        event("acd", Action::Left, 20_000, "acd"),
        event("agent-a", Action::Joined, 20_001, "agent"),
        event("agent-a", Action::Left, 90_000, "agent"),
        event("agent-b", Action::Joined, 95_000, "agent"),
        event("agent-b", Action::Left, 300_000, "agent"),
        event("cust", Action::Left, 300_001, "customer"),
    ]
}

fn rules() -> TimelineRules {
    TimelineRules {
        reorder_window: Duration::from_millis(100),
        close_after: Duration::from_secs(1),
        verify_after: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(60),
        tombstone_ttl: Duration::from_secs(600),
        max_participants: 1000,
        max_open_conversations: 100_000,
    }
}

fn book() -> TimelineBook {
    TimelineBook::new(rules(), Arc::new(DashMap::new()))
}

/// Feed events (all arriving at `start`), then advance past window and quiet period.
fn run(events: Vec<ParticipantEvent>) -> (Vec<TimelineUpdate>, Vec<TimelineRecord>) {
    let start = Instant::now();
    let mut book = book();
    for e in events {
        book.apply(e, start);
    }
    let mut updates = Vec::new();
    let mut closed = Vec::new();
    for step in 0..30 {
        let tick = book.tick(start + Duration::from_millis(100 * step));
        updates.extend(tick.updates);
        closed.extend(tick.closed.into_iter().map(|(record, _)| record));
    }
    (updates, closed)
}

#[test]
fn a_conversation_closes_complete_with_entries_in_event_time_order() {
    let (updates, closed) = run(conversation());
    assert_eq!(closed.len(), 1);
    let record = &closed[0];
    assert!(record.complete);
    assert_eq!(record.gaps, 0);
    assert_eq!(record.entries.len(), 10);
    assert_eq!(record.participants.len(), 5);
    assert_eq!(record.participants[0].participant_id, "cust");
    assert_eq!(record.participants[4].participant_id, "agent-b");
    assert_eq!(record.started_at, Some(at(0)));
    assert_eq!(record.ended_at, Some(at(300_001)));
    assert_eq!(record.media_types, vec!["voice".to_string()]);
    assert_eq!(record.participants[2].disconnect_type.as_deref(), Some("peer"));
    let published: Vec<_> = updates.iter().map(|u| u.entry.clone()).collect();
    assert_eq!(published, record.entries, "the log sees exactly the record's entries, in order");
    assert!(updates.iter().all(|u| !u.late));
}

#[test]
fn nothing_closes_while_a_participant_is_still_connected() {
    let mut events = conversation();
    events.pop(); // the customer never leaves
    let (_, closed) = run(events);
    assert!(closed.is_empty());
}

#[test]
fn a_frame_after_close_neither_reopens_nor_duplicates() {
    let start = Instant::now();
    let mut book = book();
    for e in conversation() {
        book.apply(e, start);
    }
    let later = start + Duration::from_secs(5);
    assert_eq!(book.tick(later).closed.len(), 1);
    assert_eq!(book.apply(conversation().remove(3), later), Applied::AfterClose);
    assert_eq!(book.open_count(), 0);
    assert!(book.tick(later + Duration::from_secs(5)).closed.is_empty());
}

#[test]
fn an_idle_conversation_is_evicted_incomplete() {
    let start = Instant::now();
    let mut book = book();
    book.apply(event("cust", Action::Joined, 0, "customer"), start);
    assert!(book.tick(start + Duration::from_secs(30)).closed.is_empty());
    let tick = book.tick(start + Duration::from_secs(61));
    assert_eq!(tick.closed.len(), 1);
    let (record, reason) = &tick.closed[0];
    assert_eq!(*reason, CloseReason::Idle);
    assert!(!record.complete);
    assert_eq!(record.ended_at, None);
}

#[test]
fn a_gap_holds_the_close_until_its_backfill_answers_or_the_conversation_idles_out() {
    let start = Instant::now();
    let mut book = book();
    book.mark_gap("conv-1", start, GapCause::Loss);
    for e in conversation() {
        book.apply(e, start);
    }
    assert!(book.tick(start + Duration::from_secs(5)).closed.is_empty());
    let tick = book.tick(start + Duration::from_secs(61));
    let (record, reason) = &tick.closed[0];
    assert_eq!(*reason, CloseReason::Idle);
    assert_eq!(record.gaps, 1);
    assert!(!record.complete && !record.healed);
}

#[test]
fn an_entry_past_the_window_is_published_late_but_recorded_in_order() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    let straggler = events.remove(1); // the IVR join arrives long after the rest
    for e in events {
        book.apply(e, start);
    }
    let first = book.tick(start + Duration::from_millis(150));
    assert_eq!(first.updates.len(), 9);
    book.apply(straggler, start + Duration::from_millis(200));
    let second = book.tick(start + Duration::from_millis(400));
    assert_eq!(second.updates.len(), 1);
    assert!(second.updates[0].late);
    let closed = book.tick(start + Duration::from_secs(5)).closed;
    assert_eq!(closed[0].0.entries, run(conversation()).1[0].entries);
}

#[test]
fn close_all_flags_the_unfinished_incomplete() {
    let start = Instant::now();
    let mut book = book();
    for e in conversation().into_iter().take(4) {
        book.apply(e, start);
    }
    let tick = book.close_all(start);
    assert_eq!(tick.updates.len(), 4, "held entries are flushed before the summary");
    assert!(!tick.closed[0].0.complete);
    assert_eq!(book.open_count(), 0);
}

proptest! {
    /// Any permutation of a conversation's events within the reorder window, with
    /// duplicates, yields the same timeline — and the same published order.
    #[test]
    fn permutation_with_duplicates_yields_the_same_timeline(
        order in Just((0..10usize).collect::<Vec<_>>()).prop_shuffle(),
        dupes in proptest::collection::vec(0..10usize, 0..10),
    ) {
        let events = conversation();
        let mut shuffled: Vec<ParticipantEvent> = order.iter().map(|&i| events[i].clone()).collect();
        for (n, &d) in dupes.iter().enumerate() {
            let position = (n * 7) % (shuffled.len() + 1);
            shuffled.insert(position, events[d].clone());
        }
        let (expected_updates, expected) = run(conversation());
        let (updates, closed) = run(shuffled);
        prop_assert_eq!(closed, expected);
        prop_assert_eq!(updates, expected_updates);
    }
}

#[test]
fn a_gap_is_healed_by_a_backfill_that_covers_it() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    let mut missed = events.split_off(6); // the socket was down for these…
    let after = missed.split_off(3); // …and back up for the customer's leave
    for e in events {
        book.apply(e, start);
    }
    book.socket_gap(start, Duration::from_secs(30));
    for e in after {
        book.apply(e, start);
    }
    let requests = book.take_backfills();
    assert_eq!(requests, vec![BackfillRequest { conversation: "conv-1".into(), epoch: 1 }]);
    assert!(book.tick(start + Duration::from_secs(5)).closed.is_empty(), "waits for the backfill");
    // The backfill answers with the whole conversation (a snapshot repeats what we had).
    book.backfilled(&requests[0], conversation(), true, start + Duration::from_secs(6));
    let closed = book.tick(start + Duration::from_secs(10)).closed;
    let (record, _) = &closed[0];
    assert_eq!((record.gaps, record.healed, record.complete), (1, true, true));
    assert_eq!(record.entries.len(), 10);
    assert!(missed
        .iter()
        .all(|m| record.entries.iter().any(|e| e.at == m.at && m.participant.is(&e.participant_id))));
}

#[test]
fn a_backfill_asked_before_a_newer_gap_does_not_heal_it() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    events.remove(3); // lost
    for e in events {
        book.apply(e, start);
    }
    book.mark_gap("conv-1", start, GapCause::Loss);
    book.mark_gap("conv-1", start, GapCause::Loss);
    let requests = book.take_backfills();
    assert_eq!(requests.len(), 2);
    book.backfilled(&requests[0], conversation(), true, start);
    assert!(book.tick(start + Duration::from_secs(5)).closed.is_empty(), "the second gap is still pending");
    book.backfilled(&requests[1], Vec::new(), true, start);
    let closed = book.tick(start + Duration::from_secs(10)).closed;
    let record = &closed[0].0;
    assert_eq!((record.gaps, record.healed, record.complete), (2, true, true));
}

#[test]
fn a_suspected_gap_that_lost_nothing_is_withdrawn() {
    let start = Instant::now();
    let mut book = book();
    for e in conversation() {
        book.apply(e, start);
    }
    book.socket_gap(start, Duration::from_secs(30));
    let request = book.take_backfills().remove(0);
    book.backfilled(&request, conversation(), true, start);
    let closed = book.tick(start + Duration::from_secs(10)).closed;
    assert_eq!(closed[0].0, run(conversation()).1[0], "indistinguishable from an uninterrupted run");
}

#[test]
fn a_failed_backfill_closes_incomplete_and_unhealed() {
    let start = Instant::now();
    let mut book = book();
    for e in conversation() {
        book.apply(e, start);
    }
    book.mark_gap("conv-1", start, GapCause::Loss);
    let request = book.take_backfills().remove(0);
    book.backfilled(&request, Vec::new(), false, start);
    let closed = book.tick(start + Duration::from_secs(5)).closed;
    let (record, _) = &closed[0];
    assert_eq!((record.gaps, record.healed, record.complete), (1, false, false));
}

#[test]
fn a_parked_timeline_whose_backfill_brings_its_end_closes_after_the_quiet_period() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    let ends = events.split_off(3); // dropped on the way in: only the backfill brings them
    for e in events {
        book.apply(e, start);
    }
    // Quiet, not finished, nothing awaited: parked until it is due for verifying (20 s).
    book.tick(start + Duration::from_secs(2));
    let dropped_at = start + Duration::from_secs(3);
    book.mark_gap("conv-1", dropped_at, GapCause::Loss);
    let request = book.take_backfills().remove(0);
    book.backfilled(&request, conversation(), true, dropped_at);
    assert!(!ends.is_empty());
    let closed = book.tick(dropped_at + Duration::from_secs(2)).closed;
    assert_eq!(closed.len(), 1, "closed at the end of the quiet period, not at its verification");
    assert!(closed[0].0.complete);
}

#[test]
fn conversations_first_seen_right_after_an_outage_are_gapped() {
    let start = Instant::now();
    let mut book = book();
    book.socket_gap(start, Duration::from_secs(30));
    book.apply(event("agent-a", Action::Joined, 20_001, "agent"), start + Duration::from_secs(1));
    assert_eq!(book.take_backfills().len(), 1);
    let mut later = ParticipantEvent::new("conv-2".into(), "p", Action::Joined, at(1), Default::default());
    later.conversation = "conv-2".into();
    book.apply(later, start + Duration::from_secs(31));
    assert!(book.take_backfills().is_empty(), "past the grace period nothing is presumed missed");
}

#[test]
fn a_saved_timeline_resumes_and_closes_as_if_uninterrupted_with_its_gap_healed() {
    let start = Instant::now();
    let mut before = book();
    let mut events = conversation();
    let mut after_restart = events.split_off(5);
    after_restart.remove(0); // published while the daemon was down: only the backfill has it
    for e in events {
        before.apply(e, start);
    }
    let tick = before.release_all(start);
    assert_eq!(tick.updates.len(), 5, "held entries are published before saving");
    let json = serde_json::to_string(&before.snapshot(&Unwritten::default())).unwrap();

    let mut resumed = book();
    let restored = resumed.restore(serde_json::from_str(&json).unwrap(), &HashSet::new(), start);
    assert_eq!(restored, Restored { resumed: 1, already_written: 0 });
    resumed.socket_gap(start, Duration::from_secs(30));
    let request = resumed.take_backfills().remove(0);
    for e in after_restart {
        resumed.apply(e, start);
    }
    resumed.backfilled(&request, conversation(), true, start);
    let updates_after = resumed.tick(start + Duration::from_millis(150)).updates;
    assert_eq!(updates_after.len(), 5, "entries logged before the restart are not logged again");
    let closed = resumed.tick(start + Duration::from_secs(5)).closed;
    let (record, _) = &closed[0];
    let uninterrupted = &run(conversation()).1[0];
    assert_eq!(record.entries, uninterrupted.entries);
    assert_eq!(record.participants, uninterrupted.participants);
    assert_eq!((record.gaps, record.healed, record.complete), (1, true, true));
}

#[test]
fn a_timeline_already_in_the_sink_is_not_restored_and_stays_closed() {
    let start = Instant::now();
    let mut before = book();
    for e in conversation().into_iter().take(3) {
        before.apply(e, start);
    }
    let state = serde_json::from_value(serde_json::to_value(before.snapshot(&Unwritten::default())).unwrap())
        .unwrap();
    let mut resumed = book();
    let in_sink: HashSet<String> = ["conv-1".to_string()].into();
    assert_eq!(resumed.restore(state, &in_sink, start), Restored { resumed: 0, already_written: 1 });
    assert_eq!(resumed.apply(conversation().remove(4), start), Applied::AfterClose);
}

#[test]
fn a_closed_timeline_not_yet_durable_is_saved_as_open_and_closes_again_after_a_restart() {
    let start = Instant::now();
    let mut before = book();
    for e in conversation() {
        before.apply(e, start);
    }
    let closed = before.tick(start + Duration::from_secs(5)).closed;
    let (record, _) = &closed[0];
    let unwritten = Unwritten::new(1);
    unwritten.closed(&Arc::new(record.clone()));
    let state = serde_json::to_value(before.snapshot(&unwritten)).unwrap();
    assert_eq!(state["closed"], serde_json::json!([]), "no tombstone keeps it from resuming");
    let mut resumed = book();
    let restored = resumed.restore(serde_json::from_value(state).unwrap(), &HashSet::new(), start);
    assert_eq!(restored.resumed, 1);
    let again = resumed.tick(start + Duration::from_secs(5)).closed;
    assert_eq!(again.len(), 1, "it closes again, to be written");
    assert_eq!(again[0].0.entries, record.entries);

    unwritten.settled(&record.conversation_id);
    let state = serde_json::to_value(before.snapshot(&unwritten)).unwrap();
    assert_eq!(state["open"], serde_json::json!([]), "once durable it is only a tombstone");
    assert_eq!(state["closed"], serde_json::json!([record.conversation_id]));
}

#[test]
fn shutdown_closes_what_is_finished_without_waiting_for_quiet() {
    let start = Instant::now();
    let mut book = book();
    for e in conversation() {
        book.apply(e, start);
    }
    book.tick(start + Duration::from_millis(150));
    let tick = book.close_finished(start + Duration::from_millis(150));
    assert_eq!(tick.closed.len(), 1);
    assert!(tick.closed[0].0.complete);
}

#[test]
fn a_leave_without_its_join_asks_for_a_backfill_once() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    events.remove(0); // the customer's join was missed: first seen mid-way
    for e in events {
        book.apply(e, start);
    }
    book.tick(start + Duration::from_millis(500));
    assert!(book.take_backfills().is_empty(), "a reordered join may still come within the quiet period");
    book.tick(start + Duration::from_millis(1500));
    let request = book.take_backfills();
    assert_eq!(request.len(), 1, "the customer's leave without a join proves a miss");
    book.backfilled(&request[0], Vec::new(), true, start + Duration::from_secs(1));
    book.tick(start + Duration::from_secs(2));
    assert!(book.take_backfills().is_empty(), "asked once, not again and again");
}

#[test]
fn a_long_quiet_conversation_is_checked_once_and_closes_if_it_ended_unseen() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    events.pop(); // the customer's leave never arrived
    for e in events {
        book.apply(e, start);
    }
    book.tick(start + Duration::from_secs(5));
    assert!(book.take_backfills().is_empty(), "not quiet for long yet");
    book.tick(start + Duration::from_secs(21));
    let requests = book.take_backfills();
    assert_eq!(requests.len(), 1);
    book.tick(start + Duration::from_secs(45));
    assert!(book.take_backfills().is_empty(), "once per quiet stretch");
    book.backfilled(&requests[0], conversation(), true, start + Duration::from_secs(46));
    let closed = book.tick(start + Duration::from_secs(50)).closed;
    // The ending came from the backfill; being later than anything the stream delivered,
    // it may have been merely late, so no loss is claimed — and the timeline is whole.
    assert_eq!(closed[0].0, run(conversation()).1[0]);
}

#[test]
fn a_timeline_parked_until_its_verification_closes_a_quiet_period_after_its_last_event() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    let last = events.pop().unwrap();
    for e in events {
        book.apply(e, start);
    }
    // Quiet past the quiet period with the customer still on: its next check is the
    // verification, 20 s out.
    assert!(book.tick(start + Duration::from_secs(2)).closed.is_empty());
    let leave = start + Duration::from_secs(3);
    book.apply(last, leave);
    assert!(book.tick(leave + Duration::from_millis(900)).closed.is_empty(), "quiet period not over");
    let closed = book.tick(leave + Duration::from_millis(1_100)).closed;
    assert_eq!(closed.len(), 1, "closed at the end of the new quiet period, not at the verification");
    assert_eq!(closed[0].0, run(conversation()).1[0]);
}

#[test]
fn with_no_reorder_window_an_entry_is_released_the_moment_it_arrives() {
    let start = Instant::now();
    let mut book = TimelineBook::new(
        TimelineRules { reorder_window: Duration::ZERO, ..rules() },
        Arc::new(DashMap::new()),
    );
    assert_eq!(book.next_release(), None);
    book.apply(event("cust", Action::Joined, 0, "customer"), start);
    book.apply(event("ivr", Action::Joined, 10, "ivr"), start);
    assert_eq!(book.next_release(), Some(start));
    let released = book.release(start);
    let participants: Vec<&str> = released.iter().map(|u| u.entry.participant_id.as_str()).collect();
    assert_eq!(participants, ["cust", "ivr"]);
    assert_eq!(book.next_release(), None);
    assert!(book.release(start).is_empty(), "each entry is published once");
}

#[test]
fn checks_do_not_accumulate_for_conversations_that_go_quiet_and_resume_or_close() {
    let start = Instant::now();
    let mut book = book();
    let mut now = start;
    // A thousand conversations that each go quiet past the quiet period (their next check
    // moves out to the verification) and then take an event again (it moves back in),
    // five times over.
    for round in 0..5 {
        for conversation in 0..1_000 {
            let mut e = event(&format!("agent-{round}"), Action::Joined, round, "agent");
            e.conversation = format!("conv-{conversation}").into();
            book.apply(e, now);
        }
        now += Duration::from_millis(1_500);
        book.tick(now);
    }
    assert_eq!(book.pending_checks(), book.open_count(), "one check per open timeline");
    book.close_all(now);
    assert_eq!(book.pending_checks(), 0, "closed timelines leave no checks behind");
}

/// The last leaves were lost without a trace; an outage later marks the quiet timeline and
/// its backfill brings them: it closes a quiet period after that backfill, not when it
/// would next be verified.
#[test]
fn a_quiet_timeline_closes_as_soon_as_its_outage_backfill_shows_it_ended() {
    let start = Instant::now();
    let mut book = book();
    let mut events = conversation();
    events.truncate(8); // agent-b's and the customer's leaves never arrive
    for e in events {
        book.apply(e, start);
    }
    let mut now = start;
    while now < start + Duration::from_secs(10) {
        now += Duration::from_millis(500);
        assert!(book.tick(now).closed.is_empty());
    }
    book.socket_gap(now, Duration::from_secs(30));
    let request = book.take_backfills().remove(0);
    now += Duration::from_secs(1);
    book.backfilled(&request, conversation(), true, now);
    let healed_at = now;
    let mut closed = Vec::new();
    while closed.is_empty() && now < healed_at + rules().verify_after {
        now += Duration::from_millis(100);
        closed.extend(book.tick(now).closed);
    }
    assert!(!closed.is_empty(), "never closed");
    assert!(closed[0].0.complete);
    let waited = now - healed_at;
    assert!(
        waited <= rules().close_after + Duration::from_millis(200),
        "closed {waited:?} after its backfill"
    );
}

fn joined(conversation: &str, participant: &str, ms: i64) -> ParticipantEvent {
    ParticipantEvent::new(conversation.into(), participant, Action::Joined, at(ms), EventDetails::default())
}

/// A snapshot of 50,000 participants: the first `max_participants` are kept, the rest
/// refused, and the timeline closes incomplete rather than wedging or growing unbounded.
#[test]
fn participants_past_the_limit_are_refused_and_the_timeline_closes_incomplete() {
    let start = Instant::now();
    let mut book =
        TimelineBook::new(TimelineRules { max_participants: 1000, ..rules() }, Arc::new(DashMap::new()));
    let mut outcomes = std::collections::HashMap::new();
    for n in 0..50_000 {
        let applied = book.apply(joined("crowd", &format!("p{n}"), n), start);
        *outcomes.entry(applied).or_insert(0) += 1;
    }
    assert_eq!(outcomes.get(&Applied::Accepted), Some(&1000));
    assert_eq!(outcomes.get(&Applied::OverLimit), Some(&49_000));
    // One already kept is still recognised, and its leave taken.
    assert_eq!(book.apply(joined("crowd", "p7", 7), start), Applied::Duplicate);
    let closed = book.close_all(start + Duration::from_secs(1)).closed;
    let record = &closed[0].0;
    assert_eq!(record.participants.len(), 1000);
    assert!(!record.complete, "a truncated timeline is not complete");
}

/// Past a few participants lookups go through an index; it must agree with the scan it
/// replaces, for live events and for a timeline restored from a save.
#[test]
fn an_indexed_timeline_deduplicates_as_a_scanned_one_does() {
    let start = Instant::now();
    let mut book = book();
    for n in 0..40 {
        assert_eq!(book.apply(joined("big", &format!("p{n}"), n), start), Applied::Accepted);
    }
    for n in 0..40 {
        assert_eq!(book.apply(joined("big", &format!("p{n}"), n), start), Applied::Duplicate, "p{n} again");
        let left = ParticipantEvent::new(
            "big".into(),
            &format!("p{n}"),
            Action::Left,
            at(1000 + n),
            EventDetails::default(),
        );
        assert_eq!(book.apply(left, start), Applied::Accepted, "p{n} leaves");
    }
    let record = book.close_all(start).closed.remove(0).0;
    assert_eq!((record.participants.len(), record.entries.len()), (40, 80));
    let mut saved = record.clone();
    saved.participants.truncate(30);
    saved.entries.retain(|e| saved.participants.iter().any(|p| p.participant_id == e.participant_id));
    let mut resumed = Timeline::restore(saved, start);
    for n in 0..40 {
        let expected = if n < 30 { Applied::Duplicate } else { Applied::Accepted };
        assert_eq!(
            resumed.apply(joined("big", &format!("p{n}"), n), start, 1000),
            expected,
            "p{n} after restore"
        );
    }
}

/// A flood of conversation ids: past `max_open_conversations` the least recently active
/// are closed incomplete (counted as evicted); the most recently active stay open.
#[test]
fn past_the_open_limit_the_least_recently_active_are_evicted_incomplete() {
    let start = Instant::now();
    let rules = TimelineRules { max_open_conversations: 100, ..rules() };
    let mut book = TimelineBook::new(rules, Arc::new(DashMap::new()));
    for n in 0..1000u64 {
        let now = start + Duration::from_millis(n);
        book.apply(joined(&format!("c{n}"), "p", n as i64), now);
    }
    // The oldest one is active again: it stays.
    book.apply(joined("c0", "q", 5), start + Duration::from_millis(1000));
    let tick = book.tick(start + Duration::from_millis(1001));
    assert_eq!(tick.evicted, 901, "down to 1% under the limit");
    assert_eq!(book.open_count(), 99);
    assert!(tick.closed.iter().all(|(record, reason)| *reason == CloseReason::Evicted && !record.complete));
    let evicted: HashSet<&str> =
        tick.closed.iter().map(|(record, _)| record.conversation_id.as_str()).collect();
    assert!(!evicted.contains("c0") && !evicted.contains("c999"), "the most recently active stay open");
    assert!(evicted.contains("c1") && evicted.contains("c900"));
    assert_eq!(book.apply(joined("c1", "p", 1), start), Applied::AfterClose, "an evicted one stays closed");
    assert_eq!(book.tick(start + Duration::from_millis(1002)).evicted, 0, "within the limit again");
}

/// A conversation found by the outage search before the stream has carried any of it: what
/// its backfill brings proves a loss only if it happened before the stream came back (no
/// socket listened then); what happened since, the stream is carrying.
#[test]
fn a_conversation_found_after_an_outage_is_gapped_only_by_what_preceded_the_stream() {
    let gaps_when_the_stream_resumed_at = |resumed_ms: i64| {
        let start = Instant::now();
        let mut book = book();
        book.socket_gap(start, Duration::ZERO);
        let first_since = ParticipantEvent::new(
            "another".into(),
            "someone",
            Action::Joined,
            at(resumed_ms),
            EventDetails { purpose: Some("customer".into()), ..Default::default() },
        );
        book.apply(first_since, start);
        book.mark_gap("conv-1", start, GapCause::Outage);
        let request = book.take_backfills().remove(0);
        book.backfilled(&request, conversation(), true, start);
        let closed = book.tick(start + Duration::from_secs(10)).closed;
        let (record, _) = closed.iter().find(|(r, _)| r.conversation_id == "conv-1").expect("closed");
        assert!(record.complete, "healed either way");
        record.gaps
    };
    assert_eq!(gaps_when_the_stream_resumed_at(-1_000), 0, "all of it came after the stream resumed");
    assert_eq!(gaps_when_the_stream_resumed_at(100_000), 1, "its start came before");
}

fn on(conversation: &str, e: ParticipantEvent) -> ParticipantEvent {
    ParticipantEvent { conversation: conversation.into(), ..e }
}

/// A socket gap on one channel marks the conversations that channel carried (and those new
/// on it within the grace), never those only another channel carried; a conversation two
/// channels carried is marked by either's gap.
#[test]
fn a_socket_gap_on_one_channel_marks_only_what_that_channel_carried() {
    let start = Instant::now();
    let mut book = book();
    let first = conversation().remove(0);
    book.apply_from(0, on("only-0", first.clone()), start);
    book.apply_from(1, on("only-1", first.clone()), start);
    book.apply_from(0, on("both", first.clone()), start);
    book.apply_from(1, on("both", first.clone()), start);
    book.socket_gap_on(1, Outage::Socket, start, Duration::from_secs(30));
    let mut marked: Vec<String> = book.take_backfills().into_iter().map(|r| r.conversation).collect();
    marked.sort();
    assert_eq!(marked, vec!["both", "only-1"]);
    // New within the grace: gapped on channel 1 only.
    book.apply_from(0, on("new-on-0", first.clone()), start);
    book.apply_from(1, on("new-on-1", first.clone()), start);
    let marked: Vec<String> = book.take_backfills().into_iter().map(|r| r.conversation).collect();
    assert_eq!(marked, vec!["new-on-1"]);
}

/// After a restart every channel's first socket reports the outage: a restored timeline no
/// socket has carried yet is backfilled once, not once per channel — but a later outage
/// while that backfill is awaited marks it again.
#[test]
fn a_restart_backfills_a_restored_timeline_once_across_channels() {
    let start = Instant::now();
    let mut before = book();
    for e in conversation().into_iter().take(3) {
        before.apply(e, start);
    }
    before.release_all(start);
    let json = serde_json::to_string(&before.snapshot(&Unwritten::default())).unwrap();
    let mut resumed = book();
    resumed.restore(serde_json::from_str(&json).unwrap(), &HashSet::new(), start);
    for channel in 0..3 {
        resumed.socket_gap_on(channel, Outage::Restart, start, Duration::from_secs(30));
    }
    assert_eq!(resumed.take_backfills().len(), 1);
    resumed.socket_gap_on(2, Outage::Socket, start, Duration::from_secs(30));
    assert_eq!(resumed.take_backfills().len(), 1, "a socket lost while running is a new outage");
}
