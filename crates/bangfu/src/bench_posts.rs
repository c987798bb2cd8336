//! `bangfu bench close-month`: CloseMonth end to end on a running suite — every holder's month
//! turned into a claim that lands in subsidy payment — for as many holders as asked.
//!
//! The holders are persons already in identity (import `bench persons-csv` first): the
//! poverty-alleviated under the region prefix, read with ListPersons. Their posts, confirmed
//! signings for the year and passed evaluations for the month are written straight into the
//! posts database (hiring 200,000 people through notices is not what is measured), then one
//! CloseMonth is timed. The server's peak memory (VmHWM) is read from /proc when its pid is
//! given.

use std::time::Instant;

use bangfu_platform::db::{Database, PoolSettings};
use bangfu_platform::write;
use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::welfare_post::v1 as pb;
use bangfu_public_welfare_post::domain::{AssignmentState, FundingSource, PostClass, PostType, WorkTime};
use bangfu_public_welfare_post::store::{self, NewAssignment, NewPost, StoredEvaluation};
use tonic::transport::Channel;

use crate::Failure;
use crate::bench_suite::{authorized, bearer, failed, peak_mib, poverty_alleviated};

/// What the bench needs besides the server.
pub struct CloseMonthBench {
    pub region_prefix: String,
    pub holders: usize,
    pub year: i32,
    pub month: u8,
    pub posts_database: String,
    pub server_pid: Option<u32>,
}

pub async fn run(channel: &Channel, token: &str, bench: CloseMonthBench) -> Result<(), Failure> {
    let bearer = bearer(token)?;
    let month_first = time::Date::from_calendar_date(
        bench.year,
        time::Month::try_from(bench.month).map_err(|_| Failure::usage("--month is not a month"))?,
        1,
    )
    .map_err(|_| Failure::usage("--month is not a month"))?;

    // The holders: poverty-alleviated persons under the prefix, as identity lists them.
    let started = Instant::now();
    let holders = poverty_alleviated(channel, &bearer, &bench.region_prefix, bench.holders).await?;
    say!(
        "{} holders read from identity in {:.1} s",
        holders.len(),
        started.elapsed().as_secs_f64()
    );

    // The fund the claims reserve on.
    let mut subsidy = sub::subsidy_service_client::SubsidyServiceClient::new(channel.clone());
    let fund = subsidy
        .create_fund(authorized(
            sub::CreateFundRequest {
                fund: Some(sub::Fund {
                    display_name: format!("{}年枣庄市就业补助资金（压测）", bench.year),
                    fund_source: sub::FundSource::EmploymentSubsidy as i32,
                    region_prefix: bench.region_prefix.get(..4).unwrap_or("3704").to_string(),
                    year: bench.year,
                    budget_document: "压测".into(),
                    budget: Some(common::Money { fen: 900_000_000_000 }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &bearer,
        ))
        .await;
    match fund {
        Ok(_) => {}
        Err(status) if status.code() == tonic::Code::AlreadyExists => {}
        Err(status) => return Err(failed("the fund")(status)),
    }

    // Posts of up to 100 places per village, signings for the year, passed evaluations.
    let started = Instant::now();
    let db = Database::connect(&bench.posts_database, PoolSettings::default())
        .await
        .map_err(|e| Failure::failed(format!("--posts-database: {e}")))?;
    let now = time::OffsetDateTime::now_utc();
    let year_first = time::Date::from_calendar_date(bench.year, time::Month::January, 1).unwrap_or(month_first);
    let year_last = time::Date::from_calendar_date(bench.year, time::Month::December, 31).unwrap_or(month_first);
    let month_text = format!("{:04}-{:02}", bench.year, bench.month);
    let run = bangfu_platform::rows::new_id();
    let mut post: Option<(String, String, usize)> = None;
    for chunk in holders.chunks(1000) {
        let mut unit = write::begin_unkeyed(&db, now)
            .await
            .map_err(|e| Failure::failed(e.message))?;
        for (person_id, village, name) in chunk {
            let fresh = match &post {
                Some((_, post_village, taken)) => post_village != village || *taken >= 100,
                None => true,
            };
            if fresh {
                let post_id = bangfu_platform::rows::new_id();
                let new_post = cleaning_post(village, format!("保洁员（压测 {run}）"), 100);
                store::insert_post(unit.tx(), &post_id, &new_post, "bench", now)
                    .await
                    .map_err(|e| Failure::failed(format!("seeding posts: {e}")))?;
                post = Some((post_id, village.clone(), 0));
            }
            let Some((post_id, _, taken)) = post.as_mut() else {
                continue;
            };
            *taken += 1;
            let assignment_id = bangfu_platform::rows::new_id();
            let signing = NewAssignment {
                post_id: post_id.clone(),
                village: village.clone(),
                person_id: person_id.clone(),
                display_name: name.clone(),
                household: String::new(),
                application_id: None,
                notice_id: None,
                renews: None,
                state: AssignmentState::Active,
                start: year_first,
                end: year_last,
                insurer: "压测".into(),
                insurance_number: "BENCH".into(),
                insurance_first: year_first,
                insurance_last: year_last,
                first_hire_date: year_first,
            };
            if let Err(e) = store::insert_assignment(unit.tx(), &assignment_id, &signing, "bench", now).await {
                return Err(Failure::failed(format!(
                    "seeding a signing (a person already holds a post this year? use a fresh posts database): {e}"
                )));
            }
            let evaluation = StoredEvaluation {
                assignment_id,
                month: month_text.clone(),
                days_on_post: 22,
                hours_on_post: 88,
                score: 90,
                passed: true,
                remark: String::new(),
                updated: now,
                revision: 1,
            };
            store::put_evaluation(unit.tx(), &evaluation, None, "bench")
                .await
                .map_err(|e| Failure::failed(format!("seeding evaluations: {e}")))?;
        }
        unit.commit_audited().await.map_err(|e| Failure::failed(e.message))?;
    }
    // A confirmed hire records the holder's employment in identity long before a month is
    // closed. Seeded signings are marked recorded, or the service's retry job would record them
    // in identity 500 a round during the measured call.
    sqlx::query("UPDATE assignments SET employment_recorded = 1 WHERE employment_recorded = 0 AND insurer = '压测'")
        .execute(db.pool())
        .await
        .map_err(|e| Failure::failed(format!("marking seeded signings' employment recorded: {e}")))?;
    // Rows loaded in one go, as a county's never are.
    crate::bench_suite::analyze_filled(&db, &["posts", "assignments", "evaluations", "month_lines"]).await?;
    say!(
        "{} signings and evaluations for {month_text} seeded (the filled tables analyzed) in {:.1} s",
        holders.len(),
        started.elapsed().as_secs_f64()
    );

    // The measured call.
    let mut posts = pb::welfare_post_service_client::WelfarePostServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20);
    let started = Instant::now();
    let closed = posts
        .close_month(authorized(
            pb::CloseMonthRequest {
                region_prefix: bench.region_prefix.clone(),
                month: Some(common::YearMonth {
                    year: bench.year,
                    month: i32::from(bench.month),
                }),
                line_limit: 1,
            },
            &bearer,
        ))
        .await
        .map_err(failed("CloseMonth"))?
        .into_inner();
    let elapsed = started.elapsed().as_secs_f64();
    say!(
        "CloseMonth {} {month_text}: {} holders, {} claims, {} without claim, {} refused, {} pending in {elapsed:.1} s ({:.0} holders/s)",
        bench.region_prefix,
        closed.holder_count,
        closed.claim_count,
        closed.no_claim_count,
        closed.refused_count,
        closed.pending_count,
        f64::from(closed.holder_count) / elapsed.max(1e-9)
    );
    if let Some(line) = closed.lines.first().filter(|l| !l.message.is_empty()) {
        say!("first line without a claim: {}", line.message);
    }
    // CloseMonth answers within its call's budget; lines still pending are sent by the
    // service's job. The month is done when none is pending.
    if closed.pending_count > 0 {
        let mut conn = db
            .acquire()
            .await
            .map_err(|e| Failure::failed(format!("--posts-database: {e}")))?;
        let read = |e: sqlx::Error| Failure::failed(format!("reading the month's lines: {e}"));
        // Each look asks only whether a line is left, from the first entry of the sending
        // index. Counting what was left took the database 58 ms a look (31 looks, 1.8 s of a
        // city's month, pg_stat_statements), work a deployment never does.
        while store::any_pending_line(&mut conn, &bench.region_prefix, &month_text)
            .await
            .map_err(read)?
        {
            if started.elapsed() > std::time::Duration::from_secs(600) {
                let pending = store::pending_lines(&mut conn, &bench.region_prefix, &month_text)
                    .await
                    .map_err(read)?;
                return Err(Failure::failed(format!(
                    "{pending} lines still pending after 10 minutes"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let landed = started.elapsed().as_secs_f64();
        say!(
            "every line of the month settled (the job sent the rest) in {landed:.1} s ({:.0} holders/s)",
            f64::from(closed.holder_count) / landed.max(1e-9)
        );
    }
    if let Some(pid) = bench.server_pid {
        match peak_mib(pid) {
            Some(mib) => say!("server (pid {pid}) peak resident memory: {mib:.0} MiB"),
            None => say!("server (pid {pid}): no /proc/{pid}/status"),
        }
    }
    if let Some(mib) = peak_mib(std::process::id()) {
        say!("bench peak resident memory: {mib:.0} MiB");
    }
    Ok(())
}

/// A cleaning post seeded into the posts database in `village` under the shipped Zaozhuang
/// policy, for `bench call --call check-eligibility`: CreatePost takes only a policy in force
/// today, and the shipped ones end with 2025. Returns its name, "posts/{id}".
pub async fn seed_post(posts_database: &str, village: &str) -> Result<String, Failure> {
    let db = Database::connect(posts_database, PoolSettings::default())
        .await
        .map_err(|e| Failure::failed(format!("--posts-database: {e}")))?;
    let now = time::OffsetDateTime::now_utc();
    let post_id = bangfu_platform::rows::new_id();
    let post = cleaning_post(village, "村内道路保洁员（压测）".into(), 1);
    let mut unit = write::begin_unkeyed(&db, now)
        .await
        .map_err(|e| Failure::failed(e.message))?;
    store::insert_post(unit.tx(), &post_id, &post, "bench", now)
        .await
        .map_err(|e| Failure::failed(format!("seeding a post: {e}")))?;
    unit.commit_audited().await.map_err(|e| Failure::failed(e.message))?;
    Ok(format!("posts/{post_id}"))
}

/// A part-time cleaning post of `places` in `village` at 500 yuan a month, 22 days and 88 hours
/// required, under the shipped Zaozhuang policy.
fn cleaning_post(village: &str, title: String, places: i64) -> NewPost {
    NewPost {
        village: village.to_string(),
        title,
        post_type: PostType::Cleaning,
        post_class: PostClass::Ordinary,
        funding_source: FundingSource::EmploymentSubsidy,
        subsidy_policy: "zz-welfare-post-2021".into(),
        monthly_standard: Some(50_000),
        hours_per_month: 88,
        days_per_month: 22,
        work_time: WorkTime::PartTime,
        places,
        village_only: false,
    }
}
