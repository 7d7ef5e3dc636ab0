//! The agent's queues as the console holds them: the entries of every queue the agent sees,
//! the alerts of new arrivals, the order queues are listed in (own queue, favourite teams, other
//! teams, the general queue), and how long a session tab has been left alone.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tether_protocol::desk::{QueueEntry, QueueId, Unqueued};
use tether_protocol::msg::SessionId;

/// Most alerts kept; older ones are dropped (the entries stay in the queue view).
pub const MAX_ALERTS: usize = 20;

/// Most entries kept per console: a hostile or broken relay cannot grow the console without end.
pub const MAX_ENTRIES: usize = 5_000;

/// Every entry of the agent's queues, and the alerts not yet dismissed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Queues {
    /// Entries, in arrival order; one per (session, queue).
    pub entries: Vec<QueueEntry>,
    /// Arrivals to alert the agent of, oldest first.
    pub alerts: Vec<QueueEntry>,
    /// The entry the agent asked to see (an alert's View).
    pub focus: Option<SessionId>,
}

impl Queues {
    /// An entry arrived or changed. Returns true if it is new and the relay says it just
    /// arrived: the agent is alerted of it.
    pub fn upsert(&mut self, entry: QueueEntry) -> bool {
        let same = |e: &QueueEntry| e.session == entry.session && e.queue == entry.queue;
        if let Some(e) = self.entries.iter_mut().find(|e| same(e)) {
            *e = entry;
            return false;
        }
        if self.entries.len() >= MAX_ENTRIES {
            return false;
        }
        let alert = entry.arrived;
        if alert {
            self.alerts.retain(|e| !same(e));
            self.alerts.push(entry.clone());
            if self.alerts.len() > MAX_ALERTS {
                self.alerts.remove(0);
            }
        }
        self.entries.push(entry);
        alert
    }

    /// An entry left a queue.
    pub fn remove(&mut self, session: SessionId, queue: &QueueId) {
        let gone = |e: &QueueEntry| e.session == session && &e.queue == queue;
        self.entries.retain(|e| !gone(e));
        self.alerts.retain(|e| !gone(e));
    }

    /// The agent is in the session now: its alerts go.
    pub fn started(&mut self, session: SessionId) {
        self.alerts.retain(|e| e.session != session);
        if self.focus == Some(session) {
            self.focus = None;
        }
    }

    /// Dismisses the alerts of a session.
    pub fn dismiss(&mut self, session: SessionId) {
        self.alerts.retain(|e| e.session != session);
    }

    /// The entries of one queue, longest waiting first.
    pub fn of(&self, queue: &QueueId) -> Vec<&QueueEntry> {
        let mut v: Vec<&QueueEntry> = self.entries.iter().filter(|e| &e.queue == queue).collect();
        v.sort_by_key(|e| (e.waiting_since, e.session));
        v
    }

    /// The queues to list: the agent's own, their teams' (favourites first, then by name), and
    /// the general queue.
    pub fn listed(me: &str, teams: &[String], favourites: &BTreeSet<String>) -> Vec<QueueId> {
        let mut teams: Vec<&String> = teams.iter().collect();
        teams.sort_by(|a, b| {
            favourites
                .contains(*b)
                .cmp(&favourites.contains(*a))
                .then_with(|| a.to_lowercase().cmp(&b.to_lowercase()))
        });
        std::iter::once(QueueId::Personal(me.to_string()))
            .chain(teams.into_iter().map(|t| QueueId::Team(t.clone())))
            .chain(std::iter::once(QueueId::General))
            .collect()
    }

    /// What a departure from a queue means for the agent, if worth telling.
    pub fn departure_notice(&self, session: SessionId, why: &Unqueued, me: &str) -> Option<String> {
        let Unqueued::Accepted(by) = why else {
            return None;
        };
        let entry = self.entries.iter().find(|e| e.session == session)?;
        (by != me && self.focus == Some(session)).then(|| {
            tether_i18n::t!(
                "queue-accepted-by",
                who = entry.customer.name.as_str(),
                by = by.as_str()
            )
        })
    }
}

/// A wait, for people: "0:42", "12:05", "2 h 03".
pub fn wait_time(secs: u64) -> String {
    if secs >= 3600 {
        format!("{} h {:02}", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// How long since the agent last acted in a session tab, as its marker shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Acted recently.
    Green,
    /// Left alone a while.
    Amber,
    /// Left alone too long.
    Red,
}

/// When a tab's marker turns amber and red (the console's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Activity {
    /// Minutes without action before the marker turns amber.
    pub amber_after_mins: u32,
    /// Minutes without action before the marker turns red.
    pub red_after_mins: u32,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            amber_after_mins: 2,
            red_after_mins: 5,
        }
    }
}

impl Activity {
    /// The marker after `idle_secs` without action.
    pub fn marker(&self, idle_secs: u64) -> Marker {
        let red = u64::from(self.red_after_mins.max(self.amber_after_mins)) * 60;
        if idle_secs >= red {
            Marker::Red
        } else if idle_secs >= u64::from(self.amber_after_mins) * 60 {
            Marker::Amber
        } else {
            Marker::Green
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_protocol::desk::EntryKind;
    use tether_protocol::msg::CustomerInfo;

    fn entry(session: u64, queue: QueueId, since: u64, arrived: bool) -> QueueEntry {
        QueueEntry {
            session: SessionId(session),
            queue,
            customer: CustomerInfo {
                name: format!("customer {session}"),
                os: "Linux".into(),
                hostname: "pc".into(),
                user: "c".into(),
                request: None,
                monitors: Vec::new(),
            },
            waiting_since: since,
            kind: EntryKind::Waiting {
                via: tether_protocol::desk::Via::AgentKey("Alice".into()),
            },
            arrived,
        }
    }

    #[test]
    fn arrivals_alert_once_and_listings_do_not() {
        let mut q = Queues::default();
        let team = QueueId::Team("Support".into());
        assert!(q.upsert(entry(1, team.clone(), 10, true)));
        assert!(
            !q.upsert(entry(1, team.clone(), 10, true)),
            "a change is no new alert"
        );
        assert!(
            !q.upsert(entry(2, team.clone(), 5, false)),
            "listed at login"
        );
        assert_eq!(q.alerts.len(), 1);
        let order: Vec<u64> = q.of(&team).iter().map(|e| e.session.0).collect();
        assert_eq!(order, [2, 1], "longest waiting first");
        q.remove(SessionId(1), &team);
        assert!(q.alerts.is_empty());
        assert_eq!(q.entries.len(), 1);
    }

    #[test]
    fn favourite_teams_come_first() {
        let teams = vec!["billing".to_string(), "Apps".into(), "Support".into()];
        let fav: BTreeSet<String> = ["Support".to_string()].into();
        assert_eq!(
            Queues::listed("alice", &teams, &fav),
            [
                QueueId::Personal("alice".into()),
                QueueId::Team("Support".into()),
                QueueId::Team("Apps".into()),
                QueueId::Team("billing".into()),
                QueueId::General,
            ]
        );
    }

    #[test]
    fn markers_follow_the_thresholds() {
        let a = Activity::default();
        assert_eq!(a.marker(0), Marker::Green);
        assert_eq!(a.marker(119), Marker::Green);
        assert_eq!(a.marker(120), Marker::Amber);
        assert_eq!(a.marker(299), Marker::Amber);
        assert_eq!(a.marker(300), Marker::Red);
        let tight = Activity {
            amber_after_mins: 1,
            red_after_mins: 1,
        };
        assert_eq!(tight.marker(60), Marker::Red);
        assert_eq!(wait_time(42), "0:42");
        assert_eq!(wait_time(725), "12:05");
        assert_eq!(wait_time(7380), "2 h 03");
    }
}
