//! Work relief's SQL, the same on SQLite and PostgreSQL (sqlx's Any driver). Every function
//! takes the connection it runs on, so a use case's reads and writes share its transaction.
//! Region filters are ranges (`region >= prefix AND region < upper bound`), which an index
//! serves, not LIKE.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use bangfu_platform::db::to_micros;
use bangfu_platform::parameters::date_text;
use bangfu_platform::regions::prefix_upper_bound;
pub use bangfu_platform::rows::new_id;
use bangfu_platform::rows::{day, instant, optional_day, parsed};

use crate::domain::{
    Channel, EnrolmentState, FundSource, LineState, ObjectionState, PayBasis, PayrollState, ProjectState,
    ReceiptSource, WorkerRole, YearMonth,
};

type Result<T> = std::result::Result<T, sqlx::Error>;

fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    let value: i64 = row.try_get(column)?;
    Ok(value != 0)
}

fn month(row: &AnyRow, column: &str) -> Result<YearMonth> {
    parsed(row, column, YearMonth::parse)
}

fn optional_instant(row: &AnyRow, column: &str) -> Result<Option<OffsetDateTime>> {
    let micros: Option<i64> = row.try_get(column)?;
    Ok(micros.and_then(bangfu_platform::db::from_micros))
}

/// `region` lies under `prefix` (bound as $n and $n+1).
fn region_range(prefix: &str) -> (String, String) {
    (prefix.to_string(), prefix_upper_bound(prefix))
}

// ---------------------------------------------------------------------------------------------
// Projects

/// What a clerk enters for a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectData {
    pub project_number: String,
    pub display_name: String,
    pub summary: String,
    pub channel: Channel,
    pub region: String,
    pub start: Date,
    pub end: Date,
    pub owner_unit: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub key_assistance_county: bool,
    pub relocation_site: bool,
    pub flood_plain: bool,
    pub remarks: String,
    pub remuneration_policy: String,
    pub pay_day: i64,
}

#[derive(Debug, Clone)]
pub struct StoredProject {
    pub id: String,
    pub data: ProjectData,
    pub state: ProjectState,
    pub revision: i64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub closed: Option<OffsetDateTime>,
}

impl StoredProject {
    pub fn name(&self) -> String {
        format!("projects/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

fn project_from(row: &AnyRow) -> Result<StoredProject> {
    Ok(StoredProject {
        id: row.try_get("id")?,
        data: ProjectData {
            project_number: row.try_get("project_number")?,
            display_name: row.try_get("display_name")?,
            summary: row.try_get("summary")?,
            channel: parsed(row, "channel", Channel::parse)?,
            region: row.try_get("region")?,
            start: day(row, "start_date")?,
            end: day(row, "end_date")?,
            owner_unit: row.try_get("owner_unit")?,
            contact_name: row.try_get("contact_name")?,
            contact_phone: row.try_get("contact_phone")?,
            key_assistance_county: flag(row, "key_assistance_county")?,
            relocation_site: flag(row, "relocation_site")?,
            flood_plain: flag(row, "flood_plain")?,
            remarks: row.try_get("remarks")?,
            remuneration_policy: row.try_get("remuneration_policy")?,
            pay_day: row.try_get("pay_day")?,
        },
        state: parsed(row, "state", ProjectState::parse)?,
        revision: row.try_get("revision")?,
        created: instant(row, "created_us")?,
        updated: instant(row, "updated_us")?,
        closed: optional_instant(row, "closed_us")?,
    })
}

/// The project number is taken (the unique index refused it).
pub fn is_duplicate(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}

pub async fn insert_project(
    tx: &mut AnyConnection,
    id: &str,
    project: &ProjectData,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO wr_projects (id, project_number, display_name, summary, channel, region, start_date, end_date, \
         owner_unit, contact_name, contact_phone, key_assistance_county, relocation_site, flood_plain, remarks, \
         remuneration_policy, pay_day, state, revision, create_subject, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 'active', 1, $18, $19, $19)",
    )
    .bind(id)
    .bind(&project.project_number)
    .bind(&project.display_name)
    .bind(&project.summary)
    .bind(project.channel.as_str())
    .bind(&project.region)
    .bind(date_text(project.start))
    .bind(date_text(project.end))
    .bind(&project.owner_unit)
    .bind(&project.contact_name)
    .bind(&project.contact_phone)
    .bind(i64::from(project.key_assistance_county))
    .bind(i64::from(project.relocation_site))
    .bind(i64::from(project.flood_plain))
    .bind(&project.remarks)
    .bind(&project.remuneration_policy)
    .bind(project.pay_day)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_project(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredProject>> {
    let row = sqlx::query("SELECT * FROM wr_projects WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(project_from).transpose()
}

/// What ListProjects filters by.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    pub region_prefix: String,
    pub channel: Option<Channel>,
    pub state: Option<ProjectState>,
    pub year: Option<i32>,
}

pub async fn list_projects(
    conn: &mut AnyConnection,
    filter: &ProjectFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredProject>> {
    let (low, high) = region_range(&filter.region_prefix);
    let (year_first, year_last) = match filter.year {
        Some(year) => (format!("{year:04}-01-01"), format!("{year:04}-12-31")),
        None => ("0000-01-01".to_string(), "9999-12-31".to_string()),
    };
    let rows = sqlx::query(
        "SELECT * FROM wr_projects WHERE region >= $1 AND region < $2 AND id > $3 \
         AND ($4 = '' OR channel = $4) AND ($5 = '' OR state = $5) AND start_date <= $6 AND end_date >= $7 \
         ORDER BY id LIMIT $8",
    )
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(filter.channel.map(Channel::as_str).unwrap_or(""))
    .bind(filter.state.map(ProjectState::as_str).unwrap_or(""))
    .bind(year_last)
    .bind(year_first)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(project_from).collect()
}

/// Writes a changed project at the revision read; false when it moved meanwhile.
pub async fn update_project(
    tx: &mut AnyConnection,
    project: &StoredProject,
    read_revision: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let data = &project.data;
    let done = sqlx::query(
        "UPDATE wr_projects SET display_name = $1, summary = $2, start_date = $3, end_date = $4, owner_unit = $5, \
         contact_name = $6, contact_phone = $7, key_assistance_county = $8, relocation_site = $9, flood_plain = $10, \
         remarks = $11, pay_day = $12, revision = revision + 1, updated_us = $13 \
         WHERE id = $14 AND revision = $15 AND state = 'active'",
    )
    .bind(&data.display_name)
    .bind(&data.summary)
    .bind(date_text(data.start))
    .bind(date_text(data.end))
    .bind(&data.owner_unit)
    .bind(&data.contact_name)
    .bind(&data.contact_phone)
    .bind(i64::from(data.key_assistance_county))
    .bind(i64::from(data.relocation_site))
    .bind(i64::from(data.flood_plain))
    .bind(&data.remarks)
    .bind(data.pay_day)
    .bind(to_micros(now))
    .bind(&project.id)
    .bind(read_revision)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes the project's row for the rest of the transaction (PostgreSQL's row lock; SQLite has
/// one writer) without changing it: a write to a project runs after a close that committed
/// first, and sees it. False when the project is not active.
pub async fn lock_active_project(tx: &mut AnyConnection, id: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE wr_projects SET state = state WHERE id = $1 AND state = 'active'")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn close_project(tx: &mut AnyConnection, id: &str, read_revision: i64, now: OffsetDateTime) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_projects SET state = 'closed', closed_us = $1, updated_us = $1, revision = revision + 1 \
         WHERE id = $2 AND revision = $3 AND state = 'active'",
    )
    .bind(to_micros(now))
    .bind(id)
    .bind(read_revision)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------------
// Allocations and the share

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAllocation {
    pub fund_source: FundSource,
    pub year: i64,
    pub amount_fen: i64,
    pub document: String,
}

#[derive(Debug, Clone)]
pub struct StoredAllocation {
    pub id: String,
    pub project_id: String,
    pub allocation: NewAllocation,
    pub create_subject: String,
    pub created: OffsetDateTime,
}

impl StoredAllocation {
    pub fn name(&self) -> String {
        format!("projects/{}/allocations/{}", self.project_id, self.id)
    }
}

fn allocation_from(row: &AnyRow) -> Result<StoredAllocation> {
    Ok(StoredAllocation {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        allocation: NewAllocation {
            fund_source: parsed(row, "fund_source", FundSource::parse)?,
            year: row.try_get("year")?,
            amount_fen: row.try_get("amount_fen")?,
            document: row.try_get("document")?,
        },
        create_subject: row.try_get("create_subject")?,
        created: instant(row, "created_us")?,
    })
}

pub async fn insert_allocation(
    tx: &mut AnyConnection,
    id: &str,
    project_id: &str,
    allocation: &NewAllocation,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO wr_allocations (id, project_id, fund_source, year, amount_fen, document, create_subject, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(project_id)
    .bind(allocation.fund_source.as_str())
    .bind(allocation.year)
    .bind(allocation.amount_fen)
    .bind(&allocation.document)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_allocation(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredAllocation>> {
    let row = sqlx::query("SELECT * FROM wr_allocations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(allocation_from).transpose()
}

pub async fn list_allocations(conn: &mut AnyConnection, project_id: &str) -> Result<Vec<StoredAllocation>> {
    let rows = sqlx::query("SELECT * FROM wr_allocations WHERE project_id = $1 ORDER BY created_us, id")
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(allocation_from).collect()
}

/// Remuneration counted in the share: paid, and approved (paid or not), of one project.
pub async fn share_totals(conn: &mut AnyConnection, project_id: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN l.state = 'paid' THEN l.amount_fen ELSE 0 END), 0) AS BIGINT) AS paid, \
         CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) AS planned \
         FROM wr_payroll_lines l JOIN wr_payrolls p ON p.project_id = l.project_id AND p.month = l.month \
         WHERE l.project_id = $1 AND l.counts_in_share = 1 AND p.state IN ('approved', 'paid')",
    )
    .bind(project_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("paid")?, row.try_get("planned")?))
}

// ---------------------------------------------------------------------------------------------
// The roster

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorker {
    pub person_id: String,
    pub role: WorkerRole,
    pub pay_basis: PayBasis,
    pub rate_fen: i64,
    pub piece_unit: String,
    pub start: Date,
    pub end: Option<Date>,
    pub agreement_reference: String,
}

#[derive(Debug, Clone)]
pub struct StoredWorker {
    pub id: String,
    pub project_id: String,
    pub worker: NewWorker,
    pub display_name: String,
    pub local: bool,
    pub target_person: bool,
    pub relocated: bool,
    pub state: EnrolmentState,
    pub end_reason: String,
    pub identity_pending: String,
    pub roster_number: i64,
    pub created: OffsetDateTime,
}

impl StoredWorker {
    pub fn name(&self) -> String {
        format!("projects/{}/workers/{}", self.project_id, self.id)
    }
}

/// What identity said of the person at enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerFlags {
    pub local: bool,
    pub target_person: bool,
    pub relocated: bool,
}

fn worker_from(row: &AnyRow) -> Result<StoredWorker> {
    Ok(StoredWorker {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        worker: NewWorker {
            person_id: row.try_get("person_id")?,
            role: parsed(row, "role", WorkerRole::parse)?,
            pay_basis: parsed(row, "pay_basis", PayBasis::parse)?,
            rate_fen: row.try_get("rate_fen")?,
            piece_unit: row.try_get("piece_unit")?,
            start: day(row, "start_date")?,
            end: optional_day(row, "end_date")?,
            agreement_reference: row.try_get("agreement_reference")?,
        },
        display_name: row.try_get("display_name")?,
        local: flag(row, "local_labor")?,
        target_person: flag(row, "target_person")?,
        relocated: flag(row, "relocated")?,
        state: parsed(row, "state", EnrolmentState::parse)?,
        end_reason: row.try_get("end_reason")?,
        identity_pending: row.try_get("identity_pending")?,
        roster_number: row.try_get("roster_number")?,
        created: instant(row, "created_us")?,
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_worker(
    tx: &mut AnyConnection,
    id: &str,
    project_id: &str,
    worker: &NewWorker,
    display_name: &str,
    flags: WorkerFlags,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO wr_workers (id, project_id, roster_number, person_id, display_name, role, pay_basis, rate_fen, \
         piece_unit, start_date, end_date, local_labor, target_person, relocated, state, end_reason, \
         agreement_reference, identity_pending, create_subject, created_us) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(roster_number), 0) + 1 FROM wr_workers WHERE project_id = $2), \
         $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active', '', $14, 'enrol', $15, $16)",
    )
    .bind(id)
    .bind(project_id)
    .bind(&worker.person_id)
    .bind(display_name)
    .bind(worker.role.as_str())
    .bind(worker.pay_basis.as_str())
    .bind(worker.rate_fen)
    .bind(&worker.piece_unit)
    .bind(date_text(worker.start))
    .bind(worker.end.map(date_text))
    .bind(i64::from(flags.local))
    .bind(i64::from(flags.target_person))
    .bind(i64::from(flags.relocated))
    .bind(&worker.agreement_reference)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_worker(conn: &mut AnyConnection, project_id: &str, id: &str) -> Result<Option<StoredWorker>> {
    let row = sqlx::query("SELECT * FROM wr_workers WHERE id = $1 AND project_id = $2")
        .bind(id)
        .bind(project_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(worker_from).transpose()
}

/// An enrolment of the person, on any project, in any month [start, end] touches: remuneration
/// is claimed per person and month (one claim of the policy group a month), so a person is on
/// one roster a month. Answers the enrolment's name.
pub async fn enrolment_in_months(
    tx: &mut AnyConnection,
    person_id: &str,
    start: Date,
    end: Option<Date>,
) -> Result<Option<String>> {
    let first = YearMonth::of(start).first_day();
    let last = end.map_or_else(
        || "9999-12-31".to_string(),
        |end| date_text(YearMonth::of(end).last_day()),
    );
    let row = sqlx::query(
        "SELECT project_id, id FROM wr_workers WHERE person_id = $1 \
         AND start_date <= $2 AND COALESCE(end_date, '9999-12-31') >= $3 LIMIT 1",
    )
    .bind(person_id)
    .bind(last)
    .bind(date_text(first))
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| {
        let project: String = r.try_get("project_id")?;
        let id: String = r.try_get("id")?;
        Ok(format!("projects/{project}/workers/{id}"))
    })
    .transpose()
}

pub async fn list_workers(
    conn: &mut AnyConnection,
    project_id: &str,
    state: Option<EnrolmentState>,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredWorker>> {
    let rows = sqlx::query(
        "SELECT * FROM wr_workers WHERE project_id = $1 AND ($2 = '' OR state = $2) AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(project_id)
    .bind(state.map(EnrolmentState::as_str).unwrap_or(""))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(worker_from).collect()
}

/// Every enrolment of the project covering some day of `month`, in roster order.
pub async fn workers_in_month(
    conn: &mut AnyConnection,
    project_id: &str,
    month: YearMonth,
) -> Result<Vec<StoredWorker>> {
    let rows = sqlx::query(
        "SELECT * FROM wr_workers WHERE project_id = $1 AND start_date <= $2 \
         AND COALESCE(end_date, '9999-12-31') >= $3 ORDER BY roster_number",
    )
    .bind(project_id)
    .bind(date_text(month.last_day()))
    .bind(date_text(month.first_day()))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(worker_from).collect()
}

/// The roster's counts on `today`: workers and team leaders enrolled that day.
pub async fn roster_counts(conn: &mut AnyConnection, project_id: &str, today: Date) -> Result<(i64, i64, i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS workers, CAST(COALESCE(SUM(target_person), 0) AS BIGINT) AS target, \
         CAST(COALESCE(SUM(relocated), 0) AS BIGINT) AS relocated, CAST(COALESCE(SUM(local_labor), 0) AS BIGINT) AS local_labor \
         FROM wr_workers WHERE project_id = $1 AND role IN ('worker', 'team_leader') \
         AND start_date <= $2 AND COALESCE(end_date, '9999-12-31') >= $2",
    )
    .bind(project_id)
    .bind(date_text(today))
    .fetch_one(&mut *conn)
    .await?;
    Ok((
        row.try_get("workers")?,
        row.try_get("target")?,
        row.try_get("relocated")?,
        row.try_get("local_labor")?,
    ))
}

/// Ends an active enrolment; false when it is not active.
pub async fn end_worker(tx: &mut AnyConnection, id: &str, end: Date, reason: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_workers SET state = 'ended', end_date = $1, end_reason = $2, \
         identity_pending = CASE WHEN identity_pending = 'enrol' THEN 'enrol' ELSE 'end' END \
         WHERE id = $3 AND state = 'active'",
    )
    .bind(date_text(end))
    .bind(reason)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks what identity has recorded, unless the enrolment moved on meanwhile.
pub async fn identity_recorded(conn: &mut AnyConnection, id: &str, pending: &str) -> Result<()> {
    sqlx::query("UPDATE wr_workers SET identity_pending = '' WHERE id = $1 AND identity_pending = $2")
        .bind(id)
        .bind(pending)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Enrolments whose employment identity has not yet recorded and whose day has come (an
/// enrolment from its start, an end from the day after it), oldest first.
pub async fn identity_pending(conn: &mut AnyConnection, today: Date, limit: i64) -> Result<Vec<StoredWorker>> {
    let rows = sqlx::query(
        "SELECT * FROM wr_workers WHERE identity_pending <> '' \
         AND ((identity_pending = 'enrol' AND start_date <= $1) OR (identity_pending = 'end' AND end_date < $1)) \
         ORDER BY created_us LIMIT $2",
    )
    .bind(date_text(today))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(worker_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Attendance

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRow {
    pub worker_id: String,
    pub days: i64,
    pub pieces: i64,
}

/// Writes a month's muster roll, replacing a worker's month sent before: a few statements
/// however long the roll (the caller has refused a worker named twice).
pub async fn upsert_attendance(
    tx: &mut AnyConnection,
    project_id: &str,
    month: YearMonth,
    rows: &[AttendanceRow],
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    const COLUMNS: usize = 7;
    let month_text = month.text();
    for chunk in rows.chunks(500) {
        let sql = format!(
            "INSERT INTO wr_attendance (worker_id, month, project_id, days, pieces, record_subject, recorded_us) \
             VALUES {} ON CONFLICT (worker_id, month) DO UPDATE SET days = excluded.days, pieces = excluded.pieces, \
             record_subject = excluded.record_subject, recorded_us = excluded.recorded_us",
            bangfu_platform::db::values_groups(tx, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(row.worker_id.clone())
                .bind(month_text.clone())
                .bind(project_id.to_string())
                .bind(row.days)
                .bind(row.pieces)
                .bind(subject.to_string())
                .bind(to_micros(now));
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// The month's muster roll by worker id.
pub async fn attendance_of(
    conn: &mut AnyConnection,
    project_id: &str,
    month: YearMonth,
) -> Result<std::collections::HashMap<String, (i64, i64)>> {
    let rows = sqlx::query("SELECT worker_id, days, pieces FROM wr_attendance WHERE project_id = $1 AND month = $2")
        .bind(project_id)
        .bind(month.text())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("worker_id")?,
                (row.try_get("days")?, row.try_get("pieces")?),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Payrolls

#[derive(Debug, Clone)]
pub struct StoredPayroll {
    pub project_id: String,
    pub month: YearMonth,
    pub state: PayrollState,
    pub due_date: Date,
    pub notice: Option<(Date, Date)>,
    pub objection_contact: String,
    pub prepare_subject: String,
    pub prepared: OffsetDateTime,
    pub approve_subject: Option<String>,
    pub approved: Option<OffsetDateTime>,
    pub revision: i64,
    pub line_count: i64,
    pub total_fen: i64,
    pub share_total_fen: i64,
    pub paid_total_fen: i64,
    pub open_objections: i64,
}

impl StoredPayroll {
    pub fn name(&self) -> String {
        payroll_name(&self.project_id, self.month)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

pub fn payroll_name(project_id: &str, month: YearMonth) -> String {
    format!("projects/{project_id}/payrolls/{}", month.text())
}

const PAYROLL_COLUMNS: &str = "p.*, \
    (SELECT COUNT(*) FROM wr_payroll_lines l WHERE l.project_id = p.project_id AND l.month = p.month) AS line_count, \
    (SELECT CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) FROM wr_payroll_lines l WHERE l.project_id = p.project_id AND l.month = p.month) AS total_fen, \
    (SELECT CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) FROM wr_payroll_lines l WHERE l.project_id = p.project_id AND l.month = p.month AND l.counts_in_share = 1) AS share_total_fen, \
    (SELECT CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) FROM wr_payroll_lines l WHERE l.project_id = p.project_id AND l.month = p.month AND l.state = 'paid') AS paid_total_fen, \
    (SELECT COUNT(*) FROM wr_objections o WHERE o.project_id = p.project_id AND o.month = p.month AND o.state = 'open') AS open_objections";

fn payroll_from(row: &AnyRow) -> Result<StoredPayroll> {
    let first = optional_day(row, "notice_first")?;
    let last = optional_day(row, "notice_last")?;
    Ok(StoredPayroll {
        project_id: row.try_get("project_id")?,
        month: month(row, "month")?,
        state: parsed(row, "state", PayrollState::parse)?,
        due_date: day(row, "due_date")?,
        notice: first.zip(last),
        objection_contact: row.try_get("objection_contact")?,
        prepare_subject: row.try_get("prepare_subject")?,
        prepared: instant(row, "prepared_us")?,
        approve_subject: row.try_get("approve_subject")?,
        approved: optional_instant(row, "approved_us")?,
        revision: row.try_get("revision")?,
        line_count: row.try_get("line_count")?,
        total_fen: row.try_get("total_fen")?,
        share_total_fen: row.try_get("share_total_fen")?,
        paid_total_fen: row.try_get("paid_total_fen")?,
        open_objections: row.try_get("open_objections")?,
    })
}

pub async fn get_payroll(
    conn: &mut AnyConnection,
    project_id: &str,
    month: YearMonth,
) -> Result<Option<StoredPayroll>> {
    let sql = format!("SELECT {PAYROLL_COLUMNS} FROM wr_payrolls p WHERE p.project_id = $1 AND p.month = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(month.text())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(payroll_from).transpose()
}

/// What ListPayrolls filters by.
#[derive(Debug, Clone, Default)]
pub struct PayrollFilter {
    /// One project, or every project under `region_prefix` when empty.
    pub project_id: String,
    pub region_prefix: String,
    pub state: Option<PayrollState>,
    pub month: Option<YearMonth>,
}

pub async fn list_payrolls(
    conn: &mut AnyConnection,
    filter: &PayrollFilter,
    today: Date,
    after: (&str, &str),
    limit: i64,
) -> Result<Vec<StoredPayroll>> {
    let (low, high) = region_range(&filter.region_prefix);
    // NOTICE and AWAITING_APPROVAL are both stored as notice, told apart by the notice's last day.
    let (stored_state, notice) = match filter.state {
        Some(PayrollState::AwaitingApproval) => ("notice", "ended"),
        Some(PayrollState::Notice) => ("notice", "running"),
        Some(state) => (state.as_str(), ""),
        None => ("", ""),
    };
    let sql = format!(
        "SELECT {PAYROLL_COLUMNS} FROM wr_payrolls p JOIN wr_projects j ON j.id = p.project_id \
         WHERE ($1 = '' OR p.project_id = $1) AND j.region >= $2 AND j.region < $3 \
         AND ($4 = '' OR p.state = $4) AND ($5 = '' OR p.month = $5) \
         AND (p.project_id > $6 OR (p.project_id = $6 AND p.month > $7)) \
         AND ($9 = '' OR ($9 = 'ended' AND p.notice_last < $10) OR ($9 = 'running' AND p.notice_last >= $10)) \
         ORDER BY p.project_id, p.month LIMIT $8"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&filter.project_id)
        .bind(low)
        .bind(high)
        .bind(stored_state)
        .bind(filter.month.map(YearMonth::text).unwrap_or_default())
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .bind(notice)
        .bind(date_text(today))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(payroll_from).collect()
}

/// A payroll's line as computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub worker_id: String,
    pub person_id: String,
    pub display_name: String,
    pub role: WorkerRole,
    pub days: i64,
    pub pieces: i64,
    pub rate_fen: i64,
    pub amount_fen: i64,
}

/// Writes a DRAFT payroll with its lines, replacing a DRAFT one; false when the month's payroll
/// exists beyond DRAFT (the caller read it as DRAFT: someone moved it meanwhile).
pub async fn replace_draft_payroll(
    tx: &mut AnyConnection,
    project_id: &str,
    month: YearMonth,
    due_date: Date,
    lines: &[NewLine],
    subject: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let month_text = month.text();
    let written = sqlx::query(
        "INSERT INTO wr_payrolls (project_id, month, state, due_date, objection_contact, prepare_subject, prepared_us, revision) \
         VALUES ($1, $2, 'draft', $3, '', $4, $5, 1) \
         ON CONFLICT (project_id, month) DO UPDATE SET due_date = excluded.due_date, \
         prepare_subject = excluded.prepare_subject, prepared_us = excluded.prepared_us, \
         revision = wr_payrolls.revision + 1, notice_first = NULL, notice_last = NULL \
         WHERE wr_payrolls.state = 'draft'",
    )
    .bind(project_id)
    .bind(&month_text)
    .bind(date_text(due_date))
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    if written.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM wr_payroll_lines WHERE project_id = $1 AND month = $2")
        .bind(project_id)
        .bind(&month_text)
        .execute(&mut *tx)
        .await?;
    const COLUMNS: usize = 18;
    for (chunk_number, chunk) in lines.chunks(500).enumerate() {
        let sql = format!(
            "INSERT INTO wr_payroll_lines (project_id, month, line_number, worker_id, person_id, display_name, role, \
             days, pieces, rate_fen, amount_fen, counts_in_share, updated_us, state, claim, status_detail, \
             receipt_source, ledger_reference) VALUES {}",
            bangfu_platform::db::values_groups(tx, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (index, line) in chunk.iter().enumerate() {
            let number = i64::try_from(chunk_number * 500 + index).unwrap_or(i64::MAX) + 1;
            query = query
                .bind(project_id.to_string())
                .bind(month_text.clone())
                .bind(number)
                .bind(line.worker_id.clone())
                .bind(line.person_id.clone())
                .bind(line.display_name.clone())
                .bind(line.role.as_str())
                .bind(line.days)
                .bind(line.pieces)
                .bind(line.rate_fen)
                .bind(line.amount_fen)
                .bind(i64::from(line.role.counts_in_share()))
                .bind(to_micros(now))
                .bind(LineState::Prepared.as_str())
                .bind("")
                .bind("")
                .bind("")
                .bind("");
        }
        query.execute(&mut *tx).await?;
    }
    Ok(true)
}

/// Moves a payroll from `from` at the revision read, writing its notice and approval fields;
/// false when it is no longer there.
pub async fn move_payroll(
    tx: &mut AnyConnection,
    payroll: &StoredPayroll,
    from: PayrollState,
    read_revision: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_payrolls SET state = $1, notice_first = $2, notice_last = $3, objection_contact = $4, \
         approve_subject = $5, approved_us = $6, revision = revision + 1 \
         WHERE project_id = $7 AND month = $8 AND state = $9 AND revision = $10",
    )
    .bind(payroll.state.as_str())
    .bind(payroll.notice.map(|n| date_text(n.0)))
    .bind(payroll.notice.map(|n| date_text(n.1)))
    .bind(&payroll.objection_contact)
    .bind(payroll.approve_subject.as_deref())
    .bind(payroll.approved.map(to_micros))
    .bind(&payroll.project_id)
    .bind(payroll.month.text())
    .bind(from.as_str())
    .bind(read_revision)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An approved payroll whose every line is paid becomes PAID.
pub async fn settle_payroll(conn: &mut AnyConnection, project_id: &str, month: &str) -> Result<()> {
    sqlx::query(
        "UPDATE wr_payrolls SET state = 'paid', revision = revision + 1 \
         WHERE project_id = $1 AND month = $2 AND state = 'approved' \
         AND NOT EXISTS (SELECT 1 FROM wr_payroll_lines l WHERE l.project_id = $1 AND l.month = $2 AND l.state <> 'paid')",
    )
    .bind(project_id)
    .bind(month)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct StoredLine {
    pub project_id: String,
    pub month: YearMonth,
    pub line_number: i64,
    pub line: NewLine,
    pub counts_in_share: bool,
    pub state: LineState,
    pub claim: String,
    pub status_detail: String,
    pub receipt_source: Option<ReceiptSource>,
    pub paid_date: Option<Date>,
    pub ledger_reference: String,
}

impl StoredLine {
    /// The claim source reference: project + month + worker, so a payroll line is claimed once.
    pub fn reference(&self) -> String {
        format!(
            "projects/{}/payrolls/{}/workers/{}",
            self.project_id,
            self.month.text(),
            self.line.worker_id
        )
    }
}

fn line_from(row: &AnyRow) -> Result<StoredLine> {
    let receipt: String = row.try_get("receipt_source")?;
    Ok(StoredLine {
        project_id: row.try_get("project_id")?,
        month: month(row, "month")?,
        line_number: row.try_get("line_number")?,
        line: NewLine {
            worker_id: row.try_get("worker_id")?,
            person_id: row.try_get("person_id")?,
            display_name: row.try_get("display_name")?,
            role: parsed(row, "role", WorkerRole::parse)?,
            days: row.try_get("days")?,
            pieces: row.try_get("pieces")?,
            rate_fen: row.try_get("rate_fen")?,
            amount_fen: row.try_get("amount_fen")?,
        },
        counts_in_share: flag(row, "counts_in_share")?,
        state: parsed(row, "state", LineState::parse)?,
        claim: row.try_get("claim")?,
        status_detail: row.try_get("status_detail")?,
        receipt_source: ReceiptSource::parse(&receipt),
        paid_date: optional_day(row, "paid_date")?,
        ledger_reference: row.try_get("ledger_reference")?,
    })
}

pub async fn lines_of(conn: &mut AnyConnection, project_id: &str, month: YearMonth) -> Result<Vec<StoredLine>> {
    let rows = sqlx::query("SELECT * FROM wr_payroll_lines WHERE project_id = $1 AND month = $2 ORDER BY line_number")
        .bind(project_id)
        .bind(month.text())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(line_from).collect()
}

/// Every line of an approved payroll moves from prepared to pending (to be sent).
pub async fn lines_to_pending(
    tx: &mut AnyConnection,
    project_id: &str,
    month: YearMonth,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE wr_payroll_lines SET state = 'pending', updated_us = $1 \
         WHERE project_id = $2 AND month = $3 AND state = 'prepared'",
    )
    .bind(to_micros(now))
    .bind(project_id)
    .bind(month.text())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Lines waiting to be sent: of one payroll, or of every payroll when `project_id` is empty.
pub async fn pending_lines(
    conn: &mut AnyConnection,
    project_id: &str,
    month: Option<YearMonth>,
    limit: i64,
) -> Result<Vec<StoredLine>> {
    let rows = sqlx::query(
        "SELECT * FROM wr_payroll_lines WHERE state = 'pending' AND ($1 = '' OR project_id = $1) \
         AND ($2 = '' OR month = $2) ORDER BY project_id, month, line_number LIMIT $3",
    )
    .bind(project_id)
    .bind(month.map(YearMonth::text).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(line_from).collect()
}

/// Sent lines' answers from subsidy payment (state, claim, detail), in one statement per 500:
/// still pending lines only, so an answer that arrives after the feed moved a line on changes
/// nothing.
pub async fn lines_sent(
    conn: &mut AnyConnection,
    answers: &[(&StoredLine, LineState, &str, &str)],
    now: OffsetDateTime,
) -> Result<()> {
    for batch in answers.chunks(500) {
        let sql = format!(
            "WITH sent (project_id, month, line_number, state, claim, detail, updated_us) AS (VALUES {}) \
             UPDATE wr_payroll_lines SET state = sent.state, claim = sent.claim, status_detail = sent.detail, \
             updated_us = sent.updated_us FROM sent \
             WHERE wr_payroll_lines.project_id = sent.project_id AND wr_payroll_lines.month = sent.month \
             AND wr_payroll_lines.line_number = sent.line_number AND wr_payroll_lines.state = 'pending'",
            bangfu_platform::db::values_groups(conn, batch.len(), 7)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (line, state, claim, detail) in batch {
            query = query
                .bind(line.project_id.clone())
                .bind(line.month.text())
                .bind(line.line_number)
                .bind(state.as_str())
                .bind(claim.to_string())
                .bind(detail.to_string())
                .bind(to_micros(now));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The line a claim source reference names.
pub async fn line_by_reference(conn: &mut AnyConnection, reference: &str) -> Result<Option<StoredLine>> {
    let mut parts = reference.split('/');
    let (Some("projects"), Some(project), Some("payrolls"), Some(month), Some("workers"), Some(worker), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT * FROM wr_payroll_lines WHERE project_id = $1 AND month = $2 AND worker_id = $3")
        .bind(project)
        .bind(month)
        .bind(worker)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(line_from).transpose()
}

/// Moves a sent line on from what the claim feed says; a paid line stays paid.
#[allow(clippy::too_many_arguments)]
pub async fn line_outcome(
    conn: &mut AnyConnection,
    line: &StoredLine,
    state: LineState,
    claim: &str,
    detail: &str,
    receipt: Option<(ReceiptSource, Date, &str)>,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_payroll_lines SET state = $1, claim = $2, status_detail = $3, receipt_source = $4, \
         paid_date = $5, ledger_reference = $6, updated_us = $7 \
         WHERE project_id = $8 AND month = $9 AND line_number = $10 AND state IN ('pending', 'claimed', 'claim_refused', 'payment_failed')",
    )
    .bind(state.as_str())
    .bind(claim)
    .bind(detail)
    .bind(receipt.map(|r| r.0.as_str()).unwrap_or(""))
    .bind(receipt.map(|r| date_text(r.1)))
    .bind(receipt.map(|r| r.2).unwrap_or(""))
    .bind(to_micros(now))
    .bind(&line.project_id)
    .bind(line.month.text())
    .bind(line.line_number)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A refused line back to PENDING, to be sent again; false when it is not refused.
pub async fn resubmit_line(tx: &mut AnyConnection, line: &StoredLine, now: OffsetDateTime) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_payroll_lines SET state = 'pending', status_detail = '', updated_us = $1 \
         WHERE project_id = $2 AND month = $3 AND line_number = $4 AND state = 'claim_refused'",
    )
    .bind(to_micros(now))
    .bind(&line.project_id)
    .bind(line.month.text())
    .bind(line.line_number)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A claimed line confirmed paid from the paper ledger; false when it is no longer claimed
/// (the feed moved it meanwhile: a bank failure is never overwritten).
pub async fn confirm_line(
    tx: &mut AnyConnection,
    line: &StoredLine,
    receipt: Option<(ReceiptSource, Date, &str)>,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_payroll_lines SET state = 'paid', receipt_source = $1, paid_date = $2, ledger_reference = $3, \
         updated_us = $4 WHERE project_id = $5 AND month = $6 AND line_number = $7 AND state = 'claimed'",
    )
    .bind(receipt.map(|r| r.0.as_str()).unwrap_or(""))
    .bind(receipt.map(|r| date_text(r.1)))
    .bind(receipt.map(|r| r.2).unwrap_or(""))
    .bind(to_micros(now))
    .bind(&line.project_id)
    .bind(line.month.text())
    .bind(line.line_number)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_line(
    conn: &mut AnyConnection,
    project_id: &str,
    month: YearMonth,
    line_number: i64,
) -> Result<Option<StoredLine>> {
    let row = sqlx::query("SELECT * FROM wr_payroll_lines WHERE project_id = $1 AND month = $2 AND line_number = $3")
        .bind(project_id)
        .bind(month.text())
        .bind(line_number)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(line_from).transpose()
}

/// Lines owed: not paid, with an amount, of a payroll due on or before `due_by`, under a region.
#[derive(Debug, Clone)]
pub struct OwedLine {
    pub line: StoredLine,
    pub project_name: String,
    pub region: String,
    pub due_date: Date,
}

/// Where a page of owed lines resumes: after this due date, project, month and line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwedCursor {
    pub due_date: String,
    pub project_id: String,
    pub month: String,
    pub line_number: i64,
}

pub async fn owed_lines(
    conn: &mut AnyConnection,
    region_prefix: &str,
    project_id: &str,
    due_by: Date,
    after: &OwedCursor,
    limit: i64,
) -> Result<Vec<OwedLine>> {
    let (low, high) = region_range(region_prefix);
    let rows = sqlx::query(
        "SELECT l.*, j.display_name AS project_name, j.region AS project_region, p.due_date AS payroll_due \
         FROM wr_payroll_lines l JOIN wr_payrolls p ON p.project_id = l.project_id AND p.month = l.month \
         JOIN wr_projects j ON j.id = l.project_id \
         WHERE l.state <> 'paid' AND l.amount_fen > 0 AND p.due_date <= $1 AND j.region >= $2 AND j.region < $3 \
         AND ($4 = '' OR l.project_id = $4) \
         AND (p.due_date > $5 OR (p.due_date = $5 AND (l.project_id > $6 OR (l.project_id = $6 AND \
         (l.month > $7 OR (l.month = $7 AND l.line_number > $8)))))) \
         ORDER BY p.due_date, l.project_id, l.month, l.line_number LIMIT $9",
    )
    .bind(date_text(due_by))
    .bind(low)
    .bind(high)
    .bind(project_id)
    .bind(&after.due_date)
    .bind(&after.project_id)
    .bind(&after.month)
    .bind(after.line_number)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(OwedLine {
                line: line_from(row)?,
                project_name: row.try_get("project_name")?,
                region: row.try_get("project_region")?,
                due_date: day(row, "payroll_due")?,
            })
        })
        .collect()
}

/// Lines of the project not yet paid, and their amount.
pub async fn unpaid_of_project(conn: &mut AnyConnection, project_id: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS lines, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount FROM wr_payroll_lines \
         WHERE project_id = $1 AND state <> 'paid' AND amount_fen > 0",
    )
    .bind(project_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("lines")?, row.try_get("amount")?))
}

/// Payrolls of the project not yet approved (a month prepared and left behind).
pub async fn unapproved_payrolls(conn: &mut AnyConnection, project_id: &str) -> Result<i64> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM wr_payrolls WHERE project_id = $1 AND state IN ('draft', 'notice')")
            .bind(project_id)
            .fetch_one(&mut *conn)
            .await?;
    row.try_get("n")
}

// ---------------------------------------------------------------------------------------------
// Objections

#[derive(Debug, Clone)]
pub struct StoredObjection {
    pub id: String,
    pub project_id: String,
    pub month: YearMonth,
    pub line_number: i64,
    pub content: String,
    pub channel: String,
    pub received: Date,
    pub state: ObjectionState,
    pub resolution: String,
    pub raise_subject: String,
    pub resolve_subject: String,
}

impl StoredObjection {
    pub fn name(&self) -> String {
        format!("{}/objections/{}", payroll_name(&self.project_id, self.month), self.id)
    }
}

fn objection_from(row: &AnyRow) -> Result<StoredObjection> {
    Ok(StoredObjection {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        month: month(row, "month")?,
        line_number: row.try_get("line_number")?,
        content: row.try_get("content")?,
        channel: row.try_get("channel")?,
        received: day(row, "received_date")?,
        state: parsed(row, "state", ObjectionState::parse)?,
        resolution: row.try_get("resolution")?,
        raise_subject: row.try_get("raise_subject")?,
        resolve_subject: row.try_get("resolve_subject")?,
    })
}

pub async fn insert_objection(tx: &mut AnyConnection, objection: &StoredObjection, now: OffsetDateTime) -> Result<()> {
    sqlx::query(
        "INSERT INTO wr_objections (id, project_id, month, line_number, content, channel, received_date, state, \
         resolution, raise_subject, resolve_subject, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', '', $8, '', $9)",
    )
    .bind(&objection.id)
    .bind(&objection.project_id)
    .bind(objection.month.text())
    .bind(objection.line_number)
    .bind(&objection.content)
    .bind(&objection.channel)
    .bind(date_text(objection.received))
    .bind(&objection.raise_subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_objection(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredObjection>> {
    let row = sqlx::query("SELECT * FROM wr_objections WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(objection_from).transpose()
}

/// Resolves an open objection; false when it is no longer open.
pub async fn resolve_objection(
    tx: &mut AnyConnection,
    id: &str,
    state: ObjectionState,
    resolution: &str,
    subject: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_objections SET state = $1, resolution = $2, resolve_subject = $3 WHERE id = $4 AND state = 'open'",
    )
    .bind(state.as_str())
    .bind(resolution)
    .bind(subject)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A payroll in notice takes an objection: its revision moves; false when it is past notice.
pub async fn touch_noticed_payroll(tx: &mut AnyConnection, project_id: &str, month: YearMonth) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_payrolls SET revision = revision + 1 WHERE project_id = $1 AND month = $2 AND state = 'notice'",
    )
    .bind(project_id)
    .bind(month.text())
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An upheld objection sends the payroll back to DRAFT, its notice withdrawn.
pub async fn payroll_back_to_draft(tx: &mut AnyConnection, project_id: &str, month: YearMonth) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wr_payrolls SET state = 'draft', notice_first = NULL, notice_last = NULL, revision = revision + 1 \
         WHERE project_id = $1 AND month = $2 AND state = 'notice'",
    )
    .bind(project_id)
    .bind(month.text())
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// A region's year, summed.
#[derive(Debug, Clone, Default)]
pub struct YearTotals {
    pub projects: i64,
    pub funds: Vec<(FundSource, i64)>,
    pub remuneration_paid: i64,
    pub share_paid: i64,
    pub workers: i64,
    pub target_persons: i64,
    pub relocated: i64,
}

/// A project list row (附件2) before wiring.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub project: StoredProject,
    pub people: i64,
    pub target_persons: i64,
    pub paid_fen: i64,
}

pub async fn year_totals(
    conn: &mut AnyConnection,
    region_prefix: &str,
    year: i32,
    last_day: Date,
) -> Result<(YearTotals, Vec<ListRow>)> {
    let (low, high) = region_range(region_prefix);
    let (first, last) = (format!("{year:04}-01-01"), date_text(last_day));
    let mut totals = YearTotals::default();
    let projects = sqlx::query(
        "SELECT * FROM wr_projects WHERE region >= $1 AND region < $2 AND start_date <= $3 AND end_date >= $4 \
         ORDER BY project_number",
    )
    .bind(&low)
    .bind(&high)
    .bind(&last)
    .bind(&first)
    .fetch_all(&mut *conn)
    .await?;
    totals.projects = i64::try_from(projects.len()).unwrap_or(i64::MAX);
    let funds = sqlx::query(
        "SELECT a.fund_source, CAST(SUM(a.amount_fen) AS BIGINT) AS amount FROM wr_allocations a JOIN wr_projects j ON j.id = a.project_id \
         WHERE j.region >= $1 AND j.region < $2 AND a.year = $3 GROUP BY a.fund_source ORDER BY a.fund_source",
    )
    .bind(&low)
    .bind(&high)
    .bind(i64::from(year))
    .fetch_all(&mut *conn)
    .await?;
    for row in &funds {
        totals
            .funds
            .push((parsed(row, "fund_source", FundSource::parse)?, row.try_get("amount")?));
    }
    let paid = sqlx::query(
        "SELECT CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) AS paid, \
         CAST(COALESCE(SUM(CASE WHEN l.counts_in_share = 1 THEN l.amount_fen ELSE 0 END), 0) AS BIGINT) AS share_paid \
         FROM wr_payroll_lines l JOIN wr_projects j ON j.id = l.project_id \
         WHERE l.state = 'paid' AND j.region >= $1 AND j.region < $2 AND l.paid_date >= $3 AND l.paid_date <= $4",
    )
    .bind(&low)
    .bind(&high)
    .bind(&first)
    .bind(&last)
    .fetch_one(&mut *conn)
    .await?;
    totals.remuneration_paid = paid.try_get("paid")?;
    totals.share_paid = paid.try_get("share_paid")?;
    // A person on two projects counts once in the region, once on each project's row.
    let people = sqlx::query(
        "SELECT COUNT(DISTINCT w.person_id) AS workers, \
         COUNT(DISTINCT CASE WHEN w.target_person = 1 THEN w.person_id END) AS target, \
         COUNT(DISTINCT CASE WHEN w.relocated = 1 THEN w.person_id END) AS relocated \
         FROM wr_workers w JOIN wr_projects j ON j.id = w.project_id \
         WHERE j.region >= $1 AND j.region < $2 AND w.role IN ('worker', 'team_leader') \
         AND w.start_date <= $3 AND COALESCE(w.end_date, '9999-12-31') >= $4",
    )
    .bind(&low)
    .bind(&high)
    .bind(&last)
    .bind(&first)
    .fetch_one(&mut *conn)
    .await?;
    totals.workers = people.try_get("workers")?;
    totals.target_persons = people.try_get("target")?;
    totals.relocated = people.try_get("relocated")?;
    let mut rows = Vec::with_capacity(projects.len());
    for project in &projects {
        let project = project_from(project)?;
        let counts = sqlx::query(
            "SELECT COUNT(DISTINCT w.person_id) AS people, \
             COUNT(DISTINCT CASE WHEN w.target_person = 1 THEN w.person_id END) AS target, \
             (SELECT CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) FROM wr_payroll_lines l WHERE l.project_id = $1 \
              AND l.state = 'paid' AND l.paid_date >= $3 AND l.paid_date <= $2) AS paid \
             FROM wr_workers w WHERE w.project_id = $1 AND w.role IN ('worker', 'team_leader') \
             AND w.start_date <= $2 AND COALESCE(w.end_date, '9999-12-31') >= $3",
        )
        .bind(&project.id)
        .bind(&last)
        .bind(&first)
        .fetch_one(&mut *conn)
        .await?;
        rows.push(ListRow {
            people: counts.try_get("people")?,
            target_persons: counts.try_get("target")?,
            paid_fen: counts.try_get("paid")?,
            project,
        });
    }
    Ok((totals, rows))
}
