//! `GET /metrics` on the probe port of a real `bangfu serve identity`: after a few calls it
//! holds the series an operator watches, labelled by method and code, and it still answers while
//! the database is cut off.

use std::io::{Read as _, Write as _};
use std::net::ToSocketAddrs as _;

use bangfu_platform::testing::TcpProxy;

use crate::replicas::{Replica, authorized, client, create_request, deployment_keys, fresh_database, operator_token};

/// The body of `GET /metrics` over HTTP/1.1, as Prometheus asks for it; panics unless 200.
pub fn scrape(health: &str) -> String {
    let addr = health.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the probe port");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    // hyper answers HTTP/1.1 in chunks when it does not know the length up front.
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut text = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if size == 0 {
                break;
            }
            text.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        return text;
    }
    body.to_string()
}

/// The sample lines of `name` whose labels include every one of `labels`.
fn series<'a>(text: &'a str, name: &str, labels: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .collect()
}

/// The value of the one sample of `name` with `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    let found = series(text, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?} in:\n{text}");
    found[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_probe_port_count_calls_by_method_and_code_and_answer_during_an_outage() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = deployment_keys(dir.path());
    let direct = fresh_database("bangfu_metrics_test").await;
    // The service reaches PostgreSQL through a proxy the test can cut.
    let server = direct
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(authority, _)| authority.rsplit('@').next().unwrap_or(authority))
        .expect("a server in the URL")
        .to_string();
    let target = server.to_socket_addrs().expect("resolve").next().expect("an address");
    let proxy = TcpProxy::start(target).await;
    let url = direct.replacen(&server, &proxy.addr.to_string(), 1);
    let mut replica = Replica::start_with(&keys, &url, &[]);
    replica.wait_serving();

    let clerk = operator_token(&keys, "hr", "clerk");
    let auditor = operator_token(&keys, "hr", "auditor");
    let mut identity = client(&replica.addr).await;
    for n in 0..3 {
        identity
            .create_person(authorized(create_request(n, &format!("metrics-{n}")), &clerk))
            .await
            .expect("created");
    }
    let refused = identity
        .create_person(authorized(create_request(9, "metrics-refused"), &auditor))
        .await
        .expect_err("an auditor does not register persons");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let text = scrape(replica.health());
    const CREATE: &str = "rpc_method=\"/bangfu.identity.v1.IdentityService/CreatePerson\"";
    assert_eq!(
        value(
            &text,
            "rpc_server_requests_total",
            &[CREATE, "rpc_grpc_status_code=\"0\""]
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "rpc_server_requests_total",
            &[CREATE, "rpc_grpc_status_code=\"7\""]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "rpc_server_duration_seconds_count",
            &[CREATE, "rpc_grpc_status_code=\"0\""]
        ),
        3.0
    );
    assert!(!series(&text, "rpc_server_duration_seconds_bucket", &[CREATE, "le=\"0.1\""]).is_empty());
    assert_eq!(value(&text, "rpc_server_active_requests", &[CREATE]), 0.0);
    let idle = value(
        &text,
        "bangfu_db_pool_connections",
        &["service=\"identity\"", "state=\"idle\""],
    );
    let in_use = value(
        &text,
        "bangfu_db_pool_connections",
        &["service=\"identity\"", "state=\"in_use\""],
    );
    assert!(
        idle + in_use >= 1.0,
        "the pool has connections: {idle} idle, {in_use} in use"
    );
    assert_eq!(
        value(&text, "bangfu_db_pool_max_connections", &["service=\"identity\""]),
        16.0
    );
    // Background work (the audit sealer) may be waiting at the moment of the scrape.
    assert!(value(&text, "bangfu_db_pool_waiting", &["service=\"identity\""]) < 16.0);
    assert!(
        value(&text, "bangfu_db_acquire_duration_seconds_count", &[]) > 0.0,
        "the calls' connection waits are timed"
    );
    value(&text, "bangfu_audit_unsealed", &["service=\"identity\""]);
    value(
        &text,
        "bangfu_audit_oldest_unsealed_age_seconds",
        &["service=\"identity\""],
    );
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert_eq!(value(&text, "bangfu_build_info", &[&version, "commit=\""]), 1.0);
    assert!(
        series(&text, "bangfu_build_info", &["commit=\"\""]).is_empty(),
        "the commit is named"
    );

    // The database goes away; the scrape still answers, from memory.
    proxy.cut();
    let failed = identity
        .create_person(authorized(create_request(10, "metrics-outage"), &clerk))
        .await
        .expect_err("no database");
    let during = scrape(replica.health());
    assert_eq!(
        value(
            &during,
            "rpc_server_requests_total",
            &[CREATE, "rpc_grpc_status_code=\"0\""]
        ),
        3.0
    );
    let code = format!("rpc_grpc_status_code=\"{}\"", failed.code() as i32);
    assert_eq!(value(&during, "rpc_server_requests_total", &[CREATE, &code]), 1.0);
    assert_eq!(value(&during, "bangfu_build_info", &[&version]), 1.0);
}
