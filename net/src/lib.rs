//! Tether's transport shell: QUIC endpoints with TLS 1.3, certificate pinning, and framed reads
//! and writes on QUIC streams. The frame format itself lives in `tether_protocol::frame`.
//!
//! Clients never fall back to an unpinned or unauthenticated connection: the only certificate
//! verifier here accepts exactly one certificate, named by its SHA-256 fingerprint.

pub mod congestion;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tether_protocol::frame::{self, FrameError, MAX_HEADER_LEN};

/// The TLS server name clients ask for. Identity comes from the pinned fingerprint, not the name.
pub const SERVER_NAME: &str = "tether-relay";
/// How long a silent peer is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Keep-alive interval of clients (hosts and consoles), well inside [`IDLE_TIMEOUT`]: a lost
/// ping is sent again by QUIC's probe timeout within a round trip or two. Only clients ping, and
/// the relay's acknowledgement keeps both ends alive, so an idle session costs two small packets
/// every 4 s.
pub const KEEP_ALIVE: Duration = Duration::from_secs(4);

/// QUIC application close codes.
pub mod close {
    /// Normal end.
    pub const NORMAL: u32 = 0;
    /// The peer broke the protocol (malformed or oversized frame).
    pub const PROTOCOL: u32 = 1;
    /// A request was refused (version, credentials, key).
    pub const REFUSED: u32 = 2;
    /// The relay is shutting down.
    pub const SHUTDOWN: u32 = 3;
    /// The relay is protecting itself: too many connections, too slow to log in, or not reading
    /// what it is sent.
    pub const OVERLOAD: u32 = 4;
}

/// Connection-level receive window of a relay connection before login or join: an
/// unauthenticated peer can make the relay buffer at most this much.
pub const PRE_AUTH_RECEIVE_WINDOW: u32 = 64 * 1024;
/// Connection-level receive window once authenticated.
pub const RECEIVE_WINDOW: u32 = 64 << 20;
/// Bidirectional streams an authenticated agent may have open at once.
pub const AGENT_STREAMS: u32 = 256;

/// The longest pause between two attempts to reconnect.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The pause before reconnection attempt `n` (1, 2, …): doubling from 250 ms up to
/// [`MAX_BACKOFF`], with ±20 % jitter (`jitter` is a random byte) so that many clients cut at
/// once do not all come back at the same instant.
pub fn backoff(n: u32, jitter: u8) -> Duration {
    let base = Duration::from_millis(250)
        .saturating_mul(1u32 << n.saturating_sub(1).min(8))
        .min(MAX_BACKOFF);
    let spread = 0.8 + 0.4 * (f64::from(jitter) / 255.0);
    base.mul_f64(spread)
}

/// SHA-256 fingerprint of a DER certificate, lowercase hex (64 characters).
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex::encode(Sha256::digest(cert_der))
}

/// Why a fingerprint could not be read.
#[derive(Debug, thiserror::Error)]
#[error("relay fingerprint must be 64 hex digits (SHA-256), colons allowed")]
pub struct BadFingerprint;

/// Parses a fingerprint given as 64 hex digits, optionally with colons.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], BadFingerprint> {
    let clean: String = s.trim().chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(clean).map_err(|_| BadFingerprint)?;
    bytes.try_into().map_err(|_| BadFingerprint)
}

/// ring, with AES-128-GCM preferred: as safe for this use and faster than AES-256 on every
/// byte of the screen and of files.
fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        _ => 2,
    });
    Arc::new(p)
}

fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(IDLE_TIMEOUT.try_into().ok());
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.max_concurrent_bidi_streams(AGENT_STREAMS.into());
    // Nothing uses unidirectional streams.
    t.max_concurrent_uni_streams(0u32.into());
    t.stream_receive_window((16u32 << 20).into());
    t.receive_window(RECEIVE_WINDOW.into());
    t.send_window(64 << 20);
    // Probe for paths that carry bigger datagrams than the 1200-byte floor (loopback and jumbo
    // frames carry far more): fewer packets means less per-packet crypto and system-call work.
    // Probing backs off by itself where the path is smaller.
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MTU_UPPER_BOUND);
    t.mtu_discovery_config(Some(mtu));
    // Remote support runs over Wi-Fi and mobile links where packets are lost for reasons other
    // than congestion.
    t.congestion_controller_factory(Arc::new(congestion::LossTolerantConfig::cubic()));
    t
}

/// Largest UDP payload MTU discovery tries.
const MTU_UPPER_BOUND: u16 = 16_384;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn refused the configuration.
    #[error("quic configuration: {0}")]
    Quic(String),
}

/// What a relay connection may do before it has logged in or joined: one bidirectional stream
/// (the control stream), none unidirectional, and [`PRE_AUTH_RECEIVE_WINDOW`] bytes of data.
/// [`unlock`] raises the limits once the peer is known.
fn pre_auth_transport() -> quinn::TransportConfig {
    let mut t = transport();
    // Clients ping; their pings and the relay's acknowledgements keep both ends alive.
    t.keep_alive_interval(None);
    t.max_concurrent_bidi_streams(1u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.receive_window(PRE_AUTH_RECEIVE_WINDOW.into());
    t
}

/// Raises a relay connection's limits once its peer logged in or joined: `window` bytes of
/// receive window (the relay's default is [`RECEIVE_WINDOW`]), and `streams` bidirectional
/// streams (an agent opens one per screen, input and file operation; a host opens none but its
/// control stream).
pub fn unlock(conn: &quinn::Connection, streams: u32, window: u32) {
    conn.set_receive_window(window.into());
    conn.set_max_concurrent_bi_streams(streams.into());
}

/// Server configuration for the relay: TLS 1.3 only, our ALPN only, unauthenticated limits.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![tether_protocol::ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(Arc::new(pre_auth_transport()));
    Ok(cfg)
}

/// Length of the connection IDs the relay gives its clients, which every packet a client sends
/// carries: 4 bytes (a keystroke's acknowledgement is then 4 bytes shorter than with quinn's 8)
/// still let a client's connection follow it to a new address (a NAT rebinding).
pub const RELAY_CID_LEN: usize = 4;

/// The relay's endpoint on `addr` with `config`.
pub fn server_endpoint(
    config: quinn::ServerConfig,
    addr: SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime"))?;
    let mut endpoint_cfg = quinn::EndpointConfig::default();
    endpoint_cfg
        .cid_generator(|| Box::new(quinn_proto::RandomConnectionIdGenerator::new(RELAY_CID_LEN)));
    quinn::Endpoint::new_with_abstract_socket(
        endpoint_cfg,
        Some(config),
        runtime.wrap_udp_socket(socket)?,
        runtime,
    )
}

/// Accepts exactly the certificate whose SHA-256 is pinned, and checks the handshake signature
/// with that certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    pinned: [u8; 32],
    provider: Arc<CryptoProvider>,
    mismatch: Arc<Mutex<Option<String>>>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            let msg = format!(
                "relay certificate fingerprint {} does not match the pinned {}",
                hex::encode(got),
                hex::encode(self.pinned)
            );
            if let Ok(mut m) = self.mismatch.lock() {
                *m = Some(msg.clone());
            }
            Err(rustls::Error::General(msg))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a client could not connect to the relay.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The relay address did not resolve.
    #[error("cannot resolve relay address {addr}: {reason}")]
    Resolve {
        /// What was given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The relay presented another certificate than the pinned one.
    #[error("{0}; refusing to connect")]
    FingerprintMismatch(String),
    /// TLS or QUIC setup failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The local UDP socket could not be opened.
    #[error("cannot open a UDP socket: {0}")]
    Socket(std::io::Error),
    /// The connection attempt failed.
    #[error("cannot connect to the relay at {addr}: {reason}")]
    Connect {
        /// The relay.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// Resolves `HOST:PORT`.
pub async fn resolve(addr: &str) -> Result<SocketAddr, ConnectError> {
    let mut it = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| ConnectError::Resolve {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    it.next().ok_or_else(|| ConnectError::Resolve {
        addr: addr.to_string(),
        reason: "no address".into(),
    })
}

/// How a client trusts the relay. There is no third way: never an unverified connection.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly the certificate with this SHA-256 (the relay's self-signed one, or any other).
    Pinned([u8; 32]),
    /// A certificate for the relay's host name issued by one of these authorities (a relay run
    /// with a CA-issued certificate).
    Authorities(Arc<rustls::RootCertStore>),
}

impl Trust {
    /// The authorities in a PEM file.
    pub fn authorities_from_pem(path: &std::path::Path) -> Result<Trust, String> {
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!(
                "{}: no certificate authority in it",
                path.display()
            ));
        }
        Ok(Trust::Authorities(Arc::new(roots)))
    }
}

/// Connects to the relay at `addr`, accepting only the certificate with SHA-256 `pinned`.
///
/// Returns the endpoint too: it must outlive the connection.
pub async fn connect(
    addr: &str,
    pinned: [u8; 32],
) -> Result<(quinn::Endpoint, quinn::Connection), ConnectError> {
    connect_trusting(addr, &Trust::Pinned(pinned)).await
}

/// The host name in `HOST:PORT` (brackets of an IPv6 address removed).
fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

/// Connects to the relay at `addr`, trusting it as `trust` says.
pub async fn connect_trusting(
    addr: &str,
    trust: &Trust,
) -> Result<(quinn::Endpoint, quinn::Connection), ConnectError> {
    let remote = resolve(addr).await?;
    let mismatch = Arc::new(Mutex::new(None));
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::from)?;
    let (mut tls, server_name) = match trust {
        Trust::Pinned(pinned) => {
            let verifier = PinnedVerifier {
                pinned: *pinned,
                provider: provider(),
                mismatch: mismatch.clone(),
            };
            let tls = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            (tls, SERVER_NAME.to_string())
        }
        Trust::Authorities(roots) => {
            let tls = builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            (tls, host_of(addr).to_string())
        }
    };
    tls.alpn_protocols = vec![tether_protocol::ALPN.to_vec()];
    tls.enable_early_data = false;
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(Arc::new(transport()));
    let bind: SocketAddr = if remote.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(bind).map_err(ConnectError::Socket)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| ConnectError::Socket(std::io::Error::other("no async runtime")))?;
    let mut endpoint_cfg = quinn::EndpointConfig::default();
    // The endpoint holds this one connection, so the relay's packets to it need no connection
    // ID: 8 bytes less on each, as much as a tenth of a keystroke's packet.
    endpoint_cfg.cid_generator(|| Box::new(quinn_proto::RandomConnectionIdGenerator::new(0)));
    let socket = Arc::new(NoEcn(
        runtime
            .wrap_udp_socket(socket)
            .map_err(ConnectError::Socket)?,
    ));
    let mut endpoint =
        quinn::Endpoint::new_with_abstract_socket(endpoint_cfg, None, socket, runtime)
            .map_err(ConnectError::Socket)?;
    endpoint.set_default_client_config(cfg);
    let fail = |reason: String| ConnectError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let connecting = endpoint
        .connect(remote, &server_name)
        .map_err(|e| fail(e.to_string()))?;
    match connecting.await {
        Ok(conn) => Ok((endpoint, conn)),
        Err(e) => {
            if let Some(msg) = mismatch.lock().ok().and_then(|m| m.clone()) {
                return Err(ConnectError::FingerprintMismatch(msg));
            }
            // An authority that does not vouch for the relay is the same hard error.
            if matches!(trust, Trust::Authorities(_)) && e.to_string().contains("certificate") {
                return Err(ConnectError::FingerprintMismatch(format!(
                    "the relay's certificate is not issued for {server_name} by a trusted authority ({e})"
                )));
            }
            Err(fail(e.to_string()))
        }
    }
}

/// Why a framed read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes were not a valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream or connection failed.
    #[error("stream: {0}")]
    Stream(#[from] quinn::ReadError),
}

impl ReadError {
    /// Whether the peer sent bad bytes (as opposed to going away).
    pub fn is_protocol_violation(&self) -> bool {
        matches!(self, ReadError::Frame(_))
    }
}

/// Reads the next frame body from `recv`. `Ok(None)` is a clean end of stream between frames.
pub async fn read_body(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<Option<Vec<u8>>, ReadError> {
    // The prefix is read a byte at a time: it ends where its last byte says, and the body's
    // first bytes must stay in the stream for the exact read below.
    let mut header = [0u8; MAX_HEADER_LEN];
    let mut got = 0;
    let len = loop {
        if let Some((len, _)) = frame::parse_header(&header[..got], max)? {
            break len;
        }
        match recv.read(&mut header[got..=got]).await? {
            Some(n) => got += n,
            None if got == 0 => return Ok(None),
            None => return Err(FrameError::Truncated.into()),
        }
    };
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| match e {
        quinn::ReadExactError::FinishedEarly(_) => ReadError::Frame(FrameError::Truncated),
        quinn::ReadExactError::ReadError(e) => ReadError::Stream(e),
    })?;
    Ok(Some(body))
}

/// Reads and decodes the next message. `Ok(None)` is a clean end of stream.
pub async fn read_msg<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<Option<T>, ReadError> {
    match read_body(recv, max).await? {
        Some(body) => Ok(Some(frame::decode_body(&body)?)),
        None => Ok(None),
    }
}

/// Why a client's session with the relay failed: the link's failures, shared by every client,
/// and `E`, what fails on the client's own side (capture on the host, decoding in the console).
#[derive(Debug, thiserror::Error)]
pub enum LinkError<E: std::error::Error + 'static> {
    /// Could not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused (the key, the login, the version, a limit).
    #[error("{0}")]
    Refused(tether_protocol::msg::Refusal),
    /// The connection broke.
    #[error("lost the connection to the relay: {0}")]
    Lost(String),
    /// The other side broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The client's own side failed.
    #[error(transparent)]
    Local(E),
}

impl<E: std::error::Error + 'static> From<HelloError> for LinkError<E> {
    fn from(e: HelloError) -> Self {
        match e {
            HelloError::Refused(r) => LinkError::Refused(r),
            HelloError::Lost(l) => LinkError::Lost(l),
            HelloError::Protocol(p) => LinkError::Protocol(p),
        }
    }
}

impl<E: std::error::Error + 'static> From<ReadError> for LinkError<E> {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Frame(f) => LinkError::Protocol(f.to_string()),
            ReadError::Stream(s) => LinkError::Lost(s.to_string()),
        }
    }
}

/// Reads the next message of a stream the client depends on: its end is a lost link.
pub async fn read_next<T: DeserializeOwned, E: std::error::Error + 'static>(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<T, LinkError<E>> {
    match read_msg::<T>(recv, max).await? {
        Some(m) => Ok(m),
        None => Err(LinkError::Lost("the stream ended".into())),
    }
}

/// Why the opening of a control stream failed.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The relay refused the hello (another version, say).
    #[error("{0}")]
    Refused(tether_protocol::msg::Refusal),
    /// The connection broke.
    #[error("lost the connection to the relay: {0}")]
    Lost(String),
    /// The relay answered something else than a welcome.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Opens the control stream of a client connection: sends the [`Hello`] of `role`, and waits for
/// the relay's welcome.
///
/// [`Hello`]: tether_protocol::msg::Hello
pub async fn hello(
    conn: &quinn::Connection,
    role: tether_protocol::msg::Role,
    software: &str,
) -> Result<(quinn::SendStream, quinn::RecvStream), HelloError> {
    use tether_protocol::frame::CONTROL_MAX_FRAME;
    use tether_protocol::msg::{HELLO_MAGIC, Hello, ServerMsg};
    let lost = |e: &dyn std::fmt::Display| HelloError::Lost(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    let hello = Hello {
        magic: HELLO_MAGIC,
        version: tether_protocol::PROTOCOL_VERSION,
        role,
        software: software.to_string(),
    };
    write_msg(&mut send, &hello, CONTROL_MAX_FRAME)
        .await
        .map_err(|e| lost(&e))?;
    match read_msg::<ServerMsg>(&mut recv, CONTROL_MAX_FRAME).await {
        Ok(Some(ServerMsg::Welcome { .. })) => Ok((send, recv)),
        Ok(Some(ServerMsg::Refused(r))) => Err(HelloError::Refused(r)),
        Ok(Some(other)) => Err(HelloError::Protocol(format!("unexpected {other:?}"))),
        Ok(None) => Err(HelloError::Lost("the relay closed the connection".into())),
        Err(e) if e.is_protocol_violation() => Err(HelloError::Protocol(e.to_string())),
        Err(e) => Err(lost(&e)),
    }
}

/// Reads messages from `recv` on a task of its own until the stream ends or fails; the last item
/// is the error, if any.
pub fn spawn_reader<T: DeserializeOwned + Send + 'static>(
    mut recv: quinn::RecvStream,
    max: usize,
) -> tokio::sync::mpsc::UnboundedReceiver<Result<T, ReadError>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match read_msg::<T>(&mut recv, max).await {
                Ok(Some(m)) => {
                    if tx.send(Ok(m)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Reads a peer's messages from `recv` on a task of its own until the stream ends, the returned
/// receiver is dropped, or a message breaks the protocol; then only this stream is stopped (with
/// [`close::PROTOCOL`]) and the peer's other streams go on. `inspect` sees each message as it
/// arrives, before it is queued (for settings that must apply at once). Abort the returned task
/// to stop reading.
pub fn spawn_peer_reader<T: DeserializeOwned + Send + 'static>(
    mut recv: quinn::RecvStream,
    max: usize,
    what: &'static str,
    mut inspect: impl FnMut(&T) + Send + 'static,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<T>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match read_msg::<T>(&mut recv, max).await {
                Ok(Some(m)) => {
                    inspect(&m);
                    if tx.send(m).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    if e.is_protocol_violation() {
                        tracing::warn!(error = %e, stream = what, "peer sent a bad message; closing the stream");
                        let _ = recv.stop(close::PROTOCOL.into());
                    }
                    return;
                }
            }
        }
    });
    (rx, task)
}

/// Why a framed write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The message could not be encoded within the limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream or connection failed.
    #[error("stream: {0}")]
    Stream(#[from] quinn::WriteError),
}

/// Encodes and writes one message.
pub async fn write_msg<T: Serialize>(
    send: &mut quinn::SendStream,
    msg: &T,
    max: usize,
) -> Result<(), WriteError> {
    let bytes = frame::encode(msg, max)?;
    send.write_all(&bytes).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_bounded_jitter() {
        assert_eq!(backoff(1, 128).as_millis(), 250);
        assert!(
            backoff(2, 0) >= Duration::from_millis(399)
                && backoff(2, 255) <= Duration::from_millis(601)
        );
        for n in [6, 10, 1000] {
            assert!(backoff(n, 255) <= MAX_BACKOFF.mul_f64(1.2));
            assert!(backoff(n, 0) >= MAX_BACKOFF.mul_f64(0.8));
        }
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let fp = fingerprint(b"cert");
        assert_eq!(fp.len(), 64);
        let bytes = parse_fingerprint(&fp).expect("plain");
        let colons = bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&colons).expect("colons"), bytes);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }
}

/// A client's socket without explicit congestion notification: it marks nothing it sends and
/// reports no marks it receives. ECN makes every acknowledgement carry three counters, 8 bytes a
/// keystroke both ways together, and the congestion controller ([`congestion::LossTolerant`])
/// reads queueing delay and loss anyway. With no marks arriving, the relay's validation turns
/// ECN off on its side too.
#[derive(Debug)]
struct NoEcn(Arc<dyn quinn::AsyncUdpSocket>);

impl quinn::AsyncUdpSocket for NoEcn {
    fn create_io_poller(self: Arc<Self>) -> std::pin::Pin<Box<dyn quinn::UdpPoller>> {
        self.0.clone().create_io_poller()
    }

    fn try_send(&self, t: &quinn::udp::Transmit) -> std::io::Result<()> {
        self.0.try_send(&quinn::udp::Transmit { ecn: None, ..*t })
    }

    fn poll_recv(
        &self,
        cx: &mut std::task::Context,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let got = self.0.poll_recv(cx, bufs, meta);
        if let std::task::Poll::Ready(Ok(n)) = &got {
            for m in meta.iter_mut().take(*n) {
                m.ecn = None;
            }
        }
        got
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.0.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.0.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }
}
