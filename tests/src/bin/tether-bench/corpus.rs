//! The text the scenarios show: this repository's own documents and Rust sources, read as they
//! were at commit [`PIN`] rather than from the working tree, so that a page of the browser or
//! of `less` is the same from one commit to the next and figures taken on different days
//! compare. The benchmark must run in a clone that holds that commit (a full clone does).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The commit whose files the scenarios show.
pub(crate) const PIN: &str = "f44f7ae78c147f6c4b715d7f3c2667806534cf10";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn git(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root())
        .args(args)
        .output()
        .context("running git, which the benchmark reads its content with")?;
    if !out.status.success() {
        bail!(
            "git {}: {} (the benchmark shows files as they were at commit {PIN}: run it in a \
             clone that holds it)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The file at `path` (from the repository's root) as it was at [`PIN`].
pub(crate) fn read(path: &str) -> anyhow::Result<String> {
    git(&["show", &format!("{PIN}:{path}")])
}

/// The paths of the files directly in `dir` at [`PIN`] whose names end with `ext`, sorted.
pub(crate) fn list(dir: &str, ext: &str) -> anyhow::Result<Vec<String>> {
    let mut files: Vec<String> = git(&["ls-tree", "--name-only", PIN, &format!("{dir}/")])?
        .lines()
        .filter(|p| p.ends_with(ext))
        .map(str::to_owned)
        .collect();
    files.sort();
    Ok(files)
}
