//! Settings a download carries at its end, so that a customer runs the host with no arguments:
//! the relay's address and certificate fingerprint, as JSON, then its length (u32, little
//! endian) and [`MAGIC`]. Executables ignore bytes after their last section, so the program
//! runs unchanged; the host reads its own file's tail ([`tail_len`]) at start.

use serde::{Deserialize, Serialize};

/// The last 8 bytes of a download with settings.
pub const MAGIC: &[u8; 8] = b"TETHERCF";
/// Bytes after the settings: their length and [`MAGIC`].
pub const FOOTER: usize = 12;
/// Longest settings accepted.
pub const MAX_SETTINGS: usize = 4096;

/// What a download carries.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// `HOST:PORT` of the relay (UDP).
    pub relay: String,
    /// SHA-256 of its certificate, hex.
    pub fingerprint: String,
}

/// The bytes to append to an executable.
pub fn trailer(e: &Embedded) -> Vec<u8> {
    let mut out = serde_json::to_vec(e).unwrap_or_default();
    let len = out.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// From a file's last [`FOOTER`] bytes: the length of the settings before them, if the file
/// carries any.
pub fn tail_len(footer: &[u8]) -> Option<usize> {
    let footer: &[u8; FOOTER] = footer.try_into().ok()?;
    if &footer[4..] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) as usize;
    (1..=MAX_SETTINGS).contains(&len).then_some(len)
}

/// Reads settings bytes (the `len` bytes before the footer).
pub fn parse(settings: &[u8]) -> Option<Embedded> {
    serde_json::from_slice(settings).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_reads_back_and_junk_does_not() {
        let e = Embedded {
            relay: "relay.example:4433".into(),
            fingerprint: "ab".repeat(32),
        };
        let mut file = b"\x7fELF...program...".to_vec();
        file.extend(trailer(&e));
        let len = tail_len(&file[file.len() - FOOTER..]).expect("settings");
        let start = file.len() - FOOTER - len;
        assert_eq!(parse(&file[start..file.len() - FOOTER]), Some(e));
        assert_eq!(tail_len(b"no settings here"), None);
        let mut huge = (u32::MAX).to_le_bytes().to_vec();
        huge.extend_from_slice(MAGIC);
        assert_eq!(tail_len(&huge), None);
    }
}
