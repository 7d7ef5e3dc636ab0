//! The `tether-host` command line: `tether-host KEY --relay HOST:PORT --relay-fingerprint HEX`.

use std::process::ExitCode;

use std::sync::{Arc, OnceLock};

use crate::consent::{Decision, Shared};
use crate::{HostError, HostEvent, HostOptions, Outcome, Services, capture};
use clap::Parser;
use tether_protocol::input::Permission;
use tokio::sync::{mpsc, watch};

#[derive(Parser)]
#[command(
    name = "tether-host",
    version,
    about = "Share this computer's screen with a Tether support agent"
)]
struct Cli {
    /// The session key your support agent gave you: 9 digits or the session URL.
    key: String,
    /// The relay, HOST:PORT.
    #[arg(long, env = "TETHER_RELAY")]
    relay: String,
    /// SHA-256 fingerprint of the relay's certificate (64 hex digits). Connections to any other
    /// certificate are refused.
    #[arg(long, env = "TETHER_RELAY_FINGERPRINT")]
    relay_fingerprint: String,
    /// Serve without a window (unattended and test use). Requests are then denied unless
    /// granted up front with --allow.
    #[arg(long)]
    headless: bool,
    /// Where files sent by the agent go (default: ~/Downloads/Tether).
    #[arg(long)]
    download_dir: Option<std::path::PathBuf>,
    /// Largest file accepted from the agent, in bytes.
    #[arg(long, default_value_t = crate::session::DEFAULT_MAX_FILE)]
    max_file_size: u64,
    /// Most files the agent may send in one session.
    #[arg(long, default_value_t = crate::session::DEFAULT_MAX_FILES)]
    max_files: u64,
    /// Grant these without asking: control, clipboard, files, url (comma-separated). Logged.
    #[arg(long, value_delimiter = ',', value_parser = parse_permission)]
    allow: Vec<Permission>,
}

fn parse_permission(s: &str) -> Result<Permission, String> {
    match s.trim() {
        "control" => Ok(Permission::Control),
        "clipboard" => Ok(Permission::Clipboard),
        "files" => Ok(Permission::Files),
        "url" => Ok(Permission::Url),
        other => Err(format!(
            "unknown permission {other:?}: use control, clipboard, files or url"
        )),
    }
}

/// Runs the command line with these arguments (the first is the program name).
pub fn run_with_args(args: Vec<std::ffi::OsString>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,tether_host::audit=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(args);
    let fingerprint = match tether_net::parse_fingerprint(&cli.relay_fingerprint) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tether-host: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tether-host: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx: Arc<OnceLock<egui::Context>> = Arc::default();
    let repaint_ctx = ctx.clone();
    let (shared, decisions) = Shared::new(Arc::new(move || {
        if let Some(c) = repaint_ctx.get() {
            c.request_repaint();
        }
    }));
    if !cli.allow.is_empty() {
        let list: Vec<&str> = cli
            .allow
            .iter()
            .map(|p| match p {
                Permission::Control => "control",
                Permission::Clipboard => "clipboard",
                Permission::Files => "files",
                Permission::Url => "url",
            })
            .collect();
        eprintln!(
            "tether-host: granted without asking (--allow): {}",
            list.join(", ")
        );
        tracing::warn!(allowed = ?cli.allow, "permissions granted up front");
    }
    let services = Services {
        capture: capture::system_factory(),
        injector: crate::input::system_injector(),
        clipboard: crate::clipboard::system_clipboard(),
        shared: shared.clone(),
        allowed: cli.allow.clone(),
        headless: cli.headless,
        opener: Arc::new(crate::url::SystemOpener),
        inbox: crate::files::Inbox::new(
            cli.download_dir
                .clone()
                .unwrap_or_else(crate::session::default_download_dir),
            cli.max_file_size,
        ),
        max_files: cli.max_files,
    };
    let headless = cli.headless;
    let session = rt.spawn(async move {
        let opts = HostOptions {
            key: cli.key,
            relay: cli.relay.clone(),
            fingerprint,
        };
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (end_tx, end_rx) = watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = end_tx.send(true);
        });
        let printer = tokio::spawn(async move {
            let mut had_agent = false;
            while let Some(ev) = ev_rx.recv().await {
                match ev {
                    HostEvent::Agents(a) if a.is_empty() && had_agent => {
                        had_agent = false;
                        println!("your support agent's connection was lost; waiting for them to come back (Ctrl+C ends the session)");
                    }
                    HostEvent::Joined { session, agent } => {
                        println!("joined session {session} of {agent}");
                    }
                    HostEvent::Agents(a) if a.is_empty() => {
                        println!("waiting for your support agent to connect")
                    }
                    HostEvent::Agents(a) => {
                        had_agent = true;
                        println!("connected: {}", a.join(", "));
                    }
                    HostEvent::ViewerStarted { agent, monitor } => {
                        println!(
                            "{agent} is viewing your screen (monitor {})",
                            u32::from(monitor) + 1
                        )
                    }
                    HostEvent::ViewerStopped { agent } => {
                        println!("{agent} stopped viewing your screen")
                    }
                }
            }
        });
        println!("connecting to {}", cli.relay);
        let res = crate::run_with(opts, services, decisions, ev_tx, end_rx).await;
        let _ = printer.await;
        match res {
            Ok(Outcome::Ended(reason)) => {
                println!("session ended: {reason}");
                ExitCode::SUCCESS
            }
            Ok(Outcome::EndedHere) => {
                println!("session ended");
                ExitCode::SUCCESS
            }
            Err(HostError::Refused(r)) => {
                eprintln!("tether-host: the relay refused: {r}");
                ExitCode::from(2)
            }
            Err(e @ (HostError::Lost(_) | HostError::Connect(_))) => {
                eprintln!("tether-host: {e}");
                ExitCode::from(3)
            }
            Err(e) => {
                eprintln!("tether-host: {e}");
                ExitCode::FAILURE
            }
        }
    });
    if !headless {
        let options = eframe::NativeOptions {
            viewport: egui::ViewportBuilder::default()
                .with_title("Tether remote support")
                .with_inner_size([440.0, 320.0])
                .with_always_on_top(),
            renderer: eframe::Renderer::Glow,
            ..Default::default()
        };
        let window_shared = shared.clone();
        let shown = eframe::run_native(
            "Tether remote support",
            options,
            Box::new(move |cc| {
                let _ = ctx.set(cc.egui_ctx.clone());
                Ok(Box::new(crate::window::HostWindow::new(window_shared)))
            }),
        );
        match shown {
            // Closing the window ends the session.
            Ok(()) => shared.decide(Decision::EndSession),
            Err(e) => {
                // Without a window nobody can answer a prompt: go on as --headless would, so
                // every request not allowed up front is denied.
                eprintln!(
                    "tether-host: cannot open the window ({e}); going on without it, and every request will be denied"
                );
                shared.set_headless();
            }
        }
    }
    match rt.block_on(session) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tether-host: {e}");
            ExitCode::FAILURE
        }
    }
}
