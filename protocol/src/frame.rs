//! Length-prefixed frames: a little-endian `u32` body length followed by a postcard body.
//!
//! Every decoder has a hard maximum frame size. The size is checked as soon as the four header
//! bytes are seen, before anything is buffered, so an oversized or garbage length costs nothing.

use serde::{Serialize, de::DeserializeOwned};

/// Largest frame accepted on a control stream (login, keys, session events).
pub const CONTROL_MAX_FRAME: usize = 64 * 1024;
/// Largest frame accepted on an input stream (it carries clipboard text up to 1 MiB).
pub const INPUT_MAX_FRAME: usize = 2 * 1024 * 1024;
/// Largest frame accepted on a media stream (screen updates).
pub const MEDIA_MAX_FRAME: usize = 8 * 1024 * 1024;
/// Largest frame on a file stream (listings of a large folder can be long).
pub const FILES_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Largest frame an agent sends on a file stream (requests, offsets): the host reads no more than
/// this before the customer has allowed anything.
pub const FILE_REQUEST_MAX_FRAME: usize = 64 * 1024;
/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the stream's limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// Announced or encoded body length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The body is not a valid message of the expected type.
    #[error("malformed message: {0}")]
    Malformed(#[from] postcard::Error),
    /// The body decoded, but bytes were left over.
    #[error("malformed message: {0} trailing bytes")]
    Trailing(usize),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
}

/// Encodes `msg` as one frame (header and body).
pub fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; HEADER_LEN];
    let mut out = postcard::to_extend(msg, std::mem::take(&mut out))?;
    let len = out.len() - HEADER_LEN;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::Oversized { len, max })?;
    out[..HEADER_LEN].copy_from_slice(&len32.to_le_bytes());
    Ok(out)
}

/// Reads the body length from a frame header, checking it against `max`.
pub fn body_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    Ok(len)
}

/// Decodes one message from a frame body; the whole body must be consumed.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(FrameError::Trailing(rest.len()));
    }
    Ok(msg)
}

/// A push-style frame decoder for byte streams that arrive in arbitrary pieces.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete frame body, `Ok(None)` if more bytes are needed.
    ///
    /// An oversized length is reported as soon as its header is complete.
    pub fn next_body(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(header) = self.buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = body_len(*header, self.max)?;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(body))
    }

    /// Decodes the next complete message.
    pub fn next_msg<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        self.next_body()?.map(|b| decode_body(&b)).transpose()
    }

    /// Call when the stream has ended: an unfinished frame is an error.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_header_is_refused_before_the_body_arrives() {
        let mut d = FrameDecoder::new(16);
        d.push(&1000u32.to_le_bytes());
        assert!(matches!(
            d.next_body(),
            Err(FrameError::Oversized { len: 1000, max: 16 })
        ));
    }

    #[test]
    fn frames_split_anywhere_reassemble() {
        let a = encode(&("hello".to_string(), 7u32), 1024).expect("encode");
        let b = encode(&("world".to_string(), 9u32), 1024).expect("encode");
        let all = [a, b].concat();
        for cut in 0..all.len() {
            let mut d = FrameDecoder::new(1024);
            d.push(&all[..cut]);
            let mut got: Vec<(String, u32)> = Vec::new();
            while let Some(m) = d.next_msg().expect("decode") {
                got.push(m);
            }
            d.push(&all[cut..]);
            while let Some(m) = d.next_msg().expect("decode") {
                got.push(m);
            }
            assert_eq!(got, vec![("hello".into(), 7), ("world".into(), 9)]);
            d.finish().expect("nothing left over");
        }
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut body = postcard::to_stdvec(&5u8).expect("encode");
        body.push(0);
        assert!(matches!(
            decode_body::<u8>(&body),
            Err(FrameError::Trailing(1))
        ));
    }
}
