//! `bangfu up` as a new user meets it: first run makes keys and a token, the client commands
//! work against it, SIGTERM stops it cleanly, a second run reuses what the first made, and a
//! taken port or an unusable data folder is refused with a clear message.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

/// A port for a server process a test starts. It lies below the kernel's ephemeral range
/// (32768 and up on Linux): a port the kernel hands out is also handed to the suite's own
/// outgoing connections, which took one such port between this check and the server's bind
/// ("Address already in use"). Each call takes the next port of this process's run, and skips
/// one something else holds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let port = 20_000 + u16::try_from(offset).expect("below 12,000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running `bangfu up`, stopped with SIGTERM when dropped.
pub struct Up {
    child: Child,
    pub addr: String,
}

impl Up {
    pub fn start(data: &Path) -> Self {
        Self::start_logging(data, "warn", None)
    }

    /// `bangfu up` logging at `filter`, its output (logs go to stdout) copied to `log`.
    pub fn start_logging(data: &Path, filter: &str, log: Option<std::fs::File>) -> Self {
        Self::start_with(data, free_port(), &[], &[], filter, log)
    }

    /// `bangfu up` on `port` with more arguments and environment variables.
    pub fn start_with(
        data: &Path,
        port: u16,
        args: &[&str],
        envs: &[(&str, &str)],
        filter: &str,
        log: Option<std::fs::File>,
    ) -> Self {
        let mut child = Command::new(BANGFU)
            .args(["up", "--data"])
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            // A call still running at SIGTERM holds the server for its grace period (30 s unless
            // set), longer than `terminate` waits; the tests' servers get 5 s.
            .env("BANGFU_SHUTDOWN_GRACE_SECONDS", "5")
            .envs(envs.iter().copied())
            .env("BANGFU_LOG", filter)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bangfu up");
        let stdout = child.stdout.take().expect("stdout");
        let (ready, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = log;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(file) = log.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                if line.starts_with("bangfu is serving") {
                    let _ = ready.send(());
                }
            }
        });
        // A readiness wait, not a timing check: alone, a debug `bangfu up` serves its four
        // services within about 3 s; the suite starts dozens of them at once on two cores.
        ready_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("bangfu up prints that it is serving");
        Self {
            child,
            addr: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(sent.success());
        // A hang detector, not a timing check: alone, a server stops within its 5 s grace and
        // usually at once; under the whole suite on two cores one took over 15 s (seen in CI).
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // What the kernel says of the process: whether it catches, ignores or blocks SIGTERM
        // (bit 15 of SigCgt, SigIgn, SigBlk) and where its threads wait.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let signals: Vec<&str> = status
            .lines()
            .filter(|line| {
                ["State", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"]
                    .iter()
                    .any(|k| line.starts_with(k))
            })
            .collect();
        let waits: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|task| {
                let read = |name: &str| std::fs::read_to_string(task.path().join(name)).unwrap_or_default();
                format!("{} {}", read("comm").trim(), read("wchan").trim())
            })
            .collect();
        let _ = self.child.kill();
        panic!("bangfu up did not stop within 60 s of SIGTERM; {signals:?}; threads waiting in {waits:?}");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `bangfu up` on `data` expecting it to refuse to start; fails the test if it serves.
pub fn up_refused(data: &Path) -> Output {
    let mut child = Command::new(BANGFU)
        .args(["up", "--data"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env("BANGFU_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bangfu up");
    for _ in 0..300 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    panic!("bangfu up was expected to refuse, and served: {}", text(&output.stdout));
}

/// Runs `bangfu up` on `data` and asserts it refused, naming the keys the database was made
/// with (`recorded`) and the current key of the file it was given (`given`); returns stderr.
pub fn assert_refused_naming_the_keys(data: &Path, recorded: &str, given: &str) -> String {
    let out = up_refused(data);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("identity: refusing to serve"), "{stderr}");
    assert!(
        stderr.contains(&format!("made with encryption key {recorded}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("encryption key {given} (current)")),
        "{stderr}"
    );
    stderr
}

/// The `active_encryption_key` and the key material of a data folder's data keys.
pub fn data_key_id_and_material(data: &Path) -> (String, String) {
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("keys/data-keys.json")).expect("data keys")).expect("json");
    (
        file["active_encryption_key"].as_str().expect("id").to_string(),
        file["encryption_keys"][0]["key_base64"]
            .as_str()
            .expect("key")
            .to_string(),
    )
}

fn bangfu(args: &[&str]) -> Output {
    Command::new(BANGFU).args(args).output().expect("run bangfu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn up_serves_the_admin_token_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut up = Up::start(&data);
    let token_file = data.join("admin.jwt");
    let token_file = token_file.to_str().expect("utf-8 path");

    let whoami = bangfu(&["whoami", "--addr", &up.addr, "--token-file", token_file, "--json"]);
    assert!(whoami.status.success(), "{}", text(&whoami.stderr));
    let me: serde_json::Value = serde_json::from_slice(&whoami.stdout).expect("json");
    assert_eq!(me["subject"], "dev-admin");
    assert_eq!(me["regionScope"], "*");

    let health = bangfu(&["health", "--addr", &up.addr]);
    assert!(health.status.success(), "{}", text(&health.stderr));
    assert_eq!(text(&health.stdout).trim(), "SERVING");

    // Every service's calls to the others go through the same port, token and layers.
    let peers = bangfu(&["check-peers", "--addr", &up.addr, "--token-file", token_file, "--json"]);
    assert!(peers.status.success(), "{}{}", text(&peers.stdout), text(&peers.stderr));
    let checks: serde_json::Value = serde_json::from_slice(&peers.stdout).expect("json");
    let to_identity = checks
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["caller"] == "identity" && c["peer"] == "identity")
        .expect("identity calls identity");
    assert_eq!(to_identity["reachable"], true, "{to_identity}");
    assert_eq!(to_identity["seenSubject"], "dev-admin");
    assert_eq!(to_identity["seenActingService"], "identity");

    let status = up.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_second_run_reuses_the_keys_and_the_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut first = Up::start(&data);
    first.terminate();
    let token = std::fs::read(data.join("admin.jwt")).expect("token");
    let trust = std::fs::read(data.join("keys/trust.json")).expect("trust");
    let mut second = Up::start(&data);
    assert_eq!(token, std::fs::read(data.join("admin.jwt")).expect("token"));
    assert_eq!(trust, std::fs::read(data.join("keys/trust.json")).expect("trust"));
    second.terminate();
}

#[test]
fn another_deployments_data_keys_stop_the_server_naming_the_key_ids() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
    Up::start(&ours).terminate();
    Up::start(&theirs).terminate();
    let (our_id, our_key) = data_key_id_and_material(&ours);
    let (their_id, their_key) = data_key_id_and_material(&theirs);
    // BANGFU_DATA_KEYS pointing at the wrong file, as `bangfu up` sees it.
    std::fs::copy(theirs.join("keys/data-keys.json"), ours.join("keys/data-keys.json")).expect("copy");

    let stderr = assert_refused_naming_the_keys(&ours, &our_id, &their_id);
    assert!(
        stderr.contains("restore the keys folder from the same backup"),
        "{stderr}"
    );
    assert!(!stderr.contains(&our_key) && !stderr.contains(&their_key), "{stderr}");
}

#[test]
fn a_taken_port_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let data = dir.path().join("data");
    let out = bangfu(&[
        "up",
        "--data",
        data.to_str().expect("path"),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unusable_data_folder_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").expect("file");
    let data = file.join("data");
    let out = bangfu(&[
        "up",
        "--data",
        data.to_str().expect("path"),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not writable"), "{stderr}");
}

#[test]
fn plaintext_off_loopback_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = bangfu(&[
        "up",
        "--data",
        dir.path().to_str().expect("path"),
        "--listen",
        "0.0.0.0:50999",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("loopback"), "{}", text(&out.stderr));
}

#[test]
fn an_issued_token_carries_the_department_role_and_scope_asked_for() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let issued = bangfu(&[
        "token", "issue", "--dept", "agri", "--role", "reviewer", "--region", "370402", "--keys", keys,
    ]);
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let token = text(&issued.stdout).trim().to_string();
    let whoami = bangfu(&["whoami", "--addr", &up.addr, "--token", &token, "--json"]);
    assert!(whoami.status.success(), "{}", text(&whoami.stderr));
    let me: serde_json::Value = serde_json::from_slice(&whoami.stdout).expect("json");
    assert_eq!(me["department"], "agri");
    assert_eq!(me["roles"][0], "reviewer");
    assert_eq!(me["regionScope"], "370402");

    let info = bangfu(&["server-info", "--addr", &up.addr, "--token", &token]);
    assert_eq!(info.status.code(), Some(5), "a permission refusal exits 5");
    assert!(
        text(&info.stderr).contains("PERMISSION_MISSING"),
        "{}",
        text(&info.stderr)
    );

    let bad = bangfu(&[
        "token", "issue", "--dept", "agri", "--role", "reviewer", "--region", "37040", "--keys", keys,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--region"), "{}", text(&bad.stderr));
}

#[test]
fn the_identity_commands_register_show_and_find_a_person() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let token_file = data.join("admin.jwt");
    let token_file = token_file.to_str().expect("path");
    let created = bangfu(&[
        "identity",
        "create",
        "--addr",
        &up.addr,
        "--token-file",
        token_file,
        "--json",
        "--name",
        "王秀英",
        "--citizen-id",
        "11010519491231002X",
        "--region",
        "370402001013",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let person: serde_json::Value = serde_json::from_slice(&created.stdout).expect("json");
    let name = person["name"].as_str().expect("name").to_string();
    assert_eq!(person["citizenId"], "1101*************X");
    let shown = bangfu(&["identity", "get", "--addr", &up.addr, "--token-file", token_file, &name]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(
        text(&shown.stdout).contains("山东省枣庄市市中区"),
        "{}",
        text(&shown.stdout)
    );
    assert!(!text(&shown.stdout).contains("11010519491231002X"), "masked by default");
    let found = bangfu(&[
        "identity",
        "find",
        "--addr",
        &up.addr,
        "--token-file",
        token_file,
        "--json",
        "11010519491231002X",
        "--name",
        "王秀英",
    ]);
    let found: serde_json::Value = serde_json::from_slice(&found.stdout).expect("json");
    assert_eq!(found["person"], name.as_str());
    assert_eq!(found["nameMatch"], "NAME_MATCH_MATCHED");
    let bad = bangfu(&[
        "identity",
        "create",
        "--addr",
        &up.addr,
        "--token-file",
        token_file,
        "--name",
        "李四",
        "--citizen-id",
        "340524198001010013",
        "--region",
        "370402001013",
    ]);
    assert_eq!(bad.status.code(), Some(2), "invalid input exits 2");
    assert!(
        text(&bad.stderr).contains("CITIZEN_ID_INVALID"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn no_log_line_holds_a_citizen_id_or_a_name_in_clear_even_at_debug() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut up = Up::start_logging(&data, "debug", Some(log));
    let token_file = data.join("admin.jwt");
    let token_file = token_file.to_str().expect("path");
    let client = |args: &[&str]| {
        let mut all = vec!["identity"];
        all.extend_from_slice(&args[..1]);
        all.extend_from_slice(&["--addr", &up.addr, "--token-file", token_file]);
        all.extend_from_slice(&args[1..]);
        bangfu(&all)
    };
    let id = "11010519491231002X";
    let created = client(&[
        "create",
        "--json",
        "--name",
        "欧阳秀英",
        "--citizen-id",
        id,
        "--region",
        "370402001013",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let person: serde_json::Value = serde_json::from_slice(&created.stdout).expect("json");
    let name = person["name"].as_str().expect("name").to_string();
    assert!(client(&["find", id, "--name", "欧阳秀英"]).status.success());
    assert!(client(&["get", &name]).status.success());
    // A refused ID and a proposed correction go through the error and review paths.
    let refused = client(&[
        "create",
        "--name",
        "司马光明",
        "--citizen-id",
        "340524198001010013",
        "--region",
        "370402001013",
    ]);
    assert!(!refused.status.success());
    let corrected = client(&[
        "correct-id",
        &name,
        "--citizen-id",
        "110105194912310046",
        "--reason",
        "户籍证明核对",
    ]);
    assert!(corrected.status.success(), "{}", text(&corrected.stderr));
    let csv = dir.path().join("export.csv");
    std::fs::write(
        &csv,
        "姓名,证件号码,村代码\n诸葛亮亮,370402198001010011,370402001013\n上官婉儿,370402198001010010,370402001013\n",
    )
    .expect("csv");
    let imported = client(&["import", csv.to_str().expect("path"), "--export-date", "2026-01-31"]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    assert!(up.terminate().success());
    // The copying thread ends with the child's stdout.
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(log.lines().count() > 20, "the server logged at debug: {log}");
    for secret in [
        id,
        "110105194912310046",
        "340524198001010013",
        "370402198001010011",
        "370402198001010010",
        "欧阳秀英",
        "司马光明",
        "诸葛亮亮",
        "上官婉儿",
    ] {
        assert!(!log.contains(secret), "{secret} appears in the log");
    }
}

#[test]
fn the_monitoring_commands_record_work_income_and_show_alerts_stats_and_the_audit_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let token_file = data.join("admin.jwt");
    let token_file = token_file.to_str().expect("path");
    let run = |args: &[&str]| {
        let mut all = vec!["identity"];
        all.extend_from_slice(&args[..1]);
        all.extend_from_slice(&["--addr", &up.addr, "--token-file", token_file]);
        all.extend_from_slice(&args[1..]);
        let output = bangfu(&all);
        assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
        text(&output.stdout)
    };
    let created = run(&[
        "create",
        "--json",
        "--name",
        "孙秀兰",
        "--citizen-id",
        "11010519491231002X",
        "--region",
        "370402001013",
    ]);
    let person: serde_json::Value = serde_json::from_str(&created).expect("json");
    let person = person["name"].as_str().expect("name").to_string();
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let this_month = format!("{:04}-{:02}", today.year(), u8::from(today.month()));
    let last_month = today
        .replace_day(1)
        .expect("first")
        .previous_day()
        .expect("a day before");
    let last_month = format!("{:04}-{:02}", last_month.year(), u8::from(last_month.month()));
    run(&[
        "income",
        &person,
        "--month",
        &last_month,
        "--yuan",
        "3000",
        "--reporting-system",
        "务工收入监测",
    ]);
    let fell = run(&[
        "income",
        &person,
        "--month",
        &this_month,
        "--yuan",
        "1200.50",
        "--reporting-system",
        "务工收入监测",
    ]);
    assert!(
        fell.contains("income-drop-month-on-month") || fell.contains("INCOME_DROP_MONTH_ON_MONTH"),
        "{fell}"
    );
    let recorded = run(&[
        "employment",
        &person,
        "--status",
        "employed-out-of-province",
        "--from",
        &format!("{this_month}-01"),
        "--reporting-system",
        "就业信息平台",
    ]);
    assert!(recorded.contains("employmentRecords/"), "{recorded}");
    let alerts = run(&["alerts", "--json", "--region", "370402"]);
    assert!(alerts.contains(&person), "{alerts}");
    let stats = run(&["stats", "--json", "--region", "3704"]);
    assert!(stats.contains("370402"), "{stats}");
    let audit = run(&["audit", "--json"]);
    assert!(audit.contains("RecordIncome"), "{audit}");
    let listed = run(&["list", "--json", "--region", "370402"]);
    assert!(listed.contains(&person), "{listed}");
    let parameters = bangfu(&[
        "identity",
        "parameter",
        "list",
        "--addr",
        &up.addr,
        "--token-file",
        token_file,
        "--key",
        "identity.income_drop_alert_bp",
    ]);
    assert!(
        text(&parameters.stdout).contains("2000"),
        "{}",
        text(&parameters.stderr)
    );
}
