//! Latest-frame-wins flow control for screen updates.
//!
//! A host may have at most `limit` frames in flight to a viewer, each acknowledged once the viewer
//! has presented it. While the window is full the host does not queue frames: it captures again
//! when a slot frees, and the diff against what the viewer has covers everything skipped. Latency
//! therefore never grows on a slow link; the frame rate drops instead.

use std::collections::VecDeque;
use std::time::Duration;

/// The in-flight window of one viewer. Time is passed in.
#[derive(Debug)]
pub struct FlowWindow {
    limit: usize,
    in_flight: VecDeque<(u64, Duration)>,
    rtt: Option<Duration>,
}

impl FlowWindow {
    /// A window of `limit` frames (at least one).
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            in_flight: VecDeque::new(),
            rtt: None,
        }
    }

    /// Whether another frame may be sent now.
    pub fn can_send(&self) -> bool {
        self.in_flight.len() < self.limit
    }

    /// Frames sent but not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records that frame `seq` was sent at `now`.
    pub fn on_sent(&mut self, seq: u64, now: Duration) {
        self.in_flight.push_back((seq, now));
    }

    /// Records an acknowledgement of every frame up to `seq`; returns the round trip of `seq`.
    pub fn on_ack(&mut self, seq: u64, now: Duration) -> Option<Duration> {
        let mut rtt = None;
        while let Some(&(s, sent)) = self.in_flight.front() {
            if s > seq {
                break;
            }
            self.in_flight.pop_front();
            if s == seq {
                rtt = Some(now.saturating_sub(sent));
            }
        }
        if let Some(r) = rtt {
            self.rtt = Some(match self.rtt {
                None => r,
                Some(old) => (old * 7 + r) / 8,
            });
        }
        rtt
    }

    /// Smoothed round-trip time, once known.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fills_and_drains_in_order() {
        let mut w = FlowWindow::new(2);
        let t = Duration::from_millis;
        assert!(w.can_send());
        w.on_sent(1, t(0));
        w.on_sent(2, t(1));
        assert!(!w.can_send());
        assert_eq!(w.on_ack(1, t(10)), Some(t(10)));
        assert!(w.can_send());
        w.on_sent(3, t(11));
        // A cumulative ack frees everything up to it.
        assert_eq!(w.on_ack(3, t(15)), Some(t(4)));
        assert_eq!(w.in_flight(), 0);
        // A stale or unknown ack changes nothing.
        assert_eq!(w.on_ack(2, t(20)), None);
        assert!(w.rtt().is_some());
    }
}
