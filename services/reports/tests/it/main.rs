//! Reports through its gRPC surface with identity on the same test server and the other
//! services out of reach — one refusing connections (down), one accepting them and never
//! answering (hung) — on SQLite and on PostgreSQL: a report generated meanwhile cannot be
//! exported, ends incomplete naming what is missing, and cannot be submitted.

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::auth::token::ServiceTokens;
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::clock::Clock;
use bangfu_platform::peers::{PeerSettings, Peers};
use bangfu_platform::pii::DataKeyFile;
use bangfu_platform::testing::{Backend, TestDatabase, TestServer, reason, server_config, with_token};
use bangfu_proto::reports::v1 as pb;
use bangfu_proto::reports::v1::report_service_client::ReportServiceClient;

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })+
        }
    };
}

on_both_backends!(a_report_read_while_services_are_out_of_reach_is_incomplete_and_not_submittable);

async fn a_report_read_while_services_are_out_of_reach_is_incomplete_and_not_submittable(backend: Backend) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
    let identity_db = TestDatabase::on(backend, &bangfu_identity::MIGRATIONS).await;
    let reports_db = TestDatabase::on(backend, &bangfu_reports::MIGRATIONS).await;
    let clock = Clock::system();
    let keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
    let identity = bangfu_identity::start(identity_db.db.clone(), keys, clock.clone())
        .await
        .expect("identity");
    let reports = bangfu_reports::start(reports_db.db.clone(), clock, None)
        .await
        .expect("reports");
    // Down: a port nothing listens on. Hung: a listener that never answers.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_addr = hung.local_addr().expect("addr");
    let methods = [
        bangfu_platform::auth::permissions::PLATFORM_METHODS,
        bangfu_identity::METHODS,
        bangfu_reports::METHODS,
    ]
    .concat();
    let stores = (identity_db.db.clone(), reports_db.db.clone());
    let server = TestServer::start_calling_itself(server_config(), &methods, move |host, test_keys, addr| {
        host.audit_denials(bangfu_identity::PATH_PREFIX, stores.0);
        host.audit_denials(bangfu_reports::PATH_PREFIX, stores.1);
        let tokens = Arc::new(ServiceTokens::new(
            test_keys.service_signer("reports"),
            "reports",
            RegionScope::Country,
            "bangfu",
            Duration::from_secs(300),
        ));
        let peers = Peers::from_lookup(
            |variable| match variable {
                "BANGFU_PEER_IDENTITY" => Some(format!("http://{addr}")),
                "BANGFU_PEER_WORK_RELIEF" => Some(format!("http://{hung_addr}")),
                _ => Some(format!("http://{down}")),
            },
            None,
            Some(tokens),
            PeerSettings {
                default_timeout: Duration::from_secs(3),
                attempts: 1,
                ..PeerSettings::default()
            },
        )
        .expect("peers");
        let reports = reports.with_peers(bangfu_reports::sources::StatsPeers::from(&peers).expect("peers"));
        let config = host.config().clone();
        host.add_service(bangfu_reports::grpc::ReportServer::shared(Arc::new(reports), &config));
        host.add_service(identity.into_server(host.config()));
    })
    .await;
    let clerk = server
        .keys
        .user_token_for("clerk-shizhong", Department::Hr, &[Role::Clerk], "370402");
    let channel = server.channel().await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let quarter = (u8::from(today.month()) - 1) / 3 + 1;
    let name = format!("reports/progress-370402-{}q{quarter}", today.year());

    let generating = {
        let (channel, clerk) = (channel.clone(), clerk.clone());
        tokio::spawn(async move {
            ReportServiceClient::new(channel)
                .generate_report(with_token(
                    pb::GenerateReportRequest {
                        form: pb::ReportForm::Progress as i32,
                        region_code: "370402".into(),
                        period: Some(pb::ReportingPeriod {
                            year: today.year(),
                            quarter: i32::from(quarter),
                        }),
                    },
                    &clerk,
                ))
                .await
        })
    };
    // While work relief keeps the generation waiting, the report is not exportable.
    let mut client = ReportServiceClient::new(channel.clone());
    let mut seen_generating = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match client
            .export_report(with_token(
                pb::ExportReportRequest {
                    name: name.clone(),
                    format: pb::ExportFormat::Xlsx as i32,
                },
                &clerk,
            ))
            .await
        {
            Err(status) if reason(&status) == "REPORT_BEING_GENERATED" => {
                seen_generating = true;
                break;
            }
            Err(status) if reason(&status) == "NOT_FOUND" => continue,
            other => panic!("while generating: {other:?}"),
        }
    }
    assert!(seen_generating, "the export was refused while the report was generated");
    let report = generating
        .await
        .expect("the call")
        .expect("an incomplete report is still a report")
        .into_inner()
        .report
        .expect("report");
    assert_eq!(report.state, pb::ReportState::Incomplete as i32, "{report:?}");
    let missing: Vec<(String, String)> = report
        .missing_parts
        .iter()
        .map(|m| (m.service.clone(), m.method.clone()))
        .collect();
    for part in [
        ("jobs", "GetJobStats"),
        ("welfare_post", "GetPostStats"),
        ("work_relief", "GetProjectStats"),
    ] {
        assert!(
            missing.contains(&(part.0.to_string(), part.1.to_string())),
            "{part:?} is named missing: {missing:?}"
        );
    }
    assert!(!missing.iter().any(|(service, _)| service == "identity"), "{missing:?}");
    // What could be read is there, from identity; what could not is absent, never zero.
    let row = &report.rows[0];
    let has = |column: pb::ProgressColumn| row.cells.iter().any(|c| c.column == column as i32);
    assert!(has(pb::ProgressColumn::ReferenceTargetPersonsRegistered));
    assert!(!has(pb::ProgressColumn::LaborBrands) && !has(pb::ProgressColumn::WorkReliefWorkers));
    assert_eq!(report.sources.len(), 1, "{:?}", report.sources);
    assert_eq!(report.sources[0].service, "identity");

    let refused = client
        .submit_report(with_token(
            pb::SubmitReportRequest {
                name: name.clone(),
                etag: report.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect_err("an incomplete report is not submittable");
    assert_eq!(reason(&refused), "REPORT_INCOMPLETE");
    assert!(
        refused.message().contains("work_relief.GetProjectStats"),
        "{}",
        refused.message()
    );
    // The file still says what is missing.
    let mut stream = client
        .export_report(with_token(
            pb::ExportReportRequest {
                name: name.clone(),
                format: pb::ExportFormat::Csv as i32,
            },
            &clerk,
        ))
        .await
        .expect("export")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(part) = stream.message().await.expect("part") {
        bytes.extend(part.chunk);
    }
    let csv = String::from_utf8(bytes).expect("utf-8");
    assert!(csv.contains("370402,市中区,,"), "blank, not zero: {csv}");
    drop(hung);
    server.stop().await.expect("stopped");
}
