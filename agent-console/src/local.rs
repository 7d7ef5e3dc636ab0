//! What runs on this computer besides the agent's client, for a local try: an embedded relay
//! (feature `embedded-relay`) listening on loopback only, with a local agent whose password is kept
//! owner-only in the relay's data dir; and a demo host (feature `demo`) sharing this display as a
//! customer would. Both features are on by default; without them the console builds from the
//! protocol, transport, files and desktop crates alone.

use tether_protocol::msg::SessionKey;

use crate::backend::BackendOptions;
use crate::net::AgentClient;

/// The local relay and demo host, while they run.
#[derive(Debug, Default)]
pub struct Local {
    #[cfg(feature = "embedded-relay")]
    relay: Option<relay::Embedded>,
    #[cfg(feature = "demo")]
    demo: demo::Demo,
}

impl Local {
    /// Starts the embedded relay; returns the local agent's login.
    #[cfg(feature = "embedded-relay")]
    pub async fn start_relay(
        &mut self,
        data_dir: Option<std::path::PathBuf>,
    ) -> anyhow::Result<crate::state::LoginRequest> {
        let e = relay::start(data_dir).await?;
        let req = e.login_request();
        self.relay = Some(e);
        Ok(req)
    }

    /// The agent logged in: with `--demo`, ask for the key the demo host will join with.
    pub async fn logged_in(&mut self, client: &AgentClient, options: &BackendOptions) {
        #[cfg(feature = "demo")]
        self.demo.logged_in(client, options.demo).await;
        #[cfg(not(feature = "demo"))]
        let _ = (client, options);
    }

    /// A key was made: the demo host, if it waits for one, joins with it.
    pub fn key_created(&mut self, key: &SessionKey, client: &AgentClient) {
        #[cfg(feature = "demo")]
        self.demo.key_created(key, client);
        #[cfg(not(feature = "demo"))]
        let _ = (key, client);
    }

    /// Stops the demo host and the embedded relay.
    pub async fn stop(&mut self) {
        #[cfg(feature = "demo")]
        self.demo.stop();
        #[cfg(feature = "embedded-relay")]
        if let Some(e) = self.relay.take() {
            e.shutdown().await;
        }
    }
}

#[cfg(feature = "embedded-relay")]
mod relay {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};

    use anyhow::Context as _;
    use tether_relay::store::{self, StoreError};
    use tether_relay::{Relay, RelayConfig};
    use tracing::info;

    use crate::state::LoginRequest;

    /// The preferred port; another free one is used if it is taken.
    pub(super) const DEFAULT_PORT: u16 = 4433;

    /// A running embedded relay and its local agent.
    #[derive(Debug)]
    pub(super) struct Embedded {
        relay: Relay,
        agent: String,
        password: String,
    }

    impl Embedded {
        /// Login details for the local agent.
        pub(super) fn login_request(&self) -> LoginRequest {
            LoginRequest {
                relay: self.relay.local_addr().to_string(),
                fingerprint: self.relay.fingerprint().to_string(),
                user: self.agent.clone(),
                password: self.password.clone(),
            }
        }

        /// Stops the relay.
        pub(super) async fn shutdown(self) {
            self.relay.shutdown().await;
        }
    }

    /// The default data dir of the embedded relay.
    pub(super) fn default_data_dir() -> anyhow::Result<PathBuf> {
        directories::ProjectDirs::from("org", "Tether", "tether-console")
            .map(|p| p.data_dir().join("embedded-relay"))
            .context("no home folder: pass --data-dir")
    }

    fn local_agent_name() -> String {
        let user = tether_desktop::info::user_name();
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
    pub(super) async fn start(data_dir: Option<PathBuf>) -> anyhow::Result<Embedded> {
        let data_dir = match data_dir {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let cfg = |port| RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            data_dir: data_dir.clone(),
            public_url: None,
            limits: tether_relay::Limits::default(),
            requeue_after: tether_relay::core::REQUEUE_AFTER,
            agent_grace: tether_relay::core::AGENT_GRACE,
            // It stops with the console, whose agent and demo host cannot come back to it.
            keep_sessions: false,
            tls_files: None,
            portal: Default::default(),
            smtp: None,
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
        if store
            .login(agent.clone(), password.clone())
            .await?
            .is_none()
        {
            let new = store::NewAgent {
                name: agent.clone(),
                display: Some(tether_desktop::info::full_name()),
                password: password.clone(),
            };
            match store.add_agent(new, crate::state::now_unix()).await {
                Ok(()) => {}
                Err(StoreError::AgentExists(_)) => {
                    store.set_password(agent.clone(), password.clone()).await?;
                    store.set_disabled(agent.clone(), false).await?;
                }
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
}

#[cfg(feature = "demo")]
mod demo {
    use tether_protocol::msg::SessionKey;
    use tokio::sync::{mpsc, watch};
    use tracing::{info, warn};

    use crate::net::AgentClient;

    /// The demo host's life.
    #[derive(Debug, Default)]
    pub(super) enum Demo {
        /// Not asked for.
        #[default]
        Off,
        /// Waiting for the key it will join with.
        WaitingForKey,
        /// Sharing this display.
        Running(tokio::task::JoinHandle<()>),
    }

    impl Demo {
        pub(super) async fn logged_in(&mut self, client: &AgentClient, wanted: bool) {
            if wanted && matches!(self, Demo::Off) {
                *self = Demo::WaitingForKey;
                let _ = client.create_key(None, None).await;
            }
        }

        pub(super) fn key_created(&mut self, key: &SessionKey, client: &AgentClient) {
            if matches!(self, Demo::WaitingForKey) {
                *self = Demo::Running(start_demo_host(
                    key.pin.clone(),
                    client.relay().to_string(),
                    client.fingerprint(),
                ));
            }
        }

        pub(super) fn stop(&mut self) {
            if let Demo::Running(h) = std::mem::take(self) {
                h.abort();
            }
        }
    }

    /// Runs a customer host for this display, joining with `pin`.
    fn start_demo_host(
        pin: String,
        relay: String,
        fingerprint: [u8; 32],
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let opts = tether_host::HostOptions {
                key: pin,
                relay,
                trust: tether_net::Trust::Pinned(fingerprint),
                name: None,
                reconnect_for: std::time::Duration::from_secs(
                    tether_protocol::msg::RESUME_WINDOW_SECS,
                ),
            };
            let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
            let (_end_tx, end_rx) = watch::channel(false);
            tokio::spawn(async move {
                while let Some(ev) = ev_rx.recv().await {
                    info!(?ev, "demo host");
                }
            });
            match tether_host::run(
                opts,
                tether_desktop::capture::system_factory(),
                ev_tx,
                end_rx,
            )
            .await
            {
                Ok(outcome) => info!(?outcome, "demo host finished"),
                Err(e) => warn!(error = %e, "demo host failed"),
            }
        })
    }
}
