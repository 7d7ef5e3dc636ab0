//! The `tether-host` command line: `tether-host [KEY] [--relay HOST:PORT --relay-fingerprint HEX]`.
//!
//! With a window (the default), everything the customer needs to read is in it: the key field
//! when no key was given, then connecting, waiting, the session, and every failure with what to do
//! next; the window stays until the customer closes it, and the exit status tells how the last
//! attempt went. Headless, the same words go to standard error and the host exits at once.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::Parser;
use tether_protocol::input::Permission;
use tokio::sync::{mpsc, watch};

use crate::config::{self, Target};
use crate::consent::{Decision, Phase, Shared};
use crate::failure::{Failure, ended_words};
use crate::{HostEvent, HostOptions, Outcome, Services};
use tether_desktop::capture;

#[derive(Parser)]
#[command(
    name = "tether-host",
    version,
    about = "Share this computer's screen with a Tether support agent"
)]
struct Cli {
    /// The session key your support agent gave you: 9 digits or the session URL. Without it, the
    /// window asks for it.
    key: Option<String>,
    /// The relay, HOST:PORT (default: from tether-host.json beside this program).
    #[arg(long, env = "TETHER_RELAY")]
    relay: Option<String>,
    /// SHA-256 fingerprint of the relay's certificate (64 hex digits). Connections to any other
    /// certificate are refused. Default: from tether-host.json beside this program.
    #[arg(long, env = "TETHER_RELAY_FINGERPRINT")]
    relay_fingerprint: Option<String>,
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
    /// Grant these without asking (comma-separated). Logged.
    #[arg(long, value_delimiter = ',', value_enum)]
    allow: Vec<Allow>,
}

/// What `--allow` grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Allow {
    /// Remote control.
    Control,
    /// Clipboard sync.
    Clipboard,
    /// File access.
    Files,
    /// Opening pushed web addresses.
    Url,
}

impl From<Allow> for Permission {
    fn from(a: Allow) -> Self {
        match a {
            Allow::Control => Permission::Control,
            Allow::Clipboard => Permission::Clipboard,
            Allow::Files => Permission::Files,
            Allow::Url => Permission::Url,
        }
    }
}

/// Whether the window is there to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowLife {
    Open,
    /// The customer closed it: end everything and exit.
    Closed,
    /// It could not be shown: go on as a headless host would.
    Failed,
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
    let target = config::resolve(
        cli.relay.clone(),
        cli.relay_fingerprint.clone(),
        config::settings_path().as_deref(),
    );
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
    let answerer = if cli.headless {
        crate::grants::Answerer::nobody(shared.clone())
    } else {
        crate::grants::Answerer::window(shared.clone())
    };
    if !cli.allow.is_empty() {
        eprintln!(
            "tether-host: granted without asking (--allow): {}",
            cli.allow
                .iter()
                .map(|p| Permission::from(*p).describe())
                .collect::<Vec<_>>()
                .join(", ")
        );
        tracing::warn!(allowed = ?cli.allow, "permissions granted up front");
    }
    let (life_tx, life_rx) = watch::channel(WindowLife::Open);
    let first_key = cli.key.clone();
    shared.update(|v| match &target {
        Err(f) => {
            v.phase = Phase::Broken;
            v.failure = Some(f.clone());
        }
        Ok(_) if first_key.is_some() => v.phase = Phase::Connecting,
        Ok(_) => v.phase = Phase::EnterKey,
    });
    let services = services(&cli, shared.clone(), answerer.clone());
    let controller = rt.spawn(controller(target, first_key, services, decisions, life_rx));
    if !cli.headless {
        let options = eframe::NativeOptions {
            viewport: egui::ViewportBuilder::default()
                .with_title("Tether remote support")
                .with_inner_size([460.0, 340.0])
                .with_always_on_top(),
            renderer: eframe::Renderer::Glow,
            ..Default::default()
        };
        let window_shared = shared.clone();
        let key = cli.key.clone().unwrap_or_default();
        let shown = eframe::run_native(
            "Tether remote support",
            options,
            Box::new(move |cc| {
                let _ = ctx.set(cc.egui_ctx.clone());
                Ok(Box::new(crate::window::HostWindow::new(window_shared, key)))
            }),
        );
        match shown {
            Ok(()) => {
                let _ = life_tx.send(WindowLife::Closed);
                // Closing the window ends a running session.
                shared.decide(Decision::EndSession);
            }
            Err(e) => {
                // Without a window nobody can answer a prompt: go on as --headless would, so
                // every request not allowed up front is denied.
                eprintln!(
                    "tether-host: cannot open the window ({e}); going on without it, and every request will be denied"
                );
                answerer.window_gone();
                let _ = life_tx.send(WindowLife::Failed);
            }
        }
    }
    let code = rt.block_on(controller).unwrap_or_else(|e| {
        eprintln!("tether-host: {e}");
        1
    });
    ExitCode::from(code)
}

fn services(cli: &Cli, shared: Shared, answerer: crate::grants::Answerer) -> Services {
    Services {
        answerer,
        capture: capture::system_factory(),
        injector: tether_desktop::input::system_injector(),
        clipboard: tether_desktop::clipboard::system_clipboard(),
        shared,
        allowed: cli.allow.iter().map(|a| Permission::from(*a)).collect(),
        opener: Arc::new(tether_desktop::opener::SystemOpener),
        inbox: tether_files::Inbox::new(
            cli.download_dir
                .clone()
                .unwrap_or_else(crate::session::default_download_dir),
            cli.max_file_size,
        ),
        max_files: cli.max_files,
    }
}

/// Prints a failure where a customer without a window would look, and returns its exit status.
fn report(f: &Failure) -> u8 {
    eprintln!("tether-host: {}", f.message());
    f.exit_code()
}

/// Tells, on standard output, what happens during a session.
fn printer() -> (
    mpsc::UnboundedSender<HostEvent>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut had_agent = false;
        while let Some(ev) = rx.recv().await {
            match ev {
                HostEvent::Agents(a) if a.is_empty() && had_agent => {
                    had_agent = false;
                    println!(
                        "your support agent's connection was lost; waiting for them to come back (Ctrl+C ends the session)"
                    );
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
    (tx, task)
}

/// What the customer asks for between sessions.
enum Next {
    Key(String),
    Quit,
}

/// Waits for a key from the window, or for the window to go away.
async fn next_key(
    decisions: &mut mpsc::UnboundedReceiver<Decision>,
    life: &mut watch::Receiver<WindowLife>,
) -> Next {
    loop {
        if *life.borrow() != WindowLife::Open {
            return Next::Quit;
        }
        tokio::select! {
            d = decisions.recv() => match d {
                Some(Decision::Connect(k)) => return Next::Key(k),
                Some(Decision::EndSession | Decision::CloseWindow) | None => return Next::Quit,
                Some(_) => {}
            },
            changed = life.changed() => if changed.is_err() {
                return Next::Quit;
            },
        }
    }
}

/// Runs sessions until the customer closes the window (or, headless, after one attempt).
/// Returns the exit status of the last attempt.
async fn controller(
    target: Result<Target, Failure>,
    mut pending: Option<String>,
    services: Services,
    mut decisions: mpsc::UnboundedReceiver<Decision>,
    mut life: watch::Receiver<WindowLife>,
) -> u8 {
    let shared = services.shared.clone();
    let nobody = services.answerer.clone();
    let target = match target {
        Ok(t) => t,
        Err(f) => {
            let code = report(&f);
            if !nobody.is_nobody() {
                // The window shows it until the customer closes it.
                let _ = next_key(&mut decisions, &mut life).await;
            }
            return code;
        }
    };
    let (end_tx, end_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = end_tx.send(true);
    });
    let (events, printer) = printer();
    let mut code = 0u8;
    loop {
        let key = match pending.take() {
            Some(k) => k,
            None if nobody.is_nobody() => {
                if code == 0 {
                    eprintln!(
                        "tether-host: no session key: give the key your support agent sent as the first argument"
                    );
                    code = 2;
                }
                break;
            }
            None => match next_key(&mut decisions, &mut life).await {
                Next::Key(k) => k,
                Next::Quit => break,
            },
        };
        // A malformed key is told at once, without a connection.
        if let Err(r) = tether_protocol::pairing::parse_key(&key) {
            let f = Failure::Refused(r);
            code = report(&f);
            shared.update(|v| {
                v.phase = Phase::EnterKey;
                v.failure = Some(f);
            });
            continue;
        }
        shared.update(|v| v.start_attempt());
        println!("connecting to {}", target.relay);
        let opts = HostOptions {
            key,
            relay: target.relay.clone(),
            fingerprint: target.fingerprint,
        };
        let res = crate::run_with(
            opts,
            services.clone(),
            &mut decisions,
            events.clone(),
            end_rx.clone(),
        )
        .await;
        match res {
            Ok(outcome) => {
                code = 0;
                let reason = match outcome {
                    Outcome::Ended(r) => r,
                    Outcome::EndedHere => tether_protocol::msg::EndReason::CustomerEnded,
                };
                println!("session ended: {reason}");
                shared.update(|v| {
                    v.end_session();
                    v.phase = Phase::Ended(ended_words(reason).into());
                });
                if nobody.is_nobody() || *end_rx.borrow() {
                    break;
                }
                // The window keeps saying so until the customer closes it or starts over.
                loop {
                    tokio::select! {
                        d = decisions.recv() => match d {
                            Some(Decision::NewSession) => {
                                shared.update(|v| v.phase = Phase::EnterKey);
                                break;
                            }
                            Some(Decision::Connect(k)) => {
                                pending = Some(k);
                                break;
                            }
                            Some(Decision::EndSession | Decision::CloseWindow) | None => return code,
                            Some(_) => {}
                        },
                        changed = life.changed() => if changed.is_err() || *life.borrow() != WindowLife::Open {
                            return code;
                        },
                    }
                }
            }
            Err(e) => {
                let f = Failure::from(&e);
                code = report(&f);
                shared.update(|v| {
                    v.end_session();
                    v.phase = Phase::EnterKey;
                    v.failure = Some(f);
                });
                if nobody.is_nobody() || *end_rx.borrow() {
                    break;
                }
            }
        }
    }
    drop(events);
    let _ = printer.await;
    code
}
