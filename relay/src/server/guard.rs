//! What keeps the relay alive under hostile traffic: connection slots per source and in all,
//! a digest that audits repeated refusals once with a count, and audit-safe names.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tether_protocol::msg::Refusal;
use tether_protocol::pairing::source_key;

use super::Limits;

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    pending: u32,
    /// Per source key: (connections, of which not yet authenticated).
    sources: HashMap<IpAddr, (u32, u32)>,
}

/// Connection slots: every connection holds one from before its handshake until it closes.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    counts: Arc<Mutex<Counts>>,
    limits: Limits,
}

fn lock(m: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slots {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            counts: Arc::default(),
            limits,
        }
    }

    /// Takes a slot for a new connection from `ip`, or says which limit it is over.
    pub(crate) fn take(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = source_key(ip);
        let l = &self.limits;
        let mut c = lock(&self.counts);
        let (total, pending) = c.sources.get(&key).copied().unwrap_or((0, 0));
        if total >= l.max_connections_per_source || pending >= l.max_pending_per_source {
            return Err(Refusal::TooManyConnections {
                from_your_address: true,
                limit: if total >= l.max_connections_per_source {
                    l.max_connections_per_source
                } else {
                    l.max_pending_per_source
                },
            });
        }
        if c.total >= l.max_connections || c.pending >= l.max_pending {
            return Err(Refusal::TooManyConnections {
                from_your_address: false,
                limit: if c.total >= l.max_connections {
                    l.max_connections
                } else {
                    l.max_pending
                },
            });
        }
        c.total += 1;
        c.pending += 1;
        c.sources.insert(key, (total + 1, pending + 1));
        Ok(Slot {
            counts: self.counts.clone(),
            key,
            pending: true,
        })
    }

    /// Connections open now, and of those not authenticated yet.
    pub(crate) fn open(&self) -> (u32, u32) {
        let c = lock(&self.counts);
        (c.total, c.pending)
    }
}

/// One connection's slot; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<Mutex<Counts>>,
    key: IpAddr,
    pending: bool,
}

impl Slot {
    /// The connection logged in or joined: it no longer counts against the unauthenticated
    /// limits.
    pub(crate) fn authenticated(&mut self) {
        if !self.pending {
            return;
        }
        self.pending = false;
        let mut c = lock(&self.counts);
        c.pending = c.pending.saturating_sub(1);
        if let Some(e) = c.sources.get_mut(&self.key) {
            e.1 = e.1.saturating_sub(1);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total = c.total.saturating_sub(1);
        if self.pending {
            c.pending = c.pending.saturating_sub(1);
        }
        let gone = match c.sources.get_mut(&self.key) {
            Some(e) => {
                e.0 = e.0.saturating_sub(1);
                if self.pending {
                    e.1 = e.1.saturating_sub(1);
                }
                e.0 == 0
            }
            None => false,
        };
        if gone {
            c.sources.remove(&self.key);
        }
    }
}

/// How many refusals of one kind from one source are audited one by one in a window; the rest
/// are counted and audited as one line when the window closes.
pub(crate) const DIGEST_FIRST: u32 = 3;
/// The digest's window.
pub(crate) const DIGEST_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Tally {
    since: Duration,
    seen: u32,
}

/// Repeated refusals (wrong keys, refused logins, protocol errors) from one source: the first
/// few are audited as they happen, the rest once per window with their number, so a flood cannot
/// grow the audit trail faster than a line a minute per source.
#[derive(Debug, Default)]
pub(crate) struct RefusalDigest {
    tallies: HashMap<(IpAddr, &'static str, &'static str), Tally>,
}

impl RefusalDigest {
    /// Notes a refusal of kind `kind`; true if it is to be audited now.
    pub(crate) fn note(
        &mut self,
        source: IpAddr,
        action: &'static str,
        kind: &'static str,
        now: Duration,
    ) -> bool {
        let t = self
            .tallies
            .entry((source_key(source), action, kind))
            .or_insert(Tally {
                since: now,
                seen: 0,
            });
        t.seen += 1;
        t.seen <= DIGEST_FIRST
    }

    /// Closes the windows that are over (all of them with `all`): (source, action, kind,
    /// refusals not audited one by one).
    pub(crate) fn flush(
        &mut self,
        now: Duration,
        all: bool,
    ) -> Vec<(IpAddr, &'static str, &'static str, u32)> {
        let mut out = Vec::new();
        self.tallies.retain(|(source, action, kind), t| {
            if !all && now.saturating_sub(t.since) < DIGEST_WINDOW {
                return true;
            }
            if t.seen > DIGEST_FIRST {
                out.push((*source, *action, *kind, t.seen - DIGEST_FIRST));
            }
            false
        });
        out
    }

    /// Sources and kinds tracked now.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.tallies.len()
    }
}

/// Most characters of a peer-given name kept in the audit trail.
pub(crate) const MAX_AUDIT_NAME: usize = 64;

/// A name a peer gave (say, the user name of a refused login), made safe for the audit trail: at
/// most [`MAX_AUDIT_NAME`] characters, with control and format characters escaped.
pub(crate) fn audit_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == MAX_AUDIT_NAME {
            out.push('…');
            break;
        }
        if c.is_control() || tether_protocol::files::is_format_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 5,
            max_connections_per_source: 3,
            max_pending: 4,
            max_pending_per_source: 2,
            ..Limits::default()
        }
    }

    #[test]
    fn slots_are_limited_per_source_and_in_all_and_given_back() {
        let slots = Slots::new(limits());
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut one = slots.take(a).expect("1");
        let _two = slots.take(a).expect("2");
        // Two unauthenticated from one source is the limit.
        assert!(matches!(
            slots.take(a),
            Err(Refusal::TooManyConnections {
                from_your_address: true,
                limit: 2
            })
        ));
        one.authenticated();
        let three = slots.take(a).expect("3");
        assert!(matches!(
            slots.take(a),
            Err(Refusal::TooManyConnections {
                from_your_address: true,
                limit: 3
            })
        ));
        drop(three);
        assert_eq!(slots.open(), (2, 1));
        // Others fill the relay.
        let b = slots.take("198.51.100.1".parse().expect("ip")).expect("b");
        let c = slots.take("198.51.100.2".parse().expect("ip")).expect("c");
        let d = slots.take("198.51.100.3".parse().expect("ip")).expect("d");
        assert_eq!(slots.open(), (5, 4));
        assert!(matches!(
            slots.take("198.51.100.4".parse().expect("ip")),
            Err(Refusal::TooManyConnections {
                from_your_address: false,
                limit: 5
            })
        ));
        drop((b, c, d, one));
        assert_eq!(slots.open(), (1, 1));
    }

    #[test]
    fn repeated_refusals_are_audited_once_with_their_number() {
        let mut d = RefusalDigest::default();
        let src: IpAddr = "2001:db8::1".parse().expect("ip");
        let other: IpAddr = "2001:db8::2".parse().expect("ip");
        let t0 = Duration::from_secs(10);
        let written = (0..100)
            .filter(|i| {
                d.note(
                    if i % 2 == 0 { src } else { other },
                    "key.refused",
                    "key_wrong",
                    t0,
                )
            })
            .count();
        // One /64: one source.
        assert_eq!(written, DIGEST_FIRST as usize);
        // Another kind of refusal is audited on its own.
        assert!(d.note(src, "key.refused", "key_expired", t0));
        assert!(d.flush(t0, false).is_empty());
        assert_eq!(
            d.flush(t0 + DIGEST_WINDOW, false),
            vec![(
                source_key(src),
                "key.refused",
                "key_wrong",
                100 - DIGEST_FIRST
            )]
        );
        assert_eq!(d.tracked(), 0);
    }

    #[test]
    fn names_are_cut_and_escaped_for_the_audit_trail() {
        assert_eq!(audit_name("alice"), "alice");
        let forged = "x\n1700000000\t-\tagent:admin\tagent.login\t\u{1b}[2J";
        let clean = audit_name(forged);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean}");
        assert!(clean.contains("\\u{a}"));
        let long = "a".repeat(64 * 1024);
        assert_eq!(audit_name(&long).chars().count(), MAX_AUDIT_NAME + 1);
    }
}
