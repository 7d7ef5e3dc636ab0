//! A joined host's control stream: the session is recorded and queued, then the host may only
//! end it.

use tether_protocol::chat::Audience;
use tether_protocol::desk::QueueId;
use tether_protocol::msg::{ClientMsg, CustomerInfo, Denied, Refusal, ServerMsg, SessionId};
use tracing::warn;

use super::Conn;
use crate::core::{Arrival, KeyOwner, ResumeKey};
use crate::store::{Actor, SessionStart};

impl Conn {
    pub(super) async fn serve_host(
        self,
        recv: &mut quinn::RecvStream,
        owner: KeyOwner,
        key_id: Option<i64>,
        customer: CustomerInfo,
        client: [u8; 32],
    ) {
        let actor = Actor::Host(self.remote.ip());
        // A ticket carries a request; a help link uses no key: both came through the portal.
        let portal = customer.request.is_some() || key_id.is_none();
        let mut sid = [0u8; 8];
        let mut token = [0u8; 32];
        if getrandom::fill(&mut sid).is_err() || getrandom::fill(&mut token).is_err() {
            return self.refuse(Refusal::NotAllowed(Denied::RelayFailed)).await;
        }
        let resume = ResumeKey { token, client };
        let session = SessionId(u64::from_le_bytes(sid));
        let summary = customer_summary(&customer);
        let (origin, whose) = match &owner {
            KeyOwner::Agent { login, .. } => (QueueId::Personal(login.clone()), login.clone()),
            KeyOwner::Team(t) => (QueueId::Team(t.clone()), format!("team {t}")),
        };
        let now = self.shared.now();
        let start = SessionStart {
            id: session,
            origin: origin.to_string(),
            key_id,
            customer: summary.clone(),
            at: now.unix,
        };
        if let Err(e) = self.shared.store.session_started(start).await {
            warn!(error = %e, "cannot record session start");
        }
        self.shared
            .audit(
                Some(session),
                &actor,
                "session.started",
                &match key_id {
                    Some(_) => format!("customer {summary} joined with a key of {whose}"),
                    None => format!("customer {summary} came through the help link of {whose}"),
                },
                Some(self.remote),
            )
            .await;
        self.register();
        self.shared
            .decide(|core| {
                let arrival = Arrival {
                    owner,
                    customer,
                    portal,
                    resume: Some(resume),
                };
                core.host_joined_via(self.id, session, arrival, now)
            })
            .await;
        self.host_loop(recv, session, actor).await;
    }

    /// A host that came back on this connection: registered already by the resume.
    pub(super) async fn serve_resumed_host(self, recv: &mut quinn::RecvStream, session: SessionId) {
        let actor = Actor::Host(self.remote.ip());
        self.shared
            .audit(
                Some(session),
                &actor,
                "session.host_resumed",
                "the customer's host resumed its session",
                Some(self.remote),
            )
            .await;
        self.host_loop(recv, session, actor).await;
    }

    /// The host's requests until its connection ends.
    async fn host_loop(self, recv: &mut quinn::RecvStream, session: SessionId, actor: Actor) {
        while let Some(msg) = self.next_request(recv, actor.clone()).await {
            let now = self.shared.now();
            match msg {
                ClientMsg::EndSession => self.shared.decide(|core| core.end_by_host(self.id)).await,
                ClientMsg::Say { text, .. } => {
                    self.outcome(|core| core.say(self.id, session, Audience::Everyone, &text, now))
                        .await
                }
                ClientMsg::Note(note) => {
                    self.shared
                        .decide(|core| core.host_note(self.id, note, now))
                        .await
                }
                _ => {
                    self.reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::AgentsOnly)))
                        .await
                }
            }
        }
        self.unregister().await;
        self.conn.close(tether_net::close::NORMAL.into(), b"bye");
    }
}

/// The customer in one line, for the history.
fn customer_summary(c: &CustomerInfo) -> String {
    let monitors: Vec<String> = c
        .monitors
        .iter()
        .map(|m| format!("{}x{}", m.width, m.height))
        .collect();
    format!(
        "{} ({}@{}; {}; monitors {})",
        c.name,
        c.user,
        c.hostname,
        c.os,
        monitors.join(", ")
    )
}
