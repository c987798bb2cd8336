//! What `bangfu up` writes to a log that is not a terminal: one ready line naming the build,
//! the addresses and the schema, no colour codes, and a flood of refused calls bounded to a few
//! lines a second while the audit log keeps every one.

use std::time::Instant;

use bangfu_proto::identity::v1 as pb;
use sqlx::Connection as _;

use crate::replicas::{authorized, client};
use crate::up::Up;

/// Refused calls sent in the flood.
const FLOOD: usize = 600;
/// The server's bound: denial lines a second per service.
const LINES_PER_SECOND: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_has_one_ready_line_no_colours_and_a_bounded_flood_of_refusals() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let log_path = dir.path().join("up.log");
    let mut up = Up::start_logging(&data, "info", Some(std::fs::File::create(&log_path).expect("log file")));

    let mut identity = client(&up.addr).await;
    let started = Instant::now();
    for _ in 0..FLOOD {
        let refused = identity
            .list_persons(authorized(
                pb::ListPersonsRequest {
                    region_prefix: "3704".into(),
                    page_size: 10,
                    ..Default::default()
                },
                "not-a-token",
            ))
            .await
            .expect_err("a malformed token is refused");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
    let seconds = started.elapsed().as_secs() as usize;

    // The audit log has every refusal, logged or not (written behind the answers, so wait).
    let url = format!("sqlite://{}", data.join("identity.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("identity.db");
    let mut audited = 0;
    for _ in 0..300 {
        audited = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_events WHERE method = $1")
            .bind("/bangfu.identity.v1.IdentityService/ListPersons")
            .fetch_one(&mut db)
            .await
            .expect("count");
        if audited as usize >= FLOOD {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(audited as usize, FLOOD);
    assert!(up.terminate().success());

    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal:\n{log}"
    );
    let ready: Vec<&str> = log.lines().filter(|line| line.contains(" ready ")).collect();
    assert_eq!(ready.len(), 1, "{log}");
    for part in [
        "services=identity".to_string(),
        format!("version={}", bangfu_platform::telemetry::VERSION),
        format!("commit={}", bangfu_platform::telemetry::COMMIT),
        format!("listen={}", up.addr.trim_start_matches("http://")),
        "migrations=identity at ".to_string(),
        "applied now 1,".to_string(),
    ] {
        assert!(ready[0].contains(&part), "{part} not in {}", ready[0]);
    }

    // At most the budget in each second the flood lasted (and the one it started in), plus
    // the lines that count what was left out.
    let refusals = log.lines().filter(|line| line.contains("call refused")).count();
    let windows = seconds + 1;
    assert!(refusals >= 1, "the first refusal is logged");
    assert!(
        refusals <= LINES_PER_SECOND * windows,
        "{refusals} refusal lines for {FLOOD} refusals in {seconds} s"
    );
    let counted: u64 = log
        .lines()
        .filter(|line| line.contains("denied calls not logged"))
        .filter_map(|line| {
            line.split("suppressed=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(counted as usize + refusals <= FLOOD);
    // The server's window opens at the first refusal, a little after `started`: a flood that
    // lasted a second by the client's clock may not have outlasted the window. Two seconds
    // certainly did, and a refusal after the window closed writes the count.
    if seconds >= 2 {
        assert!(
            counted > 0,
            "a flood over a second says how many lines it left out:\n{log}"
        );
    }
}
