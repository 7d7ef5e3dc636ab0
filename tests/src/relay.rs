//! Relays for the tests: `tether-relay serve` as a child with its own data dir, its CLI, and raw
//! QUIC peers that speak the protocol by hand (as a hostile client would).

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::{ChildGuard, Program};

/// A `tether-relay serve` child with its own data dir.
#[derive(Debug)]
pub struct RelayProc {
    /// How the relay is run.
    pub program: Program,
    /// The data dir (removed on drop).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// The portal's addresses, as `https://127.0.0.1:PORT` or `http://…`, when it serves one.
    pub portal: Vec<String>,
    /// The child.
    pub child: ChildGuard,
    /// The extra `serve` arguments it runs with.
    extra: Vec<String>,
}

/// A relay child as it announced itself.
struct Started {
    addr: String,
    fingerprint: String,
    portal: Vec<String>,
    child: ChildGuard,
}

/// Runs `serve` on `listen` with `extra` arguments and the data dir `dir`, and reads what it
/// announces.
fn spawn(
    program: &Program,
    listen: &str,
    extra: &[String],
    dir: &std::path::Path,
) -> anyhow::Result<Started> {
    // The relay's log goes to a temporary file ([`ChildGuard::stderr_text`]), or where
    // TETHER_TEST_RELAY_LOG says (a place to look when debugging a test).
    let (log, err) = match std::env::var_os("TETHER_TEST_RELAY_LOG") {
        Some(p) => (None, Stdio::from(std::fs::File::create(p)?)),
        None => {
            let (log, err) = ChildGuard::log_file()?;
            (Some(log), err)
        }
    };
    let mut child = program
        .command()
        .args(["serve", "--listen", listen])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let child = match log {
        Some(log) => ChildGuard::with_log("tether-relay", child, log),
        None => ChildGuard::new("tether-relay", child),
    };
    let mut fingerprint = None;
    let mut addr = None;
    let mut portal = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(a) = line
            .strip_prefix("tether-relay listening on ")
            .and_then(|a| a.strip_suffix(" (UDP)"))
        {
            addr = Some(a.to_string());
        }
        if let Some(fp) = line.strip_prefix("certificate fingerprint (SHA-256): ") {
            fingerprint = Some(fp.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("portal listening on ")
            && let Some((url, _)) = rest.split_once(' ')
        {
            portal.push(url.to_string());
        }
        if line.starts_with("data dir:") {
            break;
        }
    }
    Ok(Started {
        fingerprint: fingerprint
            .with_context(|| format!("relay printed no fingerprint: {}", child.stderr_text()))?,
        addr: addr.context("relay printed no address")?,
        portal,
        child,
    })
}

impl RelayProc {
    /// Starts a relay on a free loopback port.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(Program::relay())
    }

    /// Starts a relay run as `program`.
    pub fn start_with(program: Program) -> anyhow::Result<Self> {
        Self::start_full(program, &[])
    }

    /// Starts a relay with extra `serve` arguments (limits, say).
    pub fn start_args(extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_full(Program::relay(), extra)
    }

    /// Starts a relay run as `program` with extra `serve` arguments.
    pub fn start_full(program: Program, extra: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // Port 0: the relay binds a free port and says which.
        let started = spawn(&program, "127.0.0.1:0", &extra, dir.path())?;
        Ok(Self {
            program,
            dir,
            addr: started.addr,
            fingerprint: started.fingerprint,
            portal: started.portal,
            child: started.child,
            extra,
        })
    }

    /// Stops the relay with SIGTERM (it must exit within `deadline`) and starts it again on the
    /// same address and data dir, as an operator's upgrade does; returns how long it took to
    /// exit.
    pub fn restart(&mut self, deadline: Duration) -> anyhow::Result<Duration> {
        let asked = std::time::Instant::now();
        let status = self.child.terminate(deadline)?;
        let stopped = asked.elapsed();
        anyhow::ensure!(status.success(), "the relay exited with {status}");
        let started = spawn(&self.program, &self.addr, &self.extra, self.dir.path())?;
        anyhow::ensure!(started.fingerprint == self.fingerprint, "a new certificate");
        self.child = started.child;
        Ok(stopped)
    }

    /// Runs a `tether-relay` subcommand against this relay's data dir; returns stdout.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut child = self
            .program
            .command()
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "tether-relay {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Adds an agent.
    pub fn add_agent(&self, name: &str, password: &str) -> anyhow::Result<()> {
        self.cli(&["user", "add", name], Some(&format!("{password}\n")))?;
        Ok(())
    }

    /// Creates a key; returns (PIN, URL).
    pub fn create_key(&self, agent: &str) -> anyhow::Result<(String, String)> {
        let out = self.cli(&["key", "create", "--agent", agent], None)?;
        let mut lines = out.lines();
        let pin = lines.next().context("no PIN")?.to_string();
        let url = lines.next().context("no URL")?.to_string();
        Ok((pin, url))
    }

    /// The pinned fingerprint as bytes.
    pub fn fingerprint_bytes(&self) -> [u8; 32] {
        tether_net::parse_fingerprint(&self.fingerprint).unwrap_or([0; 32])
    }
}

/// A QUIC connection to a relay with its control stream open and a hello sent as `role`, the
/// way a hostile or a test client starts.
pub async fn raw_peer(
    addr: &str,
    fingerprint: [u8; 32],
    role: tether_protocol::msg::Role,
) -> anyhow::Result<RawPeer> {
    use tether_protocol::msg::{HELLO_MAGIC, Hello};
    let (endpoint, conn) = tether_net::connect(addr, fingerprint).await?;
    let (mut send, recv) = conn.open_bi().await?;
    let hello = Hello {
        magic: HELLO_MAGIC,
        version: tether_protocol::PROTOCOL_VERSION,
        role,
        software: "tether-tests raw peer".into(),
    };
    tether_net::write_msg(&mut send, &hello, tether_protocol::frame::CONTROL_MAX_FRAME).await?;
    Ok(RawPeer {
        endpoint,
        conn,
        send,
        recv,
    })
}

/// A hand-driven relay client (see [`raw_peer`]).
#[derive(Debug)]
pub struct RawPeer {
    /// Its endpoint (kept alive with the connection).
    pub endpoint: quinn::Endpoint,
    /// The connection.
    pub conn: quinn::Connection,
    /// The control stream, client to relay.
    pub send: quinn::SendStream,
    /// The control stream, relay to client.
    pub recv: quinn::RecvStream,
}

impl RawPeer {
    /// Sends a control message.
    pub async fn send(&mut self, msg: &tether_protocol::msg::ClientMsg) -> anyhow::Result<()> {
        tether_net::write_msg(
            &mut self.send,
            msg,
            tether_protocol::frame::CONTROL_MAX_FRAME,
        )
        .await?;
        Ok(())
    }

    /// The next message from the relay (10 s at most).
    pub async fn next(&mut self) -> anyhow::Result<tether_protocol::msg::ServerMsg> {
        let m = tokio::time::timeout(
            Duration::from_secs(10),
            tether_net::read_msg::<tether_protocol::msg::ServerMsg>(
                &mut self.recv,
                tether_protocol::frame::CONTROL_MAX_FRAME,
            ),
        )
        .await
        .context("no message from the relay within 10 s")??;
        m.context("the relay closed the control stream")
    }

    /// Waits for the connection to close; returns the application close code and reason.
    pub async fn closed(&self, within: Duration) -> anyhow::Result<(u32, String)> {
        let err = tokio::time::timeout(within, self.conn.closed())
            .await
            .context("the connection stayed open")?;
        match err {
            quinn::ConnectionError::ApplicationClosed(c) => Ok((
                u32::try_from(c.error_code.into_inner())?,
                String::from_utf8_lossy(&c.reason).into_owned(),
            )),
            other => bail!("closed otherwise: {other}"),
        }
    }
}
