//! Who may try to log in or join, and how fast: per-source failure limits, one password check at
//! a time per source (counted before it runs), and joins slowed while keys are being guessed.
//! Time is passed in.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use tether_protocol::msg::Refusal;
use tether_protocol::pairing::{self, AttemptLimiter, GuessRate, KeyRecord, source_key};

/// The admission rules' state.
#[derive(Debug, Default)]
pub struct Admission {
    joins: AttemptLimiter,
    logins: AttemptLimiter,
    /// Sources with a password check under way.
    checking: HashSet<IpAddr>,
    guesses: GuessRate,
}

impl Admission {
    /// No failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A login attempt from `ip`: refused if the source is over its limit or has a check under
    /// way; otherwise counted as a failure until [`Admission::end_login`] says it succeeded.
    pub fn begin_login(&mut self, ip: IpAddr, now: Duration) -> Result<(), Refusal> {
        self.logins.check(ip, now)?;
        if !self.checking.insert(source_key(ip)) {
            return Err(Refusal::LoginInProgress);
        }
        self.logins.fail(ip, now);
        Ok(())
    }

    /// The password check of `ip` is over; a success forgives the source's failures.
    pub fn end_login(&mut self, ip: IpAddr, ok: bool) {
        self.checking.remove(&source_key(ip));
        if ok {
            self.logins.forgive(ip);
        }
    }

    /// A join attempt from `ip`: refused if the source is over its limit; otherwise how long to
    /// hold it first (one at a time) while keys are being guessed.
    pub fn begin_join(&mut self, ip: IpAddr, now: Duration) -> Result<Duration, Refusal> {
        self.joins.check(ip, now)?;
        Ok(self.guesses.delay(now))
    }

    /// Whether a key found (or not) by its PIN opens a session at `unix`.
    pub fn check_key(&self, record: Option<KeyRecord>, unix: u64) -> Result<(), Refusal> {
        pairing::check_key(record, unix)
    }

    /// The join of `ip` failed with `refusal`: counted against the source, and a wrong key
    /// against the guess rate. Returns the number of wrong keys in the window when it crosses
    /// the alert threshold.
    pub fn join_failed(&mut self, ip: IpAddr, refusal: &Refusal, now: Duration) -> Option<usize> {
        self.joins.fail(ip, now);
        match refusal {
            Refusal::KeyWrong => self.guesses.record(now),
            _ => None,
        }
    }

    /// Forgets failures older than the limiters' window.
    pub fn prune(&mut self, now: Duration) {
        self.joins.prune(now);
        self.logins.prune(now);
    }
}
