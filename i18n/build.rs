//! Rebuilds the crate when a Fluent resource changes (they are built in with `include_str!`).

fn main() {
    println!("cargo:rerun-if-changed=../assets/i18n");
    println!("cargo:rerun-if-changed=build.rs");
}
