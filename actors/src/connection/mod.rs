//! The streaming socket's pure parts: where to connect and what to say first
//! ([`Target`]), continuation-frame reassembly, and the liveness facts shared with the
//! HeartbeatActor. The actor that owns the socket is in [`actor`].

pub mod actor;

use crate::wire::Dialect;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where to connect and what to send once connected.
#[derive(Clone)]
pub struct Target {
    /// A channel's `connectUri`, or the analytics-stream URL.
    pub url: String,
    pub dialect: Dialect,
    /// Analytics-stream: the filter message sent after `{"status":"connected"}`.
    pub filter: Option<serde_json::Value>,
}

impl std::fmt::Debug for Target {
    // The connectUri carries the channel id, which grants access to the stream.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("dialect", &self.dialect).finish_non_exhaustive()
    }
}

/// Text or binary, as the first frame of a fragmented message said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Text,
    Binary,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    #[error("fragmented message exceeds {limit} bytes")]
    Oversized { limit: usize },
    #[error("continuation frame without a first frame")]
    Orphan,
}

/// Reassembles RFC 6455 continuation frames (awc hands them over as they come).
#[derive(Debug)]
pub struct Reassembly {
    limit: usize,
    partial: Option<(FrameKind, BytesMut)>,
}

/// One continuation item, mirroring awc's `ws::Item` without depending on it here.
pub enum Fragment {
    First(FrameKind, Bytes),
    Continue(Bytes),
    Last(Bytes),
}

impl Reassembly {
    pub fn new(limit: usize) -> Self {
        Reassembly { limit, partial: None }
    }

    /// Feed one fragment; a whole message comes out after the last one.
    pub fn push(&mut self, fragment: Fragment) -> Result<Option<(FrameKind, Bytes)>, ReassemblyError> {
        match fragment {
            Fragment::First(kind, bytes) => {
                self.partial = Some((kind, BytesMut::from(&bytes[..])));
                self.check()?;
                Ok(None)
            }
            Fragment::Continue(bytes) => {
                self.partial.as_mut().ok_or(ReassemblyError::Orphan)?.1.extend_from_slice(&bytes);
                self.check()?;
                Ok(None)
            }
            Fragment::Last(bytes) => {
                let (kind, mut buffer) = self.partial.take().ok_or(ReassemblyError::Orphan)?;
                buffer.extend_from_slice(&bytes);
                if buffer.len() > self.limit {
                    return Err(ReassemblyError::Oversized { limit: self.limit });
                }
                Ok(Some((kind, buffer.freeze())))
            }
        }
    }

    fn check(&mut self) -> Result<(), ReassemblyError> {
        if self.partial.as_ref().is_some_and(|(_, buffer)| buffer.len() > self.limit) {
            self.partial = None;
            return Err(ReassemblyError::Oversized { limit: self.limit });
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.partial = None;
    }

    /// Bytes held of a message still being reassembled (never more than the limit).
    pub fn held(&self) -> usize {
        self.partial.as_ref().map_or(0, |(_, buffer)| buffer.len())
    }
}

/// Facts about the current socket that the HeartbeatActor reads without a message per
/// frame: which socket generation is open (0 = none) and when the last frame arrived.
#[derive(Debug)]
pub struct Liveness {
    epoch: Instant,
    open_generation: AtomicU64,
    last_frame_ms: AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            epoch: Instant::now(),
            open_generation: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
        }
    }
}

impl Liveness {
    pub fn opened(&self, generation: u64) {
        self.frame_seen();
        self.open_generation.store(generation, Ordering::Release);
    }

    pub fn closed(&self, generation: u64) {
        let _ = self.open_generation.compare_exchange(generation, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn frame_seen(&self) {
        self.last_frame_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// The open socket's generation, if one is open.
    pub fn open_generation(&self) -> Option<u64> {
        match self.open_generation.load(Ordering::Acquire) {
            0 => None,
            generation => Some(generation),
        }
    }

    pub fn since_last_frame(&self) -> Duration {
        let last = Duration::from_millis(self.last_frame_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_in_order() {
        let mut reassembly = Reassembly::new(100);
        assert_eq!(
            reassembly.push(Fragment::First(FrameKind::Text, Bytes::from_static(b"{\"a\""))),
            Ok(None)
        );
        assert_eq!(reassembly.push(Fragment::Continue(Bytes::from_static(b":"))), Ok(None));
        let whole = reassembly.push(Fragment::Last(Bytes::from_static(b"1}"))).unwrap();
        assert_eq!(whole, Some((FrameKind::Text, Bytes::from_static(b"{\"a\":1}"))));
    }

    #[test]
    fn oversized_and_orphan_fragments_are_errors() {
        let mut reassembly = Reassembly::new(4);
        assert_eq!(
            reassembly.push(Fragment::Continue(Bytes::from_static(b"x"))),
            Err(ReassemblyError::Orphan)
        );
        reassembly.push(Fragment::First(FrameKind::Binary, Bytes::from_static(b"abc"))).unwrap();
        assert_eq!(
            reassembly.push(Fragment::Continue(Bytes::from_static(b"de"))),
            Err(ReassemblyError::Oversized { limit: 4 })
        );
        assert_eq!(reassembly.push(Fragment::Last(Bytes::from_static(b"f"))), Err(ReassemblyError::Orphan));
    }

    #[test]
    fn liveness_tracks_the_open_generation_only() {
        let liveness = Liveness::default();
        assert_eq!(liveness.open_generation(), None);
        liveness.opened(3);
        liveness.closed(2); // a stale close from an older socket changes nothing
        assert_eq!(liveness.open_generation(), Some(3));
        liveness.closed(3);
        assert_eq!(liveness.open_generation(), None);
    }
}
