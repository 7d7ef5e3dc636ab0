//! `tether-console`: the support agent's desktop app.

fn main() -> anyhow::Result<()> {
    tether_console::cli::run_with_args(std::env::args_os().collect())
}
