//! The host's connection to the relay: hello, join with the key, then serve the session until it
//! ends.

use tether_net::{ConnectError, close, read_msg, write_msg};
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::msg::{
    ClientMsg, EndReason, HELLO_MAGIC, Hello, HostStream, Refusal, Role, ServerMsg, SessionId,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::capture::{CaptureError, CapturerFactory};
use crate::info;

/// How to reach the relay and which key to join with.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The session key: 9 digits or the session URL.
    pub key: String,
    /// Relay address, `HOST:PORT`.
    pub relay: String,
    /// SHA-256 of the relay's certificate.
    pub fingerprint: [u8; 32],
}

/// What happens during a session, for the customer's eyes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// Joined a session of this agent.
    Joined {
        /// The session.
        session: SessionId,
        /// The agent whose key it was.
        agent: String,
    },
    /// The agents connected now (empty: waiting for an agent).
    Agents(Vec<String>),
    /// An agent started viewing a monitor.
    ViewerStarted {
        /// Who.
        agent: String,
        /// Which monitor.
        monitor: u8,
    },
    /// An agent stopped viewing.
    ViewerStopped {
        /// Who.
        agent: String,
    },
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The relay ended it.
    Ended(EndReason),
    /// The customer ended it here.
    EndedHere,
}

/// Why the host stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Could not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused the key or the version.
    #[error("{0}")]
    Refused(Refusal),
    /// The connection to the relay broke.
    #[error("lost the connection to the relay: {0}")]
    Lost(String),
    /// The relay broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The screen cannot be captured.
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

async fn read_server(recv: &mut quinn::RecvStream) -> Result<ServerMsg, HostError> {
    match read_msg::<ServerMsg>(recv, CONTROL_MAX_FRAME).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(HostError::Lost("the relay closed the connection".into())),
        Err(e) if e.is_protocol_violation() => Err(HostError::Protocol(e.to_string())),
        Err(e) => Err(HostError::Lost(e.to_string())),
    }
}

/// Joins the session and serves it until it ends, `end` turns true, or the relay goes away.
pub async fn run(
    opts: HostOptions,
    factory: CapturerFactory,
    events: mpsc::UnboundedSender<HostEvent>,
    mut end: watch::Receiver<bool>,
) -> Result<Outcome, HostError> {
    let f = factory.clone();
    let monitors = tokio::task::spawn_blocking(move || f().and_then(|mut c| c.monitors()))
        .await
        .map_err(|e| HostError::Capture(CaptureError::Failed(e.to_string())))??;
    let customer = info::customer_info(monitors);
    let (endpoint, conn) = tether_net::connect(&opts.relay, opts.fingerprint).await?;
    let result = session(&conn, opts, customer, factory, events, &mut end).await;
    match &result {
        Ok(_) => conn.close(close::NORMAL.into(), b"bye"),
        Err(HostError::Protocol(e)) => conn.close(close::PROTOCOL.into(), e.as_bytes()),
        Err(_) => conn.close(close::NORMAL.into(), b"bye"),
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
    result
}

async fn session(
    conn: &quinn::Connection,
    opts: HostOptions,
    customer: tether_protocol::msg::CustomerInfo,
    factory: CapturerFactory,
    events: mpsc::UnboundedSender<HostEvent>,
    end: &mut watch::Receiver<bool>,
) -> Result<Outcome, HostError> {
    let lost = |e: &dyn std::fmt::Display| HostError::Lost(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    let hello = Hello {
        magic: HELLO_MAGIC,
        version: tether_protocol::PROTOCOL_VERSION,
        role: Role::Host,
        software: format!("tether-host {}", env!("CARGO_PKG_VERSION")),
    };
    write_msg(&mut send, &hello, CONTROL_MAX_FRAME)
        .await
        .map_err(|e| lost(&e))?;
    match read_server(&mut recv).await? {
        ServerMsg::Welcome { .. } => {}
        ServerMsg::Refused(r) => return Err(HostError::Refused(r)),
        other => return Err(HostError::Protocol(format!("unexpected {other:?}"))),
    }
    let join = ClientMsg::Join {
        key: opts.key.clone(),
        customer,
    };
    write_msg(&mut send, &join, CONTROL_MAX_FRAME)
        .await
        .map_err(|e| lost(&e))?;
    match read_server(&mut recv).await? {
        ServerMsg::Joined { session, agent } => {
            let _ = events.send(HostEvent::Joined { session, agent });
        }
        ServerMsg::Refused(r) => return Err(HostError::Refused(r)),
        other => return Err(HostError::Protocol(format!("unexpected {other:?}"))),
    }

    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let m = read_server(&mut recv).await;
            let stop = m.is_err();
            if ctl_tx.send(m).is_err() || stop {
                break;
            }
        }
    });
    let mut viewers = tokio::task::JoinSet::new();
    let outcome = loop {
        tokio::select! {
            m = ctl_rx.recv() => match m {
                Some(Ok(ServerMsg::AgentsChanged { agents, .. })) => {
                    let _ = events.send(HostEvent::Agents(agents));
                }
                Some(Ok(ServerMsg::SessionEnded { reason, .. })) => break Ok(Outcome::Ended(reason)),
                Some(Ok(ServerMsg::Refused(r))) => warn!(%r, "relay refused a request"),
                Some(Ok(other)) => debug!(?other, "ignored control message"),
                Some(Err(e)) => break Err(e),
                None => break Err(HostError::Lost("control stream ended".into())),
            },
            s = conn.accept_bi() => match s {
                Ok((s, mut r)) => {
                    let pre = read_msg::<HostStream>(&mut r, CONTROL_MAX_FRAME).await;
                    match pre {
                        Ok(Some(HostStream::Screen { agent, monitor })) => {
                            let events = events.clone();
                            let factory = factory.clone();
                            viewers.spawn(async move {
                                let _ = events.send(HostEvent::ViewerStarted { agent: agent.clone(), monitor });
                                if let Err(e) = crate::screen::serve(s, r, monitor, factory).await {
                                    warn!(error = %e, %agent, "screen stream ended with an error");
                                }
                                let _ = events.send(HostEvent::ViewerStopped { agent });
                            });
                        }
                        Ok(None) => {}
                        Err(e) => break Err(HostError::Protocol(e.to_string())),
                    }
                }
                Err(e) => break Err(lost(&e)),
            },
            changed = end.changed() => {
                if changed.is_err() || *end.borrow() {
                    let _ = write_msg(&mut send, &ClientMsg::EndSession, CONTROL_MAX_FRAME).await;
                    let _ = send.finish();
                    // Wait briefly for the relay to confirm, so agents hear it from the relay.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                        while let Some(m) = ctl_rx.recv().await {
                            if matches!(m, Ok(ServerMsg::SessionEnded { .. }) | Err(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                    break Ok(Outcome::EndedHere);
                }
            }
        }
    };
    reader.abort();
    viewers.abort_all();
    outcome
}
