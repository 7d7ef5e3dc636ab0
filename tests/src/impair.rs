//! A bad network for the tests: a UDP forwarder between clients and a relay that delays (with
//! jitter), drops, rate-limits and cuts packets, and can move a client to a new source port (as
//! a NAT rebinding or a network change does). A kernel `netem` qdisc is not available on these
//! machines; this runs inside the test's runtime instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

/// What the link does to packets, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// One-way delay.
    pub delay: Duration,
    /// Up to this much more, at random, per packet (packets may then arrive out of order).
    pub jitter: Duration,
    /// Share of packets dropped, 0 to 1.
    pub loss: f64,
    /// Bits per second each way; unlimited when `None`.
    pub rate_bps: Option<u64>,
    /// Everything is dropped while set (the link is cut).
    pub cut: bool,
    /// Largest UDP payload the path carries; bigger datagrams are dropped, as a real path with
    /// an Ethernet MTU drops them (1472 bytes over IPv4). Unlimited when `None`.
    pub mtu: Option<usize>,
}

#[derive(Debug)]
struct Shared {
    settings: Impairment,
    rng: u64,
    /// When each direction's queue is free again (rate limit).
    busy_until: [Instant; 2],
    dropped: u64,
}

impl Shared {
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// When a packet of `len` bytes going `dir` is delivered, or `None` if it is dropped.
    fn schedule(&mut self, dir: usize, len: usize) -> Option<Instant> {
        let s = self.settings;
        let too_big = s.mtu.is_some_and(|m| len > m);
        if s.cut || too_big || (s.loss > 0.0 && self.random() < s.loss) {
            self.dropped += 1;
            return None;
        }
        let now = Instant::now();
        let mut leave = now;
        if let Some(bps) = s.rate_bps.filter(|b| *b > 0) {
            let start = self.busy_until[dir].max(now);
            // A queue of more than a second is a full router buffer: drop.
            if start.duration_since(now) > Duration::from_secs(1) {
                self.dropped += 1;
                return None;
            }
            leave = start + Duration::from_secs_f64(len as f64 * 8.0 / bps as f64);
            self.busy_until[dir] = leave;
        }
        let jitter = s.jitter.mul_f64(self.random());
        Some(leave + s.delay + jitter)
    }
}

/// A running impaired link; stopped when dropped.
///
/// It runs on a thread of its own, so that the work of the test or benchmark around it (decoding
/// frames, comparing pixels) never delays a packet: only the impairment does.
#[derive(Debug)]
pub struct ImpairedLink {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    rebind: Arc<Mutex<u64>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const TO_RELAY: usize = 0;
const TO_CLIENT: usize = 1;

impl ImpairedLink {
    /// Listens on a free loopback port and forwards to `upstream` (the relay).
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let front = std::net::UdpSocket::bind("127.0.0.1:0")?;
        front.set_nonblocking(true)?;
        let addr = front.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            settings: Impairment::default(),
            rng: 0x9e37_79b9_7f4a_7c15,
            busy_until: [Instant::now(); 2],
            dropped: 0,
        }));
        let rebind = Arc::new(Mutex::new(0u64));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (s, r) = (shared.clone(), rebind.clone());
        let thread = std::thread::Builder::new()
            .name("impaired-link".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(front) = UdpSocket::from_std(front) else {
                        return;
                    };
                    tokio::select! {
                        () = forward(Arc::new(front), upstream, s, r) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Self {
            addr,
            shared,
            rebind,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where clients connect instead of the relay.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes what the link does.
    pub fn set(&self, settings: Impairment) {
        self.lock().settings = settings;
    }

    /// Cuts the link (true) or restores it.
    pub fn cut(&self, cut: bool) {
        self.lock().settings.cut = cut;
    }

    /// Packets dropped so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// From now on every client reaches the relay from a new source port, as after a NAT
    /// rebinding: the relay sees its address change.
    pub fn rebind(&self) {
        *self.rebind.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }
}

impl Drop for ImpairedLink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One client's way to the relay: its own upstream socket (its source port as the relay sees it).
struct Route {
    socket: Arc<UdpSocket>,
    generation: u64,
    task: tokio::task::JoinHandle<()>,
}

async fn forward(
    front: Arc<UdpSocket>,
    upstream: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    rebind: Arc<Mutex<u64>>,
) {
    let mut routes: HashMap<SocketAddr, Route> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = front.recv_from(&mut buf).await else {
            return;
        };
        let generation = *rebind.lock().unwrap_or_else(|e| e.into_inner());
        let stale = routes
            .get(&client)
            .is_none_or(|r| r.generation != generation);
        if stale {
            let Ok(socket) = UdpSocket::bind("127.0.0.1:0").await else {
                continue;
            };
            let socket = Arc::new(socket);
            // The relay's answers come back on this socket, whichever one the client uses now.
            let back = tokio::spawn(relay_to_client(
                socket.clone(),
                front.clone(),
                client,
                shared.clone(),
            ));
            if let Some(old) = routes.insert(
                client,
                Route {
                    socket,
                    generation,
                    task: back,
                },
            ) {
                // The old path dies after a while, as a NAT mapping would.
                let task = old.task;
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    task.abort();
                });
            }
        }
        let Some(route) = routes.get(&client) else {
            continue;
        };
        let when = shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .schedule(TO_RELAY, n);
        if let Some(when) = when {
            let socket = route.socket.clone();
            let packet = buf[..n].to_vec();
            tokio::spawn(async move {
                tokio::time::sleep_until(when).await;
                let _ = socket.send_to(&packet, upstream).await;
            });
        }
    }
}

async fn relay_to_client(
    socket: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    shared: Arc<Mutex<Shared>>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, _)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let when = shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .schedule(TO_CLIENT, n);
        if let Some(when) = when {
            let front = front.clone();
            let packet = buf[..n].to_vec();
            tokio::spawn(async move {
                tokio::time::sleep_until(when).await;
                let _ = front.send_to(&packet, client).await;
            });
        }
    }
}
