//! The administration commands: agents, teams, keys, the session history and the audit trail.
//! They work on the data dir directly, beside a running relay or without one. A running relay
//! reads an agent's teams at login: changes apply from the agent's next login.

use std::io::BufRead as _;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use tether_protocol::msg::SessionId;

use super::{DataDir, printable};
use crate::server::{self, now_unix};
use crate::store::{self, Actor, AuditEvent, KeyFor, NewAgent, Store};

#[derive(Subcommand)]
pub(super) enum UserCmd {
    /// Add an agent; the password is read from standard input.
    Add {
        /// Login name.
        name: String,
        /// The name customers and colleagues see (default: the login name).
        #[arg(long)]
        display: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// List agents: login, display name, teams, whether disabled.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Disable an agent: they can no longer log in, and their personal keys open nothing.
    Disable {
        /// Login name.
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Enable a disabled agent again.
    Enable {
        /// Login name.
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
pub(super) enum TeamCmd {
    /// Add a team.
    Add {
        /// The team's name.
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// List teams and their members.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Add or remove team members.
    Member {
        #[command(subcommand)]
        cmd: MemberCmd,
    },
}

#[derive(Subcommand)]
pub(super) enum MemberCmd {
    /// Add an agent to a team.
    Add {
        /// The team.
        team: String,
        /// The agent's login name.
        agent: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Remove an agent from a team.
    Remove {
        /// The team.
        team: String,
        /// The agent's login name.
        agent: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
pub(super) enum KeyCmd {
    /// Create a session key: prints the PIN, then the session URL. Its customer waits in the
    /// agent's personal queue, or in the team's queue.
    Create {
        /// The agent whose queue the customer enters.
        #[arg(long, required_unless_present = "team", conflicts_with = "team")]
        agent: Option<String>,
        /// The team whose queue the customer enters.
        #[arg(long)]
        team: Option<String>,
        /// Validity, e.g. 30m, 2h, 1d (default 30m).
        #[arg(long, default_value = "30m")]
        ttl: humantime::Duration,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
pub(super) enum SessionCmd {
    /// List sessions: id, start, end, how it ended, the queue it came from, the customer.
    List {
        /// Only those started within this long, e.g. 1d, 2h (default: all).
        #[arg(long)]
        since: Option<humantime::Duration>,
        #[command(flatten)]
        data: DataDir,
    },
    /// Show a session and everything that happened in it.
    Show {
        /// The session id (16 hex digits, as `session list` prints it).
        id: String,
        /// Print the chat with its status notes instead of the events.
        #[arg(long)]
        transcript: bool,
        #[command(flatten)]
        data: DataDir,
    },
}

pub(super) async fn open(data: &DataDir) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    Ok(store::open(&data.path()?).await?)
}

/// Records what the command line did.
pub(super) async fn audit_cli(
    store: &dyn Store,
    action: &str,
    detail: String,
) -> anyhow::Result<()> {
    store
        .audit(AuditEvent {
            at: now_unix(),
            session: None,
            actor: Actor::Cli,
            action: action.into(),
            detail,
            source: None,
        })
        .await?;
    Ok(())
}

/// A time for people: the local date and time.
fn when(unix: u64) -> String {
    jiff::Timestamp::from_second(unix.min(i64::MAX as u64) as i64)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| unix.to_string())
}

pub(super) async fn user(cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            display,
            data,
        } => {
            let store = open(&data).await?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                bail!("no password on standard input");
            }
            let agent = NewAgent {
                name: name.clone(),
                display,
                password,
            };
            store.add_agent(agent, now_unix()).await?;
            audit_cli(store.as_ref(), "agent.added", format!("agent {name}")).await?;
            store.close().await?;
            eprintln!("added agent {name}");
        }
        UserCmd::List { data } => {
            let store = open(&data).await?;
            for a in store.agents().await? {
                say!(
                    "{}\t{}\t{}\t{}",
                    printable(&a.name),
                    printable(&a.display),
                    if a.teams.is_empty() {
                        "-".to_string()
                    } else {
                        a.teams.join(",")
                    },
                    if a.disabled { "disabled" } else { "enabled" }
                );
            }
            store.close().await?;
        }
        UserCmd::Disable { name, data } => set_disabled(name, data, true).await?,
        UserCmd::Enable { name, data } => set_disabled(name, data, false).await?,
    }
    Ok(())
}

async fn set_disabled(name: String, data: DataDir, disable: bool) -> anyhow::Result<()> {
    {
        {
            let store = open(&data).await?;
            store.set_disabled(name.clone(), disable).await?;
            let what = if disable { "disabled" } else { "enabled" };
            audit_cli(
                store.as_ref(),
                "agent.changed",
                format!("{what} agent {name}"),
            )
            .await?;
            store.close().await?;
            eprintln!("{what} agent {name}");
        }
    }
    Ok(())
}

pub(super) async fn team(cmd: TeamCmd) -> anyhow::Result<()> {
    match cmd {
        TeamCmd::Add { name, data } => {
            let store = open(&data).await?;
            store.add_team(name.clone(), now_unix()).await?;
            audit_cli(store.as_ref(), "team.added", format!("team {name}")).await?;
            store.close().await?;
            eprintln!("added team {name}");
        }
        TeamCmd::List { data } => {
            let store = open(&data).await?;
            for t in store.teams().await? {
                let members = if t.members.is_empty() {
                    "-".to_string()
                } else {
                    t.members.join(",")
                };
                say!("{}\t{}", printable(&t.name), printable(&members));
            }
            store.close().await?;
        }
        TeamCmd::Member { cmd } => {
            let (team, agent, data, member) = match cmd {
                MemberCmd::Add { team, agent, data } => (team, agent, data, true),
                MemberCmd::Remove { team, agent, data } => (team, agent, data, false),
            };
            let store = open(&data).await?;
            store
                .set_member(team.clone(), agent.clone(), member)
                .await?;
            let what = if member { "added to" } else { "removed from" };
            audit_cli(
                store.as_ref(),
                "team.changed",
                format!("{agent} {what} {team}"),
            )
            .await?;
            store.close().await?;
            eprintln!("{agent} {what} team {team}");
        }
    }
    Ok(())
}

pub(super) async fn key(cmd: KeyCmd) -> anyhow::Result<()> {
    let KeyCmd::Create {
        agent,
        team,
        ttl,
        data,
    } = cmd;
    let store = open(&data).await?;
    let ttl: std::time::Duration = ttl.into();
    let (owner, whose) = match (agent, team) {
        (_, Some(team)) => (
            KeyFor::Team {
                team: team.clone(),
                by: None,
            },
            format!("team {team}"),
        ),
        (Some(agent), None) => (KeyFor::Agent(agent.clone()), agent),
        (None, None) => bail!("give --agent or --team"),
    };
    let (pin, _) = store.create_key(owner, ttl, now_unix()).await?;
    let base = match store.setting("public_url".into()).await? {
        Some(b) => b,
        None => server::default_public_url(SocketAddr::from(([0, 0, 0, 0], 4433))),
    };
    audit_cli(
        store.as_ref(),
        "key.created",
        format!("key for {whose}, valid {} s", ttl.as_secs()),
    )
    .await?;
    store.close().await?;
    println!("{pin}");
    println!("{}", server::session_url(&base, &pin));
    Ok(())
}

pub(super) async fn session(cmd: SessionCmd) -> anyhow::Result<()> {
    match cmd {
        SessionCmd::List { since, data } => {
            let store = open(&data).await?;
            let from = since.map_or(0, |d| {
                now_unix().saturating_sub(std::time::Duration::from(d).as_secs())
            });
            for s in store.sessions(from).await? {
                say!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    s.id,
                    when(s.started_at),
                    s.ended_at.map(when).unwrap_or_else(|| "-".into()),
                    s.end_reason.as_deref().unwrap_or("in progress"),
                    printable(&s.origin),
                    printable(&s.customer)
                );
            }
            store.close().await?;
        }
        SessionCmd::Show {
            id,
            transcript,
            data,
        } => {
            let sid = u64::from_str_radix(id.trim(), 16)
                .map(SessionId)
                .with_context(|| format!("{id:?} is not a session id (16 hex digits)"))?;
            let store = open(&data).await?;
            let Some((s, events)) = store.session(sid).await? else {
                store.close().await?;
                bail!("no session {id}");
            };
            say!("session {}", s.id);
            say!("customer: {}", printable(&s.customer));
            say!("entered: {}", printable(&s.origin));
            say!("started: {}", when(s.started_at));
            match (s.ended_at, &s.end_reason) {
                (Some(at), Some(r)) => say!("ended: {} ({r})", when(at)),
                _ => say!("ended: not yet"),
            }
            if let Some((text, by)) = store.notes(sid).await? {
                say!("notes (saved by {}):", printable(&by));
                for line in text.lines() {
                    say!("  {}", printable(line));
                }
            }
            if transcript {
                for line in store.chat(sid).await? {
                    say!("{}", printable(&line.transcript()));
                }
                store.close().await?;
                return Ok(());
            }
            for e in events {
                say!(
                    "{}\t{}\t{}\t{}",
                    when(e.at),
                    printable(&e.actor.to_string()),
                    printable(&e.action),
                    printable(&e.detail)
                );
            }
            store.close().await?;
        }
    }
    Ok(())
}

pub(super) async fn audit(limit: u32, data: DataDir) -> anyhow::Result<()> {
    let store = open(&data).await?;
    for e in store.audit_events(limit).await? {
        let session = e
            .session
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let source = e.source.unwrap_or_else(|| "-".into());
        say!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            e.at,
            session,
            printable(&e.actor.to_string()),
            printable(&e.action),
            printable(&source),
            printable(&e.detail)
        );
    }
    store.close().await?;
    Ok(())
}
