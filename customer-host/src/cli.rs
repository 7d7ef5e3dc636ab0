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
use tokio::sync::watch;

use crate::Services;
use crate::config;
use crate::consent::{Decision, Phase, Shared};
use crate::controller::WindowLife;
use crate::grants::Answerer;
use tether_desktop::capture;

#[derive(Parser)]
#[command(
    name = "tether-host",
    version,
    about = "Share this computer's screen with a Tether support agent"
)]
struct Cli {
    /// The session key your support agent gave you (9 digits or the session URL), a ticket or
    /// ticket URL from the support portal, or a help link (`https://RELAY/a/AGENT`,
    /// `https://RELAY/t/TEAM`). Without it, the key in this program's file name (as the portal
    /// names its downloads), else the window asks for it.
    key: Option<String>,
    /// The window's language, en or fr (default: the system's).
    #[arg(long, env = "TETHER_LANG", value_parser = parse_lang)]
    lang: Option<tether_i18n::Lang>,
    /// The relay, HOST:PORT (default: from tether-host.json beside this program).
    #[arg(long, env = "TETHER_RELAY")]
    relay: Option<String>,
    /// SHA-256 fingerprint of the relay's certificate (64 hex digits). Connections to any other
    /// certificate are refused. Default: from tether-host.json beside this program.
    #[arg(long, env = "TETHER_RELAY_FINGERPRINT")]
    relay_fingerprint: Option<String>,
    /// Instead of a fingerprint: trust a relay whose certificate is issued for its host name by
    /// one of the certificate authorities in this PEM file (a relay run with --tls-cert).
    #[arg(long, conflicts_with = "relay_fingerprint")]
    relay_ca: Option<std::path::PathBuf>,
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
    /// Seconds to keep trying to come back to the session after the connection drops (the
    /// relay keeps it for 120).
    #[arg(long, default_value_t = tether_protocol::msg::RESUME_WINDOW_SECS)]
    reconnect_for: u64,
    /// Your name, as your support agent sees it in their queue (default: your full name on this
    /// computer).
    #[arg(long, env = "TETHER_CUSTOMER_NAME")]
    name: Option<String>,
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

/// Runs the command line with these arguments (the first is the program name).
pub fn run_with_args(args: Vec<std::ffi::OsString>) -> ExitCode {
    init_tracing();
    let mut cli = Cli::parse_from(args);
    tether_i18n::set_lang(cli.lang.unwrap_or_else(tether_i18n::Lang::from_env));
    // A download from the portal carries its key in its file name and the relay in its tail.
    if cli.key.is_none() {
        cli.key = config::key_from_own_name();
    }
    let embedded = config::embedded_settings();
    let target = config::resolve_with(
        cli.relay.clone(),
        cli.relay_fingerprint.clone(),
        cli.relay_ca.as_deref(),
        embedded,
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
        Answerer::nobody(shared.clone())
    } else {
        Answerer::window(shared.clone())
    };
    announce_allowed(&cli.allow);
    let (life_tx, life_rx) = watch::channel(WindowLife::Open);
    shared.update(|v| match &target {
        Err(f) => {
            v.phase = Phase::Broken;
            v.failure = Some(f.clone());
        }
        Ok(_) if cli.key.is_some() => v.phase = Phase::Connecting,
        Ok(_) => v.phase = Phase::EnterKey,
    });
    let services = services(&cli, shared.clone(), answerer.clone());
    let controller = rt.spawn(crate::controller::run(
        target,
        cli.key.clone(),
        cli.name.clone(),
        std::time::Duration::from_secs(cli.reconnect_for),
        services,
        decisions,
        life_rx,
    ));
    if !cli.headless {
        let key = cli.key.clone().unwrap_or_default();
        show_window(ctx, shared.clone(), key, &answerer, &life_tx);
    }
    let code = rt.block_on(controller).unwrap_or_else(|e| {
        eprintln!("tether-host: {e}");
        1
    });
    ExitCode::from(code)
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,tether_host::audit=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Says, on standard error and in the log, what `--allow` granted without asking.
fn announce_allowed(allow: &[Allow]) {
    if allow.is_empty() {
        return;
    }
    let words: Vec<_> = allow
        .iter()
        .map(|p| Permission::from(*p).describe())
        .collect();
    eprintln!(
        "tether-host: granted without asking (--allow): {}",
        words.join(", ")
    );
    tracing::warn!(allowed = ?allow, "permissions granted up front");
}

/// Shows the window until the customer closes it (which ends a running session) or it cannot
/// be shown (then nobody answers prompts and every request is denied), and tells `life` which.
fn show_window(
    ctx: Arc<OnceLock<egui::Context>>,
    shared: Shared,
    key: String,
    answerer: &Answerer,
    life: &watch::Sender<WindowLife>,
) {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tether remote support")
            .with_inner_size([460.0, 340.0])
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
            Ok(Box::new(crate::window::HostWindow::new(window_shared, key)))
        }),
    );
    match shown {
        Ok(()) => {
            let _ = life.send(WindowLife::Closed);
            shared.decide(Decision::EndSession);
        }
        Err(e) => {
            eprintln!(
                "tether-host: cannot open the window ({e}); going on without it, and every request will be denied"
            );
            answerer.window_gone();
            let _ = life.send(WindowLife::Failed);
        }
    }
}

fn services(cli: &Cli, shared: Shared, answerer: Answerer) -> Services {
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

/// `--lang`: a language Tether speaks.
fn parse_lang(s: &str) -> Result<tether_i18n::Lang, String> {
    tether_i18n::Lang::parse(s).ok_or_else(|| format!("{s:?}: Tether speaks en and fr"))
}
