//! Session keys and the rules that guard them, as pure functions and state machines.
//!
//! A session key is a 9-digit PIN with an expiry. It is single-use, and it is attempt-limited
//! twice over:
//! - every wrong guess is counted against every key that is live at that moment (any of them could
//!   have been the target), and a key that has seen [`MAX_WRONG_GUESSES`] is burnt, so an attacker
//!   gets at most that many tries at any key during its life;
//! - each source address may fail only [`SOURCE_MAX_FAILURES`] times per [`SOURCE_WINDOW`]
//!   ([`AttemptLimiter`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::msg::Refusal;

/// Digits in a PIN.
pub const PIN_DIGITS: usize = 9;
/// Wrong guesses after which a live key is burnt.
pub const MAX_WRONG_GUESSES: u32 = 10;
/// Failures a source address may have within [`SOURCE_WINDOW`].
pub const SOURCE_MAX_FAILURES: u32 = 20;
/// The window of the per-source limiter.
pub const SOURCE_WINDOW: Duration = Duration::from_secs(600);
/// Default validity of a key.
pub const DEFAULT_KEY_TTL: Duration = Duration::from_secs(30 * 60);
/// Longest validity an agent may ask for.
pub const MAX_KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Makes a PIN from 8 bytes of CSPRNG output, without modulo bias.
///
/// Returns `None` for the rare inputs that would bias the result; draw again.
pub fn pin_from_random(bytes: [u8; 8]) -> Option<String> {
    const SPACE: u64 = 1_000_000_000;
    let v = u64::from_le_bytes(bytes);
    let limit = u64::MAX - (u64::MAX % SPACE);
    (v < limit).then(|| format!("{:09}", v % SPACE))
}

/// Extracts the PIN from what a customer typed: 9 digits (spaces and dashes ignored) or a
/// session URL ending in `/s/PIN`.
pub fn parse_key(input: &str) -> Result<String, Refusal> {
    let input = input.trim();
    let candidate = match input.find("://") {
        Some(_) => {
            let path = input.trim_end_matches('/');
            let (_, last) = path.rsplit_once('/').ok_or(Refusal::KeyMalformed)?;
            let (rest, _) = path.rsplit_once('/').ok_or(Refusal::KeyMalformed)?;
            if !rest.ends_with("/s") {
                return Err(Refusal::KeyMalformed);
            }
            last.to_string()
        }
        None => input.chars().filter(|c| *c != ' ' && *c != '-').collect(),
    };
    if candidate.len() == PIN_DIGITS && candidate.bytes().all(|b| b.is_ascii_digit()) {
        Ok(candidate)
    } else {
        Err(Refusal::KeyMalformed)
    }
}

/// Formats a PIN for people: `123 456 789`.
pub fn display_pin(pin: &str) -> String {
    if pin.len() == PIN_DIGITS {
        format!("{} {} {}", &pin[0..3], &pin[3..6], &pin[6..9])
    } else {
        pin.to_string()
    }
}

/// The life of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Can be used until it expires.
    Live,
    /// A host joined with it.
    Used,
    /// Disabled after too many wrong guesses.
    Burnt,
}

impl KeyState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Live => "live",
            KeyState::Used => "used",
            KeyState::Burnt => "burnt",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(KeyState::Live),
            "used" => Some(KeyState::Used),
            "burnt" => Some(KeyState::Burnt),
            _ => None,
        }
    }
}

/// What the relay knows of a key when someone presents its PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRecord {
    /// Its state.
    pub state: KeyState,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Decides whether a presented key opens a session. `now` is seconds since the Unix epoch.
pub fn check_key(record: Option<KeyRecord>, now: u64) -> Result<(), Refusal> {
    let Some(record) = record else {
        return Err(Refusal::KeyWrong);
    };
    match record.state {
        KeyState::Used => Err(Refusal::KeyUsed),
        KeyState::Burnt => Err(Refusal::KeyBurnt),
        KeyState::Live if now >= record.expires_at => Err(Refusal::KeyExpired),
        KeyState::Live => Ok(()),
    }
}

/// Whether a live key that has now seen `wrong_guesses` must be burnt.
pub fn burns(wrong_guesses: u32) -> bool {
    wrong_guesses >= MAX_WRONG_GUESSES
}

/// Counts failures per source address in a sliding window. Time is passed in.
#[derive(Debug, Default)]
pub struct AttemptLimiter {
    failures: HashMap<IpAddr, Vec<Duration>>,
}

impl AttemptLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks whether `source` may try now; `now` is any monotonic time.
    pub fn check(&mut self, source: IpAddr, now: Duration) -> Result<(), Refusal> {
        let Some(list) = self.failures.get_mut(&source) else {
            return Ok(());
        };
        list.retain(|t| now.saturating_sub(*t) < SOURCE_WINDOW);
        if list.len() < SOURCE_MAX_FAILURES as usize {
            return Ok(());
        }
        let oldest = list.first().copied().unwrap_or(now);
        let retry = SOURCE_WINDOW.saturating_sub(now.saturating_sub(oldest));
        Err(Refusal::RateLimited {
            retry_after_secs: u32::try_from(retry.as_secs().max(1)).unwrap_or(u32::MAX),
        })
    }

    /// Records a failure from `source`.
    pub fn fail(&mut self, source: IpAddr, now: Duration) {
        let list = self.failures.entry(source).or_default();
        list.retain(|t| now.saturating_sub(*t) < SOURCE_WINDOW);
        list.push(now);
    }

    /// Forgets sources with no recent failure, to keep memory bounded.
    pub fn prune(&mut self, now: Duration) {
        self.failures.retain(|_, list| {
            list.retain(|t| now.saturating_sub(*t) < SOURCE_WINDOW);
            !list.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_are_parsed_from_pins_and_urls() {
        assert_eq!(parse_key("123456789"), Ok("123456789".into()));
        assert_eq!(parse_key(" 123 456-789 "), Ok("123456789".into()));
        assert_eq!(
            parse_key("https://relay.example:4433/s/123456789"),
            Ok("123456789".into())
        );
        assert_eq!(
            parse_key("https://relay.example/s/123456789/"),
            Ok("123456789".into())
        );
        assert_eq!(parse_key("12345678"), Err(Refusal::KeyMalformed));
        assert_eq!(parse_key("12345678a"), Err(Refusal::KeyMalformed));
        assert_eq!(
            parse_key("https://relay.example/x/123456789"),
            Err(Refusal::KeyMalformed)
        );
        assert_eq!(parse_key(""), Err(Refusal::KeyMalformed));
    }

    #[test]
    fn key_checks_give_each_reason() {
        let live = KeyRecord {
            state: KeyState::Live,
            expires_at: 100,
        };
        assert_eq!(check_key(Some(live), 99), Ok(()));
        assert_eq!(check_key(Some(live), 100), Err(Refusal::KeyExpired));
        assert_eq!(check_key(None, 0), Err(Refusal::KeyWrong));
        let used = KeyRecord {
            state: KeyState::Used,
            ..live
        };
        assert_eq!(check_key(Some(used), 0), Err(Refusal::KeyUsed));
        let burnt = KeyRecord {
            state: KeyState::Burnt,
            ..live
        };
        assert_eq!(check_key(Some(burnt), 0), Err(Refusal::KeyBurnt));
        assert!(!burns(MAX_WRONG_GUESSES - 1));
        assert!(burns(MAX_WRONG_GUESSES));
    }

    #[test]
    fn limiter_blocks_a_source_then_forgets_it() {
        let mut l = AttemptLimiter::new();
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let t0 = Duration::from_secs(1000);
        for i in 0..SOURCE_MAX_FAILURES {
            assert!(l.check(a, t0).is_ok(), "attempt {i}");
            l.fail(a, t0);
        }
        assert!(matches!(l.check(a, t0), Err(Refusal::RateLimited { .. })));
        assert!(l.check(b, t0).is_ok(), "another source is unaffected");
        assert!(l.check(a, t0 + SOURCE_WINDOW).is_ok());
        l.prune(t0 + SOURCE_WINDOW);
        assert!(l.failures.is_empty());
    }

    proptest! {
        #[test]
        fn pins_are_nine_digits(bytes in any::<[u8; 8]>()) {
            if let Some(pin) = pin_from_random(bytes) {
                prop_assert_eq!(pin.len(), PIN_DIGITS);
                prop_assert_eq!(parse_key(&pin), Ok(pin.clone()));
                prop_assert_eq!(parse_key(&display_pin(&pin)), Ok(pin));
            }
        }
    }
}
