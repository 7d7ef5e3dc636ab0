//! Where the relay is: from the command line (or its environment variables), or from a
//! `tether-host.json` beside the executable, so that a download made for a support desk runs
//! without the customer typing a server address or a fingerprint.
//!
//! ```json
//! { "relay": "relay.example.com:4433", "fingerprint": "64 hex digits" }
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::failure::Failure;

/// The name of the settings file looked for beside the executable.
pub const SETTINGS_FILE: &str = "tether-host.json";

/// The relay to connect to, pinned.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT`.
    pub relay: String,
    /// How the relay's certificate is checked: pinned, or by the authorities given.
    pub trust: tether_net::Trust,
}

/// The settings file's contents.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `HOST:PORT` of the relay.
    pub relay: Option<String>,
    /// Its certificate's fingerprint.
    pub fingerprint: Option<String>,
}

/// Why the settings file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// It is not valid JSON of the expected shape.
    #[error("{path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// It cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Settings {
    /// Reads a settings file; a missing file is empty settings.
    pub fn read(path: &Path) -> Result<Settings, SettingsError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SettingsError::Invalid {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(SettingsError::Unreadable {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

/// The settings file beside the running executable.
pub fn settings_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(SETTINGS_FILE))
}

/// The key in this program's file name, as the portal names its downloads
/// (`tether-host-123456789`, `tether-host-TICKET.exe`).
pub fn key_from_own_name() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_str()?;
    tether_protocol::pairing::key_from_file_name(name).and_then(|k| k.secret().map(str::to_string))
}

/// The settings appended to this program's file by the portal, if any.
pub fn embedded_settings() -> Option<Settings> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    use tether_protocol::embed;
    let mut f = std::fs::File::open(std::env::current_exe().ok()?).ok()?;
    let size = f.metadata().ok()?.len();
    if size < embed::FOOTER as u64 {
        return None;
    }
    let mut footer = [0u8; embed::FOOTER];
    f.seek(SeekFrom::End(-(embed::FOOTER as i64))).ok()?;
    f.read_exact(&mut footer).ok()?;
    let len = embed::tail_len(&footer)?;
    let start = size.checked_sub((embed::FOOTER + len) as u64)?;
    let mut bytes = vec![0u8; len];
    f.seek(SeekFrom::Start(start)).ok()?;
    f.read_exact(&mut bytes).ok()?;
    let e = embed::parse(&bytes)?;
    Some(Settings {
        relay: Some(e.relay),
        fingerprint: Some(e.fingerprint),
    })
}

/// Decides the relay from the command line first, then from `file`'s settings.
pub fn resolve(
    relay: Option<String>,
    fingerprint: Option<String>,
    file: Option<&Path>,
) -> Result<Target, Failure> {
    resolve_with(relay, fingerprint, None, None, file)
}

/// Decides the relay from the command line first, then the settings the program carries, then
/// `file`'s.
pub fn resolve_with(
    relay: Option<String>,
    fingerprint: Option<String>,
    authorities: Option<&Path>,
    embedded: Option<Settings>,
    file: Option<&Path>,
) -> Result<Target, Failure> {
    let settings = match (embedded, file) {
        (Some(e), _) => e,
        (None, Some(f)) => Settings::read(f).map_err(|e| Failure::NotConfigured(e.to_string()))?,
        (None, None) => Settings::default(),
    };
    let relay = relay
        .or(settings.relay)
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| Failure::NotConfigured("no relay address".into()))?;
    if let Some(path) = authorities {
        let trust =
            tether_net::Trust::authorities_from_pem(path).map_err(Failure::NotConfigured)?;
        return Ok(Target { relay, trust });
    }
    let fingerprint = fingerprint
        .or(settings.fingerprint)
        .ok_or_else(|| Failure::NotConfigured("no relay fingerprint".into()))?;
    let fingerprint = tether_net::parse_fingerprint(&fingerprint)
        .map_err(|e| Failure::NotConfigured(e.to_string()))?;
    Ok(Target {
        relay,
        trust: tether_net::Trust::Pinned(fingerprint),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_over_the_file_and_the_file_fills_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(SETTINGS_FILE);
        let fp = "ab".repeat(32);
        std::fs::write(
            &file,
            format!(r#"{{"relay": "file.example:4433", "fingerprint": "{fp}"}}"#),
        )
        .expect("write");
        let t = resolve(None, None, Some(&file)).expect("from file");
        assert_eq!(t.relay, "file.example:4433");
        assert!(matches!(t.trust, tether_net::Trust::Pinned(f) if f == [0xab; 32]));
        let t = resolve(Some("cli:1".into()), None, Some(&file)).expect("mixed");
        assert_eq!(t.relay, "cli:1");
        assert!(matches!(
            resolve(None, None, Some(&dir.path().join("missing.json"))),
            Err(Failure::NotConfigured(_))
        ));
        std::fs::write(&file, "{not json").expect("write");
        assert!(matches!(
            resolve(Some("a:1".into()), Some(fp), Some(&file)),
            Err(Failure::NotConfigured(m)) if m.contains("not valid")
        ));
        assert!(matches!(
            resolve(Some("a:1".into()), Some("xyz".into()), None),
            Err(Failure::NotConfigured(m)) if m.contains("64 hex digits")
        ));
    }
}
