//! `bangfu bench reports`: GenerateReport for a region and period on a running suite, timed
//! end to end (every stats call it makes to job matching, posts, work relief, identity and the
//! exchange included), several runs, with the server's peak memory (VmHWM) when its pid is
//! given. The services' data is whatever the suite holds: bench/reports.sh imports persons and
//! seeds posts, work relief and job matching with the other benches first.

use std::time::Instant;

use bangfu_proto::reports::v1 as pb;
use bangfu_proto::reports::v1::report_service_client::ReportServiceClient;
use tonic::transport::Channel;

use crate::Failure;
use crate::bench_suite::{authorized, bearer, failed, peak_mib};

/// What the bench generates.
pub struct ReportsBench {
    pub region: String,
    pub period: pb::ReportingPeriod,
    pub runs: usize,
    pub server_pid: Option<u32>,
}

pub async fn run(channel: &Channel, token: &str, bench: ReportsBench) -> Result<(), Failure> {
    let bearer = bearer(token)?;
    let mut reports = ReportServiceClient::new(channel.clone()).max_decoding_message_size(64 * 1024 * 1024);
    let forms = [
        ("progress form (附件1)", pb::ReportForm::Progress, bench.period),
        (
            "project list (附件2)",
            pb::ReportForm::ProjectList,
            pb::ReportingPeriod {
                year: bench.period.year,
                quarter: 0,
            },
        ),
    ];
    for (label, form, period) in forms {
        let mut times = Vec::with_capacity(bench.runs);
        let mut last = None;
        for _ in 0..bench.runs {
            let started = Instant::now();
            let report = reports
                .generate_report(authorized(
                    pb::GenerateReportRequest {
                        form: form as i32,
                        region_code: bench.region.clone(),
                        period: Some(period),
                    },
                    &bearer,
                ))
                .await
                .map_err(failed("GenerateReport"))?
                .into_inner()
                .report
                .unwrap_or_default();
            times.push(started.elapsed().as_secs_f64());
            last = Some(report);
        }
        let report = last.unwrap_or_default();
        let state = pb::ReportState::try_from(report.state)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_default();
        let listed: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        say!(
            "{label} of {}: {} s per generation ({} runs); {} rows, {} projects, {} stats calls, {} missing parts, {state}",
            bench.region,
            listed.join(" / "),
            times.len(),
            report.rows.len(),
            report.projects.len(),
            report.sources.len(),
            report.missing_parts.len(),
        );
        for missing in &report.missing_parts {
            say!(
                "  missing {}.{} ({}): {}",
                missing.service,
                missing.method,
                missing.region_prefix,
                missing.reason
            );
        }
    }
    if let Some(peak) = bench.server_pid.and_then(peak_mib) {
        say!("server peak memory (VmHWM): {peak:.0} MiB");
    }
    Ok(())
}
