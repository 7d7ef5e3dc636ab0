//! Latest-frame-wins flow control for screen updates.
//!
//! A host may have a bounded number of frames in flight to a viewer: always `min_frames`, and up
//! to `max_frames` while together they are smaller than `max_bytes`. While the window is full the
//! host does not queue frames: it captures again when a slot frees, and the diff against what the
//! viewer has covers everything skipped. Latency therefore never grows on a slow link; the frame
//! rate drops instead.
//!
//! Acknowledgements cost a packet each way, as much as a keystroke's update. So the host asks
//! for one only with the frame that fills its window, or when its round trip is more than
//! [`FRESH`] old ([`FlowWindow::wants_ack`]), and the viewer's acknowledgement covers every frame
//! before it: typing costs one acknowledgement a second at most, a photo one per two frames.

use std::collections::VecDeque;
use std::time::Duration;

/// How old the last round trip may get before a frame asks for an acknowledgement anyway, so
/// that a link that slowed down is noticed while only small changes flow.
pub const FRESH: Duration = Duration::from_secs(1);

/// The in-flight window of one viewer. Time is passed in.
#[derive(Debug)]
pub struct FlowWindow {
    min_frames: usize,
    max_frames: usize,
    max_bytes: usize,
    /// Per frame in flight: sequence number, bytes, when it was sent.
    in_flight: VecDeque<(u64, usize, Duration)>,
    bytes: usize,
    rtt: Option<Duration>,
    /// When a frame last asked for an acknowledgement.
    asked: Option<Duration>,
    /// When the round trip was last measured.
    measured: Option<Duration>,
}

impl FlowWindow {
    /// A window that always admits `min_frames` (at least one), and up to `max_frames` while
    /// those in flight come to less than `max_bytes`.
    pub fn new(min_frames: usize, max_frames: usize, max_bytes: usize) -> Self {
        let min_frames = min_frames.max(1);
        Self {
            min_frames,
            max_frames: max_frames.max(min_frames),
            max_bytes,
            in_flight: VecDeque::new(),
            bytes: 0,
            rtt: None,
            asked: None,
            measured: None,
        }
    }

    fn admits(&self, frames: usize, bytes: usize) -> bool {
        frames < self.min_frames || (frames < self.max_frames && bytes < self.max_bytes)
    }

    /// Whether another frame may be sent now.
    pub fn can_send(&self) -> bool {
        self.admits(self.in_flight.len(), self.bytes)
    }

    /// Whether the host must ask the viewer to acknowledge a frame of `bytes` about to be sent
    /// at `now`: it fills the window, or no frame asked for [`FRESH`].
    pub fn wants_ack(&self, bytes: usize, now: Duration) -> bool {
        !self.admits(self.in_flight.len() + 1, self.bytes.saturating_add(bytes))
            || self.asked.is_none_or(|t| now.saturating_sub(t) >= FRESH)
    }

    /// Frames sent but not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records that frame `seq` of `bytes` was sent at `now`, asking for an acknowledgement or
    /// not.
    pub fn on_sent(&mut self, seq: u64, bytes: usize, now: Duration, asked: bool) {
        if asked {
            self.asked = Some(now);
        }
        self.in_flight.push_back((seq, bytes, now));
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Records an acknowledgement of every frame up to `seq`; returns the round trip of `seq`.
    pub fn on_ack(&mut self, seq: u64, now: Duration) -> Option<Duration> {
        let mut rtt = None;
        while let Some(&(s, bytes, sent)) = self.in_flight.front() {
            if s > seq {
                break;
            }
            self.in_flight.pop_front();
            self.bytes -= bytes;
            if s == seq {
                rtt = Some(now.saturating_sub(sent));
            }
        }
        if let Some(r) = rtt {
            // Samples a second or more apart each weigh half: the link may have changed since.
            let stale = self.measured.is_none_or(|t| now.saturating_sub(t) >= FRESH);
            self.rtt = Some(match self.rtt {
                None => r,
                Some(old) if stale => (old + r) / 2,
                Some(old) => (old * 7 + r) / 8,
            });
            self.measured = Some(now);
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
        let mut w = FlowWindow::new(2, 2, usize::MAX);
        let t = Duration::from_millis;
        assert!(w.can_send());
        // The first frame asks: the round trip is not known yet.
        assert!(w.wants_ack(10, t(0)));
        w.on_sent(1, 10, t(0), true);
        assert!(w.wants_ack(10, t(1)));
        w.on_sent(2, 10, t(1), true);
        assert!(!w.can_send());
        assert_eq!(w.on_ack(1, t(10)), Some(t(10)));
        assert!(w.can_send());
        w.on_sent(3, 10, t(11), true);
        // A cumulative ack frees everything up to it.
        assert_eq!(w.on_ack(3, t(15)), Some(t(4)));
        assert_eq!(w.in_flight(), 0);
        // A stale or unknown ack changes nothing.
        assert_eq!(w.on_ack(2, t(20)), None);
        assert!(w.rtt().is_some());
    }

    /// Sends frames of `bytes` every `gap` from `from`, acknowledging at once what asks;
    /// returns how many asked.
    fn run(w: &mut FlowWindow, seqs: std::ops::Range<u64>, bytes: usize, gap: Duration) -> usize {
        let mut asked = 0;
        for seq in seqs {
            let now = gap * seq as u32;
            let ask = w.wants_ack(bytes, now);
            w.on_sent(seq, bytes, now, ask);
            if ask {
                asked += 1;
                w.on_ack(seq, now + Duration::from_millis(1));
            }
        }
        asked
    }

    #[test]
    fn keystrokes_ask_once_per_window_or_second_and_photos_every_other_frame() {
        let ms = Duration::from_millis;
        let mut w = FlowWindow::new(2, 16, 64 << 10);
        // Keystrokes in a burst, 10 ms apart: the first asks, then every sixteenth.
        assert_eq!(run(&mut w, 1..50, 100, ms(10)), 4);
        // Keystrokes 200 ms apart: one a second.
        let mut w = FlowWindow::new(2, 16, 64 << 10);
        assert_eq!(run(&mut w, 1..26, 100, ms(200)), 5);
        // Photos: the second frame in flight fills the window.
        let mut w = FlowWindow::new(2, 16, 64 << 10);
        assert!(w.wants_ack(1 << 20, ms(0)));
        w.on_sent(1, 1 << 20, ms(0), true);
        assert!(w.wants_ack(1 << 20, ms(5)));
        w.on_sent(2, 1 << 20, ms(5), true);
        assert!(!w.can_send());
    }

    #[test]
    fn a_link_that_slowed_down_is_noticed_within_a_few_sparse_samples() {
        let ms = Duration::from_millis;
        let mut w = FlowWindow::new(2, 16, 64 << 10);
        for seq in 1..20 {
            w.on_sent(seq, 100, ms(seq * 10), true);
            w.on_ack(seq, ms(seq * 10 + 1));
        }
        assert!(w.rtt().is_some_and(|r| r < ms(5)));
        // Samples a second apart at 200 ms: two are enough to pass 120 ms.
        for (i, seq) in (20..22).enumerate() {
            let sent = ms(1_000 + i as u64 * 1_200);
            w.on_sent(seq, 100, sent, true);
            w.on_ack(seq, sent + ms(200));
        }
        assert!(w.rtt().is_some_and(|r| r > ms(120)), "{:?}", w.rtt());
    }
}
