//! Congestion control for links that lose packets for reasons other than congestion.
//!
//! Wi-Fi and mobile links drop a share of packets at random. A controller that reads every loss
//! as congestion (quinn's default, Cubic, and its BBR's recovery window alike) falls to a few
//! hundred kbit/s under 2 % random loss on a 200 ms round trip. [`LossTolerant`] wraps BBR and
//! passes a loss on only when losses are a sizeable share of what one round trip carried, as a
//! full queue produces, or when quinn declares persistent congestion. BBR's own model (pacing at
//! the measured bottleneck rate, a window of twice the bandwidth-delay product) keeps the sender
//! from overrunning the path either way.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{BbrConfig, Controller, ControllerFactory, ControllerMetrics};
use quinn_proto::RttEstimator;

/// Share of the bytes of a round trip that must be lost before losses count as congestion.
const LOSS_THRESHOLD: f64 = 0.05;
/// Fewest datagrams a round trip must have carried before its loss share means anything.
const MIN_SAMPLE: u64 = 20;

/// Builds [`LossTolerant`] controllers.
#[derive(Debug, Default)]
pub struct LossTolerantConfig {
    bbr: Arc<BbrConfig>,
}

impl ControllerFactory for LossTolerantConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(LossTolerant {
            inner: self.bbr.clone().build(now, current_mtu),
            round: Round::new(now),
            rtt: Duration::from_millis(100),
            mtu: u64::from(current_mtu),
        })
    }
}

/// The bytes one round trip acknowledged and lost, and the losses held back from the inner
/// controller.
#[derive(Debug, Clone, Copy)]
struct Round {
    start: Instant,
    acked: u64,
    lost: u64,
    /// Losses not passed on yet: their total and the send time of the latest.
    held: u64,
    held_sent: Option<Instant>,
}

impl Round {
    fn new(start: Instant) -> Self {
        Round {
            start,
            acked: 0,
            lost: 0,
            held: 0,
            held_sent: None,
        }
    }
}

/// BBR that ignores random loss (see the module's documentation).
pub struct LossTolerant {
    inner: Box<dyn Controller>,
    round: Round,
    /// The latest smoothed round trip.
    rtt: Duration,
    mtu: u64,
}

impl LossTolerant {
    /// Starts a new round once the current one has lasted a round trip.
    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.round.start) >= self.rtt {
            self.round = Round::new(now);
        }
    }

    /// Whether the losses of this round look like congestion.
    fn congested(&self) -> bool {
        let total = self.round.acked + self.round.lost;
        total >= MIN_SAMPLE * self.mtu && self.round.lost as f64 > LOSS_THRESHOLD * total as f64
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
        self.rtt = rtt.get();
        self.roll(now);
        self.round.acked += bytes;
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
        self.roll(now);
        self.round.lost += lost_bytes;
        self.round.held += lost_bytes;
        self.round.held_sent = Some(sent);
        if is_persistent_congestion || self.congested() {
            let held = std::mem::take(&mut self.round.held);
            let sent = self.round.held_sent.take().unwrap_or(sent);
            self.inner
                .on_congestion_event(now, sent, is_persistent_congestion, held);
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
            round: self.round,
            rtt: self.rtt,
            mtu: self.mtu,
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

    /// A controller over `rec` whose round trip is 100 ms.
    fn over(rec: &Recorder, start: Instant) -> LossTolerant {
        LossTolerant {
            inner: Box::new(rec.clone()),
            round: Round::new(start),
            rtt: Duration::from_millis(100),
            mtu: 1200,
        }
    }

    /// Sends `packets` of 1,200 bytes per simulated round trip of 100 ms for `rounds` rounds,
    /// losing every `nth`; returns the bytes the inner controller was told were lost.
    fn run(packets: u64, rounds: u64, nth: u64) -> u64 {
        let rec = Recorder::default();
        let start = Instant::now();
        let mut c = over(&rec, start);
        for i in 0..packets * rounds {
            let now = start + Duration::from_micros(i * 100_000 / packets);
            if i % nth == nth - 1 {
                c.on_congestion_event(now, now, false, 1200);
            } else {
                // The estimator is not constructible outside quinn; the round trip is fixed.
                c.roll(now);
                c.round.acked += 1200;
            }
        }
        *rec.lost.lock().unwrap()
    }

    #[test]
    fn random_loss_of_two_percent_is_not_congestion() {
        assert_eq!(run(100, 20, 50), 0);
    }

    #[test]
    fn losing_a_fifth_of_a_round_is_congestion() {
        let lost = run(100, 20, 5);
        assert!(lost > 100 * 20 / 5 * 1200 / 2, "{lost} bytes passed on");
    }

    #[test]
    fn persistent_congestion_always_passes() {
        let rec = Recorder::default();
        let now = Instant::now();
        let mut c = over(&rec, now);
        c.on_congestion_event(now, now, true, 1200);
        assert_eq!(*rec.lost.lock().unwrap(), 1200);
    }
}
