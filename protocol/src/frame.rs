//! Length-prefixed frames: the body length as an unsigned LEB128 varint (seven bits a byte, least
//! significant first, one to four bytes) followed by a postcard body. A keystroke's screen update
//! of 40 bytes takes one byte of prefix, not four.
//!
//! Every decoder has a hard maximum frame size. The size is checked as soon as the header is
//! complete, before anything is buffered, so an oversized or garbage length costs nothing.

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
/// Most bytes a length prefix takes (28 bits of length: 256 MiB, above every limit).
pub const MAX_HEADER_LEN: usize = 4;

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
    /// The length prefix runs past its four bytes or is not in its shortest form.
    #[error("malformed length prefix")]
    BadHeader,
}

/// Encodes `msg` as one frame (header and body).
pub fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    // Sizing first costs a walk of the message but no copy of its bytes (a photo's are megabytes).
    let len = postcard::experimental::serialized_size(msg)?;
    if len > max || len >= 1 << (7 * MAX_HEADER_LEN) {
        return Err(FrameError::Oversized { len, max });
    }
    let mut out = Vec::with_capacity(header_len(len) + len);
    let mut rest = len;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
    Ok(postcard::to_extend(msg, out)?)
}

/// How many bytes the length prefix of a `len`-byte body takes.
pub fn header_len(len: usize) -> usize {
    let bits = usize::BITS - len.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

/// Reads a length prefix from the start of `bytes`, checking it against `max`: the body length
/// and the prefix's own length, or `Ok(None)` while the prefix is incomplete.
pub fn parse_header(bytes: &[u8], max: usize) -> Result<Option<(usize, usize)>, FrameError> {
    let mut len = 0usize;
    for (i, &b) in bytes.iter().take(MAX_HEADER_LEN).enumerate() {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // One length, one encoding: a last byte of zero could have been left out.
            if b == 0 && i > 0 {
                return Err(FrameError::BadHeader);
            }
            if len > max {
                return Err(FrameError::Oversized { len, max });
            }
            return Ok(Some((len, i + 1)));
        }
    }
    if bytes.len() >= MAX_HEADER_LEN {
        return Err(FrameError::BadHeader);
    }
    Ok(None)
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
        let Some((len, head)) = parse_header(&self.buf, self.max)? else {
            return Ok(None);
        };
        if self.buf.len() < head + len {
            return Ok(None);
        }
        let body = self.buf[head..head + len].to_vec();
        self.buf.drain(..head + len);
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
        d.push(&[0xe8, 0x07]);
        assert!(matches!(
            d.next_body(),
            Err(FrameError::Oversized { len: 1000, max: 16 })
        ));
    }

    #[test]
    fn length_prefixes_are_short_canonical_and_bounded() {
        for (len, head) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (1 << 21, 4),
        ] {
            let body = vec![7u8; len];
            let frame = encode(&serde_bytes::ByteBuf::from(body), usize::MAX).expect("encode");
            // postcard adds its own varint length to the byte string.
            let inner = len + header_len(len);
            assert_eq!(frame.len(), header_len(inner) + inner);
            assert_eq!(header_len(len), head);
            assert_eq!(
                parse_header(&frame, usize::MAX).expect("parse"),
                Some((inner, header_len(inner)))
            );
        }
        // Incomplete, too long, and not in the shortest form.
        assert_eq!(
            parse_header(&[0x80, 0x80], usize::MAX).expect("parse"),
            None
        );
        assert!(matches!(
            parse_header(&[0x80; 4], usize::MAX),
            Err(FrameError::BadHeader)
        ));
        assert!(matches!(
            parse_header(&[0x85, 0x00], usize::MAX),
            Err(FrameError::BadHeader)
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
