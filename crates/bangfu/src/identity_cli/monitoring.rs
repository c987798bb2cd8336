//! Monitoring: employment and income as systems report them, the alerts they raise, and the
//! counts by region, category and employment status.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;
use serde_json::Value;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call, print_rows};
use crate::client::{PageArgs, Pages};
use crate::format::{
    check_order, date_or_dash, date_text, enum_filter, enum_label, enum_value, enum_wire, optional_date, or_dash,
    parse_date, parse_month, parse_yuan, percent, print_table, resource_name, stamp_json, stamp_text, stat_columns,
    yuan_text,
};

#[derive(Debug, Args)]
pub struct EmploymentArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
    /// The status: unemployed, employed-in-county, employed-out-of-county,
    /// employed-out-of-province, self-employed, public-welfare-post, work-relief, in-training,
    /// not-in-labor-force.
    #[arg(long)]
    status: String,
    /// The employer, when employed (up to 100 characters).
    #[arg(long, default_value = "")]
    employer: String,
    /// Where the person works: a division code or prefix.
    #[arg(long, default_value = "")]
    work_region: String,
    /// The first day of the status, YYYY-MM-DD.
    #[arg(long)]
    from: String,
    /// The last day, YYYY-MM-DD; leave it out while it lasts.
    #[arg(long)]
    to: Option<String>,
    /// The system that reported it, e.g. 就业信息平台.
    #[arg(long)]
    reporting_system: String,
    /// A unique id making a retry safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(Debug, Args)]
pub struct IncomeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
    /// The month, YYYY-MM.
    #[arg(long)]
    month: String,
    /// Income from work that month in yuan, e.g. 2350 or 2350.50: not negative, at most two
    /// decimals (fen).
    #[arg(long, allow_hyphen_values = true)]
    yuan: String,
    /// The system or survey that reported it.
    #[arg(long)]
    reporting_system: String,
    /// A unique id making a retry safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only alerts under this division-code prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region: String,
    /// Only alerts of this kind: income-drop-year-on-year, income-drop-month-on-month,
    /// employment-lost, region-employment-drop.
    #[arg(long)]
    kind: Option<String>,
    /// Include alerts already acknowledged.
    #[arg(long)]
    include_acknowledged: bool,
    #[command(flatten)]
    page: PageArgs,
    /// Acknowledge this alert instead of listing: alerts/… or the bare id; give --note.
    #[arg(long, value_name = "ALERT_NAME", requires = "note")]
    acknowledge: Option<String>,
    /// With --acknowledge: what was done (guidance given, referral made), 1 to 500 characters.
    #[arg(long, requires = "acknowledge")]
    note: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Count persons registered or residing under this division-code prefix, e.g. 3704.
    #[arg(long)]
    region: String,
    /// The period's first day, YYYY-MM-DD: categories count when valid in the period.
    /// Default: today.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// The period's last day, YYYY-MM-DD: employment statuses are counted on it.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Break the counts down to regions of this many digits: 2, 4, 6, 9 or 12.
    #[arg(long, default_value_t = 6)]
    group_by: i32,
}

pub(super) async fn employment(args: EmploymentArgs) -> Result<(), Failure> {
    let status = enum_value::<common::EmploymentStatus>("--status", &args.status)?;
    let start_date = parse_date("--from", &args.from)?;
    let end_date = optional_date("--to", args.to.as_deref())?;
    check_order(&start_date, end_date.as_ref())?;
    let mut identity = connect_identity(&args.client).await?;
    let recorded = call(identity.record_employment(pb::RecordEmploymentRequest {
        person: resource_name("persons", &args.person),
        record: Some(pb::EmploymentRecord {
            name: String::new(),
            status,
            employer: args.employer,
            work_region: args.work_region,
            start_date: Some(start_date),
            end_date,
            reporting_system: args.reporting_system,
        }),
        request_id: args.request_id,
    }))
    .await?;
    let record = recorded.record.unwrap_or_default();
    if args.client.json {
        say!(
            "{}",
            serde_json::json!({
                "name": record.name,
                "status": enum_wire::<common::EmploymentStatus>(record.status),
                "employer": record.employer,
                "work_region": record.work_region,
                "start_date": record.start_date.as_ref().map(date_text),
                "end_date": record.end_date.as_ref().map(date_text),
                "reporting_system": record.reporting_system,
                "current_status": enum_wire::<common::EmploymentStatus>(recorded.current_status),
            })
        );
    } else {
        print_rows(&[
            ("record", record.name.clone()),
            ("status", enum_label::<common::EmploymentStatus>(record.status)),
            ("employer", record.employer.clone()),
            ("work region", record.work_region.clone()),
            ("from", date_or_dash(record.start_date.as_ref())),
            ("to", date_or_dash(record.end_date.as_ref())),
            ("reported by", record.reporting_system.clone()),
            (
                "current status",
                enum_label::<common::EmploymentStatus>(recorded.current_status),
            ),
        ]);
    }
    Ok(())
}

pub(super) async fn income(args: IncomeArgs) -> Result<(), Failure> {
    let month = parse_month("--month", &args.month)?;
    let month_text = format!("{:04}-{:02}", month.year, month.month);
    let fen = parse_yuan("--yuan", &args.yuan)?;
    let person = resource_name("persons", &args.person);
    let mut identity = connect_identity(&args.client).await?;
    let alerts = call(identity.record_income(pb::RecordIncomeRequest {
        person: person.clone(),
        month: Some(month),
        income: Some(common::Money { fen }),
        reporting_system: args.reporting_system,
        request_id: args.request_id,
    }))
    .await?
    .alerts;
    if args.client.json {
        let alerts: Vec<Value> = alerts.iter().map(alert_json).collect();
        say!(
            "{}",
            serde_json::json!({ "person": person, "month": month_text, "fen": fen, "alerts": alerts })
        );
    } else {
        print_rows(&[
            ("person", person),
            ("month", month_text),
            ("income", format!("{} yuan", yuan_text(fen))),
            ("alerts", alerts.len().to_string()),
        ]);
        for alert in &alerts {
            say!("{}", alert_line(alert));
        }
    }
    Ok(())
}

pub(super) async fn alerts(args: AlertsArgs) -> Result<(), Failure> {
    let json = args.client.json;
    if let Some(alert) = args.acknowledge {
        // clap makes --note come with --acknowledge; an empty note is the server's to refuse.
        let note = args.note.unwrap_or_default();
        let mut identity = connect_identity(&args.client).await?;
        let alert = call(identity.acknowledge_alert(pb::AcknowledgeAlertRequest {
            name: resource_name("alerts", &alert),
            note,
        }))
        .await?
        .alert
        .unwrap_or_default();
        if json {
            say!("{}", alert_json(&alert));
        } else {
            print_rows(&[
                ("alert", alert.name.clone()),
                ("kind", enum_label::<pb::AlertKind>(alert.kind)),
                ("person", or_dash(&alert.person).to_string()),
                ("region", or_dash(&alert.region).to_string()),
                ("date", date_or_dash(alert.effective_date.as_ref())),
                ("drop", percent(alert.drop_basis_points)),
                (
                    "acknowledged",
                    stamp_text(alert.acknowledge_time.as_ref().map(|t| t.seconds)),
                ),
                ("by", alert.acknowledge_subject.clone()),
                ("note", alert.acknowledge_note.clone()),
            ]);
        }
        return Ok(());
    }
    let kind = enum_filter::<pb::AlertKind>("--kind", args.kind.as_deref())?;
    let mut pages = Pages::new(args.page.page_size, args.page.page_token, args.page.all)?;
    let mut identity = connect_identity(&args.client).await?;
    while let Some(page_token) = pages.next_token() {
        let page = call(identity.list_alerts(pb::ListAlertsRequest {
            region_prefix: args.region.clone(),
            kind,
            include_acknowledged: args.include_acknowledged,
            page_size: pages.size,
            page_token,
        }))
        .await?;
        for alert in &page.alerts {
            if json {
                say!("{}", alert_json(alert));
            } else {
                say!("{}", alert_line(alert));
            }
        }
        pages.fetched(page.next_page_token);
    }
    pages.finish(json);
    Ok(())
}

pub(super) async fn stats(args: StatsArgs) -> Result<(), Failure> {
    if ![2, 4, 6, 9, 12].contains(&args.group_by) {
        return Err(Failure::usage(format!(
            "--group-by {} is not one of 2, 4, 6, 9, 12 (digits of a division code)",
            args.group_by
        )));
    }
    let period = match (args.from.as_deref(), args.to.as_deref()) {
        (Some(from), Some(to)) => {
            let first_day = parse_date("--from", from)?;
            let last_day = parse_date("--to", to)?;
            check_order(&first_day, Some(&last_day))?;
            Some(common::Period {
                first_day: Some(first_day),
                last_day: Some(last_day),
            })
        }
        // clap gives --from and --to together or not at all.
        _ => None,
    };
    let mut identity = connect_identity(&args.client).await?;
    let regions = call(identity.get_monitoring_stats(pb::GetMonitoringStatsRequest {
        region_prefix: args.region,
        period,
        group_by_digits: args.group_by,
    }))
    .await?
    .regions;
    if args.client.json {
        let regions: Vec<Value> = regions
            .iter()
            .map(|r| {
                serde_json::json!({
                    "region": r.region.as_ref().map(|c| c.code.as_str()),
                    "display_name": r.region.as_ref().map(|c| c.display_name.as_str()),
                    "target_persons": r.target_persons,
                    "persons_by_category": r.persons_by_category,
                    "persons_by_employment_status": r.persons_by_employment_status,
                })
            })
            .collect();
        say!("{}", serde_json::json!({ "regions": regions }));
        return Ok(());
    }
    let categories =
        stat_columns::<common::PersonCategory>(regions.iter().flat_map(|r| r.persons_by_category.keys().cloned()));
    let statuses = stat_columns::<common::EmploymentStatus>(
        regions
            .iter()
            .flat_map(|r| r.persons_by_employment_status.keys().cloned()),
    );
    let mut header = vec!["region".to_string(), "target".to_string()];
    header.extend(categories.iter().chain(&statuses).map(|(_, label)| label.clone()));
    header.push("name".to_string());
    let rows: Vec<Vec<String>> = regions
        .iter()
        .map(|r| {
            let (code, name) = r
                .region
                .as_ref()
                .map_or(("-", ""), |c| (c.code.as_str(), c.display_name.as_str()));
            let mut row = vec![code.to_string(), r.target_persons.to_string()];
            row.extend(categories.iter().map(|(key, _)| count(&r.persons_by_category, key)));
            row.extend(
                statuses
                    .iter()
                    .map(|(key, _)| count(&r.persons_by_employment_status, key)),
            );
            row.push(name.to_string());
            row
        })
        .collect();
    print_table(&header, &rows);
    Ok(())
}

fn alert_json(alert: &pb::Alert) -> Value {
    serde_json::json!({
        "name": alert.name,
        "kind": enum_wire::<pb::AlertKind>(alert.kind),
        "person": alert.person,
        "region": alert.region,
        "effective_date": alert.effective_date.as_ref().map(date_text),
        "drop_basis_points": alert.drop_basis_points,
        "create_time": stamp_json(alert.create_time.as_ref().map(|t| t.seconds)),
        "acknowledge_time": stamp_json(alert.acknowledge_time.as_ref().map(|t| t.seconds)),
        "acknowledge_subject": alert.acknowledge_subject,
        "acknowledge_note": alert.acknowledge_note,
    })
}

/// One alert as a line: name, kind, person, region, date, drop, open or acknowledged.
fn alert_line(alert: &pb::Alert) -> String {
    let state = if alert.acknowledge_time.is_some() {
        "acknowledged"
    } else {
        "open"
    };
    format!(
        "{}  {}  {}  {}  {}  {}  {state}",
        alert.name,
        enum_label::<pb::AlertKind>(alert.kind),
        or_dash(&alert.person),
        or_dash(&alert.region),
        date_or_dash(alert.effective_date.as_ref()),
        percent(alert.drop_basis_points)
    )
}

fn count(counts: &std::collections::HashMap<String, i64>, key: &str) -> String {
    counts.get(key).copied().unwrap_or(0).to_string()
}
