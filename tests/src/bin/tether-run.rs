//! The programs under test, by name: `tether-run relay|host|console ARGS…` runs the entry point
//! that `tether-relay`, `tether-host` or `tether-console` runs. The end-to-end tests start this
//! one binary (built with them by `cargo test`) instead of three. A copy named `tether-host…`
//! (as the portal names its downloads) runs as the host, with its arguments as they are.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let own = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    if own.starts_with("tether-host") {
        return tether_host::cli::run_with_args(args);
    }
    if args.len() < 2 {
        eprintln!("usage: tether-run relay|host|console ARGS…");
        return ExitCode::from(2);
    }
    let program = args.remove(1);
    let name = format!("tether-{}", program.to_string_lossy());
    args[0] = name.clone().into();
    match program.to_str() {
        Some("relay") => report(tether_relay::cli::run_with_args(args)),
        Some("host") => tether_host::cli::run_with_args(args),
        Some("console") => report(tether_console::cli::run_with_args(args)),
        _ => {
            eprintln!("tether-run: unknown program {name}");
            ExitCode::from(2)
        }
    }
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
