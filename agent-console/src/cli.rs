//! The `tether-console` command line.
//!
//! With no `--relay` it starts a relay inside itself on 127.0.0.1 and logs in as the local agent;
//! `--demo` also shares this display as a customer would, so one command shows a whole session.

use std::path::PathBuf;

use crate::app::ConsoleApp;
use crate::backend::{BackendOptions, Startup};
use crate::state::{ConsoleState, LoginRequest, Settings};
use clap::Parser;

#[derive(Parser)]
#[command(name = "tether-console", version, about = "Tether agent console")]
struct Cli {
    /// Relay to log in to, HOST:PORT. Without it, a relay runs inside the console on 127.0.0.1.
    #[arg(long, env = "TETHER_RELAY")]
    relay: Option<String>,
    /// SHA-256 fingerprint of the relay's certificate (64 hex digits).
    #[arg(long, env = "TETHER_RELAY_FINGERPRINT")]
    relay_fingerprint: Option<String>,
    /// Agent account name.
    #[arg(long)]
    user: Option<String>,
    /// File holding the agent's password (first line).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Also share this display as a customer and join it: a whole session in one command.
    #[cfg(feature = "demo")]
    #[arg(long)]
    demo: bool,
    /// Where files fetched from customers go (default: your Downloads folder).
    #[arg(long)]
    download_dir: Option<PathBuf>,
    /// The console's language, en or fr (default: the settings', else the system's).
    #[arg(long, env = "TETHER_LANG")]
    lang: Option<String>,
    /// The settings file: favourite queues, tab markers, folders (default: in your
    /// configuration folder).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Data dir of the embedded relay.
    #[cfg(feature = "embedded-relay")]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Runs the console with these arguments (the first is the program name).
pub fn run_with_args(args: Vec<std::ffi::OsString>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tether_console=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(args);
    let (state, startup) = match &cli.relay {
        #[cfg(feature = "embedded-relay")]
        None => (
            ConsoleState::connecting(LoginRequest {
                relay: "embedded relay".into(),
                ..Default::default()
            }),
            Startup::Embedded {
                data_dir: cli.data_dir.clone(),
            },
        ),
        #[cfg(not(feature = "embedded-relay"))]
        None => (
            ConsoleState::login(LoginRequest::default()),
            Startup::LoginScreen,
        ),
        Some(relay) => remote_login(&cli, relay),
    };
    let mut state = state;
    let settings_file = cli.settings.clone().or_else(Settings::default_path);
    if let Some(path) = &settings_file {
        state.settings = Settings::load(path);
    }
    if let Some(d) = &cli.download_dir {
        state.settings.download_dir = d.clone();
    }
    let lang = match cli.lang.as_deref() {
        Some(l) => tether_i18n::Lang::parse(l)
            .ok_or_else(|| anyhow::anyhow!("--lang {l:?}: the console speaks en and fr"))?,
        None => state
            .settings
            .lang
            .as_deref()
            .and_then(tether_i18n::Lang::parse)
            .unwrap_or_else(tether_i18n::Lang::from_env),
    };
    tether_i18n::set_lang(lang);
    #[allow(unused_mut)]
    let mut backend = BackendOptions::system();
    #[cfg(feature = "demo")]
    {
        backend.demo = cli.demo;
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tether Console")
            .with_inner_size([1280.0, 800.0]),
        renderer: eframe::Renderer::Glow,
        dithering: false,
        glow_options: eframe::egui_glow::GlowConfiguration {
            vsync: false,
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::run_native(
        "Tether Console",
        options,
        Box::new(move |cc| {
            let app = ConsoleApp::new(&cc.egui_ctx, state, startup, backend)?;
            Ok(Box::new(match settings_file {
                Some(path) => app.keep_settings_in(path),
                None => app,
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the console window: {e}"))
}

/// A relay given on the command line: log in at once if everything is there, or show the login
/// form filled with what was given (and why the password file could not be read, where the
/// agent looks).
fn remote_login(cli: &Cli, relay: &str) -> (ConsoleState, Startup) {
    let (password, problem) = match cli.password_file.as_deref().map(read_password) {
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let req = LoginRequest {
        relay: relay.to_string(),
        fingerprint: cli.relay_fingerprint.clone().unwrap_or_default(),
        user: cli.user.clone().unwrap_or_default(),
        password: password.clone().unwrap_or_default(),
    };
    if password.is_some() && !req.user.is_empty() && !req.fingerprint.is_empty() {
        return (ConsoleState::connecting(req.clone()), Startup::Login(req));
    }
    let mut state = ConsoleState::login(req);
    if let (Some(p), crate::state::Phase::Login(form)) = (problem, &mut state.phase) {
        form.error = Some(p);
    }
    (state, Startup::LoginScreen)
}

/// The first line of a password file.
fn read_password(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().next().unwrap_or_default().to_string())
        .map_err(|e| format!("Cannot read the password file {}: {e}", path.display()))
}
