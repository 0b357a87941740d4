//! Everything a simulator socket sends goes through here: one bounded queue and one writer
//! task per socket.
//!
//! The publisher (playback, on the caller's runtime) and the socket dialogs (on the HTTP
//! worker) only ever `offer` frames to a [`SocketTx`]; the writer owns the actix-ws
//! [`Session`] and is the single place that applies the delivery faults (reordering within
//! a small window, every n-th data frame as binary, stalls, drops without a Close frame),
//! writes the `--record` file and counts frames. A data frame counts as pending from the
//! moment it is queued until it has been sent (or dropped with its socket), which is what
//! [`super::SimHandle::finished`] waits on.
//!
//! Each published transition travels with a [`Ticket`] shared by every frame that carries
//! it. A frame is *delivered* once its writer has handed it to the session (from there it
//! is flushed to the client's TCP stream, even when the socket is dropped next). When the
//! last frame of a ticket is gone and none was delivered although some listener was owed
//! one, the conversation joins the ground truth of what faults hid
//! ([`super::SimHandle::hidden`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::future::{pending, Future};
use std::io::{self, Write};
use std::path::Path;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::HttpResponse;
use actix_ws::{CloseReason, Session};
use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::task::AtomicWaker;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use super::faults::FaultFrame;

/// Frames a socket may have queued before new ones are dropped: a client that stopped
/// reading loses frames, as it would against the real service.
const QUEUE_CAPACITY: usize = 16_384;
/// With reordering on, data frames are released in shuffled groups of at most this many,
/// so none is displaced by more than `REORDER_WINDOW - 1` places…
const REORDER_WINDOW: usize = 4;
/// …and none is held longer than this.
const MAX_HOLD: Duration = Duration::from_millis(60);

/// One thing for a socket to send.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Conversation data: may be reordered, may go out as binary (analytics stream).
    Data(Arc<str>),
    /// Heartbeats, pongs, status replies: always text, never held back.
    Control(Arc<str>),
    /// A frame a fault asked for, sent as it is: never held back, never turned binary.
    Fault(FaultFrame),
    /// An RFC 6455 ping (the analytics-stream heartbeat).
    Ping,
    /// The answer to a client's RFC 6455 ping.
    Pong(Bytes),
    /// Send held frames, then a Close frame, then stop.
    Close(Option<CloseReason>),
    /// Keep sending until `at`, then close with this reason (`socket_closing`).
    CloseAt(std::time::Instant, CloseReason),
    /// Send a whole stream of data frames from the writer itself (fast playback).
    Stream(FrameStream),
}

/// Data frames the writer sends itself, paced at `rate` frames per second (0 = as fast as
/// the client reads), bypassing the queue: the benchmarks' fast playback
/// ([`super::SimHandle::stream`]). The client's reading speed holds the writer back
/// (TCP backpressure); nothing is dropped on the way.
pub(crate) struct FrameStream {
    pub frames: Box<dyn Iterator<Item = Arc<str>> + Send>,
    pub rate: u32,
    pub done: oneshot::Sender<StreamReport>,
}

impl std::fmt::Debug for FrameStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStream").field("rate", &self.rate).finish_non_exhaustive()
    }
}

/// How a [`FrameStream`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamReport {
    /// Frames handed to the WebSocket session.
    pub frames: u64,
    /// When the first and the last of them were handed over (`None`: none was).
    pub first_sent: Option<std::time::Instant>,
    pub last_sent: Option<std::time::Instant>,
    /// The socket was dropped, closed or stalled before the stream ended.
    pub interrupted: bool,
}

/// Counters, the record file and the conversations faults hid, shared by every writer.
pub(crate) struct Outlet {
    pending: AtomicU64,
    frames_sent: AtomicU64,
    record: Option<Mutex<File>>,
    hidden: Mutex<BTreeSet<String>>,
    /// With `SimConfig::send_log`: when each join or leave was first handed to a socket.
    send_log: Option<Mutex<Vec<SentTransition>>>,
}

/// Which join or leave a published transition is (a missed alert's end is neither).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransitionKey {
    pub conversation: String,
    pub participant: String,
    /// `true` a join, `false` a leave.
    pub joined: bool,
}

/// When the first frame carrying a join or leave was handed to a socket's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentTransition {
    pub key: TransitionKey,
    pub at: std::time::Instant,
}

/// Room kept in the send log: growing it means copying megabytes on the sending thread while
/// it holds the lock, a stall the latency benchmark would measure as the daemon's.
const SEND_LOG_RESERVE: usize = 1 << 18;

impl Outlet {
    pub(crate) fn new(record: Option<&Path>) -> io::Result<Self> {
        Ok(Outlet {
            pending: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            record: record.map(File::create).transpose()?.map(Mutex::new),
            hidden: Mutex::new(BTreeSet::new()),
            send_log: None,
        })
    }

    /// Also keep the send log (see [`SentTransition`]).
    pub(crate) fn with_send_log(mut self) -> Self {
        self.send_log = Some(Mutex::new(Vec::with_capacity(SEND_LOG_RESERVE)));
        self
    }

    pub(crate) fn keeps_send_log(&self) -> bool {
        self.send_log.is_some()
    }

    /// The send log so far, emptied.
    pub(crate) fn take_send_log(&self) -> Vec<SentTransition> {
        self.send_log
            .as_ref()
            .map(|log| {
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                let reserve = log.capacity().max(SEND_LOG_RESERVE);
                std::mem::replace(&mut *log, Vec::with_capacity(reserve))
            })
            .unwrap_or_default()
    }

    /// Conversations with a transition no listening socket received.
    pub(crate) fn hidden(&self) -> BTreeSet<String> {
        self.hidden.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn hide(&self, conversation: &str) {
        let mut hidden = self.hidden.lock().unwrap_or_else(PoisonError::into_inner);
        if !hidden.contains(conversation) {
            hidden.insert(conversation.to_owned());
        }
    }

    /// Data frames queued on some socket and not yet sent.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn frames_sent(&self) -> u64 {
        self.frames_sent.load(Ordering::SeqCst)
    }

    fn sent(&self, text: &str) {
        self.frames_sent.fetch_add(1, Ordering::SeqCst);
        if let Some(record) = &self.record {
            let mut line = String::with_capacity(text.len() + 1);
            line.push_str(text);
            line.push('\n');
            // One unbuffered write per frame: the file is complete the moment a frame has
            // gone out. A failing disk must not take the simulated service down, so a
            // failed write only loses that line.
            let _ = record.lock().unwrap_or_else(PoisonError::into_inner).write_all(line.as_bytes());
        }
    }
}

/// Marks one data frame as pending for as long as it lives.
struct Pending(Arc<Outlet>);

impl Pending {
    fn new(outlet: &Arc<Outlet>) -> Self {
        outlet.pending.fetch_add(1, Ordering::SeqCst);
        Pending(outlet.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The fate of one published transition (see the module docs).
pub(crate) struct Ticket {
    outlet: Arc<Outlet>,
    conversation: String,
    /// The join or leave it carries, when the outlet keeps a send log.
    key: Option<TransitionKey>,
    /// Some listener should have received it: a frame was offered, or a subscribed
    /// channel had no socket, or nobody was listening at all.
    owed: AtomicBool,
    delivered: AtomicBool,
}

impl Ticket {
    /// `key`: the join or leave it carries, for the send log (kept on first delivery).
    pub(crate) fn new(outlet: &Arc<Outlet>, conversation: &str, key: Option<TransitionKey>) -> Arc<Ticket> {
        Arc::new(Ticket {
            outlet: outlet.clone(),
            conversation: conversation.to_owned(),
            key,
            owed: AtomicBool::new(false),
            delivered: AtomicBool::new(false),
        })
    }

    /// Some listener should receive this transition.
    pub(crate) fn owe(&self) {
        self.owed.store(true, Ordering::SeqCst);
    }

    /// One of its frames was handed to a session at `at`.
    fn deliver(&self, at: std::time::Instant) {
        let first = !self.delivered.swap(true, Ordering::SeqCst);
        if let (true, Some(key), Some(log)) = (first, &self.key, &self.outlet.send_log) {
            log.lock().unwrap_or_else(PoisonError::into_inner).push(SentTransition { key: key.clone(), at });
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.owed.load(Ordering::SeqCst) && !self.delivered.load(Ordering::SeqCst) {
            self.outlet.hide(&self.conversation);
        }
    }
}

struct Queued {
    frame: Outbound,
    // Fields drop in order: the ticket settles before the frame stops being pending, so
    // `finished()` never runs ahead of `hidden()`.
    ticket: Option<Arc<Ticket>>,
    _pending: Option<Pending>,
}

/// What the hub can do to a socket past its queue: stall it, or drop it.
#[derive(Default)]
struct Control {
    stalled_until: Mutex<Option<std::time::Instant>>,
    aborted: AtomicBool,
    abort: Notify,
    /// The response body's task, woken to fail the body when the socket is dropped.
    body: AtomicWaker,
}

impl Control {
    fn is_stalled(&self) -> bool {
        self.stalled_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| std::time::Instant::now() < until)
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Runs `work` unless the socket is dropped first.
    async fn unless_aborted<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let aborted = pin!(self.abort.notified());
        if self.is_aborted() {
            return None;
        }
        match select(pin!(work), aborted).await {
            Either::Left((done, _)) => Some(done),
            Either::Right(_) => None,
        }
    }
}

/// The sending end of one socket's queue.
#[derive(Clone)]
pub(crate) struct SocketTx {
    tx: mpsc::Sender<Queued>,
    outlet: Arc<Outlet>,
    control: Arc<Control>,
}

impl SocketTx {
    /// Queues a frame without waiting; `false` when the socket is gone or not keeping up.
    pub(crate) fn offer(&self, frame: Outbound) -> bool {
        self.enqueue(frame, None)
    }

    /// Queues a data frame carrying `ticket`'s transition; `false` as for [`Self::offer`]
    /// (the frame is then lost, and the ticket knows).
    pub(crate) fn offer_data(&self, frame: Arc<str>, ticket: &Arc<Ticket>) -> bool {
        ticket.owe();
        self.enqueue(Outbound::Data(frame), Some(ticket.clone()))
    }

    fn enqueue(&self, frame: Outbound, ticket: Option<Arc<Ticket>>) -> bool {
        let pending = matches!(frame, Outbound::Data(_)).then(|| Pending::new(&self.outlet));
        self.tx.try_send(Queued { frame, ticket, _pending: pending }).is_ok()
    }

    /// Sends nothing until `until`, losing whatever comes meanwhile; stays open.
    pub(crate) fn stall(&self, until: std::time::Instant) {
        let mut stalled = self.control.stalled_until.lock().unwrap_or_else(PoisonError::into_inner);
        *stalled = Some(stalled.map_or(until, |earlier| earlier.max(until)));
    }

    /// Ends the connection now without a Close frame; whatever is still queued is lost.
    pub(crate) fn abort(&self) {
        self.control.aborted.store(true, Ordering::SeqCst);
        self.control.abort.notify_one();
        self.control.body.wake();
    }

    /// The socket's upgrade response, its body made to fail once the socket is dropped
    /// ([`SocketTx::abort`]): actix-http then ends the TCP connection at once. Without it
    /// a body that simply ends leaves the connection open as long as the client keeps
    /// its half open — a dropped socket would look alive to a quiet client.
    pub(crate) fn cut_on_abort(&self, response: HttpResponse) -> HttpResponse {
        let control = self.control.clone();
        response.map_body(move |_, body| Cuttable { body, control }).map_into_boxed_body()
    }

    /// Resolves once the writer has stopped (the socket is closed).
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
    }
}

/// A response body that fails once its socket is dropped (see [`SocketTx::cut_on_abort`]).
struct Cuttable {
    body: BoxBody,
    control: Arc<Control>,
}

/// The error a dropped socket's body fails with; actix-http drops the connection on it.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("socket dropped by a simulated fault")
    }
}

impl std::error::Error for Dropped {}

impl MessageBody for Cuttable {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        this.control.body.register(cx.waker());
        if this.control.is_aborted() {
            return Poll::Ready(Some(Err(Box::new(Dropped))));
        }
        Pin::new(&mut this.body).poll_next(cx)
    }
}

/// How one socket's writer behaves.
pub(crate) struct WriterOptions {
    /// Shuffle data frames within a small window.
    pub reorder: bool,
    /// Send every n-th data frame as a binary frame (the analytics stream does, n = 3).
    pub binary_every: Option<u64>,
    /// Seeds the reorder shuffle.
    pub seed: u64,
}

/// Starts the writer task for `session` on the current (worker) runtime.
pub(crate) fn spawn_writer(session: Session, outlet: Arc<Outlet>, options: WriterOptions) -> SocketTx {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let control = Arc::new(Control::default());
    let writer = Writer {
        session,
        outlet: outlet.clone(),
        control: control.clone(),
        binary_every: options.binary_every,
        data_sent: 0,
    };
    actix_rt::spawn(write_loop(writer, rx, options));
    SocketTx { tx, outlet, control }
}

struct Writer {
    session: Session,
    outlet: Arc<Outlet>,
    control: Arc<Control>,
    binary_every: Option<u64>,
    data_sent: u64,
}

/// The session is closed; the writer stops.
struct Gone;

impl Writer {
    async fn send(&mut self, queued: Queued) -> Result<(), Gone> {
        if self.control.is_stalled() {
            // Silent: the frame is lost; even a close goes without its Close frame.
            return match queued.frame {
                Outbound::Close(_) | Outbound::CloseAt(..) => Err(Gone),
                _ => Ok(()),
            };
        }
        let control = self.control.clone();
        let handed_over = std::time::Instant::now();
        let sent = control.unless_aborted(self.write(&queued.frame)).await;
        match sent {
            Some(Ok(())) => {
                if let Some(ticket) = &queued.ticket {
                    ticket.deliver(handed_over);
                }
                Ok(())
            }
            Some(Err(Gone)) | None => Err(Gone),
        }
    }

    /// Writes one frame to the session, counting and recording what carries text.
    async fn write(&mut self, frame: &Outbound) -> Result<(), Gone> {
        let recorded: Option<std::borrow::Cow<'_, str>> = match frame {
            Outbound::Data(text) => {
                self.data_sent += 1;
                let binary = self.binary_every.is_some_and(|n| self.data_sent.is_multiple_of(n));
                if binary {
                    self.session.binary(Bytes::copy_from_slice(text.as_bytes())).await
                } else {
                    self.session.text(&**text).await
                }
                .map_err(|_| Gone)?;
                Some((&**text).into())
            }
            Outbound::Control(text) => {
                self.session.text(&**text).await.map_err(|_| Gone)?;
                Some((&**text).into())
            }
            Outbound::Fault(FaultFrame::Text(text)) => {
                self.session.text(text.as_str()).await.map_err(|_| Gone)?;
                Some(text.as_str().into())
            }
            Outbound::Fault(FaultFrame::Binary(bytes)) => {
                self.session.binary(Bytes::copy_from_slice(bytes)).await.map_err(|_| Gone)?;
                Some(String::from_utf8_lossy(bytes))
            }
            Outbound::Ping => {
                self.session.ping(b"").await.map_err(|_| Gone)?;
                None
            }
            Outbound::Pong(payload) => {
                self.session.pong(payload).await.map_err(|_| Gone)?;
                None
            }
            Outbound::Close(reason) => {
                let _ = self.session.clone().close(reason.clone()).await;
                return Err(Gone);
            }
            Outbound::CloseAt(_, reason) => {
                let _ = self.session.clone().close(Some(reason.clone())).await;
                return Err(Gone);
            }
            // Played frame by frame by `Writer::stream`, never written as one.
            Outbound::Stream(_) => None,
        };
        if let Some(text) = recorded {
            self.outlet.sent(&text);
        }
        Ok(())
    }

    /// Plays a [`FrameStream`]: every frame straight to the session, paced, until the
    /// frames run out or the socket is dropped, stalled or gone. A frame due while the
    /// client is not reading waits (no loss); a late writer sends everything due at once,
    /// so the long-run rate holds. The report goes back on the stream's `done` channel.
    async fn stream(&mut self, stream: FrameStream) -> Result<(), Gone> {
        let FrameStream { frames, rate, done } = stream;
        let mut report = StreamReport { frames: 0, first_sent: None, last_sent: None, interrupted: false };
        let control = self.control.clone();
        let started = Instant::now();
        let mut result = Ok(());
        for frame in frames {
            if rate > 0 {
                let due = started + Duration::from_secs_f64(report.frames as f64 / f64::from(rate));
                if due > Instant::now()
                    && control.unless_aborted(tokio::time::sleep_until(due)).await.is_none()
                {
                    result = Err(Gone);
                    break;
                }
            }
            if control.is_stalled() {
                break;
            }
            let at = std::time::Instant::now();
            match control.unless_aborted(self.session.text(&*frame)).await {
                Some(Ok(())) => {}
                Some(Err(_)) | None => {
                    result = Err(Gone);
                    break;
                }
            }
            self.outlet.sent(&frame);
            report.frames += 1;
            report.first_sent.get_or_insert(at);
            report.last_sent = Some(at);
        }
        report.interrupted = result.is_err() || control.is_stalled();
        let _ = done.send(report);
        result
    }

    /// Sends the held data frames in a shuffled order.
    async fn release(&mut self, held: &mut Vec<Queued>, rng: &mut ChaCha8Rng) -> Result<(), Gone> {
        held.shuffle(rng);
        for queued in held.drain(..) {
            self.send(queued).await?;
        }
        Ok(())
    }
}

/// Why the write loop woke up.
enum Wake {
    Frame(Option<Queued>),
    Deadline,
    Abort,
}

/// The next frame, the deadline (held frames due, a scheduled close), or a drop.
async fn next_wake(control: &Control, rx: &mut mpsc::Receiver<Queued>, deadline: Option<Instant>) -> Wake {
    let aborted = pin!(control.abort.notified());
    if control.is_aborted() {
        return Wake::Abort;
    }
    let timer = pin!(async move {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => pending().await,
        }
    });
    match select(select(pin!(rx.recv()), timer), aborted).await {
        Either::Left((Either::Left((frame, _)), _)) => Wake::Frame(frame),
        Either::Left((Either::Right(((), _)), _)) => Wake::Deadline,
        Either::Right(_) => Wake::Abort,
    }
}

async fn write_loop(mut writer: Writer, mut rx: mpsc::Receiver<Queued>, options: WriterOptions) {
    let control = writer.control.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut held: Vec<Queued> = Vec::with_capacity(REORDER_WINDOW);
    let mut release_at = Instant::now();
    let mut close_at: Option<(Instant, CloseReason)> = None;
    loop {
        let release_deadline = (!held.is_empty()).then_some(release_at);
        let close_deadline = close_at.as_ref().map(|(at, _)| *at);
        let deadline = match (release_deadline, close_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let result = match next_wake(&control, &mut rx, deadline).await {
            // Dropping the session without a Close frame ends the connection after what
            // was written so far; dropping `rx` and `held` loses everything else.
            Wake::Abort => return,
            Wake::Deadline => {
                let now = Instant::now();
                match close_at.take() {
                    Some((at, reason)) if now >= at => match writer.release(&mut held, &mut rng).await {
                        Ok(()) => writer.send(queued(Outbound::Close(Some(reason)))).await,
                        Err(gone) => Err(gone),
                    },
                    not_yet => {
                        close_at = not_yet;
                        writer.release(&mut held, &mut rng).await
                    }
                }
            }
            Wake::Frame(None) => {
                // Every sender is gone: nobody can publish to this socket any more.
                let _ = writer.release(&mut held, &mut rng).await;
                if !control.is_stalled() {
                    let _ = writer.session.close(None).await;
                }
                return;
            }
            Wake::Frame(Some(queued)) => match queued.frame {
                Outbound::Data(_) if options.reorder => {
                    if held.is_empty() {
                        release_at = Instant::now() + MAX_HOLD;
                    }
                    held.push(queued);
                    if held.len() >= REORDER_WINDOW {
                        writer.release(&mut held, &mut rng).await
                    } else {
                        Ok(())
                    }
                }
                Outbound::CloseAt(at, ref reason) => {
                    let at = Instant::from_std(at);
                    if close_at.as_ref().is_none_or(|(earlier, _)| at < *earlier) {
                        close_at = Some((at, reason.clone()));
                    }
                    Ok(())
                }
                Outbound::Close(_) => match writer.release(&mut held, &mut rng).await {
                    Ok(()) => writer.send(queued).await,
                    Err(gone) => Err(gone),
                },
                Outbound::Stream(stream) => match writer.release(&mut held, &mut rng).await {
                    Ok(()) => writer.stream(stream).await,
                    Err(gone) => Err(gone),
                },
                _ => writer.send(queued).await,
            },
        };
        if result.is_err() {
            // Dropping `rx` (and `held`) releases every frame still queued for this socket.
            return;
        }
    }
}

/// A frame of the writer's own, outside any queue.
fn queued(frame: Outbound) -> Queued {
    Queued { frame, ticket: None, _pending: None }
}

/// A socket with no session behind it: the test plays the writer.
#[cfg(test)]
pub(crate) fn test_socket(outlet: &Arc<Outlet>) -> (SocketTx, TestWriter) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let socket = SocketTx { tx, outlet: outlet.clone(), control: Arc::new(Control::default()) };
    (socket, TestWriter(rx))
}

#[cfg(test)]
pub(crate) struct TestWriter(mpsc::Receiver<Queued>);

#[cfg(test)]
impl TestWriter {
    /// Takes every queued frame and writes it (`deliver`) or loses it; returns how many.
    pub(crate) fn drain(&mut self, deliver: bool) -> usize {
        let mut taken = 0;
        while let Ok(queued) = self.0.try_recv() {
            if deliver {
                if let Some(ticket) = &queued.ticket {
                    ticket.deliver(std::time::Instant::now());
                }
            }
            taken += 1;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_hides_its_conversation_only_when_owed_and_never_delivered() {
        let outlet = Arc::new(Outlet::new(None).unwrap());
        drop(Ticket::new(&outlet, "nobody-owed", None));
        let owed = Ticket::new(&outlet, "lost", None);
        owed.owe();
        drop(owed);
        let (socket, mut writer) = test_socket(&outlet);
        let delivered = Ticket::new(&outlet, "delivered", None);
        assert!(socket.offer_data("frame".into(), &delivered));
        assert!(socket.offer_data("again".into(), &delivered));
        drop(delivered);
        assert_eq!(outlet.pending(), 2);
        assert_eq!(writer.drain(true), 2);
        assert_eq!(outlet.pending(), 0);
        let pending_loss = Ticket::new(&outlet, "queued then lost", None);
        socket.offer_data("frame".into(), &pending_loss);
        drop(pending_loss);
        assert_eq!(outlet.hidden(), BTreeSet::from(["lost".to_owned()]), "still queued: not settled");
        writer.drain(false);
        let hidden: Vec<String> = outlet.hidden().into_iter().collect();
        assert_eq!(hidden, ["lost", "queued then lost"]);
    }
}
