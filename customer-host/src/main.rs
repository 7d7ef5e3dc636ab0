//! `tether-host KEY --relay HOST:PORT --relay-fingerprint HEX`

fn main() -> std::process::ExitCode {
    tether_host::cli::run_with_args(std::env::args_os().collect())
}
