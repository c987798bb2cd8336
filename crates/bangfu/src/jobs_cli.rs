//! `bangfu jobs …`: job matching and labor export (就业帮扶) from the command line, for a county
//! employment-service desk of HR (人社): carriers and their certification, postings (typed in, or
//! imported from the list an employer hands in), seekers, ranked recommendations with their
//! reasons, applications, placements and their follow-ups, export batches, training, recruitment
//! events and the quarterly counts (附件1). Every command takes the same path as the others —
//! parse the flags (a usage error before anything is sent), connect with the token, call, print
//! the server's answer whole (`--json` for scripts).

use std::collections::HashMap;
use std::path::PathBuf;

use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;
use bangfu_proto::jobs::v1::job_matching_service_client::JobMatchingServiceClient;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use crate::Failure;
use crate::client::{Authorized, ClientArgs, PageArgs, authorized, call, list_pages};
use crate::format::{
    ProtoEnum, date_or_dash, enum_filter, enum_label, enum_value, optional_date, parse_date, parse_month, parse_yuan,
    print_table, resource_name,
};
use crate::print::{Columns, Output, show};

const CARRIER: Columns = Columns {
    message: "bangfu.jobs.v1.Carrier",
    columns: &[
        ("carrier", "name"),
        ("kind", "kind"),
        ("certified", "certified"),
        ("target persons", "absorbed_target_persons"),
        ("placements", "active_placements"),
        ("region", "region"),
        ("name", "display_name"),
    ],
};

const POSTING: Columns = Columns {
    message: "bangfu.jobs.v1.Posting",
    columns: &[
        ("posting", "name"),
        ("state", "state"),
        ("occupation", "occupation.code"),
        ("from", "wage_min"),
        ("to", "wage_max"),
        ("places", "headcount"),
        ("placed", "placed"),
        ("until", "valid_until"),
        ("where", "work_region"),
        ("title", "title"),
    ],
};

const SEEKER: Columns = Columns {
    message: "bangfu.jobs.v1.Seeker",
    columns: &[
        ("seeker", "name"),
        ("state", "state"),
        ("priority", "priority"),
        ("labor", "labor_capacity"),
        ("expects", "expected_wage"),
        ("from", "available_from"),
        ("region", "registered_region"),
        ("name", "display_name"),
    ],
};

const PLACEMENT: Columns = Columns {
    message: "bangfu.jobs.v1.Placement",
    columns: &[
        ("placement", "name"),
        ("state", "state"),
        ("from", "start_date"),
        ("wage", "monthly_wage"),
        ("where", "employment_status"),
        ("followed up", "last_follow_up.month"),
        ("posting", "posting"),
        ("name", "display_name"),
    ],
};

const EXPORT_BATCH: Columns = Columns {
    message: "bangfu.jobs.v1.ExportBatch",
    columns: &[
        ("batch", "name"),
        ("state", "state"),
        ("mode", "mode"),
        ("departs", "departure_date"),
        ("from", "origin"),
        ("to", "destination"),
        ("name", "display_name"),
    ],
};

const EVENT: Columns = Columns {
    message: "bangfu.jobs.v1.RecruitmentEvent",
    columns: &[
        ("event", "name"),
        ("day", "event_date"),
        ("kind", "kind"),
        ("reached", "persons_reached"),
        ("placed", "persons_placed"),
        ("region", "region"),
        ("name", "display_name"),
    ],
};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Carriers (就业载体) in your scope, or one carrier whole with its certification.
    Carriers(CarriersArgs),
    /// Record a carrier: an employer, assistance workshop, labor base, brand, cooperative, HR
    /// agency, alliance or station.
    CarrierCreate(CarrierCreateArgs),
    /// Record a department's certification of a carrier (认定), replacing an earlier one.
    Certify(CertifyArgs),
    /// Postings (岗位信息) in your scope, or one posting whole.
    Postings(PostingsArgs),
    /// Record a posting of a carrier.
    PostingCreate(PostingCreateArgs),
    /// Close a posting: it takes no more applications and is no longer recommended.
    PostingClose(PostingCloseArgs),
    /// Record the postings an employer hands in as a workbook or CSV, one per row; every row is
    /// reported, created or why not.
    PostingsImport(PostingsImportArgs),
    /// Seekers (求职登记) in your scope, or one seeker whole.
    Seekers(SeekersArgs),
    /// Register a person of the registry as a seeker.
    SeekerRegister(SeekerRegisterArgs),
    /// Open postings for a seeker, or seekers for a posting, best first, with the reasons.
    Recommend(RecommendArgs),
    /// A seeker applies to an open posting.
    Apply(ApplyArgs),
    /// Accept or reject a submitted application.
    Decide(DecideArgs),
    /// Record a placement (就业安置): a seeker employed on a posting; identity records the
    /// employment.
    Place(PlaceArgs),
    /// Placements in your scope, or one placement whole with its latest follow-up.
    Placements(PlacementsArgs),
    /// Record a follow-up (回访) of a placement: still working there, and the month's income.
    FollowUp(FollowUpArgs),
    /// End a placement; identity's employment record ends with it.
    End(EndArgs),
    /// Organized export batches (有组织劳务输出), or one batch whole with its travellers.
    ExportBatches(ExportBatchesArgs),
    /// Plan an export batch of an agency (点对点劳务输出).
    ExportBatchCreate(ExportBatchCreateArgs),
    /// Add placed persons to a planned export batch.
    ExportBatchAdd(ExportBatchAddArgs),
    /// The batch left: it is closed and its subsidies go to subsidy payment as claims.
    ExportBatchDepart(ExportBatchDepartArgs),
    /// Record a training course (技能培训).
    TrainingCreate(TrainingCreateArgs),
    /// Enrol a person on a training course.
    TrainingEnrol(TrainingEnrolArgs),
    /// Record that a trainee completed with a certificate, or dropped out.
    TrainingComplete(TrainingCompleteArgs),
    /// Recruitment events (招聘活动) held.
    Events(EventsArgs),
    /// Record a recruitment event held.
    EventCreate(EventCreateArgs),
    /// What the quarterly form (附件1) asks of job matching for a region, by county.
    Stats(StatsArgs),
    /// Claim a workshop's on-the-job training subsidy (以工代训) for a month: one claim per target
    /// person working there (or those named), to the carrier.
    ClaimOnJobTraining(ClaimOnJobTrainingArgs),
    /// Claim an agency's service subsidy for a placement after its year of follow-up.
    ClaimAgency(ClaimAgencyArgs),
    /// Claim a certified carrier's one-time award (奖补) under a policy, judged on today: the
    /// policy holds the county's count of absorbed target persons and the amount.
    ClaimAward(ClaimAwardArgs),
    /// The subsidy claims on a carrier, placement or export batch, with where each stands.
    Claims(ClaimsArgs),
    /// The service's parameters (rules by region and date): list them, or set one value.
    #[command(subcommand)]
    Parameter(crate::parameters_cli::ParameterCommand),
}

type Jobs = JobMatchingServiceClient<Authorized>;

async fn connect(client: &ClientArgs) -> Result<Jobs, Failure> {
    Ok(JobMatchingServiceClient::new(authorized(client).await?))
}

fn request_id() -> String {
    bangfu_platform::rows::new_id()
}

pub async fn run(command: JobsCommand) -> Result<(), Failure> {
    match command {
        JobsCommand::Parameter(command) => {
            crate::parameters_cli::run(crate::parameters_cli::Service::Jobs, command).await
        }
        JobsCommand::Carriers(args) => carriers(args).await,
        JobsCommand::CarrierCreate(args) => carrier_create(args).await,
        JobsCommand::Certify(args) => certify(args).await,
        JobsCommand::Postings(args) => postings(args).await,
        JobsCommand::PostingCreate(args) => posting_create(args).await,
        JobsCommand::PostingClose(args) => posting_close(args).await,
        JobsCommand::PostingsImport(args) => postings_import(args).await,
        JobsCommand::Seekers(args) => seekers(args).await,
        JobsCommand::SeekerRegister(args) => seeker_register(args).await,
        JobsCommand::Recommend(args) => recommend(args).await,
        JobsCommand::Apply(args) => apply(args).await,
        JobsCommand::Decide(args) => decide(args).await,
        JobsCommand::Place(args) => place(args).await,
        JobsCommand::Placements(args) => placements(args).await,
        JobsCommand::FollowUp(args) => follow_up(args).await,
        JobsCommand::End(args) => end(args).await,
        JobsCommand::ExportBatches(args) => export_batches(args).await,
        JobsCommand::ExportBatchCreate(args) => export_batch_create(args).await,
        JobsCommand::ExportBatchAdd(args) => export_batch_add(args).await,
        JobsCommand::ExportBatchDepart(args) => export_batch_depart(args).await,
        JobsCommand::TrainingCreate(args) => training_create(args).await,
        JobsCommand::TrainingEnrol(args) => training_enrol(args).await,
        JobsCommand::TrainingComplete(args) => training_complete(args).await,
        JobsCommand::Events(args) => events(args).await,
        JobsCommand::EventCreate(args) => event_create(args).await,
        JobsCommand::Stats(args) => stats(args).await,
        JobsCommand::ClaimOnJobTraining(args) => claim_on_job_training(args).await,
        JobsCommand::ClaimAgency(args) => claim_agency(args).await,
        JobsCommand::ClaimAward(args) => claim_award(args).await,
        JobsCommand::Claims(args) => claims(args).await,
    }
}

/// A division code as the contract carries it; the server fills in the name.
fn region(code: &str) -> Option<common::RegionCode> {
    Some(common::RegionCode {
        code: code.trim().to_string(),
        display_name: String::new(),
    })
}

fn money(flag: &str, yuan: &str) -> Result<Option<common::Money>, Failure> {
    Ok(Some(common::Money {
        fen: parse_yuan(flag, yuan)?,
    }))
}

/// A list as clerks type it: `缝纫、熨烫`, `缝纫,熨烫` or `缝纫；熨烫`; blanks dropped.
fn split_list(text: &str) -> Vec<String> {
    text.split(['、', ',', '，', ';', '；'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// Each value of a comma-separated enum flag as its number on the wire.
fn enum_values<E: ProtoEnum>(flag: &str, values: &[String]) -> Result<Vec<i32>, Failure> {
    values
        .iter()
        .filter(|value| !value.trim().is_empty())
        .map(|value| enum_value::<E>(flag, value))
        .collect()
}

async fn read_carrier(jobs: &mut Jobs, name: &str) -> Result<pb::Carrier, Failure> {
    call(jobs.get_carrier(pb::GetCarrierRequest { name: name.to_string() }))
        .await?
        .carrier
        .ok_or_else(|| Failure::failed("the server answered without the carrier"))
}

async fn read_posting(jobs: &mut Jobs, name: &str) -> Result<pb::Posting, Failure> {
    call(jobs.get_posting(pb::GetPostingRequest { name: name.to_string() }))
        .await?
        .posting
        .ok_or_else(|| Failure::failed("the server answered without the posting"))
}

async fn read_placement(jobs: &mut Jobs, name: &str) -> Result<pb::Placement, Failure> {
    call(jobs.get_placement(pb::GetPlacementRequest { name: name.to_string() }))
        .await?
        .placement
        .ok_or_else(|| Failure::failed("the server answered without the placement"))
}

async fn read_batch(jobs: &mut Jobs, name: &str) -> Result<pb::ExportBatch, Failure> {
    call(jobs.get_export_batch(pb::GetExportBatchRequest { name: name.to_string() }))
        .await?
        .export_batch
        .ok_or_else(|| Failure::failed("the server answered without the export batch"))
}

// ---------------------------------------------------------------------------------------------
// Carriers

#[derive(Debug, Args)]
pub struct CarriersArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this carrier whole (its id or name).
    carrier: Option<String>,
    /// Only carriers registered under this region prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only this kind: employer, assistance-workshop, labor-base, labor-brand,
    /// labor-cooperative, hr-agency, labor-alliance or labor-station.
    #[arg(long)]
    kind: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn carriers(args: CarriersArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    if let Some(carrier) = &args.carrier {
        let answer = call(jobs.get_carrier(pb::GetCarrierRequest {
            name: resource_name("carriers", carrier),
        }))
        .await?;
        return show("bangfu.jobs.v1.GetCarrierResponse", &answer, args.client.json);
    }
    let kind = enum_filter::<pb::CarrierKind>("--kind", args.kind.as_deref())?;
    let prefix = args.region_prefix.clone();
    list_pages(
        &mut jobs,
        args.client.output(),
        &args.page,
        &CARRIER,
        |jobs, page_size, page_token| {
            let request = pb::ListCarriersRequest {
                region_prefix: prefix.clone(),
                kind,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(jobs.list_carriers(request)).await?;
                Ok((page.carriers, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct CarrierCreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The registered name, e.g. 峄城区榴园服装帮扶车间.
    #[arg(long)]
    name: String,
    /// employer, assistance-workshop, labor-base, labor-brand, labor-cooperative, hr-agency,
    /// labor-alliance or labor-station.
    #[arg(long)]
    kind: String,
    /// The unified social credit code (统一社会信用代码), 18 characters.
    #[arg(long)]
    credit_code: String,
    /// Where it is registered: a village, township or county code.
    #[arg(long)]
    region: String,
    /// The contact person.
    #[arg(long)]
    contact: String,
    /// The contact's office phone.
    #[arg(long)]
    phone: String,
    /// It is at a relocation site (易地扶贫搬迁安置点).
    #[arg(long)]
    relocation_site: bool,
}

async fn carrier_create(args: CarrierCreateArgs) -> Result<(), Failure> {
    let carrier = pb::Carrier {
        display_name: args.name,
        kind: enum_value::<pb::CarrierKind>("--kind", &args.kind)?,
        credit_code: args.credit_code.trim().to_string(),
        region: region(&args.region),
        contact_name: args.contact,
        contact_phone: args.phone,
        at_relocation_site: args.relocation_site,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.create_carrier(pb::CreateCarrierRequest {
        carrier: Some(carrier),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.CreateCarrierResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct CertifyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The carrier's id or name.
    carrier: String,
    /// The certifying body, e.g. 枣庄市人力资源和社会保障局.
    #[arg(long)]
    body: String,
    /// The certifying document, e.g. 枣人社字〔2021〕52号.
    #[arg(long)]
    document: String,
    /// The day it was certified (YYYY-MM-DD), not in the future.
    #[arg(long)]
    date: String,
    /// The last day the certification is valid (YYYY-MM-DD); leave it out if it does not lapse.
    #[arg(long)]
    valid_until: Option<String>,
}

async fn certify(args: CertifyArgs) -> Result<(), Failure> {
    let name = resource_name("carriers", &args.carrier);
    let certification = pb::CarrierCertification {
        certifying_body: args.body,
        document: args.document,
        certify_date: Some(parse_date("--date", &args.date)?),
        valid_until: optional_date("--valid-until", args.valid_until.as_deref())?,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let current = read_carrier(&mut jobs, &name).await?;
    let answer = call(jobs.certify_carrier(pb::CertifyCarrierRequest {
        name,
        certification: Some(certification),
        etag: current.etag,
    }))
    .await?;
    show("bangfu.jobs.v1.CertifyCarrierResponse", &answer, args.client.json)
}

// ---------------------------------------------------------------------------------------------
// Postings

#[derive(Debug, Args)]
pub struct PostingsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this posting whole (its id or name).
    posting: Option<String>,
    /// Only postings whose work place is under this region prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only this carrier's postings (its id or name).
    #[arg(long)]
    carrier: Option<String>,
    /// Only occupations whose code starts with this, e.g. 6-05.
    #[arg(long, default_value = "")]
    occupation_prefix: String,
    /// Only open, closed or expired ones.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn postings(args: PostingsArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    if let Some(posting) = &args.posting {
        let answer = call(jobs.get_posting(pb::GetPostingRequest {
            name: resource_name("postings", posting),
        }))
        .await?;
        return show("bangfu.jobs.v1.GetPostingResponse", &answer, args.client.json);
    }
    let state = enum_filter::<pb::PostingState>("--state", args.state.as_deref())?;
    let carrier = args
        .carrier
        .as_deref()
        .map(|c| resource_name("carriers", c))
        .unwrap_or_default();
    let (prefix, occupation) = (args.region_prefix.clone(), args.occupation_prefix.trim().to_string());
    list_pages(
        &mut jobs,
        args.client.output(),
        &args.page,
        &POSTING,
        |jobs, page_size, page_token| {
            let request = pb::ListPostingsRequest {
                region_prefix: prefix.clone(),
                carrier: carrier.clone(),
                occupation_code_prefix: occupation.clone(),
                state,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(jobs.list_postings(request)).await?;
                Ok((page.postings, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct PostingCreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The employer: a carrier's id or name.
    #[arg(long)]
    carrier: String,
    /// The job's title, e.g. 服装缝纫工.
    #[arg(long)]
    title: String,
    /// The occupation's code in the national classification (国家职业分类大典), e.g. 6-05-01-01.
    #[arg(long)]
    occupation_code: String,
    /// The occupation's name, e.g. 缝纫工.
    #[arg(long)]
    occupation_name: String,
    /// Where the work is: a division code (village, township, county, city or province).
    #[arg(long)]
    region: String,
    /// The lowest monthly wage offered, in yuan.
    #[arg(long)]
    wage_min: String,
    /// The highest monthly wage offered, in yuan.
    #[arg(long)]
    wage_max: String,
    /// How many people are wanted.
    #[arg(long)]
    headcount: i32,
    /// The contract length in months.
    #[arg(long)]
    contract_months: i32,
    /// Working hours per week.
    #[arg(long)]
    weekly_hours: i32,
    /// The labor capacities the job can take, e.g. full,weak,half (full only when not given).
    #[arg(long, value_delimiter = ',')]
    accept: Vec<String>,
    /// The youngest age accepted (16 when not given).
    #[arg(long, default_value_t = 0)]
    min_age: i32,
    /// The oldest age accepted (65 when not given).
    #[arg(long, default_value_t = 0)]
    max_age: i32,
    /// Skills the job asks for, e.g. 缝纫、熨烫 or 缝纫,叉车证.
    #[arg(long)]
    skills: Option<String>,
    /// Accommodation is provided.
    #[arg(long)]
    accommodation: bool,
    /// Meals are provided.
    #[arg(long)]
    meals: bool,
    /// The last day it takes applications (YYYY-MM-DD), not before today.
    #[arg(long)]
    valid_until: String,
    /// Share it across regions, with the partner province through the exchange (跨区域共享).
    #[arg(long)]
    shared: bool,
}

async fn posting_create(args: PostingCreateArgs) -> Result<(), Failure> {
    let posting = pb::Posting {
        carrier: resource_name("carriers", &args.carrier),
        title: args.title,
        occupation: Some(pb::Occupation {
            code: args.occupation_code.trim().to_string(),
            display_name: args.occupation_name,
        }),
        work_region: region(&args.region),
        wage_min: money("--wage-min", &args.wage_min)?,
        wage_max: money("--wage-max", &args.wage_max)?,
        headcount: args.headcount,
        contract_months: args.contract_months,
        weekly_hours: args.weekly_hours,
        accepted_labor_capacities: enum_values::<common::LaborCapacity>("--accept", &args.accept)?,
        min_age: args.min_age,
        max_age: args.max_age,
        skills: args.skills.as_deref().map(split_list).unwrap_or_default(),
        accommodation: args.accommodation,
        meals: args.meals,
        valid_until: Some(parse_date("--valid-until", &args.valid_until)?),
        shared_across_regions: args.shared,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.create_posting(pb::CreatePostingRequest {
        posting: Some(posting),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.CreatePostingResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct PostingCloseArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The posting's id or name.
    posting: String,
    /// Why, e.g. 已招满.
    #[arg(long)]
    reason: String,
}

async fn posting_close(args: PostingCloseArgs) -> Result<(), Failure> {
    let name = resource_name("postings", &args.posting);
    let mut jobs = connect(&args.client).await?;
    let current = read_posting(&mut jobs, &name).await?;
    let answer = call(jobs.close_posting(pb::ClosePostingRequest {
        name,
        reason: args.reason,
        etag: current.etag,
    }))
    .await?;
    show("bangfu.jobs.v1.ClosePostingResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct PostingsImportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The employer's list: a workbook (.xlsx, .xls) or CSV in UTF-8 or GBK, a row per posting
    /// under a header row naming the columns, in Chinese or English: 岗位名称 (title), 职业编码
    /// (occupation_code), 职业名称 (occupation_name), 工作地点 (work_region, a division code),
    /// 最低月薪 and 最高月薪 (wage_min, wage_max, in yuan), 招聘人数 (headcount), 合同期限
    /// (contract_months), 每周工时 (weekly_hours), 有效期至 (valid_until, YYYY-MM-DD), and if
    /// wanted 技能要求 (skills, separated by 、 , or ；) and 跨区域共享 (shared, 是 or 否).
    file: PathBuf,
    /// The employer: a carrier already recorded (its id or name).
    #[arg(long)]
    carrier: String,
    /// The workbook's sheet; the first when not given.
    #[arg(long)]
    sheet: Option<String>,
}

/// The columns of an employer's postings list: the Chinese heading, the English one, and
/// whether a list must have it.
const POSTING_COLUMNS: [(&str, &str, bool); 12] = [
    ("岗位名称", "title", true),
    ("职业编码", "occupation_code", true),
    ("职业名称", "occupation_name", true),
    ("工作地点", "work_region", true),
    ("最低月薪", "wage_min", true),
    ("最高月薪", "wage_max", true),
    ("招聘人数", "headcount", true),
    ("合同期限", "contract_months", true),
    ("每周工时", "weekly_hours", true),
    ("技能要求", "skills", false),
    ("有效期至", "valid_until", true),
    ("跨区域共享", "shared", false),
];
const TITLE: usize = 0;
const OCCUPATION_CODE: usize = 1;
const OCCUPATION_NAME: usize = 2;
const WORK_REGION: usize = 3;
const WAGE_MIN: usize = 4;
const WAGE_MAX: usize = 5;
const HEADCOUNT: usize = 6;
const CONTRACT_MONTHS: usize = 7;
const WEEKLY_HOURS: usize = 8;
const SKILLS: usize = 9;
const VALID_UNTIL: usize = 10;
const SHARED: usize = 11;

/// A heading as compared: `最低月薪（元）` is `最低月薪`, `Wage Min` is `wage_min`.
fn heading(text: &str) -> String {
    let text = text.trim().trim_start_matches('\u{feff}');
    let text = text.split(['(', '（']).next().unwrap_or_default();
    text.trim().to_lowercase().replace([' ', '-'], "_")
}

/// A row of an employer's list: its line in the sheet, and the posting it asks for or why it
/// cannot be one.
type PostingRow = (usize, Result<pb::Posting, String>);

/// Each row of the list (numbered as the sheet counts its lines) as a posting of `carrier`, or
/// why it cannot be one; a list without its header or a required column is refused whole.
fn posting_rows(table: &[Vec<String>], carrier: &str) -> Result<Vec<PostingRow>, String> {
    // A title line may stand above the header, as on many forms.
    let header_at = table
        .iter()
        .take(10)
        .position(|row| {
            row.iter()
                .any(|cell| heading(cell) == POSTING_COLUMNS[TITLE].0 || heading(cell) == POSTING_COLUMNS[TITLE].1)
        })
        .ok_or("no header row naming the 岗位名称 (title) column")?;
    let header: Vec<String> = table[header_at].iter().map(|cell| heading(cell)).collect();
    let at: Vec<Option<usize>> = POSTING_COLUMNS
        .iter()
        .map(|(chinese, english, _)| header.iter().position(|h| h == chinese || h == english))
        .collect();
    let missing: Vec<String> = POSTING_COLUMNS
        .iter()
        .zip(&at)
        .filter(|((_, _, required), at)| *required && at.is_none())
        .map(|((chinese, english, _), _)| format!("{chinese} ({english})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no {} column", missing.join(", no ")));
    }
    let rows: Vec<PostingRow> = table
        .iter()
        .enumerate()
        .skip(header_at + 1)
        .filter(|(_, record)| record.iter().any(|cell| !cell.trim().is_empty()))
        .map(|(index, record)| (index + 1, posting_from_row(record, &at, carrier)))
        .collect();
    if rows.is_empty() {
        return Err("no postings under the header".to_string());
    }
    Ok(rows)
}

fn posting_from_row(record: &[String], at: &[Option<usize>], carrier: &str) -> Result<pb::Posting, String> {
    let cell = |column: usize| at[column].and_then(|i| record.get(i)).map_or("", |c| c.trim());
    let label = |column: usize| format!("{} ({})", POSTING_COLUMNS[column].0, POSTING_COLUMNS[column].1);
    // "3人", "12个月", "44小时" as the numbers they are.
    let whole = |column: usize| -> Result<i32, String> {
        let text = cell(column);
        text.trim_end_matches(|c: char| "人名个月小时".contains(c))
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("{} {text:?} is not a whole number", label(column)))
    };
    let yuan = |column: usize| -> Result<Option<common::Money>, String> {
        let fen = parse_yuan(&label(column), cell(column).trim_end_matches('元').trim()).map_err(|f| f.message)?;
        Ok(Some(common::Money { fen }))
    };
    Ok(pb::Posting {
        carrier: carrier.to_string(),
        title: cell(TITLE).to_string(),
        occupation: Some(pb::Occupation {
            code: cell(OCCUPATION_CODE).to_string(),
            display_name: cell(OCCUPATION_NAME).to_string(),
        }),
        work_region: region(cell(WORK_REGION)),
        wage_min: yuan(WAGE_MIN)?,
        wage_max: yuan(WAGE_MAX)?,
        headcount: whole(HEADCOUNT)?,
        contract_months: whole(CONTRACT_MONTHS)?,
        weekly_hours: whole(WEEKLY_HOURS)?,
        skills: split_list(cell(SKILLS)),
        valid_until: Some(sheet_date(&label(VALID_UNTIL), cell(VALID_UNTIL))?),
        shared_across_regions: yes_no(&label(SHARED), cell(SHARED))?,
        ..Default::default()
    })
}

/// A date cell: `2027-12-31`, `2027/12/31`, `2027年12月31日`, or the serial number a workbook
/// keeps a date cell as (days since 1899-12-30).
fn sheet_date(label: &str, text: &str) -> Result<common::Date, String> {
    if let Ok(serial) = text.parse::<i64>()
        && (20_000..=100_000).contains(&serial)
        && let Some(day) = time::macros::date!(1899 - 12 - 30).checked_add(time::Duration::days(serial))
    {
        return Ok(common::Date {
            year: day.year(),
            month: i32::from(u8::from(day.month())),
            day: i32::from(day.day()),
        });
    }
    let day = text.split([' ', 'T']).next().unwrap_or_default();
    let day = day.replace(['/', '.', '年', '月'], "-").replace('日', "");
    parse_date(label, &day).map_err(|f| f.message)
}

/// 是 or 否 (yes/no, true/false, 1/0); empty is 否.
fn yes_no(label: &str, text: &str) -> Result<bool, String> {
    match text.trim().to_lowercase().as_str() {
        "" | "否" | "no" | "n" | "false" | "0" => Ok(false),
        "是" | "yes" | "y" | "true" | "1" => Ok(true),
        _ => Err(format!("{label} {text:?} is neither 是 nor 否")),
    }
}

/// A request id from what the row asks for: the same row imported again (the file run a second
/// time once its bad rows are fixed) answers with the posting made the first time.
fn row_request_id(posting: &pb::Posting) -> String {
    let digest = Sha256::digest(prost::Message::encode_to_vec(posting));
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// A refusal on one line: the server's message and its field notes joined.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn postings_import(args: PostingsImportArgs) -> Result<(), Failure> {
    let carrier = resource_name("carriers", &args.carrier);
    // Shared with `relief attendance`: CSV (UTF-8 or GBK) or a workbook's sheet as text cells.
    let table = crate::table_file::read_table(&args.file, args.sheet.as_deref())?;
    let rows = posting_rows(&table, &carrier).map_err(|e| Failure::usage(format!("{}: {e}", args.file.display())))?;
    let mut jobs = connect(&args.client).await?;
    let (total, mut failed) = (rows.len(), 0usize);
    let mut seen: HashMap<String, usize> = HashMap::new();
    // One JSON array of the rows' outcomes (or a line a row with --jsonl).
    let output = args.client.output();
    let mut results = Vec::new();
    for (row, parsed) in rows {
        let outcome = match parsed {
            Err(why) => Err(why),
            Ok(posting) => {
                let id = row_request_id(&posting);
                if let Some(first) = seen.get(&id) {
                    Err(format!("the same posting as row {first}; not created twice"))
                } else {
                    seen.insert(id.clone(), row);
                    call(jobs.create_posting(pb::CreatePostingRequest {
                        posting: Some(posting),
                        request_id: id,
                    }))
                    .await
                    .map_err(|failure| one_line(&failure.message))
                    .and_then(|answer| {
                        answer
                            .posting
                            .ok_or_else(|| "the server answered without the posting".to_string())
                    })
                }
            }
        };
        let result = match outcome {
            Ok(posting) => {
                if !output.is_json() {
                    say!("row {row}: {} {}", posting.name, posting.title);
                }
                let value = crate::print::json(&crate::print::reflect("bangfu.jobs.v1.Posting", &posting)?);
                serde_json::json!({ "row": row, "posting": value })
            }
            Err(why) => {
                failed += 1;
                if !output.is_json() {
                    say!("row {row}: not created: {why}");
                }
                serde_json::json!({ "row": row, "error": why })
            }
        };
        match output {
            Output::JsonLines => say!("{result}"),
            Output::Json => results.push(result),
            Output::Text => {}
        }
    }
    if output == Output::Json {
        say!("{:#}", serde_json::Value::Array(results));
    }
    if failed > 0 {
        return Err(Failure::failed(format!(
            "{failed} of {total} rows were not created; fix them and import the file again (rows created are not created twice)"
        )));
    }
    if !output.is_json() {
        say!("all {total} rows recorded as postings");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Seekers and matching

#[derive(Debug, Args)]
pub struct SeekersArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this seeker whole (its id or name).
    seeker: Option<String>,
    /// Only seekers registered under this region prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only active (looking), placed or withdrawn ones.
    #[arg(long)]
    state: Option<String>,
    /// Only target persons of this priority or higher: other-target, poverty-alleviated or
    /// monitored-at-risk.
    #[arg(long)]
    min_priority: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn seekers(args: SeekersArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    if let Some(seeker) = &args.seeker {
        let answer = call(jobs.get_seeker(pb::GetSeekerRequest {
            name: resource_name("seekers", seeker),
        }))
        .await?;
        return show("bangfu.jobs.v1.GetSeekerResponse", &answer, args.client.json);
    }
    let state = enum_filter::<pb::SeekerState>("--state", args.state.as_deref())?;
    let min_priority = enum_filter::<pb::TargetPriority>("--min-priority", args.min_priority.as_deref())?;
    let prefix = args.region_prefix.clone();
    list_pages(
        &mut jobs,
        args.client.output(),
        &args.page,
        &SEEKER,
        |jobs, page_size, page_token| {
            let request = pb::ListSeekersRequest {
                region_prefix: prefix.clone(),
                state,
                min_priority,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(jobs.list_seekers(request)).await?;
                Ok((page.seekers, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct SeekerRegisterArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person's id or name in identity.
    #[arg(long)]
    person: String,
    /// Where they are willing to work: local (县内), out-of-county (省内县外), out-of-province
    /// (省外); several separated by commas.
    #[arg(long, value_delimiter = ',', required = true)]
    intentions: Vec<String>,
    /// The monthly wage they expect, in yuan.
    #[arg(long)]
    expected_wage: String,
    /// The first day they can start (YYYY-MM-DD).
    #[arg(long)]
    available_from: String,
    /// Their skills, e.g. 缝纫、熨烫 or 缝纫,叉车证.
    #[arg(long)]
    skills: Option<String>,
    /// Places they want to work in, as division-code prefixes, e.g. 3704,5001.
    #[arg(long, value_delimiter = ',')]
    destinations: Vec<String>,
    /// The labor-cooperation route they are on, sending and receiving province, e.g. 50-37
    /// (Chongqing to Shandong).
    #[arg(long)]
    route: Option<String>,
}

async fn seeker_register(args: SeekerRegisterArgs) -> Result<(), Failure> {
    let route = match args.route.as_deref() {
        None => None,
        Some(text) => {
            let (origin, destination) = text
                .split_once(['-', '>', '→'])
                .ok_or_else(|| Failure::usage(format!("--route {text:?} is not like 50-37 (from-to provinces)")))?;
            Some(pb::CooperationRoute {
                origin_province: origin.trim().to_string(),
                destination_province: destination.trim_start_matches('>').trim().to_string(),
            })
        }
    };
    let seeker = pb::Seeker {
        person: resource_name("persons", &args.person),
        skills: args.skills.as_deref().map(split_list).unwrap_or_default(),
        intentions: enum_values::<pb::WorkIntention>("--intentions", &args.intentions)?,
        destination_regions: args
            .destinations
            .iter()
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .collect(),
        expected_wage: money("--expected-wage", &args.expected_wage)?,
        available_from: Some(parse_date("--available-from", &args.available_from)?),
        route,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.register_seeker(pb::RegisterSeekerRequest {
        seeker: Some(seeker),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.RegisterSeekerResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Open postings for this seeker (its id or name).
    #[arg(long, conflicts_with = "posting", required_unless_present = "posting")]
    seeker: Option<String>,
    /// Active seekers for this open posting (its id or name).
    #[arg(long)]
    posting: Option<String>,
    /// With --posting: only seekers registered under this region prefix.
    #[arg(long, requires = "posting")]
    region_prefix: Option<String>,
    /// How many to show, up to 100 (0: 20).
    #[arg(long, default_value_t = 0)]
    size: i32,
}

/// A recommendation's reasons, compactly: `distance 2400/3000, skills 1000/2000`, each factor's
/// points out of its weight.
fn reasons_text(reasons: &[pb::MatchReason]) -> String {
    reasons
        .iter()
        .map(|r| {
            format!(
                "{} {}/{}",
                enum_label::<pb::MatchFactor>(r.factor),
                r.points,
                r.weight_bp
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn recommend(args: RecommendArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    let (as_of, header, rows) = match (&args.seeker, &args.posting) {
        (Some(seeker), _) => {
            let answer = call(jobs.recommend_postings(pb::RecommendPostingsRequest {
                seeker: resource_name("seekers", seeker),
                page_size: args.size,
            }))
            .await?;
            if args.client.json {
                return show("bangfu.jobs.v1.RecommendPostingsResponse", &answer, true);
            }
            let rows: Vec<Vec<String>> = answer
                .recommendations
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let posting = r.posting.clone().unwrap_or_default();
                    vec![
                        (i + 1).to_string(),
                        r.score.to_string(),
                        posting.name,
                        posting.title,
                        reasons_text(&r.reasons),
                    ]
                })
                .collect();
            (answer.as_of, ["rank", "score", "posting", "title", "reasons"], rows)
        }
        (None, Some(posting)) => {
            let answer = call(jobs.recommend_seekers(pb::RecommendSeekersRequest {
                posting: resource_name("postings", posting),
                region_prefix: args.region_prefix.clone().unwrap_or_default(),
                page_size: args.size,
            }))
            .await?;
            if args.client.json {
                return show("bangfu.jobs.v1.RecommendSeekersResponse", &answer, true);
            }
            let rows: Vec<Vec<String>> = answer
                .recommendations
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let seeker = r.seeker.clone().unwrap_or_default();
                    vec![
                        (i + 1).to_string(),
                        r.score.to_string(),
                        seeker.name,
                        seeker.display_name,
                        reasons_text(&r.reasons),
                    ]
                })
                .collect();
            (answer.as_of, ["rank", "score", "seeker", "name", "reasons"], rows)
        }
        (None, None) => return Err(Failure::usage("give --seeker or --posting")),
    };
    say!(
        "ranked as of {}; reasons are a factor's points out of its weight",
        date_or_dash(as_of.as_ref())
    );
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    print_table(&header, &rows);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Applications and placements

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The open posting (its id or name).
    #[arg(long)]
    posting: String,
    /// The seeker applying (its id or name).
    #[arg(long)]
    seeker: String,
}

async fn apply(args: ApplyArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.submit_application(pb::SubmitApplicationRequest {
        application: Some(pb::Application {
            posting: resource_name("postings", &args.posting),
            seeker: resource_name("seekers", &args.seeker),
            ..Default::default()
        }),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.SubmitApplicationResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The application's id or name.
    application: String,
    /// The employer takes the seeker on; a placement may follow.
    #[arg(long, conflicts_with = "reject")]
    accept: bool,
    /// The employer does not take the seeker on (give --note).
    #[arg(long, requires = "note")]
    reject: bool,
    /// Why; needed for a rejection.
    #[arg(long, default_value = "")]
    note: String,
    /// The application's posting, to find the application faster among many.
    #[arg(long)]
    posting: Option<String>,
}

/// The submitted application by that name, as read now, for its etag: the contract has no
/// GetApplication, so the submitted applications the caller sees are read page by page.
async fn find_application(jobs: &mut Jobs, name: &str, posting: &str) -> Result<pb::Application, Failure> {
    let mut page_token = String::new();
    loop {
        let page = call(jobs.list_applications(pb::ListApplicationsRequest {
            posting: posting.to_string(),
            state: pb::ApplicationState::Submitted as i32,
            page_size: 1000,
            page_token,
            ..Default::default()
        }))
        .await?;
        if let Some(found) = page.applications.into_iter().find(|a| a.name == name) {
            return Ok(found);
        }
        if page.next_page_token.is_empty() {
            return Err(Failure::failed(format!(
                "{name} is not a submitted application you may see (decided already?)"
            )));
        }
        page_token = page.next_page_token;
    }
}

async fn decide(args: DecideArgs) -> Result<(), Failure> {
    if args.accept == args.reject {
        return Err(Failure::usage("give one of --accept or --reject"));
    }
    let decision = if args.accept {
        pb::ApplicationState::Accepted
    } else {
        pb::ApplicationState::Rejected
    };
    let name = resource_name("applications", &args.application);
    let posting = args
        .posting
        .as_deref()
        .map(|p| resource_name("postings", p))
        .unwrap_or_default();
    let mut jobs = connect(&args.client).await?;
    let current = find_application(&mut jobs, &name, &posting).await?;
    let answer = call(jobs.decide_application(pb::DecideApplicationRequest {
        name,
        decision: decision as i32,
        note: args.note,
        etag: current.etag,
    }))
    .await?;
    show("bangfu.jobs.v1.DecideApplicationResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct PlaceArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The posting the person is employed on (its id or name).
    #[arg(long)]
    posting: String,
    /// The seeker employed (its id or name).
    #[arg(long)]
    seeker: String,
    /// The accepted application it follows (its id or name), if there was one.
    #[arg(long)]
    application: Option<String>,
    /// The first day of work (YYYY-MM-DD), not before the posting opened.
    #[arg(long)]
    start: String,
    /// The contract length in months.
    #[arg(long)]
    contract_months: i32,
    /// The monthly wage in the contract, in yuan.
    #[arg(long)]
    wage: String,
    /// The employer pays social insurance.
    #[arg(long)]
    social_insurance: bool,
}

async fn place(args: PlaceArgs) -> Result<(), Failure> {
    let placement = pb::Placement {
        posting: resource_name("postings", &args.posting),
        seeker: resource_name("seekers", &args.seeker),
        application: args
            .application
            .as_deref()
            .map(|a| resource_name("applications", a))
            .unwrap_or_default(),
        start_date: Some(parse_date("--start", &args.start)?),
        contract_months: args.contract_months,
        monthly_wage: money("--wage", &args.wage)?,
        social_insurance: args.social_insurance,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.record_placement(pb::RecordPlacementRequest {
        placement: Some(placement),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.RecordPlacementResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct PlacementsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this placement whole (its id or name).
    placement: Option<String>,
    /// Only placements whose work place is under this region prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only this carrier's (its id or name).
    #[arg(long)]
    carrier: Option<String>,
    /// Only this posting's (its id or name).
    #[arg(long)]
    posting: Option<String>,
    /// Only active or ended ones.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn placements(args: PlacementsArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    if let Some(placement) = &args.placement {
        let answer = call(jobs.get_placement(pb::GetPlacementRequest {
            name: resource_name("placements", placement),
        }))
        .await?;
        return show("bangfu.jobs.v1.GetPlacementResponse", &answer, args.client.json);
    }
    let state = enum_filter::<pb::PlacementState>("--state", args.state.as_deref())?;
    let carrier = args
        .carrier
        .as_deref()
        .map(|c| resource_name("carriers", c))
        .unwrap_or_default();
    let posting = args
        .posting
        .as_deref()
        .map(|p| resource_name("postings", p))
        .unwrap_or_default();
    let prefix = args.region_prefix.clone();
    list_pages(
        &mut jobs,
        args.client.output(),
        &args.page,
        &PLACEMENT,
        |jobs, page_size, page_token| {
            let request = pb::ListPlacementsRequest {
                region_prefix: prefix.clone(),
                carrier: carrier.clone(),
                posting: posting.clone(),
                state,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(jobs.list_placements(request)).await?;
                Ok((page.placements, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct FollowUpArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The placement's id or name.
    placement: String,
    /// The month the visit or call is about (YYYY-MM).
    #[arg(long)]
    month: String,
    /// The month's income from work, in yuan (0 if none).
    #[arg(long)]
    income: String,
    /// The person no longer works there (this ends nothing by itself: use `jobs end`).
    #[arg(long)]
    left: bool,
    /// What the visit found.
    #[arg(long, default_value = "")]
    note: String,
}

async fn follow_up(args: FollowUpArgs) -> Result<(), Failure> {
    let follow_up = pb::FollowUp {
        month: Some(parse_month("--month", &args.month)?),
        still_employed: !args.left,
        income: money("--income", &args.income)?,
        note: args.note,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.record_follow_up(pb::RecordFollowUpRequest {
        parent: resource_name("placements", &args.placement),
        follow_up: Some(follow_up),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.RecordFollowUpResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct EndArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The placement's id or name.
    placement: String,
    /// The last day of work (YYYY-MM-DD), not in the future.
    #[arg(long)]
    date: String,
    /// Why: contract-ended, resigned, dismissed or other (say what in --note).
    #[arg(long)]
    reason: String,
    /// What happened; needed for other.
    #[arg(long, default_value = "")]
    note: String,
}

async fn end(args: EndArgs) -> Result<(), Failure> {
    let name = resource_name("placements", &args.placement);
    let end_date = parse_date("--date", &args.date)?;
    let reason = enum_value::<pb::PlacementEndReason>("--reason", &args.reason)?;
    let mut jobs = connect(&args.client).await?;
    let current = read_placement(&mut jobs, &name).await?;
    let answer = call(jobs.end_placement(pb::EndPlacementRequest {
        name,
        end_date: Some(end_date),
        reason,
        note: args.note,
        etag: current.etag,
    }))
    .await?;
    show("bangfu.jobs.v1.EndPlacementResponse", &answer, args.client.json)
}

// ---------------------------------------------------------------------------------------------
// Export batches

#[derive(Debug, Args)]
pub struct ExportBatchesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this batch whole with its travellers and their claims (its id or name).
    batch: Option<String>,
    /// Only batches leaving from under this region prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only planned or departed ones.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn export_batches(args: ExportBatchesArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    if let Some(batch) = &args.batch {
        let answer = call(jobs.get_export_batch(pb::GetExportBatchRequest {
            name: resource_name("exportBatches", batch),
        }))
        .await?;
        return show("bangfu.jobs.v1.GetExportBatchResponse", &answer, args.client.json);
    }
    let state = enum_filter::<pb::ExportBatchState>("--state", args.state.as_deref())?;
    let prefix = args.region_prefix.clone();
    list_pages(
        &mut jobs,
        args.client.output(),
        &args.page,
        &EXPORT_BATCH,
        |jobs, page_size, page_token| {
            let request = pb::ListExportBatchesRequest {
                region_prefix: prefix.clone(),
                state,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(jobs.list_export_batches(request)).await?;
                Ok((page.export_batches, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct ExportBatchCreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// What you call it, e.g. 2025年春风行动 市中区—苏州 第3批.
    #[arg(long)]
    name: String,
    /// The organizing HR agency, labor cooperative, station or alliance (a carrier's id or name).
    #[arg(long)]
    agency: String,
    /// How it travels: bus (chartered), train or air.
    #[arg(long)]
    mode: String,
    /// Where it leaves from: a division code in your scope.
    #[arg(long)]
    origin: String,
    /// Where it goes: a division code.
    #[arg(long)]
    destination: String,
    /// The planned departure (YYYY-MM-DD), not before today.
    #[arg(long)]
    departure: String,
    /// The transport subsidy's policy code in subsidy payment's catalog, e.g.
    /// cq-transport-cross-province.
    #[arg(long, default_value = "")]
    transport_policy: String,
    /// The agency service subsidy's policy code, e.g. zz-agency-2021.
    #[arg(long, default_value = "")]
    agency_policy: String,
}

async fn export_batch_create(args: ExportBatchCreateArgs) -> Result<(), Failure> {
    let batch = pb::ExportBatch {
        display_name: args.name,
        agency: resource_name("carriers", &args.agency),
        mode: enum_value::<pb::TravelMode>("--mode", &args.mode)?,
        origin: region(&args.origin),
        destination: region(&args.destination),
        departure_date: Some(parse_date("--departure", &args.departure)?),
        transport_policy: args.transport_policy.trim().to_string(),
        agency_policy: args.agency_policy.trim().to_string(),
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.create_export_batch(pb::CreateExportBatchRequest {
        export_batch: Some(batch),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.CreateExportBatchResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ExportBatchAddArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The planned batch's id or name.
    batch: String,
    /// A placed person travelling: the placement's id or name, and after a colon the one-way
    /// fare paid for them in yuan (needed when the batch names a transport policy), e.g.
    /// --traveller placements/ab12:350. Give it once per person.
    #[arg(long = "traveller", required = true)]
    travellers: Vec<String>,
}

/// `PLACEMENT[:FARE_YUAN]` as a traveller.
fn traveller(text: &str) -> Result<pb::Traveller, Failure> {
    let (placement, fare) = match text.rsplit_once(':') {
        Some((placement, fare)) => (placement, Some(fare)),
        None => (text, None),
    };
    Ok(pb::Traveller {
        placement: resource_name("placements", placement),
        fare: fare.map(|fare| money("--traveller", fare)).transpose()?.flatten(),
        ..Default::default()
    })
}

async fn export_batch_add(args: ExportBatchAddArgs) -> Result<(), Failure> {
    let name = resource_name("exportBatches", &args.batch);
    let travellers = args
        .travellers
        .iter()
        .map(|text| traveller(text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut jobs = connect(&args.client).await?;
    let current = read_batch(&mut jobs, &name).await?;
    let answer = call(jobs.add_travellers(pb::AddTravellersRequest {
        name,
        travellers,
        etag: current.etag,
    }))
    .await?;
    show("bangfu.jobs.v1.AddTravellersResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ExportBatchDepartArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
    /// The day it left (YYYY-MM-DD), not in the future.
    #[arg(long)]
    date: String,
}

async fn export_batch_depart(args: ExportBatchDepartArgs) -> Result<(), Failure> {
    let name = resource_name("exportBatches", &args.batch);
    let departed_date = parse_date("--date", &args.date)?;
    let mut jobs = connect(&args.client).await?;
    let current = read_batch(&mut jobs, &name).await?;
    let answer = call(jobs.depart_export_batch(pb::DepartExportBatchRequest {
        name,
        departed_date: Some(departed_date),
        etag: current.etag,
    }))
    .await?;
    show("bangfu.jobs.v1.DepartExportBatchResponse", &answer, args.client.json)
}

// ---------------------------------------------------------------------------------------------
// Training

#[derive(Debug, Args)]
pub struct TrainingCreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The course's title, e.g. 2025年第2期家政服务员培训班.
    #[arg(long)]
    name: String,
    /// The training provider (培训机构).
    #[arg(long)]
    provider: String,
    /// The occupation trained for: its code in the national classification, e.g. 4-10-01-01.
    #[arg(long)]
    occupation_code: String,
    /// The occupation's name, e.g. 家政服务员.
    #[arg(long)]
    occupation_name: String,
    /// Where it is held: a division code in your scope.
    #[arg(long)]
    region: String,
    /// The first day (YYYY-MM-DD).
    #[arg(long)]
    start: String,
    /// The last day (YYYY-MM-DD).
    #[arg(long)]
    end: String,
    /// Training days, not more than the days from --start to --end.
    #[arg(long)]
    days: i32,
    /// The place, e.g. 市中区职业培训中心.
    #[arg(long)]
    place: String,
    /// The provider's unified social credit code, to which the training subsidy is paid.
    #[arg(long, default_value = "")]
    provider_credit_code: String,
    /// The policy each completion's training subsidy is claimed under (paid to the provider),
    /// e.g. cy-training-subsidy-2021; needs --provider-credit-code and --training-subsidy.
    #[arg(long, default_value = "")]
    training_subsidy_policy: String,
    /// The training subsidy per trainee the subsidy project approved, in yuan.
    #[arg(long, default_value = "")]
    training_subsidy: String,
    /// The policy each completion's living allowance is claimed under (paid to the trainee),
    /// e.g. cy-training-living-2021.
    #[arg(long, default_value = "")]
    living_allowance_policy: String,
}

async fn training_create(args: TrainingCreateArgs) -> Result<(), Failure> {
    let course = pb::TrainingCourse {
        display_name: args.name,
        provider: args.provider,
        occupation: Some(pb::Occupation {
            code: args.occupation_code.trim().to_string(),
            display_name: args.occupation_name,
        }),
        region: region(&args.region),
        schedule: Some(common::Period {
            first_day: Some(parse_date("--start", &args.start)?),
            last_day: Some(parse_date("--end", &args.end)?),
        }),
        days: args.days,
        place: args.place,
        provider_credit_code: args.provider_credit_code,
        training_subsidy_policy: args.training_subsidy_policy,
        training_subsidy_standard: if args.training_subsidy.trim().is_empty() {
            None
        } else {
            money("--training-subsidy", &args.training_subsidy)?
        },
        living_allowance_policy: args.living_allowance_policy,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.create_training_course(pb::CreateTrainingCourseRequest {
        training_course: Some(course),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.CreateTrainingCourseResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct TrainingEnrolArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The course's id or name.
    course: String,
    /// The person's id or name in identity.
    #[arg(long)]
    person: String,
}

async fn training_enrol(args: TrainingEnrolArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.enrol_trainee(pb::EnrolTraineeRequest {
        parent: resource_name("trainingCourses", &args.course),
        enrolment: Some(pb::TraineeEnrolment {
            person: resource_name("persons", &args.person),
            ..Default::default()
        }),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.jobs.v1.EnrolTraineeResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct TrainingCompleteArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The enrolment: trainingCourses/{course}/enrolments/{enrolment}.
    enrolment: String,
    /// The trainee completed: the number of the certificate earned (职业资格或技能等级证书).
    #[arg(long, conflicts_with = "dropped", required_unless_present = "dropped")]
    certificate: Option<String>,
    /// The trainee left without completing.
    #[arg(long)]
    dropped: bool,
}

async fn training_complete(args: TrainingCompleteArgs) -> Result<(), Failure> {
    let outcome = if args.dropped {
        pb::EnrolmentState::Dropped
    } else {
        pb::EnrolmentState::Completed
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.record_training_completion(pb::RecordTrainingCompletionRequest {
        name: args.enrolment.trim().to_string(),
        outcome: outcome as i32,
        certificate: args.certificate.unwrap_or_default().trim().to_string(),
    }))
    .await?;
    show(
        "bangfu.jobs.v1.RecordTrainingCompletionResponse",
        &answer,
        args.client.json,
    )
}

// ---------------------------------------------------------------------------------------------
// Recruitment events

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only events held under this region prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only this kind: job-fair, relocation-site, online or labor-cooperation.
    #[arg(long)]
    kind: Option<String>,
    /// Only events held in this year.
    #[arg(long, default_value_t = 0)]
    year: i32,
    #[command(flatten)]
    page: PageArgs,
}

async fn events(args: EventsArgs) -> Result<(), Failure> {
    let kind = enum_filter::<pb::RecruitmentEventKind>("--kind", args.kind.as_deref())?;
    let (prefix, year) = (args.region_prefix.clone(), args.year);
    let mut jobs = connect(&args.client).await?;
    list_pages(
        &mut jobs,
        args.client.output(),
        &args.page,
        &EVENT,
        |jobs, page_size, page_token| {
            let request = pb::ListRecruitmentEventsRequest {
                region_prefix: prefix.clone(),
                kind,
                year,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(jobs.list_recruitment_events(request)).await?;
                Ok((page.recruitment_events, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct EventCreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Its title, e.g. 2025年乐业搬迁专场招聘会.
    #[arg(long)]
    name: String,
    /// job-fair (招聘会), relocation-site (乐业搬迁专场), online (网络招聘) or labor-cooperation
    /// (劳务协作专场).
    #[arg(long)]
    kind: String,
    /// Where it was held: a division code in your scope.
    #[arg(long)]
    region: String,
    /// The day it was held (YYYY-MM-DD), not in the future.
    #[arg(long)]
    date: String,
    /// Persons reached (参会人数).
    #[arg(long)]
    reached: i32,
    /// Persons who reached an intention to work or were placed there (达成就业意向人数).
    #[arg(long)]
    placed: i32,
    /// An employer that took part (a carrier's id or name); give it once per employer.
    #[arg(long = "carrier")]
    carriers: Vec<String>,
    /// A posting offered there (its id or name); give it once per posting.
    #[arg(long = "posting")]
    postings: Vec<String>,
}

async fn event_create(args: EventCreateArgs) -> Result<(), Failure> {
    let event = pb::RecruitmentEvent {
        display_name: args.name,
        kind: enum_value::<pb::RecruitmentEventKind>("--kind", &args.kind)?,
        region: region(&args.region),
        event_date: Some(parse_date("--date", &args.date)?),
        carriers: args.carriers.iter().map(|c| resource_name("carriers", c)).collect(),
        postings: args.postings.iter().map(|p| resource_name("postings", p)).collect(),
        persons_reached: args.reached,
        persons_placed: args.placed,
        ..Default::default()
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.create_recruitment_event(pb::CreateRecruitmentEventRequest {
        recruitment_event: Some(event),
        request_id: request_id(),
    }))
    .await?;
    show(
        "bangfu.jobs.v1.CreateRecruitmentEventResponse",
        &answer,
        args.client.json,
    )
}

// ---------------------------------------------------------------------------------------------
// Statistics (附件1)

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The region: a province (2 digits), city (4) or county (6) in your scope.
    #[arg(long)]
    region_prefix: String,
    /// The last day counted, e.g. a quarter's end (YYYY-MM-DD); counting starts on January 1 of
    /// its year. Today when not given.
    #[arg(long)]
    as_of: Option<String>,
}

/// 附件1's columns for job matching, in the form's words.
const STATS_HEADER: [&str; 13] = [
    "地区",
    "劳务协作联盟",
    "劳务品牌",
    "乡村振兴劳务基地",
    "基地吸纳脱贫人口",
    "劳务合作社",
    "就业帮扶车间",
    "车间吸纳脱贫人口",
    "参加技能培训",
    "安置点就业",
    "招聘活动",
    "乐业搬迁专场",
    "脱贫人口就业",
];

fn stats_row(label: String, counts: Option<&pb::JobCounts>) -> Vec<String> {
    let c = counts.cloned().unwrap_or_default();
    let mut row = vec![label];
    row.extend(
        [
            c.labor_alliances,
            c.labor_brands,
            c.labor_bases,
            c.labor_base_target_persons,
            c.labor_cooperatives,
            c.assistance_workshops,
            c.workshop_target_persons,
            c.target_persons_in_training,
            c.relocation_site_target_persons,
            c.recruitment_events,
            c.relocation_site_events,
            c.target_persons_placed,
        ]
        .iter()
        .map(ToString::to_string),
    );
    row
}

fn region_text(region: Option<&common::RegionCode>) -> String {
    match region {
        Some(r) if r.display_name.is_empty() => r.code.clone(),
        Some(r) => format!("{} {}", r.code, r.display_name),
        None => "-".to_string(),
    }
}

async fn stats(args: StatsArgs) -> Result<(), Failure> {
    let as_of = optional_date("--as-of", args.as_of.as_deref())?;
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.get_job_stats(pb::GetJobStatsRequest {
        region_prefix: args.region_prefix.trim().to_string(),
        as_of,
    }))
    .await?;
    if args.client.json {
        return show("bangfu.jobs.v1.GetJobStatsResponse", &answer, true);
    }
    if let Some(period) = &answer.period {
        say!(
            "统计期间 {} 至 {}",
            date_or_dash(period.first_day.as_ref()),
            date_or_dash(period.last_day.as_ref())
        );
    }
    let mut rows: Vec<Vec<String>> = answer
        .rows
        .iter()
        .map(|row| stats_row(region_text(row.region.as_ref()), row.counts.as_ref()))
        .collect();
    if let Some(total) = &answer.total {
        rows.push(stats_row(
            format!("合计 {}", region_text(total.region.as_ref())),
            total.counts.as_ref(),
        ));
    }
    let header: Vec<String> = STATS_HEADER.iter().map(|h| (*h).to_string()).collect();
    print_table(&header, &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_layout_names_fields_of_its_message() {
        for layout in [&CARRIER, &POSTING, &SEEKER, &PLACEMENT, &EXPORT_BATCH, &EVENT] {
            layout.check().unwrap_or_else(|e| panic!("{}: {e}", layout.message));
        }
    }

    fn table(lines: &[&[&str]]) -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|line| line.iter().map(|cell| (*cell).to_string()).collect())
            .collect()
    }

    #[test]
    fn an_employers_list_with_chinese_headings_under_a_title_line_gives_a_posting_a_row() {
        let rows = posting_rows(
            &table(&[
                &["某某公司招聘岗位信息表"],
                &[
                    "岗位名称",
                    "职业编码",
                    "职业名称",
                    "工作地点",
                    "最低月薪（元）",
                    "最高月薪（元）",
                    "招聘人数",
                    "合同期限",
                    "每周工时",
                    "技能要求",
                    "有效期至",
                    "跨区域共享",
                ],
                &[
                    "服装缝纫工",
                    "6-05-01-01",
                    "缝纫工",
                    "370402001013",
                    "2400",
                    "3600.5",
                    "3人",
                    "12个月",
                    "44",
                    "缝纫、熨烫；包装",
                    "2027/12/31",
                    "是",
                ],
                &["", "", "", "", "", "", "", "", "", "", "", ""],
                &[
                    "包装工",
                    "6-31-01-03",
                    "包装工",
                    "370402001013",
                    "2200",
                    "3000",
                    "x",
                    "12",
                    "44",
                    "",
                    "46752",
                    "否",
                ],
            ]),
            "carriers/c1",
        )
        .expect("rows");
        assert_eq!(rows.len(), 2, "the blank line is skipped");
        let (line, first) = &rows[0];
        assert_eq!(*line, 3, "numbered as the sheet counts its lines");
        let first = first.as_ref().expect("a posting");
        assert_eq!(first.carrier, "carriers/c1");
        assert_eq!(first.wage_max.as_ref().map(|m| m.fen), Some(360_050));
        assert_eq!(first.headcount, 3);
        assert_eq!(first.contract_months, 12);
        assert_eq!(first.skills, ["缝纫", "熨烫", "包装"]);
        assert!(first.shared_across_regions);
        assert_eq!(
            first.valid_until,
            Some(common::Date {
                year: 2027,
                month: 12,
                day: 31
            })
        );
        let (line, second) = &rows[1];
        assert_eq!(*line, 5);
        let why = second.as_ref().expect_err("a bad headcount");
        assert!(why.contains("招聘人数 (headcount)"), "{why}");
    }

    #[test]
    fn a_workbook_date_cell_is_read_from_its_serial_number() {
        assert_eq!(
            sheet_date("有效期至", "46752"),
            Ok(common::Date {
                year: 2027,
                month: 12,
                day: 31
            })
        );
        assert!(sheet_date("有效期至", "明年").is_err());
    }

    #[test]
    fn a_list_without_a_required_column_is_refused_whole_naming_it() {
        let why =
            posting_rows(&table(&[&["title", "occupation_code"], &["a", "6-05"]]), "carriers/c1").expect_err("refused");
        assert!(why.contains("最低月薪 (wage_min)"), "{why}");
        assert!(why.contains("有效期至 (valid_until)"), "{why}");
        assert!(!why.contains("技能要求"), "skills are optional: {why}");
    }

    #[test]
    fn the_same_row_asks_with_the_same_request_id() {
        let sewing = || pb::Posting {
            title: "服装缝纫工".into(),
            ..Default::default()
        };
        let posting = sewing();
        assert_eq!(row_request_id(&posting), row_request_id(&sewing()));
        assert_eq!(row_request_id(&posting).len(), 40);
        let other = pb::Posting {
            title: "包装工".into(),
            ..Default::default()
        };
        assert_ne!(row_request_id(&posting), row_request_id(&other));
    }

    #[test]
    fn a_traveller_is_a_placement_and_an_optional_fare() {
        let with_fare = traveller("ab12:350.50").expect("traveller");
        assert_eq!(with_fare.placement, "placements/ab12");
        assert_eq!(with_fare.fare.map(|m| m.fen), Some(35_050));
        let without = traveller("placements/ab12").expect("traveller");
        assert_eq!(without.placement, "placements/ab12");
        assert_eq!(without.fare, None);
    }
}

#[derive(Debug, Args)]
pub struct ClaimOnJobTrainingArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The carrier (its id or name).
    carrier: String,
    /// The month trained (YYYY-MM).
    #[arg(long)]
    month: String,
    /// The policy's code in subsidy payment's catalog, e.g. zz-ygdx-2021.
    #[arg(long)]
    policy: String,
    /// The monthly standard per person, in yuan.
    #[arg(long)]
    standard: String,
    /// Only these placements (ids or names); every target person working there when not given.
    #[arg(long = "placement")]
    placements: Vec<String>,
}

async fn claim_on_job_training(args: ClaimOnJobTrainingArgs) -> Result<(), Failure> {
    let request = pb::ClaimOnJobTrainingRequest {
        carrier: resource_name("carriers", &args.carrier),
        month: Some(parse_month("--month", &args.month)?),
        policy: args.policy.trim().to_string(),
        monthly_standard: Some(common::Money {
            fen: parse_yuan("--standard", &args.standard)?,
        }),
        placements: args.placements.iter().map(|p| resource_name("placements", p)).collect(),
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.claim_on_job_training(request)).await?;
    show("bangfu.jobs.v1.ClaimOnJobTrainingResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ClaimAgencyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The placement (its id or name).
    placement: String,
    /// The agency that organized it (its id or name).
    #[arg(long)]
    agency: String,
    /// The policy's code in subsidy payment's catalog, e.g. cy-agency-2021.
    #[arg(long)]
    policy: String,
    /// Where the person's social insurance is paid (参保地), a division code.
    #[arg(long)]
    insured_region: String,
}

async fn claim_agency(args: ClaimAgencyArgs) -> Result<(), Failure> {
    let request = pb::ClaimAgencySubsidyRequest {
        placement: resource_name("placements", &args.placement),
        agency: resource_name("carriers", &args.agency),
        policy: args.policy.trim().to_string(),
        insured_region: Some(common::RegionCode {
            code: args.insured_region.trim().to_string(),
            display_name: String::new(),
        }),
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.claim_agency_subsidy(request)).await?;
    show("bangfu.jobs.v1.ClaimAgencySubsidyResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ClaimAwardArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The carrier (its id or name).
    carrier: String,
    /// The policy's code in subsidy payment's catalog, e.g. zz-labor-base-award-2021.
    #[arg(long)]
    policy: String,
}

async fn claim_award(args: ClaimAwardArgs) -> Result<(), Failure> {
    let request = pb::ClaimCarrierAwardRequest {
        carrier: resource_name("carriers", &args.carrier),
        policy: args.policy.trim().to_string(),
    };
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.claim_carrier_award(request)).await?;
    show("bangfu.jobs.v1.ClaimCarrierAwardResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ClaimsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// carriers/ID, placements/ID or exportBatches/ID.
    owner: String,
}

async fn claims(args: ClaimsArgs) -> Result<(), Failure> {
    let mut jobs = connect(&args.client).await?;
    let answer = call(jobs.list_subsidy_claims(pb::ListSubsidyClaimsRequest {
        owner: args.owner.trim().to_string(),
    }))
    .await?;
    show("bangfu.jobs.v1.ListSubsidyClaimsResponse", &answer, args.client.json)
}
