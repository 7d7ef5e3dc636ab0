//! An agent's media streams: each starts with a routing preamble the relay checks against the
//! core; the relay then opens the matching stream to the host and splices the two without
//! looking at what flows.

use std::net::SocketAddr;
use std::sync::Arc;

use tether_net::{close, read_msg, write_msg};
use tether_protocol::desk::Participant;
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::msg::{Denied, OpenStream, Refusal};
use tokio::sync::watch;
use tracing::debug;

use super::{PREAMBLE_TIMEOUT, Shared};
use crate::core::ConnId;
use crate::store::Actor;

/// Accepts the agent's streams until its connection ends.
pub(super) async fn accept(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    id: ConnId,
    remote: SocketAddr,
) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        tokio::spawn(route(shared.clone(), conn.clone(), id, remote, send, recv));
    }
}

/// Reads an agent's stream preamble, checks it, opens the matching stream to the host and splices
/// the two.
async fn route(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    id: ConnId,
    remote: SocketAddr,
    mut a_send: quinn::SendStream,
    mut a_recv: quinn::RecvStream,
) {
    let Some(open) = preamble(&shared, &conn, remote, &mut a_recv).await else {
        return;
    };
    let session = open.session();
    let Some((host_conn, who, revoked)) = check(&shared, id, remote, &open).await else {
        let _ = a_send.reset(close::REFUSED.into());
        return;
    };
    let Ok((mut h_send, h_recv)) = host_conn.open_bi().await else {
        let _ = a_send.reset(close::REFUSED.into());
        return;
    };
    let agent = who.id;
    let to_host = open.for_host(who);
    if write_msg(&mut h_send, &to_host, CONTROL_MAX_FRAME)
        .await
        .is_err()
    {
        let _ = a_send.reset(close::REFUSED.into());
        return;
    }
    debug!(%session, %agent, "media stream routed");
    tokio::join!(
        pump(a_recv, h_send, revoked.clone()),
        pump(h_recv, a_send, revoked)
    );
}

/// The stream's preamble, within [`PREAMBLE_TIMEOUT`]. A malformed one closes the peer (and is
/// audited); a stream that ends or stalls is dropped.
async fn preamble(
    shared: &Shared,
    conn: &quinn::Connection,
    remote: SocketAddr,
    recv: &mut quinn::RecvStream,
) -> Option<OpenStream> {
    let read = tokio::time::timeout(
        PREAMBLE_TIMEOUT,
        read_msg::<OpenStream>(recv, CONTROL_MAX_FRAME),
    )
    .await;
    match read {
        Ok(Ok(Some(o))) => Some(o),
        Ok(Err(e)) if e.is_protocol_violation() => {
            let actor = Actor::Peer(remote.ip());
            shared.close_for_protocol(conn, &actor, remote, &e).await;
            None
        }
        _ => None,
    }
}

/// Checks with the core that connection `id` may open this stream: the host's connection, the
/// agent as the host may see them, and the switch that cuts the stream if the agent leaves the
/// session; or `None` (audited as `stream.refused`).
async fn check(
    shared: &Shared,
    id: ConnId,
    remote: SocketAddr,
    open: &OpenStream,
) -> Option<(quinn::Connection, Participant, watch::Receiver<bool>)> {
    let session = open.session();
    let route = {
        let mut st = shared.state();
        let routed = st.core.stream_route(id, session, open.kind());
        match routed.and_then(|(host, who)| {
            st.peers
                .get(&host)
                .map(|p| (p.conn.clone(), who))
                .ok_or(Refusal::NotAllowed(Denied::CustomerGone))
        }) {
            Ok((conn, who)) => Ok((conn, who, st.revoker(id, session))),
            Err(r) => Err(r),
        }
    };
    let refusal = match route {
        Ok(r) => return Some(r),
        Err(r) => r,
    };
    let actor = match shared.state().core.agent_of(id) {
        Some(a) => Actor::Agent(a.login.clone()),
        None => Actor::Peer(remote.ip()),
    };
    let what = format!("{} stream: {refusal}", open.kind().as_str());
    shared
        .audit(Some(session), &actor, "stream.refused", &what, Some(remote))
        .await;
    None
}

/// Copies one direction of a media stream, opaque. A reset or a stop is passed on with its
/// code, so the two ends see each other's intent (a cancelled transfer stays cancelled). When
/// `revoked` turns on (the agent left the session), both ends are cut.
async fn pump(
    mut from: quinn::RecvStream,
    mut to: quinn::SendStream,
    mut revoked: watch::Receiver<bool>,
) {
    loop {
        if *revoked.borrow() {
            let _ = to.reset(close::REFUSED.into());
            let _ = from.stop(close::REFUSED.into());
            return;
        }
        tokio::select! {
            changed = revoked.changed() => {
                if changed.is_err() {
                    // The switch is gone with the connection's registration: cut as well.
                    let _ = to.reset(close::REFUSED.into());
                    let _ = from.stop(close::REFUSED.into());
                    return;
                }
            }
            chunk = from.read_chunk(1 << 20, true) => match chunk {
                Ok(Some(c)) => {
                    if to.write_chunk(c.bytes).await.is_err() {
                        let code = to.stopped().await.ok().flatten().unwrap_or(close::NORMAL.into());
                        let _ = from.stop(code);
                        return;
                    }
                }
                Ok(None) => {
                    let _ = to.finish();
                    return;
                }
                Err(quinn::ReadError::Reset(code)) => {
                    let _ = to.reset(code);
                    return;
                }
                Err(_) => {
                    let _ = to.reset(close::NORMAL.into());
                    return;
                }
            },
            stopped = to.stopped() => {
                let code = stopped.ok().flatten().unwrap_or(close::NORMAL.into());
                let _ = from.stop(code);
                return;
            }
        }
    }
}
