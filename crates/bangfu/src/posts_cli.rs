//! `bangfu posts …`: rural public-welfare posts from the command line, for township and county
//! clerks of agriculture and rural affairs and their reviewers. Every command takes the same
//! path as the others — parse the flags (a usage error before anything is sent), connect with
//! the token, call, print the server's answer whole (`--json` for scripts).

use bangfu_proto::common::v1 as common;
use bangfu_proto::welfare_post::v1 as pb;
use bangfu_proto::welfare_post::v1::welfare_post_service_client::WelfarePostServiceClient;
use clap::{Args, Subcommand};

use crate::Failure;
use crate::client::{Authorized, ClientArgs, PageArgs, authorized, call, list_pages};
use crate::format::{enum_filter, enum_value, optional_date, parse_date, parse_month, parse_yuan, resource_name};
use crate::print::{Columns, show};

const POST: Columns = Columns {
    message: "bangfu.welfare_post.v1.Post",
    columns: &[
        ("post", "name"),
        ("state", "state"),
        ("type", "post_type"),
        ("places", "places"),
        ("taken", "places_taken"),
        ("standard", "monthly_standard"),
        ("village", "village.display_name"),
        ("title", "title"),
    ],
};

const APPLICATION: Columns = Columns {
    message: "bangfu.welfare_post.v1.Application",
    columns: &[
        ("rank", "rank"),
        ("application", "name"),
        ("state", "state"),
        ("name", "display_name"),
        ("eligible", "eligibility.eligible"),
        ("labor", "eligibility.labor_capacity"),
    ],
};

const ASSIGNMENT: Columns = Columns {
    message: "bangfu.welfare_post.v1.Assignment",
    columns: &[
        ("assignment", "name"),
        ("state", "state"),
        ("name", "display_name"),
        ("from", "contract_term.first_day"),
        ("to", "last_day"),
        ("post", "post"),
    ],
};

const EXIT_PROPOSAL: Columns = Columns {
    message: "bangfu.welfare_post.v1.ExitProposal",
    columns: &[
        ("proposal", "name"),
        ("state", "state"),
        ("reason", "reason"),
        ("from", "effective_date"),
        ("name", "display_name"),
        ("assignment", "assignment"),
    ],
};

#[derive(Debug, Subcommand)]
pub enum PostsCommand {
    /// Set a post in a village (按需设岗), paid under a policy of subsidy payment's catalog.
    Create(CreateArgs),
    /// Posts in your scope, or one post whole.
    List(ListArgs),
    /// Publish a post's recruitment announcement (招聘公告).
    Announce(AnnounceArgs),
    /// Take a person's application to an announcement.
    Apply(ApplyArgs),
    /// An announcement's applications, ranked (eligible weak and half labor first).
    Applications(ApplicationsArgs),
    /// Check an application, or a person against a post, as of a hire date: every reason.
    Eligibility(EligibilityArgs),
    /// Propose hires and open their public notice (公示); or show a notice with --show.
    Propose(ProposeArgs),
    /// Record an objection to a proposal during its notice, or resolve one.
    Object(ObjectArgs),
    /// Confirm a notice's hires once it has ended.
    Confirm(ConfirmArgs),
    /// Assignments (hires) in your scope, or one whole.
    Assignments(AssignmentsArgs),
    /// Record (or correct) a holder's month: days, hours and score.
    Evaluate(EvaluateArgs),
    /// Close a month: each holder's month becomes a claim at subsidy payment, or a reason for none.
    CloseMonth(CloseMonthArgs),
    /// End a holder's assignment for a reason (有序退岗); --proposals lists the exits proposed.
    Exit(ExitArgs),
    /// Register a village cadre, whose household may not hold a post.
    Cadre(CadreArgs),
    /// Fraud signals (风险线索) with the records they rest on.
    Signals(SignalsArgs),
    /// Posts and holders by type and funding; persons placed in a year.
    Stats(StatsArgs),
    /// The service's parameters (rules by region and date): list them, or set one value.
    #[command(subcommand)]
    Parameter(crate::parameters_cli::ParameterCommand),
}

type Posts = WelfarePostServiceClient<Authorized>;

async fn connect(client: &ClientArgs) -> Result<Posts, Failure> {
    Ok(WelfarePostServiceClient::new(authorized(client).await?))
}

/// A fresh request id: the command is one request, so a retry of the same command by the
/// clerk is a new one.
fn request_id() -> String {
    bangfu_platform::rows::new_id()
}

pub async fn run(command: PostsCommand) -> Result<(), Failure> {
    match command {
        PostsCommand::Parameter(command) => {
            crate::parameters_cli::run(crate::parameters_cli::Service::Posts, command).await
        }
        PostsCommand::Create(args) => create(args).await,
        PostsCommand::List(args) => list(args).await,
        PostsCommand::Announce(args) => announce(args).await,
        PostsCommand::Apply(args) => apply(args).await,
        PostsCommand::Applications(args) => applications(args).await,
        PostsCommand::Eligibility(args) => eligibility(args).await,
        PostsCommand::Propose(args) => propose(args).await,
        PostsCommand::Object(args) => object(args).await,
        PostsCommand::Confirm(args) => confirm(args).await,
        PostsCommand::Assignments(args) => assignments(args).await,
        PostsCommand::Evaluate(args) => evaluate(args).await,
        PostsCommand::CloseMonth(args) => close_month(args).await,
        PostsCommand::Exit(args) => exit(args).await,
        PostsCommand::Cadre(args) => cadre(args).await,
        PostsCommand::Signals(args) => signals(args).await,
        PostsCommand::Stats(args) => stats(args).await,
    }
}

fn region(code: &str) -> Option<common::RegionCode> {
    Some(common::RegionCode {
        code: code.trim().to_string(),
        display_name: String::new(),
    })
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The village, 12 digits.
    #[arg(long)]
    village: String,
    /// A short title, e.g. 村内道路保洁员.
    #[arg(long)]
    title: String,
    /// cleaning, greening, facility-care, care-service, rural-logistics, road-care,
    /// river-patrol, village-affairs or other.
    #[arg(long = "type")]
    post_type: String,
    /// ordinary, skilled or special.
    #[arg(long, default_value = "ordinary")]
    class: String,
    /// employment-subsidy, rural-revitalization, photovoltaic or other.
    #[arg(long)]
    funding: String,
    /// The subsidy policy's code in subsidy payment's catalog.
    #[arg(long)]
    policy: String,
    /// The monthly standard in yuan, where the policy computes from it.
    #[arg(long)]
    standard: Option<String>,
    /// Hours on post a month.
    #[arg(long)]
    hours: i32,
    /// Days on post a month.
    #[arg(long)]
    days: i32,
    /// full-time or part-time.
    #[arg(long, default_value = "part-time")]
    work_time: String,
    /// Places.
    #[arg(long, default_value_t = 1)]
    places: i32,
    /// Only persons registered in the village may hold it (otherwise the township).
    #[arg(long)]
    village_only: bool,
}

async fn create(args: CreateArgs) -> Result<(), Failure> {
    let post = pb::Post {
        village: region(&args.village),
        title: args.title,
        post_type: enum_value::<pb::PostType>("--type", &args.post_type)?,
        post_class: enum_value::<pb::PostClass>("--class", &args.class)?,
        funding_source: enum_value::<pb::FundingSource>("--funding", &args.funding)?,
        subsidy_policy: args.policy,
        monthly_standard: args
            .standard
            .as_deref()
            .map(|s| parse_yuan("--standard", s).map(|fen| common::Money { fen }))
            .transpose()?,
        hours_per_month: args.hours,
        days_per_month: args.days,
        work_time: enum_value::<pb::WorkTime>("--work-time", &args.work_time)?,
        places: args.places,
        village_residents_only: args.village_only,
        ..Default::default()
    };
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.create_post(pb::CreatePostRequest {
        post: Some(post),
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.welfare_post.v1.CreatePostResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this post whole (its id or name).
    post: Option<String>,
    /// Only posts in villages under this prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only this type.
    #[arg(long = "type")]
    post_type: Option<String>,
    /// Only open or closed posts.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn list(args: ListArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    if let Some(post) = &args.post {
        let answer = call(posts.get_post(pb::GetPostRequest {
            name: resource_name("posts", post),
        }))
        .await?;
        return show("bangfu.welfare_post.v1.GetPostResponse", &answer, args.client.json);
    }
    let post_type = enum_filter::<pb::PostType>("--type", args.post_type.as_deref())?;
    let state = enum_filter::<pb::PostState>("--state", args.state.as_deref())?;
    let prefix = args.region_prefix.clone();
    list_pages(
        &mut posts,
        args.client.output(),
        &args.page,
        &POST,
        |posts, page_size, page_token| {
            let request = pb::ListPostsRequest {
                region_prefix: prefix.clone(),
                post_type,
                state,
                page_size,
                page_token,
                ..Default::default()
            };
            Box::pin(async move {
                let page = call(posts.list_posts(request)).await?;
                Ok((page.posts, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct AnnounceArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The post's id or name.
    post: String,
    /// Duties (岗位职责).
    #[arg(long)]
    duties: String,
    /// Who may apply (招聘条件).
    #[arg(long)]
    requirements: String,
    /// Pay as announced (薪酬待遇).
    #[arg(long)]
    pay: String,
    /// Working hours (工作时间).
    #[arg(long)]
    hours: String,
    /// Where the work is and where to apply.
    #[arg(long)]
    place: String,
    /// First day applications are taken (YYYY-MM-DD).
    #[arg(long)]
    from: String,
    /// Last day applications are taken (YYYY-MM-DD).
    #[arg(long)]
    to: String,
}

async fn announce(args: AnnounceArgs) -> Result<(), Failure> {
    let announcement = pb::Announcement {
        post: resource_name("posts", &args.post),
        duties: args.duties,
        requirements: args.requirements,
        pay: args.pay,
        hours: args.hours,
        place: args.place,
        application_period: Some(common::Period {
            first_day: Some(parse_date("--from", &args.from)?),
            last_day: Some(parse_date("--to", &args.to)?),
        }),
        ..Default::default()
    };
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.publish_announcement(pb::PublishAnnouncementRequest {
        announcement: Some(announcement),
        request_id: request_id(),
    }))
    .await?;
    show(
        "bangfu.welfare_post.v1.PublishAnnouncementResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The announcement's id or name.
    announcement: String,
    /// The person's id or name in identity.
    person: String,
    /// The applicant declared good health (the age limit for the fit applies).
    #[arg(long)]
    fit: bool,
}

async fn apply(args: ApplyArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.submit_application(pb::SubmitApplicationRequest {
        application: Some(pb::Application {
            announcement: resource_name("announcements", &args.announcement),
            person: resource_name("persons", &args.person),
            declared_fit: args.fit,
            ..Default::default()
        }),
        request_id: request_id(),
    }))
    .await?;
    show(
        "bangfu.welfare_post.v1.SubmitApplicationResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ApplicationsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The announcement's id or name.
    announcement: String,
    /// Only submitted, proposed, hired or not-hired ones.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn applications(args: ApplicationsArgs) -> Result<(), Failure> {
    let state = enum_filter::<pb::ApplicationState>("--state", args.state.as_deref())?;
    let announcement = resource_name("announcements", &args.announcement);
    let mut posts = connect(&args.client).await?;
    list_pages(
        &mut posts,
        args.client.output(),
        &args.page,
        &APPLICATION,
        |posts, page_size, page_token| {
            let request = pb::ListApplicationsRequest {
                announcement: announcement.clone(),
                state,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(posts.list_applications(request)).await?;
                Ok((page.applications, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct EligibilityArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Check this application (its id or name); the result is kept on it.
    #[arg(long, conflicts_with_all = ["person", "post"], required_unless_present = "person")]
    application: Option<String>,
    /// Check this person (with --post) without an application.
    #[arg(long, requires = "post")]
    person: Option<String>,
    /// The post the person is checked against.
    #[arg(long)]
    post: Option<String>,
    /// The hire date checked for (YYYY-MM-DD).
    #[arg(long)]
    hire_date: String,
}

async fn eligibility(args: EligibilityArgs) -> Result<(), Failure> {
    let subject = match (&args.application, &args.person, &args.post) {
        (Some(application), _, _) => {
            pb::check_eligibility_request::Subject::Application(resource_name("applications", application))
        }
        (None, Some(person), Some(post)) => pb::check_eligibility_request::Subject::PersonAndPost(pb::PersonAndPost {
            person: resource_name("persons", person),
            post: resource_name("posts", post),
        }),
        _ => return Err(Failure::usage("give --application, or --person with --post")),
    };
    let hire_date = parse_date("--hire-date", &args.hire_date)?;
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.check_eligibility(pb::CheckEligibilityRequest {
        subject: Some(subject),
        hire_date: Some(hire_date),
    }))
    .await?;
    show(
        "bangfu.welfare_post.v1.CheckEligibilityResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The announcement's id or name; with --show, the notice's.
    target: String,
    /// Show the hire notice `target` names instead of proposing.
    #[arg(long)]
    show: bool,
    /// A hire: APPLICATION:FIRST-DAY:LAST-DAY of the contract (repeat for several).
    #[arg(long = "hire", required_unless_present = "show")]
    hires: Vec<String>,
    /// The accident insurer.
    #[arg(long, required_unless_present = "show")]
    insurer: Option<String>,
    /// The insurance policy number.
    #[arg(long, required_unless_present = "show")]
    policy_number: Option<String>,
    /// The notice's first day (default today).
    #[arg(long)]
    notice_from: Option<String>,
}

async fn propose(args: ProposeArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    if args.show {
        let answer = call(posts.get_hire_notice(pb::GetHireNoticeRequest {
            name: resource_name("hireNotices", &args.target),
        }))
        .await?;
        return show(
            "bangfu.welfare_post.v1.GetHireNoticeResponse",
            &answer,
            args.client.json,
        );
    }
    let mut hires = Vec::new();
    for hire in &args.hires {
        let parts: Vec<&str> = hire.split(':').collect();
        let [application, first, last] = parts.as_slice() else {
            return Err(Failure::usage(format!(
                "--hire {hire:?} must be APPLICATION:FIRST-DAY:LAST-DAY"
            )));
        };
        let term = common::Period {
            first_day: Some(parse_date("--hire", first)?),
            last_day: Some(parse_date("--hire", last)?),
        };
        hires.push(pb::ProposedHire {
            application: resource_name("applications", application),
            contract_term: Some(term),
            // The insurance covers the contract's term.
            insurance: Some(pb::AccidentInsurance {
                insurer: args.insurer.clone().unwrap_or_default(),
                policy_number: args.policy_number.clone().unwrap_or_default(),
                coverage: Some(term),
            }),
        });
    }
    let answer = call(posts.propose_hires(pb::ProposeHiresRequest {
        announcement: resource_name("announcements", &args.target),
        hires,
        notice_first_day: optional_date("--notice-from", args.notice_from.as_deref())?,
        request_id: request_id(),
    }))
    .await?;
    show("bangfu.welfare_post.v1.ProposeHiresResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ObjectArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The proposal objected to (an assignment), or with --resolve the objection.
    target: String,
    /// What was objected, as received.
    #[arg(long, required_unless_present = "resolve")]
    content: Option<String>,
    /// How and from whom it was received.
    #[arg(long, default_value = "")]
    from: String,
    /// Resolve the objection `target` names: uphold or dismiss.
    #[arg(long, value_parser = ["uphold", "dismiss"])]
    resolve: Option<String>,
    /// What the verification found (with --resolve).
    #[arg(long, requires = "resolve")]
    resolution: Option<String>,
}

async fn object(args: ObjectArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    if let Some(verdict) = &args.resolve {
        let answer = call(posts.resolve_objection(pb::ResolveObjectionRequest {
            name: resource_name("objections", &args.target),
            upheld: verdict == "uphold",
            resolution: args.resolution.clone().unwrap_or_default(),
        }))
        .await?;
        return show(
            "bangfu.welfare_post.v1.ResolveObjectionResponse",
            &answer,
            args.client.json,
        );
    }
    let answer = call(posts.raise_objection(pb::RaiseObjectionRequest {
        objection: Some(pb::Objection {
            assignment: resource_name("assignments", &args.target),
            content: args.content.clone().unwrap_or_default(),
            received_from: args.from.clone(),
            ..Default::default()
        }),
        request_id: request_id(),
    }))
    .await?;
    show(
        "bangfu.welfare_post.v1.RaiseObjectionResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The hire notice's id or name.
    notice: String,
}

async fn confirm(args: ConfirmArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.confirm_hires(pb::ConfirmHiresRequest {
        hire_notice: resource_name("hireNotices", &args.notice),
    }))
    .await?;
    show("bangfu.welfare_post.v1.ConfirmHiresResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct AssignmentsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this assignment whole.
    assignment: Option<String>,
    /// Only assignments in villages under this prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only this person's.
    #[arg(long)]
    person: Option<String>,
    /// Only proposed, active, withdrawn or ended ones.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn assignments(args: AssignmentsArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    if let Some(assignment) = &args.assignment {
        let answer = call(posts.get_assignment(pb::GetAssignmentRequest {
            name: resource_name("assignments", assignment),
        }))
        .await?;
        return show(
            "bangfu.welfare_post.v1.GetAssignmentResponse",
            &answer,
            args.client.json,
        );
    }
    let state = enum_filter::<pb::AssignmentState>("--state", args.state.as_deref())?;
    let person = args
        .person
        .as_deref()
        .map(|p| resource_name("persons", p))
        .unwrap_or_default();
    let prefix = args.region_prefix.clone();
    list_pages(
        &mut posts,
        args.client.output(),
        &args.page,
        &ASSIGNMENT,
        |posts, page_size, page_token| {
            let request = pb::ListAssignmentsRequest {
                region_prefix: prefix.clone(),
                person: person.clone(),
                state,
                page_size,
                page_token,
                ..Default::default()
            };
            Box::pin(async move {
                let page = call(posts.list_assignments(request)).await?;
                Ok((page.assignments, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The assignment's id or name.
    assignment: String,
    /// The month (YYYY-MM).
    #[arg(long)]
    month: String,
    /// Days on post.
    #[arg(long)]
    days: i32,
    /// Hours on post.
    #[arg(long)]
    hours: i32,
    /// The score, 0 to 100.
    #[arg(long)]
    score: i32,
    /// A remark.
    #[arg(long, default_value = "")]
    remark: String,
    /// Correct the month recorded before, with its etag (as `get` printed it).
    #[arg(long, default_value = "")]
    etag: String,
}

async fn evaluate(args: EvaluateArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.record_evaluation(pb::RecordEvaluationRequest {
        assignment: resource_name("assignments", &args.assignment),
        evaluation: Some(pb::Evaluation {
            month: Some(parse_month("--month", &args.month)?),
            days_on_post: args.days,
            hours_on_post: args.hours,
            score: args.score,
            remark: args.remark,
            etag: args.etag,
            ..Default::default()
        }),
    }))
    .await?;
    show(
        "bangfu.welfare_post.v1.RecordEvaluationResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct CloseMonthArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The county or city (a division-code prefix).
    #[arg(long)]
    region_prefix: String,
    /// The month (YYYY-MM).
    #[arg(long)]
    month: String,
    /// At most this many lines shown (those without a claim first).
    #[arg(long, default_value_t = 100)]
    lines: i32,
}

async fn close_month(args: CloseMonthArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.close_month(pb::CloseMonthRequest {
        region_prefix: args.region_prefix,
        month: Some(parse_month("--month", &args.month)?),
        line_limit: args.lines,
    }))
    .await?;
    show("bangfu.welfare_post.v1.CloseMonthResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ExitArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The assignment's id or name (not with --proposals).
    #[arg(required_unless_present = "proposals")]
    assignment: Option<String>,
    /// contract-end, failed-evaluation, found-other-work, category-revoked, death, moved-away,
    /// cap-or-retirement, two-posts, impersonation or long-absence.
    #[arg(long, required_unless_present = "proposals")]
    reason: Option<String>,
    /// The last day on post (YYYY-MM-DD).
    #[arg(long, required_unless_present = "proposals")]
    last_day: Option<String>,
    /// An explanation.
    #[arg(long, required_unless_present = "proposals")]
    note: Option<String>,
    /// The exit proposal acted on.
    #[arg(long)]
    proposal: Option<String>,
    /// List the open exit proposals (from identity's feed) instead.
    #[arg(long)]
    proposals: bool,
    /// With --proposals: only under this prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    #[command(flatten)]
    page: PageArgs,
}

async fn exit(args: ExitArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    if args.proposals {
        let prefix = args.region_prefix.clone();
        return list_pages(
            &mut posts,
            args.client.output(),
            &args.page,
            &EXIT_PROPOSAL,
            |posts, page_size, page_token| {
                let request = pb::ListExitProposalsRequest {
                    region_prefix: prefix.clone(),
                    state: pb::ExitProposalState::Open as i32,
                    page_size,
                    page_token,
                };
                Box::pin(async move {
                    let page = call(posts.list_exit_proposals(request)).await?;
                    Ok((page.exit_proposals, page.next_page_token))
                })
            },
        )
        .await;
    }
    let name = resource_name("assignments", args.assignment.as_deref().unwrap_or_default());
    let reason = enum_value::<pb::ExitReason>("--reason", args.reason.as_deref().unwrap_or_default())?;
    let last_day = parse_date("--last-day", args.last_day.as_deref().unwrap_or_default())?;
    // The etag read now: an exit over someone else's change is refused, not overwritten.
    let etag = call(posts.get_assignment(pb::GetAssignmentRequest { name: name.clone() }))
        .await?
        .assignment
        .unwrap_or_default()
        .etag;
    let answer = call(
        posts.exit_holder(pb::ExitHolderRequest {
            name,
            etag,
            reason,
            last_day: Some(last_day),
            note: args.note.unwrap_or_default(),
            exit_proposal: args
                .proposal
                .as_deref()
                .map(|p| resource_name("exitProposals", p))
                .unwrap_or_default(),
        }),
    )
    .await?;
    show("bangfu.welfare_post.v1.ExitHolderResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct CadreArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The village, 12 digits.
    #[arg(long)]
    village: String,
    /// The cadre's id or name in identity.
    #[arg(long)]
    person: String,
    /// The office held, e.g. 村委会主任.
    #[arg(long)]
    office: String,
    /// The term's first day (YYYY-MM-DD).
    #[arg(long)]
    from: String,
    /// The term's last day.
    #[arg(long)]
    to: Option<String>,
}

async fn cadre(args: CadreArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.register_village_cadre(pb::RegisterVillageCadreRequest {
        village_cadre: Some(pb::VillageCadre {
            village: region(&args.village),
            person: resource_name("persons", &args.person),
            office: args.office,
            term_start: Some(parse_date("--from", &args.from)?),
            term_end: optional_date("--to", args.to.as_deref())?,
            ..Default::default()
        }),
        request_id: request_id(),
    }))
    .await?;
    show(
        "bangfu.welfare_post.v1.RegisterVillageCadreResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct SignalsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The region (a division-code prefix).
    #[arg(long)]
    region_prefix: String,
    /// Only two-posts, cadre-relative, rotation, over-need, uneven-pay or paid-without-evaluation.
    #[arg(long)]
    kind: Option<String>,
    /// Assignments in force on this day (default today).
    #[arg(long)]
    as_of: Option<String>,
}

async fn signals(args: SignalsArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.list_fraud_signals(pb::ListFraudSignalsRequest {
        region_prefix: args.region_prefix,
        kind: enum_filter::<pb::FraudSignalKind>("--kind", args.kind.as_deref())?,
        as_of: optional_date("--as-of", args.as_of.as_deref())?,
    }))
    .await?;
    show(
        "bangfu.welfare_post.v1.ListFraudSignalsResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The region (a division-code prefix).
    #[arg(long)]
    region_prefix: String,
    /// The year.
    #[arg(long)]
    year: i32,
    /// The last day counted (a quarter's end; default the year's end).
    #[arg(long)]
    as_of: Option<String>,
}

async fn stats(args: StatsArgs) -> Result<(), Failure> {
    let mut posts = connect(&args.client).await?;
    let answer = call(posts.get_post_stats(pb::GetPostStatsRequest {
        region_prefix: args.region_prefix,
        year: args.year,
        as_of: optional_date("--as-of", args.as_of.as_deref())?,
    }))
    .await?;
    show("bangfu.welfare_post.v1.GetPostStatsResponse", &answer, args.client.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_layout_names_fields_of_its_message() {
        for layout in [&POST, &APPLICATION, &ASSIGNMENT, &EXIT_PROPOSAL] {
            layout.check().expect("layout");
        }
    }
}
