//! Session keys and the rules that guard them, as pure functions and state machines.
//!
//! A session key is a 9-digit PIN with an expiry. It is single-use, and guessing is limited twice
//! over:
//! - each source (an IPv4 address, all of loopback as one, or an IPv6 /64) may fail only
//!   [`SOURCE_MAX_FAILURES`] times per [`SOURCE_WINDOW`] ([`AttemptLimiter`]);
//! - when wrong guesses from everywhere together exceed [`GUESS_ALERT_PER_WINDOW`] per
//!   [`GUESS_WINDOW`], joins slow down ([`GuessRate::delay`]) and the relay raises an alert.
//!
//! A wrong PIN names no key, so no key is ever disabled by guesses: nobody can stop another
//! customer's key by guessing wrong.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::msg::Refusal;

/// Digits in a PIN.
pub const PIN_DIGITS: usize = 9;
/// Failures a source address may have within [`SOURCE_WINDOW`].
pub const SOURCE_MAX_FAILURES: u32 = 20;
/// The window of the per-source limiter.
pub const SOURCE_WINDOW: Duration = Duration::from_secs(600);
/// Default validity of a key.
pub const DEFAULT_KEY_TTL: Duration = Duration::from_secs(30 * 60);
/// Longest validity an agent may ask for.
pub const MAX_KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most keys an agent may have live at once.
pub const MAX_LIVE_KEYS_PER_AGENT: u32 = 50;
/// Most live keys a team may have (a team key may be handed to many customers at once).
pub const MAX_LIVE_KEYS_PER_TEAM: u32 = 2000;
/// The window over which wrong guesses from everywhere are counted.
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// Wrong guesses per [`GUESS_WINDOW`], from everywhere together, above which joins slow down.
pub const GUESS_ALERT_PER_WINDOW: usize = 60;
/// The longest a join waits while guessing is going on.
pub const MAX_GUESS_DELAY: Duration = Duration::from_secs(2);

/// Makes a PIN from 8 bytes of CSPRNG output, without modulo bias.
///
/// Returns `None` for the rare inputs that would bias the result; draw again.
pub fn pin_from_random(bytes: [u8; 8]) -> Option<String> {
    const SPACE: u64 = 1_000_000_000;
    let v = u64::from_le_bytes(bytes);
    let limit = u64::MAX - (u64::MAX % SPACE);
    (v < limit).then(|| format!("{:09}", v % SPACE))
}

/// Characters in a ticket (lowercase base32: 100 random bits).
pub const TICKET_CHARS: usize = 20;
/// The alphabet of tickets.
const TICKET_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Longest agent login or team name a help link may carry.
pub const MAX_LINK_NAME: usize = 64;

/// What a customer can start a session with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A session key an agent made: 9 digits, or the session URL `…/s/PIN`.
    Pin(String),
    /// A one-time ticket the portal made from the issue form or a help link: 20 lowercase
    /// base32 characters, or the ticket URL `…/k/TICKET`.
    Ticket(String),
    /// A help link into an agent's personal queue, `…/a/LOGIN`.
    Agent(String),
    /// A help link into a team's queue, `…/t/TEAM`.
    Team(String),
}

impl KeyRef {
    /// The secret that names a key row (PINs and tickets); help links name none.
    pub fn secret(&self) -> Option<&str> {
        match self {
            KeyRef::Pin(s) | KeyRef::Ticket(s) => Some(s),
            KeyRef::Agent(_) | KeyRef::Team(_) => None,
        }
    }
}

/// Whether `s` is a ticket.
pub fn is_ticket(s: &str) -> bool {
    s.len() == TICKET_CHARS && s.bytes().all(|b| TICKET_ALPHABET.contains(&b))
}

/// Whether `s` is a PIN.
pub fn is_pin(s: &str) -> bool {
    s.len() == PIN_DIGITS && s.bytes().all(|b| b.is_ascii_digit())
}

/// Makes a ticket from 20 random bytes (5 bits of each).
pub fn ticket_from_random(bytes: [u8; TICKET_CHARS]) -> String {
    bytes
        .iter()
        .map(|b| TICKET_ALPHABET[usize::from(b & 31)] as char)
        .collect()
}

/// Decodes `%XX` escapes of a URL path segment; `None` if it is not valid UTF-8 or escaping.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether two secrets are equal, in a time that does not depend on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A help link's name from its URL path segment: decoded, not empty, short, no control
/// characters or slashes.
pub fn link_name(s: &str) -> Result<String, Refusal> {
    let name = percent_decode(s).ok_or(Refusal::KeyMalformed)?;
    let ok = !name.trim().is_empty()
        && name.chars().count() <= MAX_LINK_NAME
        && !name.chars().any(|c| c.is_control() || c == '/');
    if ok {
        Ok(name)
    } else {
        Err(Refusal::KeyMalformed)
    }
}

/// Reads what a customer typed, pasted, or downloaded: 9 digits (spaces and dashes ignored), a
/// ticket, or a URL of the portal (`/s/PIN`, `/k/TICKET`, `/a/LOGIN`, `/t/TEAM`, with any query
/// or fragment ignored).
pub fn parse_ref(input: &str) -> Result<KeyRef, Refusal> {
    let input = input.trim();
    if input.contains("://") {
        let path = input.split(['?', '#']).next().unwrap_or("");
        let path = path.trim_end_matches('/');
        let (rest, last) = path.rsplit_once('/').ok_or(Refusal::KeyMalformed)?;
        let (_, kind) = rest.rsplit_once('/').ok_or(Refusal::KeyMalformed)?;
        return match kind {
            "s" if is_pin(last) => Ok(KeyRef::Pin(last.to_string())),
            "k" if is_ticket(last) => Ok(KeyRef::Ticket(last.to_string())),
            "a" => Ok(KeyRef::Agent(link_name(last)?)),
            "t" => Ok(KeyRef::Team(link_name(last)?)),
            _ => Err(Refusal::KeyMalformed),
        };
    }
    if is_ticket(input) {
        return Ok(KeyRef::Ticket(input.to_string()));
    }
    let digits: String = input.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if is_pin(&digits) {
        Ok(KeyRef::Pin(digits))
    } else {
        Err(Refusal::KeyMalformed)
    }
}

/// Extracts the PIN from what a customer typed: 9 digits (spaces and dashes ignored) or a
/// session URL ending in `/s/PIN`.
pub fn parse_key(input: &str) -> Result<String, Refusal> {
    match parse_ref(input)? {
        KeyRef::Pin(pin) => Ok(pin),
        _ => Err(Refusal::KeyMalformed),
    }
}

/// The key a downloaded host carries in its file name, as the portal names it:
/// `tether-host-KEY` (an optional `.exe`, and a ` (1)` a browser adds, are ignored).
pub fn key_from_file_name(name: &str) -> Option<KeyRef> {
    let stem = name.strip_suffix(".exe").unwrap_or(name);
    let stem = stem.split(" (").next().unwrap_or(stem);
    let key = stem.strip_prefix("tether-host-")?;
    if is_pin(key) {
        Some(KeyRef::Pin(key.to_string()))
    } else if is_ticket(key) {
        Some(KeyRef::Ticket(key.to_string()))
    } else {
        None
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
}

impl KeyState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Live => "live",
            KeyState::Used => "used",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(KeyState::Live),
            "used" => Some(KeyState::Used),
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
        KeyState::Live if now >= record.expires_at => Err(Refusal::KeyExpired),
        KeyState::Live => Ok(()),
    }
}

/// The part of an address that limits count against: an IPv4 address (all of 127.0.0.0/8 as one,
/// since it is one machine), or an IPv6 /64 (what one subscriber is given, so rotating addresses
/// inside it does not help); IPv4-mapped IPv6 counts as IPv4.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => source_key(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Counts failures per source (see [`source_key`]) in a sliding window. Time is passed in.
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
        let Some(list) = self.failures.get_mut(&source_key(source)) else {
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
        let list = self.failures.entry(source_key(source)).or_default();
        list.retain(|t| now.saturating_sub(*t) < SOURCE_WINDOW);
        list.push(now);
    }

    /// Takes back the newest failure of `source`: an attempt counted before it was checked turned
    /// out to succeed.
    pub fn forgive(&mut self, source: IpAddr) {
        let key = source_key(source);
        if let Some(list) = self.failures.get_mut(&key) {
            list.pop();
            if list.is_empty() {
                self.failures.remove(&key);
            }
        }
    }

    /// Sources with failures remembered now.
    pub fn tracked(&self) -> usize {
        self.failures.len()
    }

    /// Forgets sources with no recent failure, to keep memory bounded.
    pub fn prune(&mut self, now: Duration) {
        self.failures.retain(|_, list| {
            list.retain(|t| now.saturating_sub(*t) < SOURCE_WINDOW);
            !list.is_empty()
        });
    }
}

/// Wrong guesses from all sources together, in a sliding window. Time is passed in.
#[derive(Debug, Default)]
pub struct GuessRate {
    guesses: VecDeque<Duration>,
    alerted_at: Option<Duration>,
}

impl GuessRate {
    /// No guesses yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn trim(&mut self, now: Duration) {
        while let Some(t) = self.guesses.front() {
            if now.saturating_sub(*t) >= GUESS_WINDOW {
                self.guesses.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records a wrong guess. Returns the number in the window when an alert is due (the rate
    /// just went over the threshold, at most once per window).
    pub fn record(&mut self, now: Duration) -> Option<usize> {
        self.trim(now);
        self.guesses.push_back(now);
        let n = self.guesses.len();
        let due = self
            .alerted_at
            .is_none_or(|t| now.saturating_sub(t) >= GUESS_WINDOW);
        if n > GUESS_ALERT_PER_WINDOW && due {
            self.alerted_at = Some(now);
            Some(n)
        } else {
            None
        }
    }

    /// How long a join waits before its key is checked: nothing normally; while the rate is over
    /// the threshold, 250 ms more for every further threshold's worth, up to [`MAX_GUESS_DELAY`].
    /// The relay makes such joins wait one after another, so guessing slows to a trickle.
    pub fn delay(&mut self, now: Duration) -> Duration {
        self.trim(now);
        let n = self.guesses.len();
        if n <= GUESS_ALERT_PER_WINDOW {
            return Duration::ZERO;
        }
        let steps = (n / GUESS_ALERT_PER_WINDOW) as u32;
        (Duration::from_millis(250) * steps).min(MAX_GUESS_DELAY)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn portal_addresses_and_tickets_parse() {
        let t = "abcdefghijklmnopqrs2";
        assert_eq!(parse_ref(t), Ok(KeyRef::Ticket(t.into())));
        assert_eq!(
            parse_ref(&format!("https://r.example/k/{t}")),
            Ok(KeyRef::Ticket(t.into()))
        );
        assert_eq!(
            parse_ref("https://r.example/s/123456789?x=1"),
            Ok(KeyRef::Pin("123456789".into()))
        );
        assert_eq!(
            parse_ref("https://r.example/a/alice"),
            Ok(KeyRef::Agent("alice".into()))
        );
        assert_eq!(
            parse_ref("https://r.example:8443/t/Front%20Desk/"),
            Ok(KeyRef::Team("Front Desk".into()))
        );
        assert_eq!(
            parse_ref("https://r.example/t/a%2Fb"),
            Err(Refusal::KeyMalformed)
        );
        assert_eq!(
            parse_ref("https://r.example/t/%ZZ"),
            Err(Refusal::KeyMalformed)
        );
        assert_eq!(
            parse_ref("https://r.example/x/alice"),
            Err(Refusal::KeyMalformed)
        );
        assert_eq!(
            parse_ref("https://r.example/k/short"),
            Err(Refusal::KeyMalformed)
        );
        assert_eq!(parse_key(t), Err(Refusal::KeyMalformed));
        assert_eq!(
            key_from_file_name("tether-host-123456789 (1)"),
            Some(KeyRef::Pin("123456789".into()))
        );
        assert_eq!(
            key_from_file_name(&format!("tether-host-{t}.exe")),
            Some(KeyRef::Ticket(t.into()))
        );
        assert_eq!(key_from_file_name("tether-host"), None);
        assert!(is_ticket(&ticket_from_random([255; TICKET_CHARS])));
    }

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
    }

    #[test]
    fn sources_are_counted_by_machine_and_by_ipv6_subnet() {
        let mut l = AttemptLimiter::new();
        let t0 = Duration::from_secs(1000);
        // Rotating through 127.0.0.x or through a /64 is still one source.
        for i in 0..SOURCE_MAX_FAILURES {
            l.fail(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8)), t0);
        }
        assert!(l.check("127.9.9.9".parse().expect("ip"), t0).is_err());
        for i in 0..SOURCE_MAX_FAILURES {
            l.fail(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i as u16, 7, 8, 9)),
                t0,
            );
        }
        assert!(
            l.check("2001:db8:1:2:ffff::1".parse().expect("ip"), t0)
                .is_err()
        );
        assert!(l.check("2001:db8:1:3::1".parse().expect("ip"), t0).is_ok());
        // IPv4-mapped IPv6 is the IPv4 address.
        assert_eq!(
            source_key("::ffff:192.0.2.7".parse().expect("ip")),
            "192.0.2.7".parse::<IpAddr>().expect("ip")
        );
        assert!(l.check("192.0.2.8".parse().expect("ip"), t0).is_ok());
        // Pruning forgets what is old.
        assert_eq!(l.tracked(), 2);
        l.prune(t0 + SOURCE_WINDOW);
        assert_eq!(l.tracked(), 0);
        // A failure counted up front is taken back on success.
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        l.fail(a, t0);
        l.forgive(a);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn guessing_from_everywhere_slows_joins_and_raises_one_alert_a_window() {
        let mut g = GuessRate::new();
        let t0 = Duration::from_secs(5000);
        for i in 0..GUESS_ALERT_PER_WINDOW {
            assert_eq!(g.record(t0 + Duration::from_millis(i as u64)), None);
        }
        assert_eq!(g.delay(t0), Duration::ZERO);
        assert_eq!(g.record(t0), Some(GUESS_ALERT_PER_WINDOW + 1));
        assert_eq!(g.record(t0), None, "one alert per window");
        assert_eq!(g.delay(t0), Duration::from_millis(250));
        for _ in 0..GUESS_ALERT_PER_WINDOW * 20 {
            g.record(t0);
        }
        assert_eq!(g.delay(t0), MAX_GUESS_DELAY);
        // A quiet minute later, joins are not slowed any more.
        assert_eq!(
            g.delay(t0 + GUESS_WINDOW + Duration::from_secs(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn limiter_blocks_a_source_then_forgets_it() {
        let mut l = AttemptLimiter::new();
        let a: IpAddr = [192, 0, 2, 2].into();
        let b: IpAddr = [192, 0, 2, 3].into();
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
