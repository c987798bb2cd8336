//! `bangfu bench relief-month`: a county's work-relief month end to end on a running suite —
//! every project's muster roll recorded, its payroll prepared, noticed and approved, and every
//! line landed in subsidy payment as a claim — for as many projects and workers as asked.
//!
//! The workers are persons already in identity (import `bench persons-csv` first): the
//! poverty-alleviated under the region prefix, read with ListPersons. Projects, their central
//! funds and rosters are written straight into the work-relief database (enrolling 30,000
//! people one call at a time is not what is measured); so is the passing of the notice's
//! days, which the bench cannot wait for. Everything else goes through the gRPC surface, a
//! few projects at a time, timed phase by phase. The server's peak memory (VmHWM) is read from
//! /proc when its pid is given.

use std::time::Instant;

use bangfu_platform::db::{Database, PoolSettings};
use bangfu_platform::write;
use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::work_relief::v1 as pb;
use bangfu_work_relief::domain::{Channel as ProjectChannel, FundSource, PayBasis, WorkerRole};
use bangfu_work_relief::store::{self, NewAllocation, NewWorker, ProjectData, WorkerFlags};
use futures_util::StreamExt;
use tonic::transport::Channel;

use crate::Failure;
use crate::bench_suite::{authorized, bearer, failed, peak_mib, poverty_alleviated};

/// What the bench needs besides the server.
pub struct ReliefMonthBench {
    pub region_prefix: String,
    pub projects: usize,
    pub workers: usize,
    pub year: i32,
    pub month: u8,
    pub relief_database: String,
    pub concurrency: usize,
    pub server_pid: Option<u32>,
}

/// Runs `call` for every project, `concurrency` at a time; the first failure stops the phase.
async fn each_project<F, Fut>(projects: &[String], concurrency: usize, call: F) -> Result<f64, Failure>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let started = Instant::now();
    let mut results =
        futures_util::stream::iter(projects.iter().cloned().map(call)).buffer_unordered(concurrency.max(1));
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn run(channel: &Channel, preparer: &str, approver: &str, bench: ReliefMonthBench) -> Result<(), Failure> {
    let (preparer, approver) = (bearer(preparer)?, bearer(approver)?);
    let month = bangfu_work_relief::domain::YearMonth::new(bench.year, bench.month)
        .ok_or_else(|| Failure::usage("--month is not a month"))?;
    let month_text = month.text();

    // The workers: poverty-alleviated persons under the prefix, as identity lists them.
    let started = Instant::now();
    let persons = poverty_alleviated(channel, &preparer, &bench.region_prefix, bench.workers).await?;
    say!(
        "{} workers read from identity in {:.1} s",
        persons.len(),
        started.elapsed().as_secs_f64()
    );

    // The work-relief fund the claims reserve on.
    let mut subsidy = sub::subsidy_service_client::SubsidyServiceClient::new(channel.clone());
    let fund = subsidy
        .create_fund(authorized(
            sub::CreateFundRequest {
                fund: Some(sub::Fund {
                    display_name: format!("{}年以工代赈资金（压测）", bench.year),
                    fund_source: sub::FundSource::WorkRelief as i32,
                    region_prefix: bench.region_prefix.get(..2).unwrap_or("37").to_string(),
                    year: bench.year,
                    budget_document: "压测".into(),
                    budget: Some(common::Money { fen: 900_000_000_000 }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &preparer,
        ))
        .await;
    match fund {
        Ok(_) => {}
        Err(status) if status.code() == tonic::Code::AlreadyExists => {}
        Err(status) => return Err(failed("the fund")(status)),
    }

    // Projects in the workers' villages, their central funds and rosters.
    let started = Instant::now();
    let db = Database::connect(&bench.relief_database, PoolSettings::default())
        .await
        .map_err(|e| Failure::failed(format!("--relief-database: {e}")))?;
    let now = time::OffsetDateTime::now_utc();
    let year_first = time::Date::from_calendar_date(bench.year, time::Month::January, 1)
        .map_err(|_| Failure::usage("--month is not a month"))?;
    let year_last = time::Date::from_calendar_date(bench.year + 1, time::Month::December, 31)
        .map_err(|_| Failure::usage("--month is not a month"))?;
    let run = bangfu_platform::rows::new_id();
    let per_project = bench.workers.div_ceil(bench.projects.max(1));
    let mut projects: Vec<(String, Vec<String>)> = Vec::with_capacity(bench.projects);
    for (number, chunk) in persons.chunks(per_project).enumerate() {
        let mut unit = write::begin_unkeyed(&db, now)
            .await
            .map_err(|e| Failure::failed(e.message))?;
        let project_id = bangfu_platform::rows::new_id();
        let data = ProjectData {
            project_number: format!("BENCH-{run}-{number:04}"),
            display_name: format!("压测以工代赈项目{number}"),
            summary: "生产道路硬化".into(),
            channel: ProjectChannel::Dedicated,
            region: chunk[0].1.clone(),
            start: year_first,
            end: year_last,
            owner_unit: "压测".into(),
            contact_name: "压测".into(),
            contact_phone: "0632-0000000".into(),
            key_assistance_county: false,
            relocation_site: false,
            flood_plain: false,
            remarks: String::new(),
            remuneration_policy: "sd-work-relief-remuneration-2023".into(),
            pay_day: 15,
        };
        let seed = |e: sqlx::Error| Failure::failed(format!("seeding: {e}"));
        store::insert_project(unit.tx(), &project_id, &data, "bench", now)
            .await
            .map_err(seed)?;
        let allocation = NewAllocation {
            fund_source: FundSource::Central,
            year: i64::from(bench.year),
            amount_fen: 100_000_000,
            document: "压测".into(),
        };
        store::insert_allocation(
            unit.tx(),
            &bangfu_platform::rows::new_id(),
            &project_id,
            &allocation,
            "bench",
            now,
        )
        .await
        .map_err(seed)?;
        let mut workers = Vec::with_capacity(chunk.len());
        for (person_id, _, name) in chunk {
            let worker_id = bangfu_platform::rows::new_id();
            let worker = NewWorker {
                person_id: person_id.clone(),
                role: WorkerRole::Worker,
                pay_basis: PayBasis::Daily,
                rate_fen: 15_000,
                piece_unit: String::new(),
                start: year_first,
                end: None,
                agreement_reference: "压测".into(),
            };
            let flags = WorkerFlags {
                local: true,
                target_person: true,
                relocated: false,
            };
            store::insert_worker(unit.tx(), &worker_id, &project_id, &worker, name, flags, "bench", now)
                .await
                .map_err(seed)?;
            workers.push(format!("projects/{project_id}/workers/{worker_id}"));
        }
        // Identity is not told of seeded enrolments: the job would otherwise do it during the run.
        sqlx::query("UPDATE wr_workers SET identity_pending = '' WHERE project_id = $1")
            .bind(&project_id)
            .execute(&mut *unit.tx())
            .await
            .map_err(seed)?;
        unit.commit_audited().await.map_err(|e| Failure::failed(e.message))?;
        projects.push((format!("projects/{project_id}"), workers));
    }
    crate::bench_suite::analyze_filled(
        &db,
        &[
            "wr_projects",
            "wr_allocations",
            "wr_workers",
            "wr_attendance",
            "wr_payrolls",
            "wr_payroll_lines",
        ],
    )
    .await?;
    say!(
        "{} projects with {} workers seeded (the filled tables analyzed) in {:.1} s",
        projects.len(),
        persons.len(),
        started.elapsed().as_secs_f64()
    );

    let client = || {
        pb::work_relief_service_client::WorkReliefServiceClient::new(channel.clone())
            .max_decoding_message_size(64 << 20)
    };
    let names: Vec<String> = projects.iter().map(|(name, _)| name.clone()).collect();
    let rolls: std::collections::HashMap<String, Vec<String>> = projects.into_iter().collect();
    let wire_month = common::YearMonth {
        year: bench.year,
        month: i32::from(bench.month),
    };
    let total = Instant::now();

    let attendance = each_project(&names, bench.concurrency, |project| {
        let entries: Vec<pb::AttendanceEntry> = rolls[&project]
            .iter()
            .map(|worker| pb::AttendanceEntry {
                worker: worker.clone(),
                days: 22,
                pieces: 0,
            })
            .collect();
        let request = pb::RecordAttendanceRequest {
            parent: project,
            month: Some(wire_month),
            entries,
            request_id: bangfu_platform::rows::new_id(),
        };
        let (mut relief, preparer) = (client(), preparer.clone());
        async move {
            let answer = relief
                .record_attendance(authorized(tokio_stream::iter(vec![request]), &preparer))
                .await
                .map_err(failed("RecordAttendance"))?
                .into_inner();
            if !answer.problems.is_empty() {
                return Err(Failure::failed(format!(
                    "muster roll refused: {:?}",
                    answer.problems[0]
                )));
            }
            Ok(())
        }
    })
    .await?;
    say!("RecordAttendance: {} rolls in {attendance:.2} s", names.len());

    let prepare = each_project(&names, bench.concurrency, |project| {
        let (mut relief, preparer) = (client(), preparer.clone());
        async move {
            relief
                .prepare_payroll(authorized(
                    pb::PreparePayrollRequest {
                        parent: project,
                        month: Some(wire_month),
                    },
                    &preparer,
                ))
                .await
                .map_err(failed("PreparePayroll"))?;
            Ok(())
        }
    })
    .await?;
    say!("PreparePayroll: {} payrolls in {prepare:.2} s", names.len());

    let notice = each_project(&names, bench.concurrency, |project| {
        let (mut relief, preparer) = (client(), preparer.clone());
        let name = format!("{project}/payrolls/{month_text}");
        async move {
            let etag = relief
                .get_payroll(authorized(pb::GetPayrollRequest { name: name.clone() }, &preparer))
                .await
                .map_err(failed("GetPayroll"))?
                .into_inner()
                .payroll
                .map(|p| p.etag)
                .unwrap_or_default();
            relief
                .publish_payroll_notice(authorized(
                    pb::PublishPayrollNoticeRequest {
                        name,
                        etag,
                        first_day: None,
                        objection_contact: "压测 0632-0000000".into(),
                    },
                    &preparer,
                ))
                .await
                .map_err(failed("PublishPayrollNotice"))?;
            Ok(())
        }
    })
    .await?;
    say!(
        "PublishPayrollNotice (with GetPayroll): {} notices in {notice:.2} s",
        names.len()
    );

    // The notice's days pass.
    let ended = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        - time::Duration::days(1);
    sqlx::query("UPDATE wr_payrolls SET notice_first = $1, notice_last = $1 WHERE month = $2 AND state = 'notice'")
        .bind(bangfu_platform::parameters::date_text(ended))
        .bind(&month_text)
        .execute(db.pool())
        .await
        .map_err(|e| Failure::failed(format!("ending the notices: {e}")))?;

    let approve = each_project(&names, bench.concurrency, |project| {
        let (mut relief, approver) = (client(), approver.clone());
        let name = format!("{project}/payrolls/{month_text}");
        async move {
            let etag = relief
                .get_payroll(authorized(pb::GetPayrollRequest { name: name.clone() }, &approver))
                .await
                .map_err(failed("GetPayroll"))?
                .into_inner()
                .payroll
                .map(|p| p.etag)
                .unwrap_or_default();
            relief
                .approve_payroll(authorized(pb::ApprovePayrollRequest { name, etag }, &approver))
                .await
                .map_err(failed("ApprovePayroll"))?;
            Ok(())
        }
    })
    .await?;
    let elapsed = total.elapsed().as_secs_f64();
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT l.state, COUNT(*) FROM wr_payroll_lines l JOIN wr_projects j ON j.id = l.project_id \
         WHERE j.project_number LIKE $1 GROUP BY l.state ORDER BY l.state",
    )
    .bind(format!("BENCH-{run}-%"))
    .fetch_all(db.pool())
    .await
    .map_err(|e| Failure::failed(format!("counting lines: {e}")))?;
    say!(
        "ApprovePayroll (claims sent within the call): {} payrolls in {approve:.2} s",
        names.len()
    );
    say!(
        "the month end to end (notice days excluded): {elapsed:.2} s; lines by state: {}",
        counts
            .iter()
            .map(|(state, n)| format!("{state} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(pid) = bench.server_pid {
        match peak_mib(pid) {
            Some(mib) => say!("server (pid {pid}) peak resident memory: {mib:.0} MiB"),
            None => say!("server (pid {pid}): no /proc/{pid}/status"),
        }
    }
    Ok(())
}
