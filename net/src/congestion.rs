//! Congestion control for links that lose packets for reasons other than congestion.
//!
//! Wi-Fi and mobile links drop a share of packets at random. A controller that reads every loss
//! as congestion (quinn's default, Cubic, and its BBR's recovery window alike) falls to a few
//! hundred kbit/s under 2 % random loss on a 200 ms round trip. [`LossTolerant`] wraps such a
//! controller and passes a loss on only when the path shows congestion:
//!
//! - a queue is building: the smoothed round trip is well above the least one of the last ten
//!   seconds or so (a full router buffer drops packets only once it has delayed them; the
//!   window forgets a faster path the connection has left, such as the loopback or LAN it
//!   started on);
//! - or losses are a large share of the last hundred or so datagrams (a policer that drops
//!   without queueing);
//! - or quinn declares persistent congestion.
//!
//! Random losses on an idle path are repaired and otherwise ignored, and a sender that fills a
//! buffer still backs off as soon as it does, so the queue it builds stays short.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics, CubicConfig};
use quinn_proto::RttEstimator;

/// Share of a window's bytes that must be lost for losses alone to count as congestion.
const LOSS_THRESHOLD: f64 = 0.10;
/// Datagrams a loss-counting window holds.
const WINDOW_DATAGRAMS: u64 = 100;
/// A queue is building when the smoothed round trip exceeds the least one by half of it, and by
/// at least this much (loopback's round trip is a fraction of a millisecond).
const MIN_QUEUE_DELAY: Duration = Duration::from_millis(5);
/// The least round trip is taken over two buckets of this long (so over 5 to 10 s).
const MIN_RTT_BUCKET: Duration = Duration::from_secs(5);

/// Builds [`LossTolerant`] controllers.
pub struct LossTolerantConfig {
    inner: Arc<dyn ControllerFactory + Send + Sync>,
}

impl LossTolerantConfig {
    /// Over Cubic (what every connection uses).
    pub fn cubic() -> Self {
        LossTolerantConfig {
            inner: Arc::new(CubicConfig::default()),
        }
    }
}

impl ControllerFactory for LossTolerantConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(LossTolerant::new(
            self.inner.clone().build(now, current_mtu),
            current_mtu,
        ))
    }
}

/// Bytes acknowledged and lost in one loss-counting window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    acked: u64,
    lost: u64,
}

/// A controller that ignores random loss (see the module's documentation).
pub struct LossTolerant {
    inner: Box<dyn Controller>,
    mtu: u64,
    /// The window being counted and the last complete one.
    cur: Window,
    prev: Window,
    /// Whether the latest round-trip sample shows a queue.
    queueing: bool,
    /// The least smoothed round trip of the current bucket (since `bucket_start`) and of the
    /// previous one.
    least: [Option<Duration>; 2],
    bucket_start: Option<Instant>,
}

impl LossTolerant {
    fn new(inner: Box<dyn Controller>, mtu: u16) -> Self {
        LossTolerant {
            inner,
            mtu: u64::from(mtu),
            cur: Window::default(),
            prev: Window::default(),
            queueing: false,
            least: [None; 2],
            bucket_start: None,
        }
    }

    /// Takes a smoothed round-trip sample at `now`.
    fn on_rtt(&mut self, now: Instant, smoothed: Duration) {
        let start = *self.bucket_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= MIN_RTT_BUCKET {
            self.least = [None, self.least[0]];
            self.bucket_start = Some(now);
        }
        self.least[0] = Some(self.least[0].map_or(smoothed, |l| l.min(smoothed)));
        let least = self
            .least
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(smoothed);
        self.queueing = smoothed > least + (least / 2).max(MIN_QUEUE_DELAY);
    }

    fn count(&mut self, acked: u64, lost: u64) {
        self.cur.acked += acked;
        self.cur.lost += lost;
        if self.cur.acked + self.cur.lost >= WINDOW_DATAGRAMS * self.mtu {
            self.prev = std::mem::take(&mut self.cur);
        }
    }

    /// Whether losses are a large share of the last window or so.
    fn heavy_loss(&self) -> bool {
        let lost = self.cur.lost + self.prev.lost;
        let total = lost + self.cur.acked + self.prev.acked;
        total >= WINDOW_DATAGRAMS * self.mtu && lost as f64 > LOSS_THRESHOLD * total as f64
    }

    /// Whether a loss now means congestion.
    fn congested(&self, persistent: bool) -> bool {
        persistent || self.queueing || self.heavy_loss()
    }
}

impl Controller for LossTolerant {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.on_rtt(now, rtt.get());
        self.count(bytes, 0);
        self.inner.on_ack(now, sent, bytes, app_limited, rtt);
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.count(0, lost_bytes);
        if self.congested(is_persistent_congestion) {
            self.inner
                .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
        }
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.mtu = u64::from(new_mtu);
        self.inner.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        self.inner.window()
    }

    fn metrics(&self) -> ControllerMetrics {
        self.inner.metrics()
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(LossTolerant {
            inner: self.inner.clone_box(),
            mtu: self.mtu,
            cur: self.cur,
            prev: self.prev,
            queueing: self.queueing,
            least: self.least,
            bucket_start: self.bucket_start,
        })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A controller that records the losses it is told about.
    #[derive(Clone, Default)]
    struct Recorder {
        lost: Arc<std::sync::Mutex<u64>>,
    }

    impl Controller for Recorder {
        fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, lost: u64) {
            *self.lost.lock().unwrap() += lost;
        }
        fn on_mtu_update(&mut self, _: u16) {}
        fn window(&self) -> u64 {
            0
        }
        fn clone_box(&self) -> Box<dyn Controller> {
            Box::new(self.clone())
        }
        fn initial_window(&self) -> u64 {
            0
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any> {
            self
        }
    }

    /// Sends `packets` datagrams of 1,200 bytes, one a millisecond, losing every `nth`, with
    /// smoothed round trips of `rtt` after a first one of `first`; returns, per loss, when it
    /// happened (ms) and whether the inner controller was told.
    fn losses(first: Duration, packets: u64, nth: u64, rtt: Duration) -> Vec<(u64, bool)> {
        let rec = Recorder::default();
        let mut c = LossTolerant::new(Box::new(rec.clone()), 1200);
        let start = Instant::now();
        c.on_rtt(start, first);
        let mut out = Vec::new();
        for i in 0..packets {
            let now = start + Duration::from_millis(i);
            // The estimator is not constructible outside quinn: feed its figures directly.
            c.on_rtt(now, rtt);
            if i % nth == nth - 1 {
                let before = *rec.lost.lock().unwrap();
                c.on_congestion_event(now, now, false, 1200);
                out.push((i, *rec.lost.lock().unwrap() > before));
            } else {
                c.count(1200, 0);
            }
        }
        out
    }

    /// Bytes passed on by [`losses`] with a first round trip of 200 ms.
    fn run(packets: u64, nth: u64, rtt_ms: u64) -> u64 {
        let passed = losses(
            Duration::from_millis(200),
            packets,
            nth,
            Duration::from_millis(rtt_ms),
        );
        passed.iter().filter(|(_, p)| *p).count() as u64 * 1200
    }

    #[test]
    fn random_loss_of_two_percent_is_not_congestion() {
        assert_eq!(run(10_000, 50, 205), 0);
    }

    #[test]
    fn losing_a_fifth_is_congestion() {
        let lost = run(10_000, 5, 205);
        assert!(lost > 10_000 / 5 * 1200 / 2, "{lost} bytes passed on");
    }

    #[test]
    fn a_loss_behind_a_growing_queue_is_congestion() {
        assert_eq!(run(1_000, 50, 400), 1_000 / 50 * 1200);
    }

    #[test]
    fn a_slower_path_than_the_first_one_is_learnt() {
        // Started on loopback (0.1 ms), then 200 ms with random loss: after ten seconds or so
        // the random losses are no longer read as a queue.
        let seen = losses(
            Duration::from_micros(100),
            30_000,
            50,
            Duration::from_millis(200),
        );
        for (i, passed) in seen {
            assert_eq!(passed, i < 10_000, "loss at {i} ms passed: {passed}");
        }
    }

    #[test]
    fn persistent_congestion_always_passes() {
        let rec = Recorder::default();
        let now = Instant::now();
        let mut c = LossTolerant::new(Box::new(rec.clone()), 1200);
        c.on_congestion_event(now, now, true, 1200);
        assert_eq!(*rec.lost.lock().unwrap(), 1200);
    }
}
