//! What reports asks of the other services, and only that: their stats methods, called with
//! the service's own token acting for the clerk (so a county reads only its county), several
//! at a time. A call that fails leaves its cells empty and names itself as a missing part;
//! nothing read is ever replaced by a zero.

use std::collections::BTreeMap;
use std::sync::Arc;

use bangfu_platform::clock::Clock;
use bangfu_platform::db::to_micros;
use bangfu_platform::error::Problem;
use bangfu_platform::peers::{CallContext, Peer, Peers, Retry};
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::wire::date_to_wire;
use bangfu_proto::common::v1 as common;
use bangfu_proto::exchange::v1 as exchange;
use bangfu_proto::exchange::v1::exchange_service_client::ExchangeServiceClient;
use bangfu_proto::identity::v1 as identity;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use bangfu_proto::jobs::v1 as jobs;
use bangfu_proto::jobs::v1::job_matching_service_client::JobMatchingServiceClient;
use bangfu_proto::welfare_post::v1 as posts;
use bangfu_proto::welfare_post::v1::welfare_post_service_client::WelfarePostServiceClient;
use bangfu_proto::work_relief::v1 as relief;
use bangfu_proto::work_relief::v1::work_relief_service_client::WorkReliefServiceClient;
use time::Date;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::domain::{Cell, Column, Content, Layout, Level, Missing, ProjectRow, Source, progress_rows};

/// Stats calls in flight at once for one report: a province's 136 counties are read in a few
/// rounds without crowding the services.
const CONCURRENT_CALLS: usize = 16;

/// The services reports reads.
#[derive(Debug, Clone)]
pub struct StatsPeers {
    identity: Peer,
    jobs: Peer,
    welfare_post: Peer,
    work_relief: Peer,
    exchange: Peer,
}

impl StatsPeers {
    /// The five peers, from the configured ones.
    pub fn from(peers: &Peers) -> Result<Self, String> {
        let get = |name: &str| {
            peers
                .get(name)
                .cloned()
                .map_err(|e| format!("reports calls {name}: {e}"))
        };
        Ok(Self {
            identity: get("identity")?,
            jobs: get("jobs")?,
            welfare_post: get("welfare_post")?,
            work_relief: get("work_relief")?,
            exchange: get("exchange")?,
        })
    }
}

/// The cities and counties under `region` (2, 4 or 6 digits), codes and short names from the
/// division table.
pub fn layout(region: &str) -> Layout {
    let table = DivisionTable::embedded();
    let name = |code: &str| table.name(code).unwrap_or_default().to_string();
    let counties = |city: &str| -> Vec<(String, String)> {
        table
            .children(city)
            .into_iter()
            .map(|(code, name)| (code[..6].to_string(), name.to_string()))
            .collect()
    };
    match Level::of(region) {
        Some(Level::County) => vec![(None, vec![(region.to_string(), name(region))])],
        Some(Level::City) => vec![(Some((region.to_string(), name(region))), counties(region))],
        Some(Level::Province) => table
            .children(region)
            .into_iter()
            .map(|(code, city_name)| {
                let city = code[..4].to_string();
                let below = counties(&city);
                (Some((city, city_name.to_string())), below)
            })
            .collect(),
        None => Vec::new(),
    }
}

/// One answer, or why there is none.
enum Part {
    Jobs(Result<jobs::GetJobStatsResponse, Problem>),
    Posts(String, Result<i64, Problem>),
    Relief(String, Result<i64, Problem>),
    Monitoring(Result<Vec<(String, i64)>, Problem>),
    Cooperation(Result<(i64, i64), Problem>),
}

impl Part {
    /// The service answering and the region asked, for the sources' order.
    fn key(&self) -> (&'static str, &str) {
        match self {
            Self::Jobs(_) => ("jobs", ""),
            Self::Posts(county, _) => ("welfare_post", county),
            Self::Relief(county, _) => ("work_relief", county),
            Self::Monitoring(_) => ("identity", ""),
            Self::Cooperation(_) => ("exchange", ""),
        }
    }
}

/// What a reading needs to know.
pub struct Reading<'a> {
    pub region: &'a str,
    pub region_name: &'a str,
    pub year: i32,
    pub as_of: Date,
    pub call: &'a CallContext,
    pub clock: &'a Clock,
}

/// Reads the progress form (附件1) for `reading.region`: job matching once for the region (a
/// row per county), posts and work relief once per county, identity's monitoring once, and for
/// a province the exchange's cooperation figures.
pub async fn read_progress(peers: Option<&StatsPeers>, reading: &Reading<'_>) -> Content {
    let layout = layout(reading.region);
    let counties: Vec<String> = layout
        .iter()
        .flat_map(|(_, c)| c.iter().map(|(code, _)| code.clone()))
        .collect();
    let mut content = Content {
        as_of: bangfu_platform::parameters::date_text(reading.as_of),
        ..Content::default()
    };
    let Some(peers) = peers else {
        content.missing.push(Missing {
            service: "*".into(),
            method: "*".into(),
            region_prefix: reading.region.to_string(),
            columns: Column::FORM.to_vec(),
            reason: "this server has no peers configured for reports".into(),
        });
        content.rows = progress_rows(
            (reading.region, reading.region_name),
            &layout,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        return content;
    };
    let limit = Arc::new(Semaphore::new(CONCURRENT_CALLS));
    let mut calls: JoinSet<(Part, i64)> = JoinSet::new();
    let clock = reading.clock.clone();
    let spawn = |calls: &mut JoinSet<(Part, i64)>, work: std::pin::Pin<Box<dyn Future<Output = Part> + Send>>| {
        let limit = limit.clone();
        let clock = clock.clone();
        calls.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let part = work.await;
            (part, to_micros(clock.now()))
        });
    };
    let (region, year, as_of) = (reading.region.to_string(), reading.year, reading.as_of);
    {
        let (peer, call, region) = (peers.jobs.clone(), reading.call.clone(), region.clone());
        spawn(
            &mut calls,
            Box::pin(async move {
                let request = jobs::GetJobStatsRequest {
                    region_prefix: region,
                    as_of: Some(date_to_wire(as_of)),
                };
                Part::Jobs(
                    peer.call(&call, Retry::Safe, |channel| {
                        let request = request.clone();
                        async move { JobMatchingServiceClient::new(channel).get_job_stats(request).await }
                    })
                    .await
                    .map_err(Problem::from),
                )
            }),
        );
    }
    for county in &counties {
        let (peer, call, asked) = (peers.welfare_post.clone(), reading.call.clone(), county.clone());
        spawn(
            &mut calls,
            Box::pin(async move {
                let request = posts::GetPostStatsRequest {
                    region_prefix: asked.clone(),
                    year,
                    as_of: Some(date_to_wire(as_of)),
                };
                let answer = peer
                    .call(&call, Retry::Safe, |channel| {
                        let request = request.clone();
                        async move { WelfarePostServiceClient::new(channel).get_post_stats(request).await }
                    })
                    .await
                    .map(|r| i64::from(r.persons_on_post))
                    .map_err(Problem::from);
                Part::Posts(asked, answer)
            }),
        );
        let (peer, call, county) = (peers.work_relief.clone(), reading.call.clone(), county.clone());
        spawn(
            &mut calls,
            Box::pin(async move {
                let answer = project_stats(&peer, &call, &county, year, as_of)
                    .await
                    .map(|r| i64::from(r.workers));
                Part::Relief(county, answer)
            }),
        );
    }
    {
        let (peer, call, region) = (peers.identity.clone(), reading.call.clone(), region.clone());
        spawn(
            &mut calls,
            Box::pin(async move {
                let request = identity::GetMonitoringStatsRequest {
                    region_prefix: region,
                    period: Some(common::Period {
                        first_day: Date::from_calendar_date(year, time::Month::January, 1)
                            .ok()
                            .map(date_to_wire),
                        last_day: Some(date_to_wire(as_of)),
                    }),
                    group_by_digits: 6,
                };
                let answer = peer
                    .call(&call, Retry::Safe, |channel| {
                        let request = request.clone();
                        async move { IdentityServiceClient::new(channel).get_monitoring_stats(request).await }
                    })
                    .await
                    .map(|r| {
                        r.regions
                            .into_iter()
                            .map(|row| {
                                let code = row.region.map(|r| r.code).unwrap_or_default();
                                (code.chars().take(6).collect(), row.target_persons)
                            })
                            .collect()
                    })
                    .map_err(Problem::from);
                Part::Monitoring(answer)
            }),
        );
    }
    if Level::of(reading.region) == Some(Level::Province) {
        let (peer, call) = (peers.exchange.clone(), reading.call.clone());
        spawn(
            &mut calls,
            Box::pin(async move {
                let request = exchange::GetCooperationStatsRequest { year };
                let answer = peer
                    .call(&call, Retry::Safe, |channel| async move {
                        ExchangeServiceClient::new(channel).get_cooperation_stats(request).await
                    })
                    .await
                    .map(|r| {
                        (
                            i64::from(r.partner_workers_employed_here),
                            i64::from(r.partner_target_workers_employed_here),
                        )
                    })
                    .map_err(Problem::from);
                Part::Cooperation(answer)
            }),
        );
    }

    let mut county_cells: BTreeMap<String, BTreeMap<Column, Cell>> =
        counties.iter().map(|c| (c.clone(), BTreeMap::new())).collect();
    let mut region_only = BTreeMap::new();
    let mut failures = Failures::default();
    let mut answers = Vec::new();
    while let Some(done) = calls.join_next().await {
        match done {
            Ok(answer) => answers.push(answer),
            Err(_) => failures.add(
                "reports",
                "*",
                reading.region,
                &Column::FORM,
                "a stats call stopped unexpectedly",
            ),
        }
    }
    // Calls finish in any order; sources are numbered in a stable one: by service and region.
    answers.sort_by(|(a, _), (b, _)| a.key().cmp(&b.key()));
    for (part, read_us) in answers {
        let mut source = |service: &str, method: &str, prefix: &str| {
            content.sources.push(Source {
                service: service.into(),
                method: method.into(),
                region_prefix: prefix.into(),
                read_us,
            });
            Some(content.sources.len() - 1)
        };
        match part {
            Part::Jobs(Ok(answer)) => {
                let at = source("jobs", "GetJobStats", reading.region);
                let rows: BTreeMap<String, jobs::JobCounts> = answer
                    .rows
                    .into_iter()
                    .filter_map(|row| {
                        let code: String = row.region?.code.chars().take(6).collect();
                        Some((code, row.counts.unwrap_or_default()))
                    })
                    .collect();
                for (county, cells) in &mut county_cells {
                    let counts = rows.get(county).cloned().unwrap_or_default();
                    for (column, value) in job_columns(&counts) {
                        cells.insert(column, Cell { value, source: at });
                    }
                }
            }
            Part::Jobs(Err(problem)) => {
                failures.add(
                    "jobs",
                    "GetJobStats",
                    reading.region,
                    &Column::FROM_JOBS,
                    &problem.message,
                );
            }
            Part::Posts(county, Ok(value)) => {
                let at = source("welfare_post", "GetPostStats", &county);
                if let Some(cells) = county_cells.get_mut(&county) {
                    cells.insert(Column::WelfarePostTargetPersons, Cell { value, source: at });
                }
            }
            Part::Posts(county, Err(problem)) => failures.add(
                "welfare_post",
                "GetPostStats",
                &county,
                &[Column::WelfarePostTargetPersons],
                &problem.message,
            ),
            Part::Relief(county, Ok(value)) => {
                let at = source("work_relief", "GetProjectStats", &county);
                if let Some(cells) = county_cells.get_mut(&county) {
                    cells.insert(Column::WorkReliefWorkers, Cell { value, source: at });
                }
            }
            Part::Relief(county, Err(problem)) => failures.add(
                "work_relief",
                "GetProjectStats",
                &county,
                &[Column::WorkReliefWorkers],
                &problem.message,
            ),
            Part::Monitoring(Ok(rows)) => {
                let at = source("identity", "GetMonitoringStats", reading.region);
                let rows: BTreeMap<String, i64> = rows.into_iter().collect();
                for (county, cells) in &mut county_cells {
                    let value = rows.get(county).copied().unwrap_or(0);
                    cells.insert(Column::ReferenceTargetPersonsRegistered, Cell { value, source: at });
                }
            }
            Part::Monitoring(Err(problem)) => failures.add(
                "identity",
                "GetMonitoringStats",
                reading.region,
                &[Column::ReferenceTargetPersonsRegistered],
                &problem.message,
            ),
            Part::Cooperation(Ok((workers, target))) => {
                let at = source("exchange", "GetCooperationStats", reading.region);
                region_only.insert(
                    Column::ReferencePartnerWorkersEmployed,
                    Cell {
                        value: workers,
                        source: at,
                    },
                );
                region_only.insert(
                    Column::ReferencePartnerTargetWorkersEmployed,
                    Cell {
                        value: target,
                        source: at,
                    },
                );
            }
            Part::Cooperation(Err(problem)) => failures.add(
                "exchange",
                "GetCooperationStats",
                reading.region,
                &[
                    Column::ReferencePartnerWorkersEmployed,
                    Column::ReferencePartnerTargetWorkersEmployed,
                ],
                &problem.message,
            ),
        }
    }
    content.rows = progress_rows(
        (reading.region, reading.region_name),
        &layout,
        &county_cells,
        &region_only,
    );
    content.missing = failures.into_missing(counties.len());
    content
}

/// The project list (附件2) for `reading.region`: work relief's project rows, by county and
/// project number, numbered within each county.
pub async fn read_project_list(peers: Option<&StatsPeers>, reading: &Reading<'_>) -> Content {
    let mut content = Content {
        as_of: bangfu_platform::parameters::date_text(reading.as_of),
        ..Content::default()
    };
    let answer = match peers {
        None => Err(Problem::new(
            tonic::Code::Unavailable,
            bangfu_platform::error::ErrorReason::PeerUnavailable,
            "this server has no peers configured for reports",
            "报表服务未配置其他服务的地址",
        )),
        Some(peers) => {
            project_stats(
                &peers.work_relief,
                reading.call,
                reading.region,
                reading.year,
                reading.as_of,
            )
            .await
        }
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(problem) => {
            content.missing.push(Missing {
                service: "work_relief".into(),
                method: "GetProjectStats".into(),
                region_prefix: reading.region.to_string(),
                columns: Vec::new(),
                reason: problem.message,
            });
            return content;
        }
    };
    content.sources.push(Source {
        service: "work_relief".into(),
        method: "GetProjectStats".into(),
        region_prefix: reading.region.to_string(),
        read_us: to_micros(reading.clock.now()),
    });
    let table = DivisionTable::embedded();
    let mut rows: Vec<ProjectRow> = answer
        .project_list
        .into_iter()
        .map(|row| {
            let county: String = row.region.map(|r| r.code).unwrap_or_default().chars().take(6).collect();
            ProjectRow {
                county_name: table.name(&county).unwrap_or_default().to_string(),
                county,
                sequence: 0,
                project: row.project,
                project_number: row.project_number,
                display_name: row.display_name,
                summary: row.summary,
                people_employed: i64::from(row.people_employed),
                target_persons: i64::from(row.target_persons),
                in_key_assistance_county: row.in_key_assistance_county,
                at_relocation_site: row.at_relocation_site,
                in_flood_plain_resettlement: row.in_flood_plain_resettlement,
                contact_name: row.contact_name,
                contact_phone: row.contact_phone,
                remarks: row.remarks,
                source: 0,
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.county, &a.project_number).cmp(&(&b.county, &b.project_number)));
    let mut previous = String::new();
    let mut sequence = 0;
    for row in &mut rows {
        if row.county != previous {
            previous = row.county.clone();
            sequence = 0;
        }
        sequence += 1;
        row.sequence = sequence;
    }
    content.projects = rows;
    content
}

async fn project_stats(
    peer: &Peer,
    call: &CallContext,
    region: &str,
    year: i32,
    as_of: Date,
) -> Result<relief::GetProjectStatsResponse, Problem> {
    let request = relief::GetProjectStatsRequest {
        region_prefix: region.to_string(),
        year,
        as_of: Some(date_to_wire(as_of)),
    };
    peer.call(call, Retry::Safe, |channel| {
        let request = request.clone();
        async move { WorkReliefServiceClient::new(channel).get_project_stats(request).await }
    })
    .await
    .map_err(Problem::from)
}

/// Job matching's counts in the form's columns.
fn job_columns(counts: &jobs::JobCounts) -> [(Column, i64); 10] {
    [
        (Column::LaborAlliances, counts.labor_alliances.into()),
        (Column::LaborBrands, counts.labor_brands.into()),
        (Column::LaborBases, counts.labor_bases.into()),
        (Column::LaborBaseTargetPersons, counts.labor_base_target_persons.into()),
        (Column::LaborCooperatives, counts.labor_cooperatives.into()),
        (Column::AssistanceWorkshops, counts.assistance_workshops.into()),
        (Column::WorkshopTargetPersons, counts.workshop_target_persons.into()),
        (Column::TrainingTargetPersons, counts.target_persons_in_training.into()),
        (
            Column::RelocationSiteTargetPersons,
            counts.relocation_site_target_persons.into(),
        ),
        // 乐业搬迁 events are the recruitment events held at relocation sites.
        (
            Column::RelocationRecruitmentEvents,
            counts.relocation_site_events.into(),
        ),
    ]
}

/// Failed calls, gathered by service and method: a service that is down for every county is one
/// missing part for the region, not a hundred.
#[derive(Default)]
struct Failures {
    by_call: BTreeMap<(String, String), FailedCall>,
}

/// The regions one stats method failed for, the columns it fills and the first reason.
struct FailedCall {
    regions: Vec<String>,
    columns: Vec<Column>,
    reason: String,
}

impl Failures {
    fn add(&mut self, service: &str, method: &str, region: &str, columns: &[Column], reason: &str) {
        let entry = self
            .by_call
            .entry((service.to_string(), method.to_string()))
            .or_insert_with(|| FailedCall {
                regions: Vec::new(),
                columns: columns.to_vec(),
                reason: reason.to_string(),
            });
        entry.regions.push(region.to_string());
    }

    fn into_missing(self, counties: usize) -> Vec<Missing> {
        self.by_call
            .into_iter()
            .map(|((service, method), failed)| {
                let FailedCall {
                    mut regions,
                    columns,
                    reason,
                } = failed;
                regions.sort();
                let region_prefix = if regions.len() == counties && counties > 1 {
                    format!("all {counties} counties")
                } else {
                    regions.join(",")
                };
                Missing {
                    service,
                    method,
                    region_prefix,
                    columns,
                    reason,
                }
            })
            .collect()
    }
}
