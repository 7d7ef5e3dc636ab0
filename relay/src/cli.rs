//! The `tether-relay` command line: run the relay and manage its agents and keys.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::server::{self, RelayConfig, now_unix};
use crate::store::{self, Store};
use crate::{Relay, tls};
use anyhow::{Context as _, bail};
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
        /// Base of session URLs (default: https://HOSTNAME:PORT).
        #[arg(long)]
        public_url: Option<String>,
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
        cmd: UserCmd,
    },
    /// Manage session keys.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
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

#[derive(Subcommand)]
enum UserCmd {
    /// Add an agent; the password is read from standard input.
    Add {
        /// Account name.
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create a session key: prints the PIN, then the session URL.
    Create {
        /// The agent the key belongs to.
        #[arg(long)]
        agent: String,
        /// Validity, e.g. 30m, 2h, 1d (default 30m).
        #[arg(long, default_value = "30m", value_parser = parse_ttl)]
        ttl: Duration,
        #[command(flatten)]
        data: DataDir,
    },
}

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

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m"))?;
    let secs = match unit {
        "s" => n,
        "" | "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
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
            data,
        } => serve(listen, public_url, data.path()?).await,
        Cmd::Fingerprint { data } => {
            let id = tls::load_or_create(&data.path()?)?;
            println!("{}", id.fingerprint);
            Ok(())
        }
        Cmd::User {
            cmd: UserCmd::Add { name, data },
        } => {
            let store = Store::open(&data.path()?).await?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                bail!("no password on standard input");
            }
            store.add_agent(&name, password, now_unix()).await?;
            store.close().await;
            eprintln!("added agent {name}");
            Ok(())
        }
        Cmd::Key {
            cmd: KeyCmd::Create { agent, ttl, data },
        } => {
            let store = Store::open(&data.path()?).await?;
            let (pin, _) = store.create_key(&agent, ttl, now_unix()).await?;
            let base = match store.setting("public_url").await? {
                Some(b) => b,
                None => server::default_public_url(SocketAddr::from(([0, 0, 0, 0], 4433))),
            };
            store
                .audit(&store::AuditEvent {
                    at: now_unix(),
                    session: None,
                    actor: "cli".into(),
                    action: "key.created".into(),
                    detail: format!("key for {agent}, valid {} s", ttl.as_secs()),
                    source: None,
                })
                .await?;
            store.close().await;
            println!("{pin}");
            println!("{}", server::session_url(&base, &pin));
            Ok(())
        }
        Cmd::Audit { limit, data } => {
            let store = Store::open(&data.path()?).await?;
            for e in store.audit_events(limit).await? {
                let session = e
                    .session
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into());
                let source = e.source.unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.at, session, e.actor, e.action, source, e.detail
                );
            }
            Ok(())
        }
    }
}

async fn serve(
    listen: SocketAddr,
    public_url: Option<String>,
    data_dir: PathBuf,
) -> anyhow::Result<()> {
    // Listen for signals before announcing readiness, so an early SIGTERM still shuts down cleanly.
    let signals = shutdown_signal()?;
    let relay = Relay::start(RelayConfig {
        listen,
        data_dir: data_dir.clone(),
        public_url,
    })
    .await?;
    say!("tether-relay listening on {} (UDP)", relay.local_addr());
    say!("certificate fingerprint (SHA-256): {}", relay.fingerprint());
    if relay.store().agent_count().await? == 0 {
        let password = store::random_password()?;
        relay
            .store()
            .add_agent("admin", &password, now_unix())
            .await?;
        say!("created agent \"admin\" with password {password} (shown only this once)");
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

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15"), Ok(Duration::from_secs(900)));
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("m").is_err());
    }
}
