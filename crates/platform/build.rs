//! Embeds the git commit the binary is built from (`BANGFU_GIT_COMMIT`), for the build-info
//! metric and the ready line. A build outside git (an exported tarball, a Docker context without
//! `.git`) passes it in the environment, or gets "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=BANGFU_GIT_COMMIT");
    if std::env::var("BANGFU_GIT_COMMIT").is_ok_and(|commit| !commit.trim().is_empty()) {
        // Set by the builder (Dockerfile's build argument): rustc sees it as it is.
        return;
    }
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the refs (a commit on the branch).
    // In a worktree HEAD is in the worktree's git dir and the refs in the common one.
    for (flag, files) in [
        ("--git-dir", &["HEAD"][..]),
        ("--git-common-dir", &["refs/heads", "packed-refs"][..]),
    ] {
        if let Some(dir) = git(&["rev-parse", flag]) {
            for file in files {
                let path = PathBuf::from(&dir).join(file);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BANGFU_GIT_COMMIT={commit}");
}
