//! A logged-in agent's control stream: keys, accepting, transferring, inviting, leaving and
//! ending sessions, and the directory of teams and agents. Every rule is the core's; this reads
//! requests, looks up what only the store knows (keys, teams), and carries out the outcome.

use std::time::Duration;

use tether_protocol::desk::{AgentInfo, Target, TeamInfo};
use tether_protocol::msg::{ClientMsg, DIRECTORY_MAX, Denied, Refusal, ServerMsg, SessionKey};
use tether_protocol::pairing;
use tracing::warn;

use super::super::session_url;
use super::Conn;
use crate::core::{AgentProfile, KeyOwner, ResumeKey};
use crate::store::{Actor, KeyFor, StoreError};

impl Conn {
    pub(super) async fn serve_agent(
        self,
        recv: &mut quinn::RecvStream,
        profile: AgentProfile,
        pass: ResumeKey,
    ) {
        self.register();
        let now = self.shared.now();
        self.shared
            .decide(|core| core.agent_online(self.id, profile.clone(), Some(pass), now))
            .await;
        let streams = tokio::spawn(super::super::streams::accept(
            self.shared.clone(),
            self.conn.clone(),
            self.id,
            self.remote,
        ));
        let actor = Actor::Agent(profile.login.clone());
        while let Some(msg) = self.next_request(recv, actor.clone()).await {
            self.agent_msg(&profile, msg).await;
        }
        streams.abort();
        self.unregister().await;
        self.conn.close(tether_net::close::NORMAL.into(), b"bye");
    }

    async fn agent_msg(&self, me: &AgentProfile, msg: ClientMsg) {
        let now = self.shared.now();
        match msg {
            ClientMsg::CreateKey { ttl_secs, team } => self.create_key(me, ttl_secs, team).await,
            ClientMsg::EmailInvite { pin, to } => self.email_invite(me, pin, to).await,
            ClientMsg::Accept { session } => {
                self.outcome(|core| core.accept(self.id, session, now))
                    .await
            }
            ClientMsg::Transfer { session, to } => {
                if let Err(r) = self.check_target(&to).await {
                    return self.reply(ServerMsg::Refused(r)).await;
                }
                self.outcome(|core| core.transfer(self.id, session, &to, now))
                    .await
            }
            ClientMsg::Invite {
                session,
                to,
                masked,
            } => {
                if let Err(r) = self.check_target(&to).await {
                    return self.reply(ServerMsg::Refused(r)).await;
                }
                self.outcome(|core| core.invite(self.id, session, &to, masked, now))
                    .await
            }
            ClientMsg::LeaveSession { session } => {
                self.outcome(|core| core.leave(self.id, session, now)).await
            }
            ClientMsg::EndForAll { session } => {
                self.outcome(|core| core.end_for_all(self.id, session))
                    .await
            }
            ClientMsg::Directory => self.directory(me).await,
            ClientMsg::Scripts => {
                let found = self
                    .shared
                    .store
                    .scripts_for(me.login.clone(), me.teams.iter().cloned().collect())
                    .await;
                match found {
                    Ok(s) => self.reply(ServerMsg::Scripts(fit_in_frame(s))).await,
                    Err(e) => {
                        warn!(error = %e, "cannot read scripts");
                        self.reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::RelayFailed)))
                            .await
                    }
                }
            }
            ClientMsg::Say { session, to, text } => {
                self.outcome(|core| core.say(self.id, session, to, &text, now))
                    .await
            }
            ClientMsg::SetNotes { session, text } => {
                self.outcome(|core| core.set_notes(self.id, session, &text))
                    .await
            }
            ClientMsg::ChatHistory { session } => {
                self.outcome(|core| core.chat_history(self.id, session))
                    .await
            }
            ClientMsg::Login { .. } | ClientMsg::ResumeLogin { .. } => {
                self.reply(ServerMsg::Refused(Refusal::NotAllowed(
                    Denied::AlreadyLoggedIn,
                )))
                .await
            }
            ClientMsg::Join { .. }
            | ClientMsg::Resume { .. }
            | ClientMsg::EndSession
            | ClientMsg::Note(_) => {
                self.reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::HostsOnly)))
                    .await
            }
        }
    }

    /// A key for the agent's own queue, or for a team they are in.
    /// Writes an invitation to one of `me`'s live keys for one recipient; sends it when the
    /// relay has a mail server (within the agent's limit), returns its text otherwise.
    async fn email_invite(&self, me: &AgentProfile, pin: String, to: String) {
        let refuse = |d: Denied| ServerMsg::Refused(Refusal::NotAllowed(d));
        let Some(mailbox) = crate::mail::recipient(&to) else {
            return self.reply(refuse(Denied::BadEmail)).await;
        };
        let now = self.shared.now();
        let found = match pairing::parse_key(&pin) {
            Ok(p) => self.shared.store.find_key(p).await.ok().flatten(),
            Err(_) => None,
        };
        let mine = found.filter(|f| {
            let live = f.ticket.is_none()
                && f.record.state == pairing::KeyState::Live
                && f.record.expires_at > now.unix;
            let owned = match &f.owner {
                KeyOwner::Agent { login, .. } => *login == me.login,
                KeyOwner::Team(t) => me.teams.contains(t),
            };
            live && owned
        });
        let Some(key) = mine else {
            return self.reply(refuse(Denied::NotYourKey)).await;
        };
        let url = session_url(&self.shared.public_url, &pin);
        let (subject, body) = crate::mail::invitation(
            &me.display,
            &pin,
            &url,
            &self.shared.public_url,
            key.record.expires_at,
        );
        let Some(mailer) = &self.shared.mailer else {
            let to = mailbox.email.to_string();
            return self
                .reply(ServerMsg::Invitation {
                    to,
                    sent: false,
                    subject,
                    body,
                })
                .await;
        };
        let allowed = {
            let mut l = self.shared.mails.lock().unwrap_or_else(|e| e.into_inner());
            l.take(&me.login, now.mono)
        };
        if !allowed {
            return self.reply(refuse(Denied::TooFast)).await;
        }
        let address = mailbox.email.to_string();
        match mailer.send(mailbox, &subject, &body).await {
            Ok(()) => {
                self.shared
                    .audit(
                        None,
                        &Actor::Agent(me.login.clone()),
                        "key.emailed",
                        &format!("invitation to {address}"),
                        Some(self.remote),
                    )
                    .await;
                self.reply(ServerMsg::Invitation {
                    to: address,
                    sent: true,
                    subject,
                    body,
                })
                .await
            }
            Err(e) => {
                warn!(error = %e, "cannot send an invitation");
                self.reply(refuse(Denied::MailFailed(e))).await
            }
        }
    }

    async fn create_key(&self, me: &AgentProfile, ttl_secs: Option<u32>, team: Option<String>) {
        let ttl = ttl_secs
            .map(|s| Duration::from_secs(s.into()))
            .unwrap_or(pairing::DEFAULT_KEY_TTL);
        let owner = match &team {
            Some(t) if !me.teams.contains(t) => {
                return self
                    .reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::NotInTeam(
                        t.clone(),
                    ))))
                    .await;
            }
            Some(t) => KeyFor::Team {
                team: t.clone(),
                by: Some(me.login.clone()),
            },
            None => KeyFor::Agent(me.login.clone()),
        };
        let now = self.shared.now().unix;
        match self.shared.store.create_key(owner, ttl, now).await {
            Ok((pin, expires_at)) => {
                let url = session_url(&self.shared.public_url, &pin);
                let whose = match &team {
                    Some(t) => format!("for team {t}, "),
                    None => String::new(),
                };
                self.shared
                    .audit(
                        None,
                        &Actor::Agent(me.login.clone()),
                        "key.created",
                        &format!("{whose}expires at {expires_at}"),
                        Some(self.remote),
                    )
                    .await;
                self.reply(ServerMsg::KeyCreated(SessionKey {
                    pin,
                    url,
                    expires_at,
                    team,
                }))
                .await;
            }
            Err(StoreError::TooManyKeys { limit, .. }) => {
                self.reply(ServerMsg::Refused(Refusal::TooManyKeys { limit }))
                    .await
            }
            Err(e) => {
                warn!(error = %e, "cannot create a key");
                self.reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::RelayFailed)))
                    .await
            }
        }
    }

    /// What only the store knows about a transfer or invitation target: that the team exists.
    /// (Whether an agent is online, and everything else, the core decides.)
    async fn check_target(&self, to: &Target) -> Result<(), Refusal> {
        let Target::Team(team) = to else {
            return Ok(());
        };
        match self.shared.store.teams().await {
            Ok(teams) if teams.iter().any(|t| t.name == *team) => Ok(()),
            Ok(_) => Err(Refusal::NotAllowed(Denied::NoSuchTeam(team.clone()))),
            Err(e) => {
                warn!(error = %e, "cannot read the teams");
                Err(Refusal::NotAllowed(Denied::RelayFailed))
            }
        }
    }

    /// The teams and enabled agents, with who is online, for the transfer and invite dialogs.
    async fn directory(&self, me: &AgentProfile) {
        let (teams, agents) = match (
            self.shared.store.teams().await,
            self.shared.store.agents().await,
        ) {
            (Ok(t), Ok(a)) => (t, a),
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "cannot read the directory");
                return self
                    .reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::RelayFailed)))
                    .await;
            }
        };
        let (online, online_by_team) = self.shared.state().core.online_agents();
        let teams = teams
            .into_iter()
            .take(DIRECTORY_MAX)
            .map(|t| TeamInfo {
                online: online_by_team.get(&t.name).copied().unwrap_or(0),
                mine: me.teams.contains(&t.name),
                name: t.name,
            })
            .collect();
        // Online agents first, so a long list never hides who can take a session now.
        let mut agents: Vec<AgentInfo> = agents
            .into_iter()
            .filter(|a| !a.disabled)
            .map(|a| AgentInfo {
                online: online.contains(&a.name),
                login: a.name,
                display: a.display,
            })
            .collect();
        agents.sort_by_key(|a| !a.online);
        agents.truncate(DIRECTORY_MAX);
        self.reply(ServerMsg::Directory { teams, agents }).await;
    }
}

/// As many scripts as fit well inside one control frame, in order.
fn fit_in_frame(scripts: Vec<tether_protocol::chat::Script>) -> Vec<tether_protocol::chat::Script> {
    const BUDGET: usize = tether_protocol::frame::CONTROL_MAX_FRAME * 3 / 4;
    let mut used = 0;
    scripts
        .into_iter()
        .take_while(|s| {
            used += s.title.len()
                + s.text.len()
                + s.scope.len()
                + s.url.as_ref().map_or(0, String::len)
                + 16;
            used <= BUDGET
        })
        .collect()
}
