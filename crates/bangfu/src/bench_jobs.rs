//! `bangfu bench recommend`: ranked matching over a province's seekers and open postings —
//! `RecommendSeekers` and `RecommendPostings` through the gRPC surface, each against one
//! hand-written SQL statement that computes the same top 20 on the same data, in the same run.
//!
//! Carriers, postings and seekers are written straight into the job-matching database
//! (registering a million seekers one call at a time is not what is measured). With
//! `--identity-database` the seekers are persons identity holds (import `bench persons-csv`
//! first), read from its database with what matching keeps of them, so each call's refresh of
//! the ranked persons finds them as in real use; without it they are synthetic persons in
//! Shandong's villages that the service, finding them nowhere in identity, does not recommend.
//! The hand-written
//! statements inline the posting's or seeker's values as a person would type them, and every
//! sample's top 20 is compared with the service's: the floor must be the same answer. Index
//! and table sizes come from PostgreSQL; the server's peak memory from /proc when its pid is
//! given.

use std::time::{Duration, Instant};

use bangfu_job_matching::domain::{
    CarrierKind, LaborCapacity, Priority, WorkIntention, accepted_or_default, birth_month_range, level_prefixes,
};
use bangfu_job_matching::store::{self, CarrierData, PersonSnapshot, PostingData, SeekerData};
use bangfu_platform::db::{Database, PoolSettings};
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::write;
use bangfu_proto::jobs::v1 as pb;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::Row;
use tonic::transport::Channel;

use crate::Failure;
use crate::bench_suite::{authorized, bearer, failed, peak_mib};

/// What the bench needs besides the server.
pub struct RecommendBench {
    pub jobs_database: String,
    pub identity_database: Option<String>,
    pub seekers: usize,
    pub postings: usize,
    pub samples: usize,
    pub server_pid: Option<u32>,
}

const SKILLS: [&str; 40] = [
    "缝纫",
    "熨烫",
    "包装",
    "叉车证",
    "电工证",
    "焊工",
    "厨师",
    "面点",
    "保洁",
    "家政",
    "育婴",
    "养老护理",
    "驾驶C1",
    "驾驶B2",
    "电脑操作",
    "仓储",
    "分拣",
    "装卸",
    "瓦工",
    "木工",
    "钢筋工",
    "水暖",
    "油漆",
    "保安",
    "收银",
    "导购",
    "种植",
    "养殖",
    "果树修剪",
    "农机操作",
    "电商客服",
    "直播带货",
    "美容美发",
    "汽修",
    "机床操作",
    "质检",
    "注塑",
    "电子装配",
    "纺织挡车",
    "物业维修",
];

fn seeding(e: impl std::fmt::Display) -> Failure {
    Failure::failed(format!("seeding: {e}"))
}

/// Every village (12 digits) under `prefix` in the embedded division table.
fn villages_under(prefix: &str) -> Vec<String> {
    let table = DivisionTable::embedded();
    let mut villages = Vec::new();
    let mut open = vec![prefix.to_string()];
    while let Some(code) = open.pop() {
        for (child, _) in table.children(&code) {
            let natural = bangfu_job_matching::domain::natural_code(child).to_string();
            if natural.len() == 12 {
                villages.push(natural);
            } else {
                open.push(natural);
            }
        }
    }
    villages.sort();
    villages
}

fn pick_skills(rng: &mut StdRng, most: usize) -> Vec<String> {
    let count = rng.gen_range(0..=most);
    SKILLS.choose_multiple(rng, count).map(|s| s.to_string()).collect()
}

/// Seeds carriers, postings and seekers under Shandong (37) until the database holds the asked
/// numbers; a rerun on the same database reuses them.
async fn seed(db: &Database, bench: &RecommendBench) -> Result<(), Failure> {
    let mut conn = db.acquire().await.map_err(seeding)?;
    let count = |table: &'static str| format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}");
    let have_seekers: i64 = sqlx::query(sqlx::AssertSqlSafe(count("jobs_seekers")))
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(seeding)?;
    let have_postings: i64 = sqlx::query(sqlx::AssertSqlSafe(count("jobs_postings")))
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(seeding)?;
    drop(conn);
    let villages = villages_under("37");
    if villages.is_empty() {
        return Err(Failure::failed("the division table has no villages under 37"));
    }
    let mut rng = StdRng::seed_from_u64(20_261_206);
    let now = time::OffsetDateTime::now_utc();
    let today = time::OffsetDateTime::now_utc().date();
    let started = Instant::now();
    let wanted_postings = bench
        .postings
        .saturating_sub(usize::try_from(have_postings).unwrap_or(0));
    if wanted_postings > 0 {
        // 200 carriers, each a county's employer; then the postings, in counties and townships
        // across the province.
        let mut unit = write::begin_unkeyed(db, now).await.map_err(|e| seeding(e.message))?;
        let mut carriers = Vec::new();
        for n in 0..200 {
            let village = villages.choose(&mut rng).cloned().unwrap_or_default();
            let id = bangfu_platform::rows::new_id();
            let data = CarrierData {
                display_name: format!("压测用人单位{n}"),
                kind: CarrierKind::Employer,
                // Unique per run; the bench never validates it.
                credit_code: format!("BENCH{}", &id[..13]),
                region: village[..6].to_string(),
                contact_name: "压测".into(),
                contact_phone: "0531-0000000".into(),
                relocation_site: false,
            };
            store::insert_carrier(unit.tx(), &id, &data, "bench", now)
                .await
                .map_err(seeding)?;
            carriers.push(id);
        }
        for _ in 0..wanted_postings {
            let village = villages.choose(&mut rng).cloned().unwrap_or_default();
            let work_region = if rng.gen_bool(0.5) {
                village[..6].to_string()
            } else {
                village[..9].to_string()
            };
            let wage_min = rng.gen_range(2_000..5_000) * 100;
            let mut accepted = vec![LaborCapacity::Full];
            if rng.gen_bool(0.5) {
                accepted.push(LaborCapacity::Weak);
            }
            if rng.gen_bool(0.2) {
                accepted.push(LaborCapacity::Half);
            }
            let data = PostingData {
                carrier_id: carriers.choose(&mut rng).cloned().unwrap_or_default(),
                title: "压测岗位".into(),
                occupation_code: "6-05-01-01".into(),
                occupation_name: "缝纫工".into(),
                work_region,
                wage_min_fen: wage_min,
                wage_max_fen: wage_min + rng.gen_range(0..2_000) * 100,
                headcount: rng.gen_range(1..50),
                contract_months: 12,
                weekly_hours: 44,
                accepted,
                min_age: 18,
                max_age: rng.gen_range(45..=60),
                skills: pick_skills(&mut rng, 4),
                accommodation: rng.gen_bool(0.5),
                meals: rng.gen_bool(0.5),
                valid_until: time::Date::from_calendar_date(2099, time::Month::December, 31).map_err(seeding)?,
                shared: rng.gen_bool(0.1),
            };
            store::insert_posting(unit.tx(), &bangfu_platform::rows::new_id(), &data, "bench", now, today)
                .await
                .map_err(seeding)?;
        }
        unit.commit_audited().await.map_err(|e| seeding(e.message))?;
        say!(
            "{wanted_postings} postings seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let wanted_seekers = bench.seekers.saturating_sub(usize::try_from(have_seekers).unwrap_or(0));
    // Persons identity holds, with what matching keeps of them (no certification is confirmed
    // by an import, so none is a target person yet).
    let mut persons: Vec<(String, PersonSnapshot)> = Vec::new();
    if let (Some(url), true) = (&bench.identity_database, wanted_seekers > 0) {
        let identity = Database::connect(url, PoolSettings::default())
            .await
            .map_err(|e| Failure::failed(format!("--identity-database: {e}")))?;
        let mut conn = identity.acquire().await.map_err(seeding)?;
        let rows = sqlx::query(
            "SELECT id, name_masked, registered_region, labor_capacity, substr(birth_date, 1, 7) AS birth_month \
             FROM persons WHERE death_date IS NULL AND moved_away_date IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::try_from(wanted_seekers).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(seeding)?;
        for row in rows {
            let capacity: String = row.try_get("labor_capacity").map_err(seeding)?;
            persons.push((
                row.try_get("id").map_err(seeding)?,
                PersonSnapshot {
                    display_name: row.try_get("name_masked").map_err(seeding)?,
                    registered_region: row.try_get("registered_region").map_err(seeding)?,
                    labor_capacity: LaborCapacity::parse(&capacity.to_ascii_lowercase()),
                    priority: Priority::None,
                    birth_month: row.try_get("birth_month").map_err(seeding)?,
                },
            ));
        }
        if persons.len() < wanted_seekers {
            return Err(Failure::failed(format!(
                "identity holds {} living persons; {wanted_seekers} seekers asked (import more with bench persons-csv and identity import)",
                persons.len()
            )));
        }
    }
    let mut persons = persons.into_iter();
    let started = Instant::now();
    let mut written = 0;
    while written < wanted_seekers {
        let batch = (wanted_seekers - written).min(20_000);
        let mut rows = Vec::with_capacity(batch);
        for _ in 0..batch {
            let village = villages.choose(&mut rng).cloned().unwrap_or_default();
            let mut intentions: Vec<WorkIntention> = WorkIntention::ALL
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.4))
                .collect();
            if intentions.is_empty() {
                intentions.push(WorkIntention::Local);
            }
            let destinations = if rng.gen_bool(0.2) {
                vec![
                    villages
                        .choose(&mut rng)
                        .map(|v| v[..4].to_string())
                        .unwrap_or_default(),
                ]
            } else {
                Vec::new()
            };
            let real = persons.next();
            let seeker = SeekerData {
                person_id: real
                    .as_ref()
                    .map(|(id, _)| id.clone())
                    .unwrap_or_else(bangfu_platform::rows::new_id),
                skills: pick_skills(&mut rng, 3),
                intentions,
                destinations,
                expected_wage_fen: rng.gen_range(2_000..6_000) * 100,
                available_from: today,
                route: if rng.gen_bool(0.05) {
                    ("37".to_string(), "50".to_string())
                } else {
                    (String::new(), String::new())
                },
            };
            let person = real.map(|(_, snapshot)| snapshot).unwrap_or_else(|| PersonSnapshot {
                display_name: "压**".into(),
                registered_region: village,
                labor_capacity: Some(match rng.gen_range(0..100) {
                    0..70 => LaborCapacity::Full,
                    70..85 => LaborCapacity::Weak,
                    _ => LaborCapacity::Half,
                }),
                priority: match rng.gen_range(0..100) {
                    0..60 => Priority::None,
                    60..70 => Priority::OtherTarget,
                    70..95 => Priority::PovertyAlleviated,
                    _ => Priority::MonitoredAtRisk,
                },
                birth_month: format!("{}-{:02}", rng.gen_range(1965..2006), rng.gen_range(1..=12)),
            });
            rows.push((bangfu_platform::rows::new_id(), seeker, person));
        }
        let mut unit = write::begin_unkeyed(db, now).await.map_err(|e| seeding(e.message))?;
        store::insert_seekers(unit.tx(), &rows, "bench", now)
            .await
            .map_err(seeding)?;
        unit.commit_audited().await.map_err(|e| seeding(e.message))?;
        written += batch;
    }
    if wanted_seekers > 0 {
        say!(
            "{wanted_seekers} seekers seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut conn = db.acquire().await.map_err(seeding)?;
        sqlx::query("ANALYZE").execute(&mut *conn).await.map_err(seeding)?;
    }
    Ok(())
}

fn text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The hand-written ranking of seekers for `posting` (default weights), values inlined.
fn hand_written_seekers(posting: &PostingData, today: time::Date) -> String {
    let [p, c4, c6, t9, v12] = level_prefixes(&posting.work_region);
    let named: Vec<String> = [&p, &c4, &c6, &t9, &v12]
        .iter()
        .filter(|x| !x.is_empty())
        .map(|x| format!("s.destinations LIKE '%,{x},%'"))
        .collect();
    let skills = if posting.skills.is_empty() {
        "10000".to_string()
    } else {
        let terms: Vec<String> = posting
            .skills
            .iter()
            .map(|s| {
                format!(
                    "CASE WHEN s.skills LIKE {} THEN 1 ELSE 0 END",
                    text(&format!("%|{s}|%"))
                )
            })
            .collect();
        format!("({}) * 10000 / {}", terms.join(" + "), posting.skills.len())
    };
    let accepted: Vec<String> = accepted_or_default(&posting.accepted)
        .iter()
        .map(|c| text(c.as_str()))
        .collect();
    let (after, by) = birth_month_range(today, posting.min_age, posting.max_age);
    let w = posting.wage_max_fen;
    format!(
        "SELECT s.id FROM jobs_seekers s WHERE s.state = 'active' AND s.registered_region >= '37' \
         AND s.registered_region < '38' AND s.birth_month > '{after}' AND s.birth_month <= '{by}' \
         AND s.available_from <= '2099-12-31' ORDER BY \
         2500 * (CASE WHEN s.registered_region = '{v12}' THEN 10000 WHEN substr(s.registered_region, 1, 9) = '{t9}' THEN 9000 \
           WHEN substr(s.registered_region, 1, 6) = '{c6}' THEN 8000 WHEN substr(s.registered_region, 1, 4) = '{c4}' THEN 6000 \
           WHEN substr(s.registered_region, 1, 2) = '{p}' THEN 4000 WHEN s.route_destination = '{p}' THEN 3000 ELSE 0 END) / 10000 \
         + 2000 * (CASE WHEN {named} THEN 10000 WHEN substr(s.registered_region, 1, 2) <> '{p}' THEN 10000 * s.want_out_province \
           WHEN substr(s.registered_region, 1, 6) = '{c6}' THEN 10000 * s.want_local ELSE 10000 * s.want_out_county END) / 10000 \
         + 1500 * ({skills}) / 10000 \
         + 1500 * (CASE WHEN {w} >= s.expected_wage_fen THEN 10000 ELSE CAST({w} AS BIGINT) * 10000 / s.expected_wage_fen END) / 10000 \
         + 1000 * (CASE WHEN s.labor_capacity IN ({accepted}) THEN 10000 ELSE 0 END) / 10000 \
         + 1500 * (CASE s.priority WHEN 3 THEN 10000 WHEN 2 THEN 7000 WHEN 1 THEN 4000 ELSE 0 END) / 10000 DESC, \
         s.id LIMIT 20",
        named = named.join(" OR "),
        accepted = accepted.join(", "),
    )
}

/// The hand-written ranking of open postings for `seeker` (default weights), values inlined.
fn hand_written_postings(seeker: &store::StoredSeeker, today: time::Date) -> String {
    let profile = seeker.profile();
    let [p, c4, c6, t9, v12] = level_prefixes(&profile.home);
    let want = |i: WorkIntention| if profile.intentions.contains(&i) { 10_000 } else { 0 };
    let named = if profile.destinations.is_empty() {
        "1 = 0".to_string()
    } else {
        profile
            .destinations
            .iter()
            .map(|d| format!("p.work_region LIKE '{d}%'"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let matched = if profile.skills.is_empty() {
        "0".to_string()
    } else {
        profile
            .skills
            .iter()
            .map(|s| {
                format!(
                    "CASE WHEN p.skills LIKE {} THEN 1 ELSE 0 END",
                    text(&format!("%|{s}|%"))
                )
            })
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let capacity = match profile.labor_capacity {
        Some(c) => format!("CASE WHEN p.accepted LIKE '%|{}|%' THEN 10000 ELSE 0 END", c.as_str()),
        None => "0".into(),
    };
    let priority = match profile.priority {
        Priority::MonitoredAtRisk => 10_000,
        Priority::PovertyAlleviated => 7_000,
        Priority::OtherTarget => 4_000,
        Priority::None => 0,
    };
    let e = profile.expected_wage_fen;
    let route = text(&profile.route_destination);
    let age = bangfu_job_matching::domain::age_on(&seeker.person.birth_month, today).unwrap_or(45);
    format!(
        "SELECT p.id FROM jobs_postings p WHERE p.state = 'open' AND p.valid_until >= '{today}' AND p.placed < p.headcount \
         AND ((p.work_region >= '37' AND p.work_region < '38') OR p.shared = 1) AND p.min_age <= {age} AND p.max_age >= {age} \
         ORDER BY \
         2500 * (CASE WHEN p.r_village = '{v12}' THEN 10000 WHEN p.r_township = '{t9}' THEN 9000 WHEN p.r_county = '{c6}' THEN 8000 \
           WHEN p.r_city = '{c4}' THEN 6000 WHEN p.r_province = '{p}' THEN 4000 WHEN p.r_province = {route} THEN 3000 ELSE 0 END) / 10000 \
         + 2000 * (CASE WHEN {named} THEN 10000 WHEN p.r_province <> '{p}' THEN {op} WHEN p.r_county = '{c6}' THEN {local} ELSE {oc} END) / 10000 \
         + 1500 * (CASE WHEN p.skill_count = 0 THEN 10000 ELSE ({matched}) * 10000 / p.skill_count END) / 10000 \
         + 1500 * (CASE WHEN p.wage_max_fen >= {e} THEN 10000 ELSE p.wage_max_fen * 10000 / {e} END) / 10000 \
         + 1000 * ({capacity}) / 10000 + {priority_points} DESC, p.id LIMIT 20",
        op = want(WorkIntention::OutOfProvince),
        local = want(WorkIntention::Local),
        oc = want(WorkIntention::OutOfCounty),
        priority_points = 1500 * priority / 10_000,
    )
}

fn histogram() -> Result<Histogram<u64>, Failure> {
    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| Failure::failed(e.to_string()))
}

fn quantiles(label: &str, h: &Histogram<u64>) -> (f64, f64) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    say!(
        "{label:<34} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  ({} samples)",
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    );
    (ms(0.5), ms(0.99))
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1)
}

pub async fn run(channel: &Channel, token: &str, bench: RecommendBench) -> Result<(), Failure> {
    let bearer = bearer(token)?;
    let db = Database::connect(&bench.jobs_database, PoolSettings::default())
        .await
        .map_err(|e| Failure::failed(format!("--jobs-database: {e}")))?;
    seed(&db, &bench).await?;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let mut rng = StdRng::seed_from_u64(7);
    let mut conn = db.acquire().await.map_err(seeding)?;
    let posting_ids: Vec<String> =
        sqlx::query("SELECT id FROM jobs_postings WHERE state = 'open' AND work_region >= '37' AND work_region < '38'")
            .fetch_all(&mut *conn)
            .await
            .map_err(seeding)?
            .iter()
            .filter_map(|r| r.try_get("id").ok())
            .collect();
    let seeker_ids: Vec<String> = sqlx::query("SELECT id FROM jobs_seekers WHERE state = 'active' LIMIT 200000")
        .fetch_all(&mut *conn)
        .await
        .map_err(seeding)?
        .iter()
        .filter_map(|r| r.try_get("id").ok())
        .collect();
    let mut jobs = pb::job_matching_service_client::JobMatchingServiceClient::new(channel.clone());
    let (mut via_service, mut by_hand) = (histogram()?, histogram()?);
    let mut differing = 0;
    for posting_id in posting_ids.choose_multiple(&mut rng, bench.samples) {
        let posting = store::get_posting(&mut conn, posting_id)
            .await
            .map_err(seeding)?
            .ok_or_else(|| Failure::failed("a sampled posting vanished"))?;
        let started = Instant::now();
        let found = jobs
            .recommend_seekers(authorized(
                pb::RecommendSeekersRequest {
                    posting: posting.name(),
                    region_prefix: String::new(),
                    page_size: 20,
                },
                &bearer,
            ))
            .await
            .map_err(failed("RecommendSeekers"))?
            .into_inner();
        via_service.record(micros(started.elapsed())).ok();
        let sql = hand_written_seekers(&posting.data, today);
        let started = Instant::now();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .map_err(seeding)?;
        by_hand.record(micros(started.elapsed())).ok();
        let hand: Vec<String> = rows.iter().filter_map(|r| r.try_get("id").ok()).collect();
        let served: Vec<String> = found
            .recommendations
            .iter()
            .filter_map(|r| {
                r.seeker
                    .as_ref()
                    .map(|s| s.name.trim_start_matches("seekers/").to_string())
            })
            .collect();
        if hand != served {
            differing += 1;
        }
    }
    say!("RecommendSeekers over the province's active seekers (scope 37), top 20, one call at a time:");
    let (service_p50, service_p99) = quantiles("  RecommendSeekers (gRPC)", &via_service);
    let (hand_p50, hand_p99) = quantiles("  hand-written SQL", &by_hand);
    say!(
        "  ratio p50 {:.2}x  p99 {:.2}x; top 20 differing in {differing} of {} samples",
        service_p50 / hand_p50,
        service_p99 / hand_p99,
        via_service.len()
    );

    let (mut via_service, mut by_hand) = (histogram()?, histogram()?);
    let mut differing = 0;
    for seeker_id in seeker_ids.choose_multiple(&mut rng, bench.samples) {
        let seeker = store::get_seeker(&mut conn, seeker_id)
            .await
            .map_err(seeding)?
            .ok_or_else(|| Failure::failed("a sampled seeker vanished"))?;
        let started = Instant::now();
        let found = jobs
            .recommend_postings(authorized(
                pb::RecommendPostingsRequest {
                    seeker: seeker.name(),
                    page_size: 20,
                },
                &bearer,
            ))
            .await
            .map_err(failed("RecommendPostings"))?
            .into_inner();
        via_service.record(micros(started.elapsed())).ok();
        let sql = hand_written_postings(&seeker, today);
        let started = Instant::now();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .map_err(seeding)?;
        by_hand.record(micros(started.elapsed())).ok();
        let hand: Vec<String> = rows.iter().filter_map(|r| r.try_get("id").ok()).collect();
        let served: Vec<String> = found
            .recommendations
            .iter()
            .filter_map(|r| {
                r.posting
                    .as_ref()
                    .map(|p| p.name.trim_start_matches("postings/").to_string())
            })
            .collect();
        if hand != served {
            differing += 1;
        }
    }
    say!("RecommendPostings over the open postings in 37 and those shared, top 20, one call at a time:");
    let (service_p50, service_p99) = quantiles("  RecommendPostings (gRPC)", &via_service);
    let (hand_p50, hand_p99) = quantiles("  hand-written SQL", &by_hand);
    say!(
        "  ratio p50 {:.2}x  p99 {:.2}x; top 20 differing in {differing} of {} samples",
        service_p50 / hand_p50,
        service_p99 / hand_p99,
        via_service.len()
    );

    if bench.jobs_database.starts_with("postgres") {
        let sizes = sqlx::query(
            "SELECT CAST(c.relname AS TEXT) AS name, CAST(pg_relation_size(c.oid) AS BIGINT) AS bytes FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() \
             AND c.relname LIKE 'jobs\\_%' AND c.relkind IN ('r', 'i') ORDER BY c.relname",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(seeding)?;
        say!("sizes:");
        for row in sizes {
            let name: String = row.try_get("name").unwrap_or_default();
            let bytes: i64 = row.try_get("bytes").unwrap_or_default();
            say!("  {name:<32} {:>8.1} MiB", bytes as f64 / 1_048_576.0);
        }
    }
    if let Some(mib) = bench.server_pid.and_then(peak_mib) {
        say!("server peak memory (VmHWM): {mib:.0} MiB");
    }
    Ok(())
}
