//! The streaming socket's pure part: continuation-frame reassembly. The actor that owns
//! the socket is in [`actor`]; where it connects ([`crate::control::Target`]) comes with
//! the `Connect` message, and what it tells the HeartbeatActor without a message per frame
//! is [`crate::health::Liveness`].

pub mod actor;

use bytes::{Bytes, BytesMut};

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
}
