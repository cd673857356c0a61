//! Moving frames over a byte stream: a 4-byte big-endian length, then the
//! frame. The length is checked against `FRAME_BYTES_MAX` before anything
//! is allocated.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use crate::constants::FRAME_BYTES_MAX;

/// Why a frame could not be read off the stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFrameError {
    #[error("frame of {0} bytes exceeds the limit")]
    TooLong(usize),
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

/// Writes one length-prefixed frame and flushes.
pub fn write_frame(stream: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    assert!(frame.len() <= FRAME_BYTES_MAX, "sealing an over-long frame");
    let len = u32::try_from(frame.len()).map_err(|_| io::Error::other("frame too long"))?;
    let mut out = Vec::with_capacity(4 + frame.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(frame);
    stream.write_all(&out)?;
    stream.flush()
}

/// Reads one length-prefixed frame.
pub fn read_frame(stream: &mut impl Read) -> Result<Vec<u8>, ReadFrameError> {
    read_frame_at_most(stream, FRAME_BYTES_MAX)
}

/// Reads one length-prefixed frame of at most `max_bytes`.
pub fn read_frame_at_most(
    stream: &mut impl Read,
    max_bytes: usize,
) -> Result<Vec<u8>, ReadFrameError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max_bytes {
        return Err(ReadFrameError::TooLong(len));
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

/// Reads one length-prefixed frame of at most `max_bytes` from `stream`,
/// all of it before `deadline`: each read waits only for the time left, so
/// a peer sending a byte now and then cannot stretch it (the stream's read
/// timeout, which each byte would restart, is left changed).
pub fn read_frame_before(
    stream: &TcpStream,
    max_bytes: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReadFrameError> {
    read_frame_at_most(&mut BeforeDeadline { stream, deadline }, max_bytes)
}

/// A stream whose reads end at a deadline.
struct BeforeDeadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for BeforeDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took too long",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn frames_round_trip_and_long_ones_are_refused_before_allocation() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"abc").unwrap();
        assert_eq!(read_frame(&mut &buf[..]).unwrap(), b"abc");
        let huge = (u32::MAX).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(ReadFrameError::TooLong(_))
        ));
        assert!(matches!(
            read_frame(&mut &buf[..5]),
            Err(ReadFrameError::Io(_))
        ));
    }
}
