//! `tether-relay`: run the relay and manage its agents and keys.

fn main() -> anyhow::Result<()> {
    tether_relay::cli::run_with_args(std::env::args_os().collect())
}
