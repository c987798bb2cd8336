//! Running the `bangfu` binary as a user does, for the client-command tests: a token issued
//! from the server's keys, a command against a running `bangfu up`, its output read.

use std::process::{Command, Output};

use crate::up::Up;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A token from `bangfu token issue` with the keys `bangfu up` made.
pub fn token(keys: &str, dept: &str, role: &str, region: &str, subject: &str) -> String {
    let issued = Command::new(BANGFU)
        .args([
            "token",
            "issue",
            "--dept",
            dept,
            "--role",
            role,
            "--region",
            region,
            "--keys",
            keys,
            "--subject",
            subject,
        ])
        .output()
        .expect("run bangfu");
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    text(&issued.stdout).trim().to_string()
}

/// `bangfu <args…> --addr … --token …` against `up`.
pub fn against(up: &Up, token: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--addr", &up.addr, "--token", token]);
    Command::new(BANGFU).args(&all).output().expect("run bangfu")
}

/// The command's output, which must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}{}", text(&out.stderr), text(&out.stdout));
    text(&out.stdout)
}

/// The command's `--json` answer, which must have succeeded.
pub fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("json")
}

/// A date as the flags take it.
pub fn day(date: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}
