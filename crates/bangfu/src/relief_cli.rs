//! `bangfu relief …`: work relief (以工代赈) from the command line, for a county development-and-
//! reform bureau's work-relief desk and the site clerks who keep the muster roll. Every command
//! takes the same path as the others — parse the flags (a usage error before anything is sent),
//! connect with the token, call, print the server's answer whole (`--json` for scripts).

use std::path::PathBuf;

use bangfu_proto::common::v1 as common;
use bangfu_proto::work_relief::v1 as pb;
use bangfu_proto::work_relief::v1::work_relief_service_client::WorkReliefServiceClient;
use clap::{Args, Subcommand};

use crate::Failure;
use crate::client::{Authorized, ClientArgs, PageArgs, authorized, call, list_pages};
use crate::format::{enum_filter, enum_value, optional_date, parse_date, parse_month, parse_yuan, resource_name};
use crate::print::{Columns, show};

const PROJECT: Columns = Columns {
    message: "bangfu.work_relief.v1.Project",
    columns: &[
        ("project", "name"),
        ("number", "project_number"),
        ("state", "state"),
        ("workers", "active_workers"),
        ("paid", "labor_share.paid"),
        ("share‱", "labor_share.paid_share_bp"),
        ("gap", "labor_share.gap"),
        ("name", "display_name"),
    ],
};

const WORKER: Columns = Columns {
    message: "bangfu.work_relief.v1.Worker",
    columns: &[
        ("worker", "name"),
        ("state", "state"),
        ("name", "display_name"),
        ("role", "role"),
        ("daily", "daily_wage"),
        ("piece", "piece_rate"),
        ("from", "start_date"),
        ("target", "target_person"),
        ("relocated", "relocated"),
    ],
};

const PAYROLL: Columns = Columns {
    message: "bangfu.work_relief.v1.Payroll",
    columns: &[
        ("payroll", "name"),
        ("state", "state"),
        ("lines", "line_count"),
        ("total", "total"),
        ("paid", "paid_total"),
        ("due", "due_date"),
    ],
};

const ARREAR: Columns = Columns {
    message: "bangfu.work_relief.v1.Arrear",
    columns: &[
        ("payroll", "payroll"),
        ("line", "line.line_number"),
        ("name", "line.display_name"),
        ("amount", "line.amount"),
        ("state", "line.state"),
        ("due", "due_date"),
        ("overdue days", "days_overdue"),
        ("project", "project_display_name"),
    ],
};

#[derive(Debug, Subcommand)]
pub enum ReliefCommand {
    /// Projects in your scope, or one project whole with its labor share.
    Projects(ProjectsArgs),
    /// Create a project, paid under a remuneration policy of subsidy payment's catalog.
    ProjectCreate(ProjectCreateArgs),
    /// Record money allotted to a project (资金下达); without --amount, list its allocations.
    Funds(FundsArgs),
    /// Put a person on a project's real-name roster (实名制花名册).
    Enrol(EnrolArgs),
    /// A project's roster, with the relocation reserve.
    Workers(WorkersArgs),
    /// End an enrolment on a day.
    End(EndArgs),
    /// Record a month's muster roll (考勤表) from a workbook or CSV file: all lines or none.
    Attendance(AttendanceArgs),
    /// A month's payroll (工资表) with its lines; --prepare computes it from the muster roll.
    Payroll(PayrollArgs),
    /// Open a payroll's public notice (公示); --show prints the notice as posted.
    Notice(NoticeArgs),
    /// Record an objection to a payroll during its notice, or resolve one.
    Object(ObjectArgs),
    /// Approve a payroll after its notice: its lines go to subsidy payment as claims.
    Approve(ApproveArgs),
    /// Confirm a worker's receipt from the signed paper ledger (签字确认).
    Receipt(ReceiptArgs),
    /// Send a line subsidy payment refused again, once what refused it is put right.
    Resubmit(ResubmitArgs),
    /// Remuneration owed past its pay day (拖欠), oldest first.
    Arrears(ArrearsArgs),
    /// Close a project (竣工): nothing owed, its labor share reached.
    Close(CloseArgs),
    /// Projects, funds, remuneration and workers of a year, with the project list (附件2).
    Stats(StatsArgs),
    /// The service's parameters (rules by region and date): list them, or set one value.
    #[command(subcommand)]
    Parameter(crate::parameters_cli::ParameterCommand),
}

type Relief = WorkReliefServiceClient<Authorized>;

async fn connect(client: &ClientArgs) -> Result<Relief, Failure> {
    Ok(WorkReliefServiceClient::new(authorized(client).await?))
}

fn request_id() -> String {
    bangfu_platform::rows::new_id()
}

pub async fn run(command: ReliefCommand) -> Result<(), Failure> {
    match command {
        ReliefCommand::Parameter(command) => {
            crate::parameters_cli::run(crate::parameters_cli::Service::Relief, command).await
        }
        ReliefCommand::Projects(args) => projects(args).await,
        ReliefCommand::ProjectCreate(args) => project_create(args).await,
        ReliefCommand::Funds(args) => funds(args).await,
        ReliefCommand::Enrol(args) => enrol(args).await,
        ReliefCommand::Workers(args) => workers(args).await,
        ReliefCommand::End(args) => end(args).await,
        ReliefCommand::Attendance(args) => attendance(args).await,
        ReliefCommand::Payroll(args) => payroll(args).await,
        ReliefCommand::Notice(args) => notice(args).await,
        ReliefCommand::Object(args) => object(args).await,
        ReliefCommand::Approve(args) => approve(args).await,
        ReliefCommand::Receipt(args) => receipt(args).await,
        ReliefCommand::Resubmit(args) => resubmit(args).await,
        ReliefCommand::Arrears(args) => arrears(args).await,
        ReliefCommand::Close(args) => close(args).await,
        ReliefCommand::Stats(args) => stats(args).await,
    }
}

/// A payroll's name from "PROJECT/2025-02" or the full name.
fn payroll_name(text: &str) -> String {
    let text = text.trim();
    if text.starts_with("projects/") {
        return text.to_string();
    }
    match text.split_once('/') {
        Some((project, month)) => format!("projects/{project}/payrolls/{}", month.trim_start_matches("payrolls/")),
        None => text.to_string(),
    }
}

#[derive(Debug, Args)]
pub struct ProjectsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this project whole (its id or name).
    project: Option<String>,
    /// Only projects under this region prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only active or closed ones.
    #[arg(long)]
    state: Option<String>,
    /// Only projects whose schedule touches this year.
    #[arg(long, default_value_t = 0)]
    year: i32,
    #[command(flatten)]
    page: PageArgs,
}

async fn projects(args: ProjectsArgs) -> Result<(), Failure> {
    let mut relief = connect(&args.client).await?;
    if let Some(project) = &args.project {
        let answer = call(relief.get_project(pb::GetProjectRequest {
            name: resource_name("projects", project),
        }))
        .await?;
        return show("bangfu.work_relief.v1.GetProjectResponse", &answer, args.client.json);
    }
    let state = enum_filter::<pb::ProjectState>("--state", args.state.as_deref())?;
    let (prefix, year) = (args.region_prefix.clone(), args.year);
    list_pages(
        &mut relief,
        args.client.output(),
        &args.page,
        &PROJECT,
        |relief, page_size, page_token| {
            let request = pb::ListProjectsRequest {
                region_prefix: prefix.clone(),
                state,
                year,
                page_size,
                page_token,
                ..Default::default()
            };
            Box::pin(async move {
                let page = call(relief.list_projects(request)).await?;
                Ok((page.projects, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct ProjectCreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project number as the plan lists it.
    #[arg(long)]
    number: String,
    /// The project's name.
    #[arg(long)]
    name: String,
    /// What is built.
    #[arg(long)]
    summary: String,
    /// dedicated, rural-infrastructure or key-project.
    #[arg(long, default_value = "dedicated")]
    channel: String,
    /// Where it is built: a village (12 digits) or a county (6 digits).
    #[arg(long)]
    region: String,
    /// Planned start (YYYY-MM-DD).
    #[arg(long)]
    start: String,
    /// Planned end (YYYY-MM-DD).
    #[arg(long)]
    end: String,
    /// The owner unit (项目业主单位).
    #[arg(long)]
    owner: String,
    /// The owner unit's contact person.
    #[arg(long)]
    contact: String,
    /// The contact's office phone.
    #[arg(long)]
    phone: String,
    /// The remuneration policy's code in subsidy payment's catalog.
    #[arg(long)]
    policy: String,
    /// The day of the following month a month's remuneration is due (1 to 28).
    #[arg(long, default_value_t = 15)]
    pay_day: i32,
    /// In a provincial key assistance county.
    #[arg(long)]
    key_county: bool,
    /// At a relocation site.
    #[arg(long)]
    relocation_site: bool,
    /// In a Yellow River flood-plain resettlement area.
    #[arg(long)]
    flood_plain: bool,
    /// Remarks for the project list.
    #[arg(long, default_value = "")]
    remarks: String,
}

async fn project_create(args: ProjectCreateArgs) -> Result<(), Failure> {
    let project = pb::Project {
        project_number: args.number,
        display_name: args.name,
        summary: args.summary,
        channel: enum_value::<pb::ProjectChannel>("--channel", &args.channel)?,
        region: Some(common::RegionCode {
            code: args.region.trim().to_string(),
            display_name: String::new(),
        }),
        schedule: Some(common::Period {
            first_day: Some(parse_date("--start", &args.start)?),
            last_day: Some(parse_date("--end", &args.end)?),
        }),
        owner_unit: args.owner,
        contact_name: args.contact,
        contact_phone: args.phone,
        in_key_assistance_county: args.key_county,
        at_relocation_site: args.relocation_site,
        in_flood_plain_resettlement: args.flood_plain,
        remarks: args.remarks,
        remuneration_policy: args.policy,
        pay_day: args.pay_day,
        ..Default::default()
    };
    let mut relief = connect(&args.client).await?;
    let answer = call(relief.create_project(pb::CreateProjectRequest {
        project: Some(project),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.work_relief.v1.CreateProjectResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct FundsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project's id or name.
    project: String,
    /// central, provincial, county or other.
    #[arg(long, requires = "amount")]
    source: Option<String>,
    /// The budget year.
    #[arg(long, requires = "amount")]
    year: Option<i32>,
    /// The amount in yuan.
    #[arg(long, requires_all = ["source", "year", "document"])]
    amount: Option<String>,
    /// The allotting document (资金下达文号).
    #[arg(long, requires = "amount")]
    document: Option<String>,
}

async fn funds(args: FundsArgs) -> Result<(), Failure> {
    let project = resource_name("projects", &args.project);
    let mut relief = connect(&args.client).await?;
    let Some(amount) = &args.amount else {
        let answer = call(relief.list_allocations(pb::ListAllocationsRequest { parent: project })).await?;
        return show(
            "bangfu.work_relief.v1.ListAllocationsResponse",
            &answer,
            args.client.json,
        );
    };
    let allocation = pb::FundAllocation {
        fund_source: enum_value::<pb::FundSource>("--source", args.source.as_deref().unwrap_or_default())?,
        year: args.year.unwrap_or_default(),
        amount: Some(common::Money {
            fen: parse_yuan("--amount", amount)?,
        }),
        document: args.document.clone().unwrap_or_default(),
        ..Default::default()
    };
    let answer = call(relief.allocate_funds(pb::AllocateFundsRequest {
        parent: project,
        allocation: Some(allocation),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.work_relief.v1.AllocateFundsResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct EnrolArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project's id or name.
    project: String,
    /// The person's id or name in identity.
    #[arg(long)]
    person: String,
    /// worker, team-leader, manager or technician.
    #[arg(long, default_value = "worker")]
    role: String,
    /// The daily wage in yuan (not below the region's guideline).
    #[arg(long, conflicts_with = "piece_rate", required_unless_present = "piece_rate")]
    daily_wage: Option<String>,
    /// The piece rate in yuan, with --piece-unit.
    #[arg(long, requires = "piece_unit")]
    piece_rate: Option<String>,
    /// The unit a piece is counted in, e.g. 米.
    #[arg(long)]
    piece_unit: Option<String>,
    /// The first day (YYYY-MM-DD).
    #[arg(long)]
    start: String,
    /// The planned last day (YYYY-MM-DD).
    #[arg(long)]
    end: Option<String>,
    /// The signed labor agreement's reference (劳务协议编号).
    #[arg(long)]
    agreement: String,
}

async fn enrol(args: EnrolArgs) -> Result<(), Failure> {
    let pay = match (&args.daily_wage, &args.piece_rate) {
        (Some(wage), _) => pb::worker::Pay::DailyWage(common::Money {
            fen: parse_yuan("--daily-wage", wage)?,
        }),
        (None, Some(rate)) => pb::worker::Pay::PieceRate(common::Money {
            fen: parse_yuan("--piece-rate", rate)?,
        }),
        (None, None) => return Err(Failure::usage("give --daily-wage or --piece-rate")),
    };
    let worker = pb::Worker {
        person: resource_name("persons", &args.person),
        role: enum_value::<pb::WorkerRole>("--role", &args.role)?,
        pay: Some(pay),
        piece_unit: args.piece_unit.clone().unwrap_or_default(),
        start_date: Some(parse_date("--start", &args.start)?),
        end_date: optional_date("--end", args.end.as_deref())?,
        agreement_reference: args.agreement.clone(),
        ..Default::default()
    };
    let mut relief = connect(&args.client).await?;
    let answer = call(relief.enrol_worker(pb::EnrolWorkerRequest {
        parent: resource_name("projects", &args.project),
        worker: Some(worker),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.work_relief.v1.EnrolWorkerResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct WorkersArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project's id or name.
    project: String,
    /// Only active or ended enrolments.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn workers(args: WorkersArgs) -> Result<(), Failure> {
    let state = enum_filter::<pb::EnrolmentState>("--state", args.state.as_deref())?;
    let project = resource_name("projects", &args.project);
    let mut relief = connect(&args.client).await?;
    list_pages(
        &mut relief,
        args.client.output(),
        &args.page,
        &WORKER,
        |relief, page_size, page_token| {
            let request = pb::ListWorkersRequest {
                parent: project.clone(),
                state,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(relief.list_workers(request)).await?;
                if let Some(counts) = &page.counts {
                    say!(
                        "roster today: {} workers, {} target persons, {} relocated (reserve {}), {} local",
                        counts.workers,
                        counts.target_persons,
                        counts.relocated,
                        counts.relocated_reserved,
                        counts.local
                    );
                }
                Ok((page.workers, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct EndArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The worker's name, projects/{project}/workers/{worker}.
    worker: String,
    /// The last day worked (YYYY-MM-DD).
    #[arg(long)]
    date: String,
    /// Why, e.g. 工程完工.
    #[arg(long)]
    reason: String,
}

async fn end(args: EndArgs) -> Result<(), Failure> {
    let mut relief = connect(&args.client).await?;
    let answer = call(relief.end_enrolment(pb::EndEnrolmentRequest {
        name: args.worker.trim().to_string(),
        end_date: Some(parse_date("--date", &args.date)?),
        reason: args.reason,
    }))
    .await?;
    show("bangfu.work_relief.v1.EndEnrolmentResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct AttendanceArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project's id or name.
    project: String,
    /// The month (YYYY-MM).
    #[arg(long)]
    month: String,
    /// The muster roll: a workbook (.xlsx, .xls) or CSV in UTF-8 or GBK, with a header naming
    /// the worker (人员 or worker: the worker's name or id), the days (出勤天数 or days) and the
    /// pieces (计件数量 or pieces).
    #[arg(long)]
    file: PathBuf,
    /// The workbook's sheet; the first when not given.
    #[arg(long)]
    sheet: Option<String>,
}

/// The muster roll's entries from the file, each with the worker's full name.
fn read_roll(path: &std::path::Path, sheet: Option<&str>, project: &str) -> Result<Vec<pb::AttendanceEntry>, Failure> {
    let table = crate::table_file::read_table(path, sheet)?;
    let mut rows = table.into_iter();
    let header: Vec<String> = rows
        .next()
        .ok_or_else(|| Failure::usage(format!("{}: empty", path.display())))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let column = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let worker = column(&["人员", "worker"])
        .ok_or_else(|| Failure::usage(format!("{}: no 人员 (worker) column", path.display())))?;
    let (days, pieces) = (column(&["出勤天数", "days"]), column(&["计件数量", "pieces"]));
    if days.is_none() && pieces.is_none() {
        return Err(Failure::usage(format!(
            "{}: no 出勤天数 (days) or 计件数量 (pieces) column",
            path.display()
        )));
    }
    let mut entries = Vec::new();
    for (index, record) in rows.enumerate() {
        let line = index + 2;
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).map(|c| c.trim()).unwrap_or("");
        let number = |at: Option<usize>, what: &str| -> Result<i64, Failure> {
            let text = cell(at);
            if text.is_empty() {
                return Ok(0);
            }
            text.parse::<i64>().map_err(|_| {
                Failure::usage(format!(
                    "{}: line {line}: {what} {text:?} is not a whole number",
                    path.display()
                ))
            })
        };
        let name = cell(Some(worker));
        if name.is_empty() {
            continue;
        }
        let full = if name.starts_with("projects/") {
            name.to_string()
        } else {
            format!("{project}/workers/{}", name.trim_start_matches("workers/"))
        };
        entries.push(pb::AttendanceEntry {
            worker: full,
            days: i32::try_from(number(days, "days")?)
                .map_err(|_| Failure::usage(format!("{}: line {line}: days out of range", path.display())))?,
            pieces: number(pieces, "pieces")?,
        });
    }
    if entries.is_empty() {
        return Err(Failure::usage(format!("{}: no lines", path.display())));
    }
    Ok(entries)
}

async fn attendance(args: AttendanceArgs) -> Result<(), Failure> {
    let project = resource_name("projects", &args.project);
    let month = parse_month("--month", &args.month)?;
    let entries = read_roll(&args.file, args.sheet.as_deref(), &project)?;
    let request_id = request_id();
    let parts: Vec<pb::RecordAttendanceRequest> = entries
        .chunks(1000)
        .enumerate()
        .map(|(i, chunk)| pb::RecordAttendanceRequest {
            parent: if i == 0 { project.clone() } else { String::new() },
            month: (i == 0).then_some(month),
            entries: chunk.to_vec(),
            request_id: if i == 0 { request_id.clone() } else { String::new() },
        })
        .collect();
    let mut relief = connect(&args.client).await?;
    let answer = call(relief.record_attendance(tokio_stream::iter(parts))).await?;
    let refused = !answer.problems.is_empty();
    show(
        "bangfu.work_relief.v1.RecordAttendanceResponse",
        &answer,
        args.client.json,
    )?;
    if refused {
        return Err(Failure::failed(format!(
            "{} line(s) of the muster roll are wrong; nothing was recorded",
            answer.problems.len()
        )));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct PayrollArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project's id or name; without --month, its payrolls are listed.
    project: String,
    /// The month (YYYY-MM).
    #[arg(long)]
    month: Option<String>,
    /// Compute the month's payroll from the muster roll (again, while not yet noticed).
    #[arg(long, requires = "month")]
    prepare: bool,
    #[command(flatten)]
    page: PageArgs,
}

async fn payroll(args: PayrollArgs) -> Result<(), Failure> {
    let project = resource_name("projects", &args.project);
    let mut relief = connect(&args.client).await?;
    let Some(month_text) = &args.month else {
        return list_pages(
            &mut relief,
            args.client.output(),
            &args.page,
            &PAYROLL,
            |relief, page_size, page_token| {
                let request = pb::ListPayrollsRequest {
                    parent: project.clone(),
                    page_size,
                    page_token,
                    ..Default::default()
                };
                Box::pin(async move {
                    let page = call(relief.list_payrolls(request)).await?;
                    Ok((page.payrolls, page.next_page_token))
                })
            },
        )
        .await;
    };
    let month = parse_month("--month", month_text)?;
    if args.prepare {
        let answer = call(relief.prepare_payroll(pb::PreparePayrollRequest {
            parent: project,
            month: Some(month),
        }))
        .await?;
        return show(
            "bangfu.work_relief.v1.PreparePayrollResponse",
            &answer,
            args.client.json,
        );
    }
    let answer = call(relief.get_payroll(pb::GetPayrollRequest {
        name: format!("{project}/payrolls/{:04}-{:02}", month.year, month.month),
    }))
    .await?;
    show("bangfu.work_relief.v1.GetPayrollResponse", &answer, args.client.json)
}

/// The payroll as read now, for its etag.
async fn read_payroll(relief: &mut Relief, name: &str) -> Result<pb::Payroll, Failure> {
    call(relief.get_payroll(pb::GetPayrollRequest { name: name.to_string() }))
        .await?
        .payroll
        .ok_or_else(|| Failure::failed("the server answered without the payroll"))
}

#[derive(Debug, Args)]
pub struct NoticeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The payroll: projects/{project}/payrolls/{yyyy-mm}, or PROJECT/yyyy-mm.
    payroll: String,
    /// Print the notice as posted instead of opening it.
    #[arg(long, conflicts_with_all = ["contact", "first_day"])]
    show: bool,
    /// The office and phone that take objections, printed on the notice.
    #[arg(long, required_unless_present = "show")]
    contact: Option<String>,
    /// The notice's first day (YYYY-MM-DD); today when not given.
    #[arg(long)]
    first_day: Option<String>,
}

async fn notice(args: NoticeArgs) -> Result<(), Failure> {
    let name = payroll_name(&args.payroll);
    let mut relief = connect(&args.client).await?;
    if args.show {
        let answer = call(relief.get_payroll_notice(pb::GetPayrollNoticeRequest {
            name: format!("{name}/notice"),
        }))
        .await?;
        return show(
            "bangfu.work_relief.v1.GetPayrollNoticeResponse",
            &answer,
            args.client.json,
        );
    }
    let current = read_payroll(&mut relief, &name).await?;
    let answer = call(relief.publish_payroll_notice(pb::PublishPayrollNoticeRequest {
        name,
        etag: current.etag,
        first_day: optional_date("--first-day", args.first_day.as_deref())?,
        objection_contact: args.contact.clone().unwrap_or_default(),
    }))
    .await?;
    show(
        "bangfu.work_relief.v1.PublishPayrollNoticeResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ObjectArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The payroll (to record an objection) or the objection's name (with --resolve).
    target: String,
    /// The contested line's number; 0 for the whole payroll.
    #[arg(long, default_value_t = 0)]
    line: i32,
    /// What was objected, as received.
    #[arg(long, required_unless_present = "resolve")]
    content: Option<String>,
    /// How it was received, e.g. 来访, 电话.
    #[arg(long, default_value = "来访")]
    channel: String,
    /// The day it was received (YYYY-MM-DD).
    #[arg(long, required_unless_present = "resolve")]
    received: Option<String>,
    /// Resolve the objection named by TARGET.
    #[arg(long, requires = "resolution")]
    resolve: bool,
    /// Uphold it (the payroll goes back to be corrected).
    #[arg(long, conflicts_with = "dismissed")]
    upheld: bool,
    /// Dismiss it after verification.
    #[arg(long)]
    dismissed: bool,
    /// What verification found.
    #[arg(long)]
    resolution: Option<String>,
}

async fn object(args: ObjectArgs) -> Result<(), Failure> {
    let mut relief = connect(&args.client).await?;
    if args.resolve {
        if args.upheld == args.dismissed {
            return Err(Failure::usage("give one of --upheld or --dismissed"));
        }
        let answer = call(relief.resolve_objection(pb::ResolveObjectionRequest {
            name: args.target.trim().to_string(),
            upheld: args.upheld,
            resolution: args.resolution.clone().unwrap_or_default(),
        }))
        .await?;
        return show(
            "bangfu.work_relief.v1.ResolveObjectionResponse",
            &answer,
            args.client.json,
        );
    }
    let answer = call(relief.raise_objection(pb::RaiseObjectionRequest {
        parent: payroll_name(&args.target),
        objection: Some(pb::Objection {
            line_number: args.line,
            content: args.content.clone().unwrap_or_default(),
            channel: args.channel.clone(),
            received_date: optional_date("--received", args.received.as_deref())?,
            ..Default::default()
        }),
        request_id: request_id(),
    }))
    .await?;
    show(
        "bangfu.work_relief.v1.RaiseObjectionResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The payroll: projects/{project}/payrolls/{yyyy-mm}, or PROJECT/yyyy-mm.
    payroll: String,
}

async fn approve(args: ApproveArgs) -> Result<(), Failure> {
    let name = payroll_name(&args.payroll);
    let mut relief = connect(&args.client).await?;
    let current = read_payroll(&mut relief, &name).await?;
    let answer = call(relief.approve_payroll(pb::ApprovePayrollRequest {
        name,
        etag: current.etag,
    }))
    .await?;
    show(
        "bangfu.work_relief.v1.ApprovePayrollResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ReceiptArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The payroll: projects/{project}/payrolls/{yyyy-mm}, or PROJECT/yyyy-mm.
    payroll: String,
    /// The line's number.
    #[arg(long)]
    line: i32,
    /// The signed paper ledger's reference (签字确认表编号).
    #[arg(long)]
    ledger: String,
    /// The day the worker was paid (YYYY-MM-DD).
    #[arg(long)]
    paid_date: String,
}

async fn receipt(args: ReceiptArgs) -> Result<(), Failure> {
    let mut relief = connect(&args.client).await?;
    let answer = call(relief.confirm_receipt(pb::ConfirmReceiptRequest {
        payroll: payroll_name(&args.payroll),
        line_number: args.line,
        ledger_reference: args.ledger,
        paid_date: Some(parse_date("--paid-date", &args.paid_date)?),
    }))
    .await?;
    show(
        "bangfu.work_relief.v1.ConfirmReceiptResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ResubmitArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The payroll: projects/{project}/payrolls/{yyyy-mm}, or PROJECT/yyyy-mm.
    payroll: String,
    /// The line's number.
    #[arg(long)]
    line: i32,
    /// What was put right, for the audit log.
    #[arg(long)]
    reason: String,
}

async fn resubmit(args: ResubmitArgs) -> Result<(), Failure> {
    let mut relief = connect(&args.client).await?;
    let answer = call(relief.resubmit_line(pb::ResubmitLineRequest {
        payroll: payroll_name(&args.payroll),
        line_number: args.line,
        reason: args.reason,
    }))
    .await?;
    show("bangfu.work_relief.v1.ResubmitLineResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ArrearsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only projects under this region prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    #[command(flatten)]
    page: PageArgs,
}

async fn arrears(args: ArrearsArgs) -> Result<(), Failure> {
    let prefix = args.region_prefix.clone();
    let mut relief = connect(&args.client).await?;
    list_pages(
        &mut relief,
        args.client.output(),
        &args.page,
        &ARREAR,
        |relief, page_size, page_token| {
            let request = pb::ListArrearsRequest {
                region_prefix: prefix.clone(),
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(relief.list_arrears(request)).await?;
                Ok((page.arrears, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project's id or name.
    project: String,
}

async fn close(args: CloseArgs) -> Result<(), Failure> {
    let name = resource_name("projects", &args.project);
    let mut relief = connect(&args.client).await?;
    let current = call(relief.get_project(pb::GetProjectRequest { name: name.clone() }))
        .await?
        .project
        .ok_or_else(|| Failure::failed("the server answered without the project"))?;
    let answer = call(relief.close_project(pb::CloseProjectRequest {
        name,
        etag: current.etag,
    }))
    .await?;
    show("bangfu.work_relief.v1.CloseProjectResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The region prefix; your whole scope when not given.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// The year.
    #[arg(long)]
    year: i32,
}

async fn stats(args: StatsArgs) -> Result<(), Failure> {
    let mut relief = connect(&args.client).await?;
    let answer = call(relief.get_project_stats(pb::GetProjectStatsRequest {
        region_prefix: args.region_prefix.clone(),
        year: args.year,
        as_of: None,
    }))
    .await?;
    show(
        "bangfu.work_relief.v1.GetProjectStatsResponse",
        &answer,
        args.client.json,
    )
}
