//! Projects (项目), their funds (资金下达), the labor-remuneration share (劳务报酬占比), closing
//! (竣工) and the region's statistics with the project list (附件2).

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use time::Date;
use tonic::Code;

use super::{Relief, invalid, method};
use crate::domain::{self, FundSource, ProjectState};
use crate::store::{
    self, ListRow, NewAllocation, ProjectData, ProjectFilter, StoredAllocation, StoredProject, YearTotals,
};

/// The labor-remuneration share of a project, live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaborShare {
    pub central_fen: i64,
    pub total_fen: i64,
    pub paid_fen: i64,
    pub planned_fen: i64,
    pub required_fen: i64,
}

impl LaborShare {
    pub fn paid_bp(&self) -> i32 {
        domain::share_bp(self.paid_fen, self.central_fen)
    }

    pub fn planned_bp(&self) -> i32 {
        domain::share_bp(self.planned_fen, self.central_fen)
    }

    pub fn gap_fen(&self) -> i64 {
        (self.required_fen - self.paid_fen).max(0)
    }
}

/// A project with what is computed about it.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub project: StoredProject,
    pub share: LaborShare,
    pub active_workers: i64,
}

/// What UpdateProject changes: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    pub display_name: Option<String>,
    pub summary: Option<String>,
    pub schedule: Option<(Date, Date)>,
    pub owner_unit: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub key_assistance_county: Option<bool>,
    pub relocation_site: Option<bool>,
    pub flood_plain: Option<bool>,
    pub remarks: Option<String>,
    pub pay_day: Option<i64>,
}

/// A region's year (GetProjectStats).
#[derive(Debug, Clone)]
pub struct ProjectStats {
    pub region_prefix: String,
    pub year: i32,
    pub totals: YearTotals,
    pub rows: Vec<ListRow>,
    pub as_of: Date,
}

pub(crate) fn project_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("projects/{id}"))
}

impl Relief {
    pub async fn create_project(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        project: ProjectData,
    ) -> Result<ProjectView, Problem> {
        self.ensure_sees(
            caller,
            "CreateProject",
            &format!("projects in {}", project.region),
            &project.region,
        )?;
        // The policy is subsidy payment's: remuneration under a code it does not know could
        // never be paid.
        if self
            .peers()?
            .subsidy
            .claim_fact_names(call, &project.remuneration_policy, project.start.max(self.today()))
            .await?
            .is_none()
        {
            return Err(invalid(
                "project.remuneration_policy",
                format!(
                    "{} is not a policy in force in subsidy payment's catalog",
                    project.remuneration_policy
                ),
                format!(
                    "劳务报酬政策 {} 不在补贴发放政策目录中或不在有效期内",
                    project.remuneration_policy
                ),
            ));
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("projects/").to_string();
                return self.get_project(caller, &id).await;
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let id = store::new_id();
        if let Err(error) = store::insert_project(unit.tx(), &id, &project, &caller.subject, now).await {
            if store::is_duplicate(&error) {
                return Err(Problem::new(
                    Code::AlreadyExists,
                    ErrorReason::AlreadyExists,
                    format!("a project numbered {} exists", project.project_number),
                    format!("项目编号 {} 已存在", project.project_number),
                )
                .with_violation("project.project_number", "already used"));
            }
            return Err(error.into());
        }
        let stored = store::get_project(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("CreateProject"), stored.name(), now).in_region(&project.region))
            .await?;
        Ok(ProjectView {
            project: stored,
            share: LaborShare::default(),
            active_workers: 0,
        })
    }

    /// A project the caller may see, read on `conn`.
    pub(crate) async fn project_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredProject, Problem> {
        let project = store::get_project(conn, id)
            .await?
            .ok_or_else(|| project_not_found(id))?;
        self.ensure_sees(caller, method_name, &project.name(), &project.data.region)?;
        Ok(project)
    }

    pub async fn get_project(&self, caller: &Principal, id: &str) -> Result<ProjectView, Problem> {
        let mut conn = self.db().acquire().await?;
        let project = self.project_for(&mut conn, caller, "GetProject", id).await?;
        self.view(&mut conn, project).await
    }

    /// The project with its share and roster, read on `conn`.
    pub(crate) async fn view(&self, conn: &mut AnyConnection, project: StoredProject) -> Result<ProjectView, Problem> {
        let share = self.labor_share(conn, &project).await?;
        let (active_workers, ..) = store::roster_counts(conn, &project.id, self.today()).await?;
        Ok(ProjectView {
            project,
            share,
            active_workers,
        })
    }

    /// The share on `conn`: each allocation's source asks its minimum share (a parameter by
    /// region and the allocation's year; unset asks nothing).
    pub(crate) async fn labor_share(
        &self,
        conn: &mut AnyConnection,
        project: &StoredProject,
    ) -> Result<LaborShare, Problem> {
        let allocations = store::list_allocations(conn, &project.id).await?;
        let (paid_fen, planned_fen) = store::share_totals(conn, &project.id).await?;
        let mut share = LaborShare {
            paid_fen,
            planned_fen,
            ..LaborShare::default()
        };
        for allocation in &allocations {
            let NewAllocation {
                fund_source,
                year,
                amount_fen,
                ..
            } = &allocation.allocation;
            share.total_fen += amount_fen;
            if *fund_source == FundSource::Central {
                share.central_fen += amount_fen;
            }
            let year_start = Date::from_calendar_date(i32::try_from(*year).unwrap_or(2000), time::Month::January, 1)
                .unwrap_or(Date::MIN);
            let bp = self
                .parameters()
                .lookup_on(conn, fund_source.min_share_key(), &project.data.region, year_start)
                .await?
                .unwrap_or(0);
            share.required_fen += domain::share_of(*amount_fen, bp);
        }
        Ok(share)
    }

    pub async fn list_projects(
        &self,
        caller: &Principal,
        mut filter: ProjectFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ProjectView>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        let projects = store::list_projects(&mut conn, &filter, after, i64::from(limit) + 1).await?;
        let mut views = Vec::with_capacity(projects.len());
        for project in projects {
            views.push(self.view(&mut conn, project).await?);
        }
        Ok(views)
    }

    pub async fn update_project(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        change: ProjectChange,
    ) -> Result<ProjectView, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let mut project = self.project_for(unit.tx(), caller, "UpdateProject", id).await?;
        let name = project.name();
        if etag != project.etag() {
            return Err(Problem::etag_mismatch(&name));
        }
        if project.state == ProjectState::Closed {
            return Err(Problem::state_conflict(
                &name,
                format!("{name} is closed"),
                "项目已竣工关闭，不能修改",
            ));
        }
        let data = &mut project.data;
        macro_rules! apply {
            ($($field:ident => $target:ident),+) => {
                $(if let Some(value) = change.$field { data.$target = value; })+
            };
        }
        apply!(
            display_name => display_name,
            summary => summary,
            owner_unit => owner_unit,
            contact_name => contact_name,
            contact_phone => contact_phone,
            key_assistance_county => key_assistance_county,
            relocation_site => relocation_site,
            flood_plain => flood_plain,
            remarks => remarks,
            pay_day => pay_day
        );
        if let Some((start, end)) = change.schedule {
            data.start = start;
            data.end = end;
        }
        let now = unit.now();
        let read = project.revision;
        if !store::update_project(unit.tx(), &project, read, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let stored = store::get_project(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        let view = self.view(unit.tx(), stored).await?;
        unit.commit(AuditEntry::by(caller, &method("UpdateProject"), name, now).in_region(&view.project.data.region))
            .await?;
        Ok(view)
    }

    pub async fn allocate_funds(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        project_id: &str,
        allocation: NewAllocation,
    ) -> Result<(StoredAllocation, LaborShare), Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.rsplit('/').next().unwrap_or_default().to_string();
                let mut conn = self.db().acquire().await?;
                let project = self.project_for(&mut conn, caller, "AllocateFunds", project_id).await?;
                let stored = store::get_allocation(&mut conn, &id)
                    .await?
                    .ok_or_else(Problem::internal)?;
                let share = self.labor_share(&mut conn, &project).await?;
                return Ok((stored, share));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let project = self.project_for(unit.tx(), caller, "AllocateFunds", project_id).await?;
        let id = store::new_id();
        if !store::lock_active_project(unit.tx(), &project.id).await? {
            return Err(Problem::state_conflict(
                &project.name(),
                "the project is closed",
                "项目已竣工关闭，不能再下达资金",
            ));
        }
        store::insert_allocation(unit.tx(), &id, &project.id, &allocation, &caller.subject, now).await?;
        let stored = store::get_allocation(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        let share = self.labor_share(unit.tx(), &project).await?;
        unit.commit(
            AuditEntry::by(caller, &method("AllocateFunds"), stored.name(), now).in_region(&project.data.region),
        )
        .await?;
        Ok((stored, share))
    }

    pub async fn list_allocations(
        &self,
        caller: &Principal,
        project_id: &str,
    ) -> Result<Vec<StoredAllocation>, Problem> {
        let mut conn = self.db().acquire().await?;
        let project = self
            .project_for(&mut conn, caller, "ListAllocations", project_id)
            .await?;
        Ok(store::list_allocations(&mut conn, &project.id).await?)
    }

    /// CloseProject: no arrears or unpaid lines, no payroll left unapproved, and the minimum
    /// share reached; checked and closed in one transaction at the etag read.
    pub async fn close_project(&self, caller: &Principal, id: &str, etag: &str) -> Result<ProjectView, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self.project_for(unit.tx(), caller, "CloseProject", id).await?;
        let name = project.name();
        if etag != project.etag() {
            return Err(Problem::etag_mismatch(&name));
        }
        if project.state == ProjectState::Closed {
            return Err(Problem::state_conflict(
                &name,
                format!("{name} is closed"),
                "项目已竣工关闭",
            ));
        }
        let (lines, amount) = store::unpaid_of_project(unit.tx(), &project.id).await?;
        if lines > 0 {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::ArrearsOpen,
                format!("{lines} payroll line(s) of {amount} fen are not paid"),
                format!("尚有 {lines} 笔劳务报酬共 {} 元未发放到位，不能竣工关闭", yuan(amount)),
            )
            .with_metadata("lines", lines.to_string())
            .with_metadata("amount_fen", amount.to_string()));
        }
        let unapproved = store::unapproved_payrolls(unit.tx(), &project.id).await?;
        if unapproved > 0 {
            return Err(Problem::state_conflict(
                &name,
                format!("{unapproved} payroll(s) are prepared and not approved"),
                format!("尚有 {unapproved} 个月工资表未审批发放，不能竣工关闭"),
            ));
        }
        let share = self.labor_share(unit.tx(), &project).await?;
        if share.gap_fen() > 0 {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::LaborShareBelowMinimum,
                format!(
                    "remuneration paid is {} fen; the rules ask at least {} fen: {} fen short",
                    share.paid_fen,
                    share.required_fen,
                    share.gap_fen()
                ),
                format!(
                    "已发放劳务报酬 {} 元，低于规定的最低 {} 元，还差 {} 元，不能竣工关闭",
                    yuan(share.paid_fen),
                    yuan(share.required_fen),
                    yuan(share.gap_fen())
                ),
            )
            .with_metadata("gap_fen", share.gap_fen().to_string())
            .with_metadata("required_fen", share.required_fen.to_string()));
        }
        if !store::close_project(unit.tx(), &project.id, project.revision, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let stored = store::get_project(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        let view = self.view(unit.tx(), stored).await?;
        unit.commit(AuditEntry::by(caller, &method("CloseProject"), name, now).in_region(&view.project.data.region))
            .await?;
        Ok(view)
    }

    pub async fn project_stats(
        &self,
        caller: &Principal,
        region_prefix: &str,
        year: i32,
        as_of: Option<Date>,
    ) -> Result<ProjectStats, Problem> {
        // A quarter's form counts up to the quarter's end; by default the whole year.
        let last = match as_of {
            None => Date::from_calendar_date(year, time::Month::December, 31)
                .map_err(|_| invalid("year", "is not a year", "统计年度无效"))?,
            Some(day) if day.year() == year => day,
            Some(_) => {
                return Err(invalid(
                    "as_of",
                    "must lie in the year counted",
                    "统计截止日期应在统计年度内",
                ));
            }
        };
        let prefix = caller.scope.narrowed(region_prefix).ok_or_else(|| {
            self.refuse(
                caller,
                "GetProjectStats",
                &format!("stats of {region_prefix}"),
                Problem::not_found(&format!("regions/{region_prefix}")),
            )
        })?;
        let mut conn = self.db().acquire().await?;
        let (totals, rows) = store::year_totals(&mut conn, &prefix, year, last).await?;
        Ok(ProjectStats {
            region_prefix: prefix,
            year,
            totals,
            rows,
            as_of: self.today(),
        })
    }
}

/// Fen as yuan with two decimals, for messages.
pub(crate) fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, (fen % 100).abs())
}
