//! A relay inside the console, for a local try: it listens on loopback only, and a local agent
//! whose password is kept owner-only in the relay's data dir logs in by itself. `--demo` also
//! runs a customer host for this display and joins it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tether_relay::server::now_unix;
use tether_relay::store::{self, StoreError};
use tether_relay::{Relay, RelayConfig};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::state::LoginRequest;

/// The preferred port; another free one is used if it is taken.
pub const DEFAULT_PORT: u16 = 4433;

/// A running embedded relay and its local agent.
#[derive(Debug)]
pub struct Embedded {
    relay: Relay,
    agent: String,
    password: String,
}

impl Embedded {
    /// Login details for the local agent.
    pub fn login_request(&self) -> LoginRequest {
        LoginRequest {
            relay: self.relay.local_addr().to_string(),
            fingerprint: self.relay.fingerprint().to_string(),
            user: self.agent.clone(),
            password: self.password.clone(),
        }
    }

    /// Stops the relay.
    pub async fn shutdown(self) {
        self.relay.shutdown().await;
    }
}

/// The default data dir of the embedded relay.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("org", "Tether", "tether-console")
        .map(|p| p.data_dir().join("embedded-relay"))
        .context("no home folder: pass --data-dir")
}

fn local_agent_name() -> String {
    let user = tether_host::info::user_name();
    let clean: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "agent".into()
    } else {
        clean
    }
}

fn read_or_make_secret(path: &Path) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_string();
        if s.len() >= 8 {
            return Ok(s);
        }
    }
    let password = store::random_password()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    std::io::Write::write_all(&mut opts.open(path)?, password.as_bytes())?;
    Ok(password)
}

/// Starts the embedded relay on 127.0.0.1 and makes sure the local agent can log in.
pub async fn start(data_dir: Option<PathBuf>) -> anyhow::Result<Embedded> {
    let data_dir = match data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    let cfg = |port| RelayConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: data_dir.clone(),
        public_url: None,
        limits: tether_relay::Limits::default(),
    };
    let relay = match Relay::start(cfg(DEFAULT_PORT)).await {
        Ok(r) => r,
        Err(e) => {
            info!(error = %e, "port {DEFAULT_PORT} is taken; using another");
            Relay::start(cfg(0)).await?
        }
    };
    let agent = local_agent_name();
    let password = read_or_make_secret(&data_dir.join("local-agent.secret"))?;
    let store = relay.store();
    if !store.verify_agent(&agent, &password).await? {
        match store.add_agent(&agent, &password, now_unix()).await {
            Ok(()) => {}
            Err(StoreError::AgentExists(_)) => store.set_password(&agent, &password).await?,
            Err(e) => return Err(e.into()),
        }
    }
    info!(addr = %relay.local_addr(), fingerprint = relay.fingerprint(), %agent, "embedded relay ready");
    Ok(Embedded {
        relay,
        agent,
        password,
    })
}

/// Runs a customer host for this display, joining with `pin`.
pub fn start_demo_host(
    pin: String,
    relay: String,
    fingerprint: [u8; 32],
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let opts = tether_host::HostOptions {
            key: pin,
            relay,
            fingerprint,
        };
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (_end_tx, end_rx) = watch::channel(false);
        tokio::spawn(async move {
            while let Some(ev) = ev_rx.recv().await {
                info!(?ev, "demo host");
            }
        });
        match tether_host::run(opts, tether_host::capture::system_factory(), ev_tx, end_rx).await {
            Ok(outcome) => info!(?outcome, "demo host finished"),
            Err(e) => warn!(error = %e, "demo host failed"),
        }
    })
}
