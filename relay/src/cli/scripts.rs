//! `tether-relay script`: the libraries of canned messages and addresses agents pick from in the
//! Chat box, per team and per agent.

use anyhow::bail;
use clap::Subcommand;

use super::admin::{audit_cli, open};
use super::{DataDir, printable};
use crate::store::{KeyFor, NewScript};

#[derive(Subcommand)]
pub(super) enum ScriptCmd {
    /// Add a scripted message (with --url, an address) to a team's or an agent's library.
    Add {
        /// The team whose library it joins.
        #[arg(long, conflicts_with = "agent", required_unless_present = "agent")]
        team: Option<String>,
        /// The agent whose library it joins.
        #[arg(long)]
        agent: Option<String>,
        /// Its title in the menu.
        #[arg(long)]
        title: String,
        /// The message.
        #[arg(long)]
        text: String,
        /// An address (http or https) to send as a link or push.
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// List every script with its id.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Remove a script.
    Remove {
        /// Its id, as `script list` prints it.
        id: i64,
        #[command(flatten)]
        data: DataDir,
    },
}

pub(super) async fn script(cmd: ScriptCmd) -> anyhow::Result<()> {
    match cmd {
        ScriptCmd::Add {
            team,
            agent,
            title,
            text,
            url,
            data,
        } => {
            let owner = match (team, agent) {
                (Some(team), None) => KeyFor::Team { team, by: None },
                (None, Some(a)) => KeyFor::Agent(a),
                _ => bail!("give --team or --agent"),
            };
            let store = open(&data).await?;
            let whose = match &owner {
                KeyFor::Team { team, .. } => format!("team {team}"),
                KeyFor::Agent(a) => format!("agent {a}"),
            };
            let id = store
                .add_script(NewScript {
                    owner,
                    title: title.clone(),
                    text,
                    url,
                })
                .await?;
            audit_cli(
                store.as_ref(),
                "script.added",
                format!("{title:?} for {whose}"),
            )
            .await?;
            store.close().await?;
            say!("{id}");
        }
        ScriptCmd::List { data } => {
            let store = open(&data).await?;
            for (id, s) in store.all_scripts().await? {
                say!(
                    "{id}\t{}\t{}\t{}\t{}",
                    printable(&s.scope),
                    printable(&s.title),
                    printable(&s.text),
                    s.url
                        .as_deref()
                        .map(printable)
                        .unwrap_or_else(|| "-".into())
                );
            }
            store.close().await?;
        }
        ScriptCmd::Remove { id, data } => {
            let store = open(&data).await?;
            store.remove_script(id).await?;
            audit_cli(store.as_ref(), "script.removed", format!("script {id}")).await?;
            store.close().await?;
            eprintln!("removed script {id}");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub(super) enum IssueTypeCmd {
    /// Offer a problem type on the portal's issue form; requests of that type go to TEAM's queue.
    Add {
        /// The team whose queue the requests go to.
        team: String,
        /// What the customer reads, e.g. "Printer problems".
        title: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// List every problem type with its id and team.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Stop offering a problem type.
    Remove {
        /// Its id, as `issue-type list` prints it.
        id: i64,
        #[command(flatten)]
        data: DataDir,
    },
}

pub(super) async fn issue_type(cmd: IssueTypeCmd) -> anyhow::Result<()> {
    match cmd {
        IssueTypeCmd::Add { team, title, data } => {
            let store = open(&data).await?;
            let id = store.add_issue_type(team.clone(), title.clone()).await?;
            audit_cli(
                store.as_ref(),
                "issue_type.added",
                format!("{title:?} for team {team}"),
            )
            .await?;
            store.close().await?;
            say!("{id}");
        }
        IssueTypeCmd::List { data } => {
            let store = open(&data).await?;
            for t in store.issue_types().await? {
                say!("{}\t{}\t{}", t.id, printable(&t.team), printable(&t.title));
            }
            store.close().await?;
        }
        IssueTypeCmd::Remove { id, data } => {
            let store = open(&data).await?;
            store.remove_issue_type(id).await?;
            audit_cli(
                store.as_ref(),
                "issue_type.removed",
                format!("issue type {id}"),
            )
            .await?;
            store.close().await?;
            eprintln!("removed issue type {id}");
        }
    }
    Ok(())
}
