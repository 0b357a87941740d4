//! Everything a simulator socket sends goes through here: one bounded queue and one writer
//! task per socket.
//!
//! The publisher (playback, on the caller's runtime) and the socket dialogs (on the HTTP
//! worker) only ever `offer` frames to a [`SocketTx`]; the writer owns the actix-ws
//! [`Session`] and is the single place that applies the delivery faults (reordering within
//! a small window, every n-th data frame as binary), writes the `--record` file and counts
//! frames. A data frame counts as pending from the moment it is queued until it has been
//! sent (or dropped with its socket), which is what [`super::SimHandle::finished`] waits on.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_ws::{CloseReason, Session};
use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;

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
    /// An RFC 6455 ping (the analytics-stream heartbeat).
    Ping,
    /// The answer to a client's RFC 6455 ping.
    Pong(Bytes),
    /// Send held frames, then a Close frame, then stop.
    Close(Option<CloseReason>),
}

/// Counters and the record file, shared by every writer.
pub(crate) struct Outlet {
    pending: AtomicU64,
    frames_sent: AtomicU64,
    record: Option<Mutex<File>>,
}

impl Outlet {
    pub(crate) fn new(record: Option<&Path>) -> io::Result<Self> {
        Ok(Outlet {
            pending: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            record: record.map(File::create).transpose()?.map(Mutex::new),
        })
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
            let _ = record
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(line.as_bytes());
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

struct Queued {
    frame: Outbound,
    _pending: Option<Pending>,
}

/// The sending end of one socket's queue.
#[derive(Clone)]
pub(crate) struct SocketTx {
    tx: mpsc::Sender<Queued>,
    outlet: Arc<Outlet>,
}

impl SocketTx {
    /// Queues a frame without waiting; `false` when the socket is gone or not keeping up.
    pub(crate) fn offer(&self, frame: Outbound) -> bool {
        let pending = matches!(frame, Outbound::Data(_)).then(|| Pending::new(&self.outlet));
        self.tx
            .try_send(Queued {
                frame,
                _pending: pending,
            })
            .is_ok()
    }

    /// Resolves once the writer has stopped (the socket is closed).
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
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
    let writer = Writer {
        session,
        outlet: outlet.clone(),
        binary_every: options.binary_every,
        data_sent: 0,
    };
    actix_rt::spawn(write_loop(writer, rx, options));
    SocketTx { tx, outlet }
}

struct Writer {
    session: Session,
    outlet: Arc<Outlet>,
    binary_every: Option<u64>,
    data_sent: u64,
}

/// The session is closed; the writer stops.
struct Gone;

impl Writer {
    async fn send(&mut self, queued: Queued) -> Result<(), Gone> {
        let sent = match &queued.frame {
            Outbound::Data(text) => {
                self.data_sent += 1;
                let binary = self
                    .binary_every
                    .is_some_and(|n| self.data_sent.is_multiple_of(n));
                let result = if binary {
                    self.session.binary(Bytes::copy_from_slice(text.as_bytes())).await
                } else {
                    self.session.text(&**text).await
                };
                result.map(|()| Some(text))
            }
            Outbound::Control(text) => self.session.text(&**text).await.map(|()| Some(text)),
            Outbound::Ping => self.session.ping(b"").await.map(|()| None),
            Outbound::Pong(payload) => self.session.pong(payload).await.map(|()| None),
            Outbound::Close(reason) => {
                let _ = self.session.clone().close(reason.clone()).await;
                return Err(Gone);
            }
        };
        match sent {
            Ok(Some(text)) => {
                self.outlet.sent(text);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(_) => Err(Gone),
        }
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

async fn write_loop(mut writer: Writer, mut rx: mpsc::Receiver<Queued>, options: WriterOptions) {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut held: Vec<Queued> = Vec::with_capacity(REORDER_WINDOW);
    let mut release_at = Instant::now();
    loop {
        let next = if held.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout_at(release_at, rx.recv()).await {
                Ok(next) => next,
                Err(_elapsed) => {
                    if writer.release(&mut held, &mut rng).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        };
        let Some(queued) = next else {
            // Every sender is gone: nobody can publish to this socket any more.
            let _ = writer.release(&mut held, &mut rng).await;
            let _ = writer.session.close(None).await;
            return;
        };
        let result = match queued.frame {
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
            Outbound::Close(_) => match writer.release(&mut held, &mut rng).await {
                Ok(()) => writer.send(queued).await,
                Err(gone) => Err(gone),
            },
            _ => writer.send(queued).await,
        };
        if result.is_err() {
            // Dropping `rx` (and `held`) releases every frame still queued for this socket.
            return;
        }
    }
}
