//! The live feed behind `GET /feed`: every published join/leave and every closed timeline
//! as a Server-Sent Event with a sequence number, kept in a bounded in-memory ring so a
//! client that reconnects with `Last-Event-ID: N` gets exactly what it missed.
//!
//! One rule serves both a reconnecting client and a live one that reads too slowly: a
//! client is a cursor into the ring (the last id it was sent). Whatever it has not seen
//! yet is read from the ring; when some of it was already evicted, the client is sent an
//! explicit `reset` event and continues from the oldest retained event — never a silent
//! skip. Live clients are woken by a `watch` channel that carries the last id, so there
//! is no second, per-client buffer that could lag on its own.
//!
//! [`FeedOutput`] is the [`Output`] the daemon runs as one more ConsumerActor
//! (`Stage::Feed`); it also remembers the last closed timelines for `/timelines`.

use bytes::Bytes;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use timelined_actors::consumer::Output;
use timelined_actors::record::{EntryRecord, TimelineRecord};
use timelined_actors::timeline::{CloseReason, TimelineUpdate};
use tokio::sync::watch;

/// Events retained for resuming clients unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Closed timelines remembered for `/timelines` and `/timelines/{id}`.
pub const DEFAULT_RECENTLY_CLOSED: usize = 1_000;
/// A comment line this often on an idle stream, so proxies and clients see it alive.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
/// Events written to a client in one chunk, at most: a far-behind client catches up in
/// several writes instead of one huge buffer.
const BATCH: usize = 512;
/// Sent once when a stream opens: how long an EventSource waits before reconnecting. It
/// also puts the response head on the wire before the first event.
const PREAMBLE: &str = "retry: 2000\n\n";
const KEEPALIVE_COMMENT: &str = ": keepalive\n\n";

/// How big the feed's memory is allowed to get.
#[derive(Clone, Copy, Debug)]
pub struct FeedLimits {
    /// Events retained in the ring (at least 1).
    pub capacity: usize,
    /// Closed timelines remembered (0 = none).
    pub recently_closed: usize,
    pub keepalive: Duration,
}

impl Default for FeedLimits {
    fn default() -> Self {
        FeedLimits {
            capacity: DEFAULT_CAPACITY,
            recently_closed: DEFAULT_RECENTLY_CLOSED,
            keepalive: DEFAULT_KEEPALIVE,
        }
    }
}

/// Why a client is told it missed events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// What it has not seen was already evicted from the ring.
    TooFarBehind,
    /// Its `Last-Event-ID` was never issued by this process (ids start at 1 again after a
    /// restart): everything retained is sent.
    UnknownId,
}

impl ResetReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::TooFarBehind => "too far behind",
            ResetReason::UnknownId => "unknown event id",
        }
    }
}

/// The ring's answer to "what comes after id N".
#[derive(Debug, PartialEq, Eq)]
pub struct Catchup {
    /// Some events after N are gone (or N is unknown): the client continues from `oldest`.
    pub reset: Option<(ResetReason, u64)>,
    /// The rendered events to send, in id order.
    pub frames: Vec<Bytes>,
    /// The last id the client has once these are sent.
    pub cursor: u64,
}

/// The retained events: ids are contiguous, `last_id` is the newest ever issued.
/// Pure arithmetic, no I/O; [`Feed`] puts it behind a lock.
#[derive(Debug)]
pub struct Ring {
    events: VecDeque<(u64, Bytes)>,
    capacity: usize,
    last_id: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        // A ring of 0 could not hand anyone the event it just published.
        let capacity = capacity.max(1);
        Ring { events: VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY)), capacity, last_id: 0 }
    }

    /// Append the next event; `render` gets its id. Evicts the oldest at capacity.
    pub fn push(&mut self, render: impl FnOnce(u64) -> Bytes) -> u64 {
        let id = self.last_id + 1;
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back((id, render(id)));
        self.last_id = id;
        id
    }

    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// The id of the oldest retained event (the next one to be issued when none is).
    pub fn oldest(&self) -> u64 {
        self.events.front().map_or(self.last_id + 1, |(id, _)| *id)
    }

    /// Up to `max` events after `after` (the last id the client has), in order.
    pub fn after(&self, after: u64, max: usize) -> Catchup {
        let oldest = self.oldest();
        let (reset, first) = if after > self.last_id {
            (Some((ResetReason::UnknownId, oldest)), oldest)
        } else if after + 1 < oldest {
            (Some((ResetReason::TooFarBehind, oldest)), oldest)
        } else {
            (None, after + 1)
        };
        // Ids in the ring are contiguous, so the first wanted one sits at a fixed offset.
        let skip = usize::try_from(first - oldest).unwrap_or(usize::MAX);
        let frames: Vec<Bytes> = self.events.iter().skip(skip).take(max).map(|(_, f)| f.clone()).collect();
        Catchup { reset, cursor: first - 1 + frames.len() as u64, frames }
    }
}

/// Closed timelines by id, the oldest closed forgotten first.
#[derive(Debug, Default)]
struct RecentlyClosed {
    by_id: HashMap<String, Arc<TimelineRecord>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentlyClosed {
    fn remember(&mut self, record: TimelineRecord) {
        if self.capacity == 0 {
            return;
        }
        let id = record.conversation_id.clone();
        // A conversation closes once (tombstones), but a restart may close it again: the
        // newer record wins and counts as the most recent.
        if self.by_id.insert(id.clone(), Arc::new(record)).is_some() {
            self.order.retain(|known| *known != id);
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(evicted) = self.order.pop_front() {
                self.by_id.remove(&evicted);
            }
        }
    }
}

/// The ring, the wake-up channel for live clients, and the recently closed timelines.
pub struct Feed {
    ring: Mutex<Ring>,
    published: watch::Sender<u64>,
    closed: Mutex<RecentlyClosed>,
    keepalive: Duration,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateData<'a> {
    conversation_id: &'a str,
    entry: &'a EntryRecord,
    late: bool,
}

/// A poisoned lock only means another thread panicked mid-push; the ring itself is
/// always consistent between statements, so keep serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Feed {
    /// A feed retaining `capacity` events, with the default closed-timeline memory and
    /// keepalive.
    pub fn new(capacity: usize) -> Arc<Feed> {
        Feed::with_limits(FeedLimits { capacity, ..FeedLimits::default() })
    }

    pub fn with_limits(limits: FeedLimits) -> Arc<Feed> {
        Arc::new(Feed {
            ring: Mutex::new(Ring::new(limits.capacity)),
            published: watch::Sender::new(0),
            closed: Mutex::new(RecentlyClosed { capacity: limits.recently_closed, ..Default::default() }),
            keepalive: limits.keepalive,
        })
    }

    /// Publish one join/leave as an `update` event; returns its id.
    pub fn push_update(&self, update: &TimelineUpdate) -> serde_json::Result<u64> {
        let data = serde_json::to_vec(&UpdateData {
            conversation_id: &update.conversation_id,
            entry: &update.entry,
            late: update.late,
        })?;
        Ok(self.push("update", &data))
    }

    /// Publish a closed timeline as a `closed` event and remember it; returns its id.
    pub fn push_closed(&self, record: &TimelineRecord) -> serde_json::Result<u64> {
        let data = serde_json::to_vec(record)?;
        lock(&self.closed).remember(record.clone());
        Ok(self.push("closed", &data))
    }

    fn push(&self, event: &str, data: &[u8]) -> u64 {
        let mut ring = lock(&self.ring);
        let id = ring.push(|id| {
            // Assembled by hand, once: `format!` was the feed's largest cost per update.
            let id = id.to_string();
            let mut frame = Vec::with_capacity(data.len() + event.len() + id.len() + 20);
            for part in [b"id: ", id.as_bytes(), b"\nevent: ", event.as_bytes(), b"\ndata: ", data, b"\n\n"] {
                frame.extend_from_slice(part);
            }
            Bytes::from(frame)
        });
        // Under the ring's lock, so the announced id never goes backwards.
        self.published.send_replace(id);
        id
    }

    /// The newest id issued (0 before the first event).
    pub fn last_id(&self) -> u64 {
        lock(&self.ring).last_id()
    }

    /// What comes after `after`, at most `max` events.
    pub fn after(&self, after: u64, max: usize) -> Catchup {
        lock(&self.ring).after(after, max)
    }

    /// A recently closed timeline, if it is still remembered.
    pub fn recently_closed(&self, conversation_id: &str) -> Option<Arc<TimelineRecord>> {
        lock(&self.closed).by_id.get(conversation_id).cloned()
    }

    /// Every remembered closed timeline, the most recently closed first.
    pub fn recently_closed_all(&self) -> Vec<Arc<TimelineRecord>> {
        let closed = lock(&self.closed);
        closed.order.iter().rev().filter_map(|id| closed.by_id.get(id).cloned()).collect()
    }

    /// The SSE body for one client: events after `after` (or only new ones when `None`),
    /// then live events, with keepalive comments while idle. Ends when the feed is dropped.
    pub fn follow(
        self: &Arc<Self>,
        after: Option<u64>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + 'static {
        // Subscribe before reading the cursor: an event pushed in between wakes us.
        let changes = self.published.subscribe();
        let cursor = after.unwrap_or_else(|| self.last_id());
        let follower =
            Follower { feed: self.clone(), cursor, changes, keepalive: None, preamble_sent: false };
        futures_util::stream::unfold(follower, |mut follower| async move {
            let chunk = follower.next_chunk().await?;
            Some((Ok(chunk), follower))
        })
    }
}

/// One client's position in the feed.
struct Follower {
    feed: Arc<Feed>,
    /// The last id this client has been sent.
    cursor: u64,
    changes: watch::Receiver<u64>,
    /// Created on first poll, inside the serving runtime.
    keepalive: Option<actix_rt::time::Interval>,
    preamble_sent: bool,
}

impl Follower {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.preamble_sent {
            self.preamble_sent = true;
            return Some(Bytes::from_static(PREAMBLE.as_bytes()));
        }
        let period = self.feed.keepalive;
        let keepalive = self.keepalive.get_or_insert_with(|| {
            let mut interval = actix_rt::time::interval_at(actix_rt::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        loop {
            // Mark the current id seen before reading, so a push after the read wakes us.
            self.changes.borrow_and_update();
            let catchup = self.feed.after(self.cursor, BATCH);
            if catchup.reset.is_some() || !catchup.frames.is_empty() {
                self.cursor = catchup.cursor;
                keepalive.reset();
                return Some(render_chunk(catchup));
            }
            let changed = std::pin::pin!(self.changes.changed());
            let tick = std::pin::pin!(keepalive.tick());
            match futures_util::future::select(changed, tick).await {
                futures_util::future::Either::Left((Ok(()), _)) => continue,
                // Only if the feed's sender were dropped, which this follower's `Arc`
                // prevents; end the stream rather than spin.
                futures_util::future::Either::Left((Err(_), _)) => return None,
                futures_util::future::Either::Right(_) => {
                    return Some(Bytes::from_static(KEEPALIVE_COMMENT.as_bytes()))
                }
            }
        }
    }
}

/// A reset event (no `id:`, so the client's last id stays what it was) and the frames.
fn render_chunk(catchup: Catchup) -> Bytes {
    let Some((reason, oldest)) = catchup.reset else {
        if let [only] = catchup.frames.as_slice() {
            return only.clone();
        }
        return Bytes::from(catchup.frames.concat());
    };
    #[derive(Serialize)]
    struct ResetData {
        reason: &'static str,
        oldest: u64,
    }
    let data = ResetData { reason: reason.as_str(), oldest };
    // Two plain fields: serialising them cannot fail.
    let data = serde_json::to_string(&data).unwrap_or_default();
    let mut chunk = format!("event: reset\ndata: {data}\n\n").into_bytes();
    for frame in &catchup.frames {
        chunk.extend_from_slice(frame);
    }
    Bytes::from(chunk)
}

/// The feed as a pipeline output: the daemon runs it as a ConsumerActor (`Stage::Feed`).
pub struct FeedOutput(pub Arc<Feed>);

fn to_io(error: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl Output for FeedOutput {
    fn update(&mut self, update: &TimelineUpdate) -> io::Result<()> {
        self.0.push_update(update).map(drop).map_err(to_io)
    }

    fn closed(&mut self, record: &TimelineRecord, _: CloseReason) -> io::Result<()> {
        self.0.push_closed(record).map(drop).map_err(to_io)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn ring_with(capacity: usize, events: u64) -> Ring {
        let mut ring = Ring::new(capacity);
        for _ in 0..events {
            ring.push(|id| Bytes::from(id.to_string()));
        }
        ring
    }

    fn ids(catchup: &Catchup) -> Vec<u64> {
        catchup.frames.iter().map(|f| String::from_utf8_lossy(f).parse().unwrap()).collect()
    }

    #[test]
    fn resumes_right_after_the_last_id_seen() {
        let ring = ring_with(10, 6);
        let catchup = ring.after(3, usize::MAX);
        assert_eq!((catchup.reset, ids(&catchup), catchup.cursor), (None, vec![4, 5, 6], 6));
        let caught_up = ring.after(6, usize::MAX);
        assert_eq!((caught_up.reset, ids(&caught_up), caught_up.cursor), (None, vec![], 6));
    }

    #[test]
    fn a_batch_limit_moves_the_cursor_only_as_far_as_sent() {
        let ring = ring_with(10, 8);
        let first = ring.after(0, 3);
        assert_eq!((ids(&first), first.cursor), (vec![1, 2, 3], 3));
        let second = ring.after(first.cursor, 3);
        assert_eq!((ids(&second), second.cursor), (vec![4, 5, 6], 6));
    }

    #[test]
    fn too_far_behind_is_told_and_continues_from_the_oldest() {
        let ring = ring_with(5, 12);
        assert_eq!(ring.oldest(), 8);
        let catchup = ring.after(2, usize::MAX);
        assert_eq!(catchup.reset, Some((ResetReason::TooFarBehind, 8)));
        assert_eq!((ids(&catchup), catchup.cursor), (vec![8, 9, 10, 11, 12], 12));
        // Exactly at the edge: it has 7, the oldest retained is 8 — nothing was missed.
        let edge = ring.after(7, usize::MAX);
        assert_eq!((edge.reset, ids(&edge)), (None, vec![8, 9, 10, 11, 12]));
        // Id 0 means "seen nothing": events 1..7 are gone, so that is a reset too.
        assert_eq!(ring.after(0, usize::MAX).reset, Some((ResetReason::TooFarBehind, 8)));
    }

    #[test]
    fn wraps_around_many_times_keeping_ids_contiguous() {
        let mut ring = ring_with(3, 0);
        for round in 1..=1000u64 {
            ring.push(|id| Bytes::from(id.to_string()));
            let retained = ring.after(round.saturating_sub(3), usize::MAX);
            let expected: Vec<u64> = (round.saturating_sub(2).max(1)..=round).collect();
            assert_eq!(ids(&retained), expected, "after push {round}");
            assert_eq!(retained.reset, None);
        }
        assert_eq!((ring.oldest(), ring.last_id()), (998, 1000));
    }

    #[test]
    fn an_id_never_issued_resets_to_everything_retained() {
        let ring = ring_with(4, 3);
        let catchup = ring.after(40, usize::MAX);
        assert_eq!(catchup.reset, Some((ResetReason::UnknownId, 1)));
        assert_eq!(ids(&catchup), vec![1, 2, 3]);
        let empty = ring_with(4, 0).after(9, usize::MAX);
        assert_eq!((empty.reset, empty.cursor), (Some((ResetReason::UnknownId, 1)), 0));
    }

    #[test]
    fn a_zero_capacity_still_keeps_the_newest() {
        let ring = ring_with(0, 3);
        assert_eq!(ids(&ring.after(2, usize::MAX)), vec![3]);
    }

    fn record(id: &str) -> TimelineRecord {
        TimelineRecord::empty(id)
    }

    #[test]
    fn recently_closed_forgets_the_oldest_closed_first() {
        let feed =
            Feed::with_limits(FeedLimits { capacity: 10, recently_closed: 2, ..FeedLimits::default() });
        for id in ["a", "b", "c"] {
            feed.push_closed(&record(id)).unwrap();
        }
        assert!(feed.recently_closed("a").is_none());
        let newest_first: Vec<String> =
            feed.recently_closed_all().iter().map(|r| r.conversation_id.clone()).collect();
        assert_eq!(newest_first, ["c", "b"]);
        feed.push_closed(&record("b")).unwrap();
        let newest_first: Vec<String> =
            feed.recently_closed_all().iter().map(|r| r.conversation_id.clone()).collect();
        assert_eq!(newest_first, ["b", "c"]);
    }

    async fn next_text(
        stream: &mut (impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Unpin),
    ) -> String {
        let chunk = actix_rt::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a chunk within 5s")
            .expect("stream open")
            .unwrap();
        String::from_utf8(chunk.to_vec()).unwrap()
    }

    #[actix_rt::test]
    async fn a_live_client_that_falls_behind_is_reset_not_skipped() {
        let feed = Feed::new(4);
        feed.push_closed(&record("x")).unwrap();
        let mut stream = Box::pin(feed.follow(None));
        assert_eq!(next_text(&mut stream).await, PREAMBLE);
        // The client does not read while ten events are published into a ring of four.
        for id in 0..10 {
            feed.push_closed(&record(&format!("c{id}"))).unwrap();
        }
        let text = next_text(&mut stream).await;
        assert!(
            text.starts_with("event: reset\ndata: {\"reason\":\"too far behind\",\"oldest\":8}\n\n"),
            "{text}"
        );
        let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
        assert_eq!(ids, ["8", "9", "10", "11"]);
        feed.push_closed(&record("live")).unwrap();
        assert!(next_text(&mut stream).await.starts_with("id: 12\nevent: closed\n"));
    }

    #[actix_rt::test]
    async fn an_idle_stream_gets_keepalive_comments() {
        let feed =
            Feed::with_limits(FeedLimits { keepalive: Duration::from_millis(50), ..FeedLimits::default() });
        let mut stream = Box::pin(feed.follow(None));
        assert_eq!(next_text(&mut stream).await, PREAMBLE);
        assert_eq!(next_text(&mut stream).await, KEEPALIVE_COMMENT);
        feed.push_closed(&record("a")).unwrap();
        assert!(next_text(&mut stream).await.starts_with("id: 1\nevent: closed\n"));
    }
}
