//! File transfer and Push URL messages, and the path rules both sides enforce.
//!
//! Each file operation is its own QUIC stream (so the screen and keystrokes never wait behind a
//! file), opened by the agent with `OpenStream::Files`:
//!
//! - browse: `List` → `Listing`;
//! - upload (agent → customer): `Put` → `Ready` (what the receiver already holds of this exact
//!   file, and the BLAKE3 of that prefix) → `Start { from }` → raw bytes → `Done` or `Error`;
//! - download (customer → agent): `Get` → `Meta` → `Ready` → `Start { from }` → raw bytes.
//!
//! The receiver writes into an owner-only temporary file and renames it into place only after the
//! whole file's BLAKE3 matches the sender's; a retry reuses the prefix only if its hash matches
//! the sender's own prefix.

use serde::{Deserialize, Serialize};

/// One entry of a listing.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name (or path relative to the listed folder, in a recursive listing).
    pub name: String,
    /// Whether it is a folder.
    pub dir: bool,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Last modification, seconds since the Unix epoch, when the file system tells.
    pub modified: Option<u64>,
}

/// Messages of a file stream, both directions.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum FileMsg {
    /// List a folder of the customer's (empty: their home folder).
    List {
        /// Absolute path on the customer's computer, or empty.
        path: String,
        /// Every file below, with relative paths, instead of one level.
        recursive: bool,
    },
    /// A listing.
    Listing {
        /// The folder listed, absolute.
        path: String,
        /// Its parent, if any.
        parent: Option<String>,
        /// What it holds.
        entries: Vec<Entry>,
    },
    /// Upload a file into the receiver's download folder.
    Put {
        /// Relative path (folders separated by `/`), checked by [`safe_relative`].
        name: String,
        /// Size in bytes.
        size: u64,
        /// BLAKE3 of the whole file.
        hash: [u8; 32],
    },
    /// Download a file of the customer's.
    Get {
        /// Absolute path on the customer's computer.
        path: String,
    },
    /// What a download will bring.
    Meta {
        /// File name.
        name: String,
        /// Size in bytes.
        size: u64,
        /// BLAKE3 of the whole file.
        hash: [u8; 32],
    },
    /// The receiver holds `have` bytes of this file already, whose BLAKE3 is `prefix_hash`.
    Ready {
        /// Bytes held.
        have: u64,
        /// BLAKE3 of those bytes.
        prefix_hash: [u8; 32],
    },
    /// The sender will send from this offset (the receiver's prefix matched), or 0.
    Start {
        /// First byte sent.
        from: u64,
    },
    /// The file is in place under this name.
    Done {
        /// Where it was saved (relative to the download folder).
        saved_as: String,
    },
    /// Refused or failed, with the reason.
    Error(String),
}

/// Stream reset code for a transfer cancelled on purpose (the partial file is then deleted; any
/// other interruption keeps the verified prefix for a retry).
pub const CANCEL_CODE: u32 = 0x5441;

/// Why a path from the other side was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Empty, or an empty component.
    #[error("empty path component")]
    Empty,
    /// Starts at a root or a drive.
    #[error("absolute paths are not accepted")]
    Absolute,
    /// Contains `..` or `.`.
    #[error("path climbs out of its folder")]
    Traversal,
    /// A Windows device name or a reserved character.
    #[error("reserved name {0:?}")]
    Reserved(String),
    /// Too long or too deep.
    #[error("path too long")]
    TooLong,
}

const DEVICES: &[&str] = &["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];

/// Unicode format characters (general category Cf): invisible, and some of them (the bidi
/// controls) reorder what a person reads, so `invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`.
const FORMAT_CHARS: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is a Unicode format character (see [`FORMAT_CHARS`]).
pub fn is_format_char(c: char) -> bool {
    let c = c as u32;
    FORMAT_CHARS.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
}

/// Whether a name's stem is a Windows device (CON, NUL, COM1, LPT¹, …), whatever its extension.
fn is_device(name: &str) -> bool {
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_uppercase();
    if DEVICES.contains(&stem.as_str()) {
        return true;
    }
    let mut chars = stem.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    // Windows treats the superscript digits ¹ ² ³ as device numbers too.
    (prefix == "COM" || prefix == "LPT")
        && rest.len() == 1
        && (rest[0].is_ascii_digit() || matches!(rest[0], '¹' | '²' | '³'))
}

/// Checks a relative path from the network and returns its components. Rejects absolute paths,
/// drives, `..` and `.`, backslashes, control and format characters (bidi overrides, zero-width
/// characters), characters Windows reserves, device names (CON, NUL, COM1, LPT¹, …, with any
/// extension) and names over 255 bytes.
pub fn safe_relative(path: &str) -> Result<Vec<String>, PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > 4096 {
        return Err(PathError::TooLong);
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(PathError::Absolute);
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 64 {
        return Err(PathError::TooLong);
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            return Err(PathError::Empty);
        }
        if *p == "." || *p == ".." {
            return Err(PathError::Traversal);
        }
        if p.len() > 255 {
            return Err(PathError::TooLong);
        }
        if i == 0 && p.len() >= 2 && p.as_bytes()[1] == b':' {
            return Err(PathError::Absolute);
        }
        if p.chars().any(|c| {
            c.is_control()
                || is_format_char(c)
                || matches!(c, '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
        }) {
            return Err(PathError::Reserved(p.escape_debug().to_string()));
        }
        if p.ends_with(' ') || p.ends_with('.') || is_device(p) {
            return Err(PathError::Reserved(p.escape_debug().to_string()));
        }
        out.push((*p).to_string());
    }
    Ok(out)
}

/// Why a URL cannot be pushed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not http or https.
    #[error("only http and https addresses can be opened, not {0:?}")]
    Scheme(String),
    /// Malformed.
    #[error("that is not a web address")]
    Malformed,
}

/// Checks a URL to push: `http://` or `https://` with a host, no spaces or control characters,
/// at most 2048 bytes. Returns it trimmed.
pub fn check_url(url: &str) -> Result<String, UrlError> {
    let url = url.trim();
    if url.len() > 2048
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || is_format_char(c))
    {
        return Err(UrlError::Malformed);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(match url.split_once(':') {
            Some((s, _))
                if !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                UrlError::Scheme(s.to_ascii_lowercase())
            }
            _ => UrlError::Malformed,
        });
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(UrlError::Scheme(scheme));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with('@') {
        return Err(UrlError::Malformed);
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traversal_and_device_names_are_refused() {
        assert_eq!(
            safe_relative("a/b.txt"),
            Ok(vec!["a".into(), "b.txt".into()])
        );
        for bad in [
            "",
            "/etc/passwd",
            "\\\\server\\x",
            "C:/x",
            "c:x",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "CON",
            "nul.txt",
            "com1",
            "LPT9.log",
            "a\\b",
            "x\u{0}y",
            "trailing.",
            "pipe|",
            "invoice\u{202E}fdp.exe",
            "zero\u{200B}width",
            "bom\u{FEFF}.txt",
            "COM¹",
            "lpt².txt",
            "Com3 .log",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            safe_relative("console.txt").is_ok(),
            "CON only as a whole stem"
        );
        assert!(safe_relative("com10").is_ok());
        assert!(
            safe_relative("été/naïve ☕.txt").is_ok(),
            "ordinary Unicode stays"
        );
    }

    #[test]
    fn only_web_addresses_are_pushed() {
        assert_eq!(
            check_url(" https://example.com/a?b#c "),
            Ok("https://example.com/a?b#c".into())
        );
        assert!(check_url("HTTP://Example.com").is_ok());
        assert_eq!(
            check_url("file:///etc/passwd"),
            Err(UrlError::Scheme("file".into()))
        );
        assert_eq!(
            check_url("javascript:alert(1)"),
            Err(UrlError::Scheme("javascript".into()))
        );
        assert_eq!(check_url("ftp://x"), Err(UrlError::Scheme("ftp".into())));
        assert_eq!(check_url("https://"), Err(UrlError::Malformed));
        assert_eq!(check_url("https://exa mple.com"), Err(UrlError::Malformed));
        assert_eq!(check_url("example.com"), Err(UrlError::Malformed));
        assert_eq!(
            check_url("https://example.com/\u{202E}gpj.exe"),
            Err(UrlError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn accepted_paths_never_climb(s in "[a-zA-Z0-9._/ -]{0,40}") {
            if let Ok(parts) = safe_relative(&s) {
                prop_assert!(parts.iter().all(|p| p != ".." && p != "." && !p.is_empty()));
            }
        }
    }
}
