//! Monitoring: employment and income as systems report them, the alerts they raise, and the
//! counts by region, category and employment status.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::PageArgs;
use crate::client::{ClientArgs, call, list_pages, print_rows};
use crate::format::{
    check_order, enum_filter, enum_value, optional_date, parse_date, parse_past_month, parse_yuan, print_table,
    resource_name, stat_columns, yuan_text,
};
use crate::print::{Columns, Output, show, table};

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
    /// Write the tables to files instead (.xlsx, or CSV with a byte-order mark): the
    /// categories to FILE, the employment statuses beside it (NAME.employment.xlsx).
    #[arg(long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
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
    show(
        "bangfu.identity.v1.RecordEmploymentResponse",
        &recorded,
        args.client.output().is_json(),
    )
}

pub(super) async fn income(args: IncomeArgs) -> Result<(), Failure> {
    let month = parse_past_month("--month", &args.month)?;
    let month_text = format!("{:04}-{:02}", month.year, month.month);
    let fen = parse_yuan("--yuan", &args.yuan)?;
    let person = resource_name("persons", &args.person);
    let mut identity = connect_identity(&args.client).await?;
    let recorded = call(identity.record_income(pb::RecordIncomeRequest {
        person: person.clone(),
        month: Some(month),
        income: Some(common::Money { fen }),
        reporting_system: args.reporting_system,
        request_id: args.request_id,
    }))
    .await?;
    if args.client.output().is_json() {
        return show("bangfu.identity.v1.RecordIncomeResponse", &recorded, true);
    }
    print_rows(&[
        ("person", person),
        ("month", month_text),
        ("income", format!("{} 元", yuan_text(fen))),
        ("alerts raised", recorded.alerts.len().to_string()),
    ]);
    if !recorded.alerts.is_empty() {
        table(&ALERT_ROW.rows(&recorded.alerts)?, ALERT_ROW.columns, Output::Text)?;
    }
    Ok(())
}

pub(super) async fn alerts(args: AlertsArgs) -> Result<(), Failure> {
    let output = args.client.output();
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
        return show("bangfu.identity.v1.Alert", &alert, output.is_json());
    }
    let kind = enum_filter::<pb::AlertKind>("--kind", args.kind.as_deref())?;
    let mut identity = connect_identity(&args.client).await?;
    list_pages(
        &mut identity,
        output,
        &args.page,
        &ALERT_ROW,
        |identity, page_size, page_token| {
            let request = pb::ListAlertsRequest {
                region_prefix: args.region.clone(),
                kind,
                include_acknowledged: args.include_acknowledged,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(identity.list_alerts(request)).await?;
                Ok((page.alerts, page.next_page_token))
            })
        },
    )
    .await
}

/// One line an alert.
const ALERT_ROW: Columns = Columns {
    message: "bangfu.identity.v1.Alert",
    columns: &[
        ("alert", "name"),
        ("kind", "kind"),
        ("person", "person"),
        ("region", "region"),
        ("date", "effective_date"),
        ("drop (bp)", "drop_basis_points"),
        ("acknowledged", "acknowledge_time"),
        ("note", "acknowledge_note"),
    ],
};

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
    if args.client.output().is_json() {
        return show(
            "bangfu.identity.v1.GetMonitoringStatsResponse",
            &pb::GetMonitoringStatsResponse { regions },
            true,
        );
    }
    let (categories, statuses) = stats_tables(&regions);
    match &args.output {
        Some(path) => {
            // One sheet or file a table: categories, then statuses beside the file's name.
            let (header, rows) = categories;
            crate::table_file::write_table(path, &header, &rows)?;
            let statuses_path = sibling(path, "employment");
            crate::table_file::write_table(&statuses_path, &statuses.0, &statuses.1)?;
            eprintln!("written to {} and {}", path.display(), statuses_path.display());
        }
        None => {
            say!("persons by category (valid in the period)");
            print_table(&categories.0, &categories.1);
            say!("");
            say!("persons by employment status (on the period's last day)");
            print_table(&statuses.0, &statuses.1);
        }
    }
    Ok(())
}

/// `stats.xlsx` → `stats.employment.xlsx`.
fn sibling(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("stats");
    let extension = path.extension().and_then(|s| s.to_str()).unwrap_or("csv");
    path.with_file_name(format!("{stem}.{suffix}.{extension}"))
}

type Table = (Vec<String>, Vec<Vec<String>>);

/// The counts as two tables, each ending with a total row: categories (with the target
/// persons) and employment statuses, a region a row.
fn stats_tables(regions: &[pb::RegionStats]) -> (Table, Table) {
    let categories =
        stat_columns::<common::PersonCategory>(regions.iter().flat_map(|r| r.persons_by_category.keys().cloned()));
    let statuses = stat_columns::<common::EmploymentStatus>(
        regions
            .iter()
            .flat_map(|r| r.persons_by_employment_status.keys().cloned()),
    );
    let table = |first: &[&str], columns: &[(String, String)], counts: &dyn Fn(&pb::RegionStats) -> Vec<i64>| {
        let mut header: Vec<String> = vec!["region".to_string()];
        header.extend(first.iter().map(|s| (*s).to_string()));
        header.extend(columns.iter().map(|(_, label)| label.clone()));
        header.push("name".to_string());
        let mut totals = vec![0_i64; first.len() + columns.len()];
        let mut rows: Vec<Vec<String>> = regions
            .iter()
            .map(|r| {
                let (code, name) = r
                    .region
                    .as_ref()
                    .map_or(("-", ""), |c| (c.code.as_str(), c.display_name.as_str()));
                let values = counts(r);
                for (total, value) in totals.iter_mut().zip(&values) {
                    *total += value;
                }
                let mut row = vec![code.to_string()];
                row.extend(values.iter().map(i64::to_string));
                row.push(name.to_string());
                row
            })
            .collect();
        let mut total = vec!["total".to_string()];
        total.extend(totals.iter().map(i64::to_string));
        total.push(String::new());
        rows.push(total);
        (header, rows)
    };
    let by_category = table(&["target"], &categories, &|r| {
        std::iter::once(r.target_persons)
            .chain(categories.iter().map(|(key, _)| count(&r.persons_by_category, key)))
            .collect()
    });
    let by_status = table(&[], &statuses, &|r| {
        statuses
            .iter()
            .map(|(key, _)| count(&r.persons_by_employment_status, key))
            .collect()
    });
    (by_category, by_status)
}

fn count(counts: &std::collections::HashMap<String, i64>, key: &str) -> i64 {
    counts.get(key).copied().unwrap_or(0)
}
