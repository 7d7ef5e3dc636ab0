//! The `tether-relay` command line: run the relay, and manage its agents, teams, keys and
//! history ([`admin`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::server::{Limits, RelayConfig, now_unix};
use crate::store::{self, NewAgent};
use crate::{Relay, tls};
use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tether-relay",
    version,
    about = "Tether relay: pairs support agents with customers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct DataDir {
    /// Folder for the database and the certificate (owner-only).
    #[arg(long, env = "TETHER_RELAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl DataDir {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        directories::ProjectDirs::from("org", "Tether", "tether-relay")
            .map(|p| p.data_dir().to_path_buf())
            .context("no home folder: pass --data-dir")
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the relay.
    Serve {
        /// UDP address to listen on.
        #[arg(long, default_value = "0.0.0.0:4433")]
        listen: SocketAddr,
        /// Base of session URLs and portal pages (default: https://HOSTNAME:PORT, with the
        /// portal's HTTPS port when it is on, the QUIC port otherwise).
        #[arg(long)]
        public_url: Option<String>,
        #[command(flatten)]
        portal: Box<PortalArgs>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        data: DataDir,
    },
    /// Print the certificate's SHA-256 fingerprint (made on first use).
    Fingerprint {
        #[command(flatten)]
        data: DataDir,
    },
    /// Manage agent accounts.
    User {
        #[command(subcommand)]
        cmd: admin::UserCmd,
    },
    /// Manage teams and their members.
    Team {
        #[command(subcommand)]
        cmd: admin::TeamCmd,
    },
    /// Manage session keys.
    Key {
        #[command(subcommand)]
        cmd: admin::KeyCmd,
    },
    /// Scripted messages and addresses for the Chat box.
    Script {
        #[command(subcommand)]
        cmd: scripts::ScriptCmd,
    },
    /// Problem types of the portal's issue form, each leading to a team's queue.
    IssueType {
        #[command(subcommand)]
        cmd: scripts::IssueTypeCmd,
    },
    /// The session history.
    Session {
        #[command(subcommand)]
        cmd: admin::SessionCmd,
    },
    /// Print the newest audit events.
    Audit {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        data: DataDir,
    },
}

/// The web portal and the certificate.
#[derive(clap::Args)]
struct PortalArgs {
    /// Serve the portal over HTTPS here (TCP), e.g. 0.0.0.0:443.
    #[arg(long)]
    portal_listen: Option<SocketAddr>,
    /// Serve the portal over plain HTTP here, for a reverse proxy in front, e.g. 127.0.0.1:8080.
    #[arg(long)]
    portal_listen_http: Option<SocketAddr>,
    /// The operator's name on the portal's pages.
    #[arg(long, default_value = "Tether remote support")]
    portal_title: String,
    /// The operator's logo on the portal's pages (.png, .jpg or .svg, at most 1 MiB).
    #[arg(long)]
    portal_logo: Option<PathBuf>,
    /// Folder of host builds the portal offers: tether-host-linux-x86_64,
    /// tether-host-windows-x86_64.exe, tether-host-macos-aarch64...
    #[arg(long)]
    downloads: Option<PathBuf>,
    /// A certificate chain (PEM) for QUIC and the portal instead of the self-signed one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Send email invitations through this mail server: smtp://HOST:25,
    /// smtp://USER:PASSWORD@HOST:587?tls=required or smtps://HOST:465. Without it, the
    /// console opens the agent's mail program with the invitation.
    #[arg(long, env = "TETHER_SMTP_URL", requires = "smtp_from")]
    smtp_url: Option<String>,
    /// The sender of email invitations, e.g. "Support <support@example.com>".
    #[arg(long, requires = "smtp_url")]
    smtp_from: Option<String>,
}

impl PortalArgs {
    fn smtp(&self) -> Option<crate::mail::SmtpConfig> {
        Some(crate::mail::SmtpConfig {
            url: self.smtp_url.clone()?,
            from: self.smtp_from.clone()?,
        })
    }

    fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.tls_cert.clone()?, self.tls_key.clone()?))
    }

    fn config(self) -> crate::portal::PortalConfig {
        crate::portal::PortalConfig {
            listen: self.portal_listen,
            listen_http: self.portal_listen_http,
            title: self.portal_title,
            logo: self.portal_logo,
            downloads: self.downloads,
        }
    }
}

/// What the relay spends on peers at most.
#[derive(clap::Args)]
struct LimitArgs {
    /// Connections open at once, in all.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: u32,
    /// Connections open at once from one source (an IPv4 address or an IPv6 /64).
    #[arg(long, default_value_t = Limits::default().max_connections_per_source)]
    max_connections_per_source: u32,
    /// Connections not yet logged in or joined, in all.
    #[arg(long, default_value_t = Limits::default().max_pending)]
    max_pending: u32,
    /// Connections not yet logged in or joined, from one source.
    #[arg(long, default_value_t = Limits::default().max_pending_per_source)]
    max_pending_per_source: u32,
    /// Time from a connection's first packet to its login or join, e.g. 10s.
    #[arg(long, default_value = "10s")]
    auth_timeout: humantime::Duration,
    /// Password checks running at once (each takes about 19 MiB).
    #[arg(long, default_value_t = Limits::default().password_checks)]
    password_checks: usize,
    /// Streams a logged-in agent may have open at once.
    #[arg(long, default_value_t = Limits::default().agent_streams)]
    agent_streams: u32,
    /// Messages queued for one peer's control stream; a peer that does not read them is closed.
    #[arg(long, default_value_t = Limits::default().control_queue)]
    control_queue: usize,
    /// Bytes a logged-in or joined connection may have in flight towards the relay, all its
    /// streams together (before that: 64 KiB).
    #[arg(long, default_value_t = Limits::default().receive_window)]
    receive_window: u32,
    /// How long a session whose agent lost their connection waits in that agent's personal
    /// queue before it goes back to the queue it came from (the general queue for a personal
    /// key), e.g. 60s.
    #[arg(long, default_value = "60s")]
    requeue_after: humantime::Duration,
    /// How long an agent whose connection dropped keeps their place in their sessions while
    /// their console reconnects, e.g. 30s (0s: they leave them at once).
    #[arg(long, default_value = "30s")]
    agent_grace: humantime::Duration,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_connections_per_source: self.max_connections_per_source,
            max_pending: self.max_pending,
            max_pending_per_source: self.max_pending_per_source,
            auth_timeout: self.auth_timeout.into(),
            password_checks: self.password_checks,
            agent_streams: self.agent_streams,
            control_queue: self.control_queue,
            receive_window: self.receive_window,
        }
    }
}

/// The file the first-run admin password is written to, in the data dir.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// Prints a line to stdout, ignoring a closed pipe: a service must not die because nobody reads
/// its output any more.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

mod admin;
mod scripts;

/// A text from the database made safe for a terminal: control and format characters (a forged
/// newline, an escape sequence) are shown escaped, never acted on.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || tether_protocol::files::is_format_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs the command line with these arguments (the first is the program name).
pub fn run_with_args(args: Vec<std::ffi::OsString>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Serve {
            listen,
            public_url,
            portal,
            limits,
            data,
        } => {
            let cfg = RelayConfig {
                listen,
                data_dir: data.path()?,
                public_url,
                limits: limits.limits(),
                requeue_after: limits.requeue_after.into(),
                agent_grace: limits.agent_grace.into(),
                keep_sessions: true,
                tls_files: portal.tls_files(),
                smtp: portal.smtp(),
                portal: portal.config(),
            };
            serve(cfg).await
        }
        Cmd::Fingerprint { data } => {
            let id = tls::load_or_create(&data.path()?)?;
            println!("{}", id.fingerprint);
            Ok(())
        }
        Cmd::User { cmd } => admin::user(cmd).await,
        Cmd::Team { cmd } => admin::team(cmd).await,
        Cmd::Key { cmd } => admin::key(cmd).await,
        Cmd::Session { cmd } => admin::session(cmd).await,
        Cmd::Script { cmd } => scripts::script(cmd).await,
        Cmd::IssueType { cmd } => scripts::issue_type(cmd).await,
        Cmd::Audit { limit, data } => admin::audit(limit, data).await,
    }
}

async fn serve(cfg: RelayConfig) -> anyhow::Result<()> {
    // Listen for signals before announcing readiness, so an early SIGTERM still shuts down cleanly.
    let signals = shutdown_signal()?;
    let data_dir = cfg.data_dir.clone();
    let has_https = cfg.portal.listen.is_some();
    let relay = Relay::start(cfg).await?;
    say!("tether-relay listening on {} (UDP)", relay.local_addr());
    say!("certificate fingerprint (SHA-256): {}", relay.fingerprint());
    for (i, a) in relay.portal_addrs().iter().enumerate() {
        let scheme = if i == 0 && has_https { "https" } else { "http" };
        say!(
            "portal listening on {scheme}://{a} (TCP); public address {}",
            relay.public_url()
        );
    }
    if relay.store().agent_count().await? == 0 {
        // The password goes to an owner-only file, not to a terminal or a log.
        let password = store::random_password()?;
        let file = data_dir.join(ADMIN_PASSWORD_FILE);
        crate::fsutil::write_private(&file, format!("{password}\n").as_bytes())
            .with_context(|| format!("writing {}", file.display()))?;
        let admin = NewAgent {
            name: "admin".into(),
            display: None,
            password,
        };
        relay.store().add_agent(admin, now_unix()).await?;
        say!(
            "created agent \"admin\"; its password is in {} (owner-only: read it, then delete the file)",
            file.display()
        );
    }
    say!("data dir: {}", data_dir.display());
    signals.await;
    say!("shutting down");
    relay.shutdown().await;
    Ok(())
}

/// A future that completes on SIGINT or SIGTERM; the handlers are installed at once.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_limit_is_a_flag_of_serve() {
        let cli = Cli::parse_from([
            "tether-relay",
            "serve",
            "--max-connections",
            "5",
            "--max-connections-per-source",
            "4",
            "--max-pending",
            "3",
            "--max-pending-per-source",
            "2",
            "--auth-timeout",
            "3s",
            "--password-checks",
            "1",
            "--agent-streams",
            "9",
            "--control-queue",
            "8",
            "--receive-window",
            "1048576",
        ]);
        let Cmd::Serve { limits, .. } = cli.cmd else {
            panic!("not serve");
        };
        assert_eq!(
            limits.limits(),
            Limits {
                max_connections: 5,
                max_connections_per_source: 4,
                max_pending: 3,
                max_pending_per_source: 2,
                auth_timeout: Duration::from_secs(3),
                control_queue: 8,
                password_checks: 1,
                agent_streams: 9,
                receive_window: 1 << 20,
            }
        );
    }

    #[test]
    fn durations_parse() {
        let d = |s: &str| s.parse::<humantime::Duration>().map(Duration::from);
        assert_eq!(d("30m").ok(), Some(Duration::from_secs(1800)));
        assert_eq!(d("1d").ok(), Some(Duration::from_secs(86400)));
        assert!(d("5 parsecs").is_err());
    }

    #[test]
    fn audit_text_cannot_forge_lines_or_drive_the_terminal() {
        let forged = "bob\n1700000000\t-\tagent:admin\tagent.login\t-\tlogged in\u{1b}[2J";
        let shown = printable(forged);
        assert!(!shown.contains('\n') && !shown.contains('\t') && !shown.contains('\u{1b}'));
        assert!(shown.starts_with("bob\\u{a}1700000000"));
        assert_eq!(printable("agent:alice"), "agent:alice");
    }
}
