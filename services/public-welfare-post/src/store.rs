//! Public-welfare posts' SQL, the same on SQLite and PostgreSQL (sqlx's Any driver). Every
//! function takes the connection it runs on, so a use case's reads and writes share its
//! transaction.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use bangfu_platform::db::to_micros;
use bangfu_platform::parameters::{date_text, parse_date_text};
use bangfu_platform::regions::prefix_upper_bound;
pub use bangfu_platform::rows::new_id;
use bangfu_platform::rows::{day, instant, json, optional_day, parsed, to_json};

use crate::domain::{
    ApplicationState, AssignmentState, ExitReason, Finding, FundingSource, MonthOutcome, ObjectionState, PostClass,
    PostState, PostType, WorkTime, day_number,
};

type Result<T> = std::result::Result<T, sqlx::Error>;

/// The one-person-one-post rule refused the write: PostgreSQL's exclusion constraint (23P01) or
/// SQLite's trigger.
pub fn is_slot_taken(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database) => {
            database.code().as_deref() == Some("23P01") || database.message().contains("one_person_one_post")
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Posts

/// A post as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPost {
    pub village: String,
    pub title: String,
    pub post_type: PostType,
    pub post_class: PostClass,
    pub funding_source: FundingSource,
    pub subsidy_policy: String,
    pub monthly_standard: Option<i64>,
    pub hours_per_month: i64,
    pub days_per_month: i64,
    pub work_time: WorkTime,
    pub places: i64,
    pub village_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPost {
    pub id: String,
    pub post: NewPost,
    pub state: PostState,
    pub places_taken: i64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub revision: i64,
}

impl StoredPost {
    pub fn name(&self) -> String {
        format!("posts/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

const POST_COLUMNS: &str = "p.*, (SELECT COUNT(*) FROM assignments a WHERE a.post_id = p.id \
                            AND a.state IN ('proposed', 'active')) AS places_taken";

fn post_from(row: &AnyRow) -> Result<StoredPost> {
    let only: i64 = row.try_get("village_only")?;
    Ok(StoredPost {
        id: row.try_get("id")?,
        post: NewPost {
            village: row.try_get("village")?,
            title: row.try_get("title")?,
            post_type: parsed(row, "post_type", PostType::parse)?,
            post_class: parsed(row, "post_class", PostClass::parse)?,
            funding_source: parsed(row, "funding_source", FundingSource::parse)?,
            subsidy_policy: row.try_get("subsidy_policy")?,
            monthly_standard: row.try_get("monthly_standard_fen")?,
            hours_per_month: row.try_get("hours_per_month")?,
            days_per_month: row.try_get("days_per_month")?,
            work_time: parsed(row, "work_time", WorkTime::parse)?,
            places: row.try_get("places")?,
            village_only: only != 0,
        },
        state: parsed(row, "state", PostState::parse)?,
        places_taken: row.try_get("places_taken")?,
        created: instant(row, "created_us")?,
        updated: instant(row, "updated_us")?,
        revision: row.try_get("revision")?,
    })
}

pub async fn insert_post(
    tx: &mut AnyConnection,
    id: &str,
    post: &NewPost,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO posts (id, village, title, post_type, post_class, funding_source, subsidy_policy, \
         monthly_standard_fen, hours_per_month, days_per_month, work_time, places, village_only, state, \
         create_subject, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'open', $14, $15, $15)",
    )
    .bind(id)
    .bind(&post.village)
    .bind(&post.title)
    .bind(post.post_type.as_str())
    .bind(post.post_class.as_str())
    .bind(post.funding_source.as_str())
    .bind(&post.subsidy_policy)
    .bind(post.monthly_standard)
    .bind(post.hours_per_month)
    .bind(post.days_per_month)
    .bind(post.work_time.as_str())
    .bind(post.places)
    .bind(i64::from(post.village_only))
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_post(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredPost>> {
    let sql = format!("SELECT {POST_COLUMNS} FROM posts p WHERE p.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(post_from).transpose()
}

/// What ListPosts filters by.
#[derive(Debug, Clone, Default)]
pub struct PostFilter {
    pub region_prefix: String,
    pub post_type: Option<PostType>,
    pub funding_source: Option<FundingSource>,
    pub state: Option<PostState>,
}

pub async fn list_posts(
    conn: &mut AnyConnection,
    filter: &PostFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredPost>> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM posts p WHERE p.village LIKE $1 AND p.id > $2 \
         AND ($3 = '' OR p.post_type = $3) AND ($4 = '' OR p.funding_source = $4) AND ($5 = '' OR p.state = $5) \
         ORDER BY p.id LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(format!("{}%", filter.region_prefix))
        .bind(after)
        .bind(filter.post_type.map(PostType::as_str).unwrap_or(""))
        .bind(filter.funding_source.map(FundingSource::as_str).unwrap_or(""))
        .bind(filter.state.map(PostState::as_str).unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(post_from).collect()
}

/// Locks an open post for new proposals and gives its free places, counted after the lock:
/// two proposals for one post are decided one after the other. None when it is not open.
pub async fn lock_free_places(tx: &mut AnyConnection, id: &str, now: OffsetDateTime) -> Result<Option<i64>> {
    let locked =
        sqlx::query("UPDATE posts SET revision = revision + 1, updated_us = $1 WHERE id = $2 AND state = 'open'")
            .bind(to_micros(now))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if locked != 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT p.places - (SELECT COUNT(*) FROM assignments a WHERE a.post_id = p.id \
         AND a.state IN ('proposed', 'active')) AS free FROM posts p WHERE p.id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Some(row.try_get("free")?))
}

/// Writes a post's changeable fields if its revision is still `revision`; false when it moved on.
pub async fn update_post(
    tx: &mut AnyConnection,
    stored: &StoredPost,
    revision: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE posts SET title = $1, monthly_standard_fen = $2, hours_per_month = $3, days_per_month = $4, \
         work_time = $5, places = $6, state = $7, updated_us = $8, revision = revision + 1 \
         WHERE id = $9 AND revision = $10",
    )
    .bind(&stored.post.title)
    .bind(stored.post.monthly_standard)
    .bind(stored.post.hours_per_month)
    .bind(stored.post.days_per_month)
    .bind(stored.post.work_time.as_str())
    .bind(stored.post.places)
    .bind(stored.state.as_str())
    .bind(to_micros(now))
    .bind(&stored.id)
    .bind(revision)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

// ---------------------------------------------------------------------------------------------
// Announcements and applications

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnnouncement {
    pub post_id: String,
    pub duties: String,
    pub requirements: String,
    pub pay: String,
    pub hours: String,
    pub place: String,
    pub first_day: Date,
    pub last_day: Date,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnnouncement {
    pub id: String,
    pub announcement: NewAnnouncement,
    pub village: String,
    pub application_count: i64,
    pub created: OffsetDateTime,
}

impl StoredAnnouncement {
    pub fn name(&self) -> String {
        format!("announcements/{}", self.id)
    }
}

pub async fn insert_announcement(
    tx: &mut AnyConnection,
    id: &str,
    new: &NewAnnouncement,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO announcements (id, post_id, duties, requirements, pay, hours, place, first_day, last_day, \
         create_subject, created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(&new.post_id)
    .bind(&new.duties)
    .bind(&new.requirements)
    .bind(&new.pay)
    .bind(&new.hours)
    .bind(&new.place)
    .bind(date_text(new.first_day))
    .bind(date_text(new.last_day))
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_announcement(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredAnnouncement>> {
    let row = sqlx::query(
        "SELECT n.*, p.village, (SELECT COUNT(*) FROM applications a WHERE a.announcement_id = n.id) AS application_count \
         FROM announcements n JOIN posts p ON p.id = n.post_id WHERE n.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(|row| {
            Ok(StoredAnnouncement {
                id: row.try_get("id")?,
                announcement: NewAnnouncement {
                    post_id: row.try_get("post_id")?,
                    duties: row.try_get("duties")?,
                    requirements: row.try_get("requirements")?,
                    pay: row.try_get("pay")?,
                    hours: row.try_get("hours")?,
                    place: row.try_get("place")?,
                    first_day: day(row, "first_day")?,
                    last_day: day(row, "last_day")?,
                },
                village: row.try_get("village")?,
                application_count: row.try_get("application_count")?,
                created: instant(row, "created_us")?,
            })
        })
        .transpose()
}

/// A stored eligibility check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checked {
    pub hire_date: String,
    pub findings: Vec<Finding>,
    pub labor_capacity: String,
    pub checked_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApplication {
    pub id: String,
    pub announcement_id: String,
    pub person_id: String,
    pub display_name: String,
    pub declared_fit: bool,
    pub state: ApplicationState,
    pub eligibility: Option<Checked>,
    pub rank_key: i64,
    pub created: OffsetDateTime,
    pub village: String,
    pub post_id: String,
}

impl StoredApplication {
    pub fn name(&self) -> String {
        format!("applications/{}", self.id)
    }
}

const APPLICATION_SELECT: &str = "SELECT a.*, p.village, n.post_id FROM applications a \
     JOIN announcements n ON n.id = a.announcement_id JOIN posts p ON p.id = n.post_id";

fn application_from(row: &AnyRow) -> Result<StoredApplication> {
    let checked: Option<String> = row.try_get("eligibility")?;
    let fit: i64 = row.try_get("declared_fit")?;
    Ok(StoredApplication {
        id: row.try_get("id")?,
        announcement_id: row.try_get("announcement_id")?,
        person_id: row.try_get("person_id")?,
        display_name: row.try_get("display_name")?,
        declared_fit: fit != 0,
        state: parsed(row, "state", ApplicationState::parse)?,
        eligibility: match checked {
            Some(_) => Some(json(row, "eligibility")?),
            None => None,
        },
        rank_key: row.try_get("rank_key")?,
        created: instant(row, "created_us")?,
        village: row.try_get("village")?,
        post_id: row.try_get("post_id")?,
    })
}

/// Inserts an application; None when the person already applied to the announcement (its id).
#[allow(clippy::too_many_arguments)]
pub async fn insert_application(
    tx: &mut AnyConnection,
    id: &str,
    announcement_id: &str,
    person_id: &str,
    display_name: &str,
    declared_fit: bool,
    subject: &str,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    let inserted = sqlx::query(
        "INSERT INTO applications (id, announcement_id, person_id, display_name, declared_fit, state, \
         create_subject, created_us) VALUES ($1, $2, $3, $4, $5, 'submitted', $6, $7) \
         ON CONFLICT (announcement_id, person_id) DO NOTHING",
    )
    .bind(id)
    .bind(announcement_id)
    .bind(person_id)
    .bind(display_name)
    .bind(i64::from(declared_fit))
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    let existing: String =
        sqlx::query_scalar("SELECT id FROM applications WHERE announcement_id = $1 AND person_id = $2")
            .bind(announcement_id)
            .bind(person_id)
            .fetch_one(&mut *tx)
            .await?;
    Ok(Some(existing))
}

pub async fn get_application(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredApplication>> {
    let sql = format!("{APPLICATION_SELECT} WHERE a.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(application_from).transpose()
}

/// An announcement's applications by rank, then arrival; after (rank, created, id).
pub async fn list_applications(
    conn: &mut AnyConnection,
    announcement_id: &str,
    state: Option<ApplicationState>,
    after: Option<(i64, i64, String)>,
    limit: i64,
) -> Result<Vec<StoredApplication>> {
    let (rank, created, id) = after.unwrap_or((-1, 0, String::new()));
    let sql = format!(
        "{APPLICATION_SELECT} WHERE a.announcement_id = $1 AND ($2 = '' OR a.state = $2) \
         AND (a.rank_key > $3 OR (a.rank_key = $3 AND (a.created_us > $4 OR (a.created_us = $4 AND a.id > $5)))) \
         ORDER BY a.rank_key, a.created_us, a.id LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(announcement_id)
        .bind(state.map(ApplicationState::as_str).unwrap_or(""))
        .bind(rank)
        .bind(created)
        .bind(id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(application_from).collect()
}

/// Keeps a check on its application, with the rank it gives.
pub async fn set_eligibility(tx: &mut AnyConnection, id: &str, checked: &Checked, rank_key: i64) -> Result<()> {
    // A proposed or hired applicant's check stays as it was when proposed: checked again, their
    // own proposal would count as another post.
    sqlx::query(
        "UPDATE applications SET eligibility = $1, labor_capacity = $2, rank_key = $3 WHERE id = $4 \
         AND state = 'submitted'",
    )
    .bind(to_json(checked))
    .bind(&checked.labor_capacity)
    .bind(rank_key)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves an application from `from` to `to`; false when it was not in `from`.
pub async fn move_application(
    tx: &mut AnyConnection,
    id: &str,
    from: ApplicationState,
    to: ApplicationState,
) -> Result<bool> {
    let moved = sqlx::query("UPDATE applications SET state = $1 WHERE id = $2 AND state = $3")
        .bind(to.as_str())
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(moved == 1)
}

// ---------------------------------------------------------------------------------------------
// Hire notices and assignments

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotice {
    pub id: String,
    pub announcement_id: String,
    pub first_day: Date,
    pub last_day: Date,
    pub confirmed: bool,
    pub objections: i64,
    pub open_objections: i64,
    pub created: OffsetDateTime,
}

impl StoredNotice {
    pub fn name(&self) -> String {
        format!("hireNotices/{}", self.id)
    }
}

pub async fn insert_notice(
    tx: &mut AnyConnection,
    id: &str,
    announcement_id: &str,
    first: Date,
    last: Date,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO hire_notices (id, announcement_id, first_day, last_day, state, create_subject, created_us) \
         VALUES ($1, $2, $3, $4, 'running', $5, $6)",
    )
    .bind(id)
    .bind(announcement_id)
    .bind(date_text(first))
    .bind(date_text(last))
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_notice(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredNotice>> {
    let row = sqlx::query(
        "SELECT h.*, (SELECT COUNT(*) FROM objections o WHERE o.notice_id = h.id) AS objections, \
         (SELECT COUNT(*) FROM objections o WHERE o.notice_id = h.id AND o.state = 'open') AS open_objections \
         FROM hire_notices h WHERE h.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(|row| {
            let state: String = row.try_get("state")?;
            Ok(StoredNotice {
                id: row.try_get("id")?,
                announcement_id: row.try_get("announcement_id")?,
                first_day: day(row, "first_day")?,
                last_day: day(row, "last_day")?,
                confirmed: state == "confirmed",
                objections: row.try_get("objections")?,
                open_objections: row.try_get("open_objections")?,
                created: instant(row, "created_us")?,
            })
        })
        .transpose()
}

/// Marks a running notice confirmed; false when it was confirmed already.
pub async fn confirm_notice(tx: &mut AnyConnection, id: &str, subject: &str, now: OffsetDateTime) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE hire_notices SET state = 'confirmed', confirm_subject = $1, confirmed_us = $2 \
         WHERE id = $3 AND state = 'running'",
    )
    .bind(subject)
    .bind(to_micros(now))
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// A signing as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssignment {
    pub post_id: String,
    pub village: String,
    pub person_id: String,
    pub display_name: String,
    /// The holder's household per identity when hired, for the cadre and rotation signals.
    pub household: String,
    pub application_id: Option<String>,
    pub notice_id: Option<String>,
    pub renews: Option<String>,
    pub state: AssignmentState,
    pub start: Date,
    pub end: Date,
    pub insurer: String,
    pub insurance_number: String,
    pub insurance_first: Date,
    pub insurance_last: Date,
    pub first_hire_date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAssignment {
    pub id: String,
    pub new: NewAssignment,
    pub state: AssignmentState,
    pub last_day: Date,
    pub exit_reason: Option<ExitReason>,
    pub exit_note: String,
    pub employment_recorded: bool,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub revision: i64,
}

impl StoredAssignment {
    pub fn name(&self) -> String {
        format!("assignments/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

fn assignment_from(row: &AnyRow) -> Result<StoredAssignment> {
    let reason: String = row.try_get("exit_reason")?;
    let recorded: i64 = row.try_get("employment_recorded")?;
    let state = parsed(row, "state", AssignmentState::parse)?;
    Ok(StoredAssignment {
        id: row.try_get("id")?,
        new: NewAssignment {
            post_id: row.try_get("post_id")?,
            village: row.try_get("village")?,
            person_id: row.try_get("person_id")?,
            display_name: row.try_get("display_name")?,
            household: row.try_get("household")?,
            application_id: row.try_get("application_id")?,
            notice_id: row.try_get("notice_id")?,
            renews: row.try_get("renews")?,
            state,
            start: day(row, "start_date")?,
            end: day(row, "end_date")?,
            insurer: row.try_get("insurer")?,
            insurance_number: row.try_get("insurance_number")?,
            insurance_first: day(row, "insurance_first")?,
            insurance_last: day(row, "insurance_last")?,
            first_hire_date: day(row, "first_hire_date")?,
        },
        state,
        last_day: day(row, "last_day")?,
        exit_reason: ExitReason::parse(&reason),
        exit_note: row.try_get("exit_note")?,
        employment_recorded: recorded != 0,
        created: instant(row, "created_us")?,
        updated: instant(row, "updated_us")?,
        revision: row.try_get("revision")?,
    })
}

/// Inserts a signing; the one-person-one-post rule may refuse it (see [`is_slot_taken`]).
pub async fn insert_assignment(
    tx: &mut AnyConnection,
    id: &str,
    new: &NewAssignment,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO assignments (id, post_id, village, person_id, display_name, application_id, notice_id, renews, \
         state, start_date, end_date, last_day, slot_first, slot_last, insurer, insurance_number, insurance_first, \
         insurance_last, first_hire_date, create_subject, created_us, updated_us, household) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21)",
    )
    .bind(id)
    .bind(&new.post_id)
    .bind(&new.village)
    .bind(&new.person_id)
    .bind(&new.display_name)
    .bind(new.application_id.as_deref())
    .bind(new.notice_id.as_deref())
    .bind(new.renews.as_deref())
    .bind(new.state.as_str())
    .bind(date_text(new.start))
    .bind(date_text(new.end))
    .bind(day_number(new.start))
    .bind(day_number(new.end))
    .bind(&new.insurer)
    .bind(&new.insurance_number)
    .bind(date_text(new.insurance_first))
    .bind(date_text(new.insurance_last))
    .bind(date_text(new.first_hire_date))
    .bind(subject)
    .bind(to_micros(now))
    .bind(&new.household)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_assignment(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredAssignment>> {
    let row = sqlx::query("SELECT * FROM assignments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(assignment_from).transpose()
}

pub async fn notice_assignments(conn: &mut AnyConnection, notice_id: &str) -> Result<Vec<StoredAssignment>> {
    let rows = sqlx::query("SELECT * FROM assignments WHERE notice_id = $1 ORDER BY id")
        .bind(notice_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(assignment_from).collect()
}

/// What ListAssignments filters by.
#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter {
    pub region_prefix: String,
    pub post_id: String,
    pub person_id: String,
    pub state: Option<AssignmentState>,
}

pub async fn list_assignments(
    conn: &mut AnyConnection,
    filter: &AssignmentFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredAssignment>> {
    let rows = sqlx::query(
        "SELECT * FROM assignments WHERE village LIKE $1 AND id > $2 AND ($3 = '' OR post_id = $3) \
         AND ($4 = '' OR person_id = $4) AND ($5 = '' OR state = $5) ORDER BY id LIMIT $6",
    )
    .bind(format!("{}%", filter.region_prefix))
    .bind(after)
    .bind(&filter.post_id)
    .bind(&filter.person_id)
    .bind(filter.state.map(AssignmentState::as_str).unwrap_or(""))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(assignment_from).collect()
}

/// The signing that holds `person`'s slot somewhere in [first, last], other than `except`.
pub async fn slot_holder(
    conn: &mut AnyConnection,
    person_id: &str,
    first: Date,
    last: Date,
    except: &str,
) -> Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT id FROM assignments WHERE person_id = $1 AND state IN ('proposed', 'active') \
         AND slot_first <= $2 AND $3 <= slot_last AND id <> $4 LIMIT 1",
    )
    .bind(person_id)
    .bind(day_number(last))
    .bind(day_number(first))
    .bind(except)
    .fetch_optional(&mut *conn)
    .await
}

/// The person's placements so far: first signings (not renewals) confirmed at some time.
pub async fn placements(conn: &mut AnyConnection, person_id: &str) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM assignments WHERE person_id = $1 AND renews IS NULL AND state IN ('active', 'ended')",
    )
    .bind(person_id)
    .fetch_one(&mut *conn)
    .await
}

/// Moves a signing from `from` to `to` if its revision is `revision` (any when None); false
/// when it moved on meanwhile.
pub async fn move_assignment(
    tx: &mut AnyConnection,
    id: &str,
    from: AssignmentState,
    to: AssignmentState,
    revision: Option<i64>,
    now: OffsetDateTime,
) -> Result<bool> {
    let moved = sqlx::query(
        "UPDATE assignments SET state = $1, updated_us = $2, revision = revision + 1 \
         WHERE id = $3 AND state = $4 AND ($5 < 0 OR revision = $5)",
    )
    .bind(to.as_str())
    .bind(to_micros(now))
    .bind(id)
    .bind(from.as_str())
    .bind(revision.unwrap_or(-1))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Ends an active signing on `last_day` for `reason`, if its revision is `revision`; its slot
/// shrinks to the days on post.
pub async fn end_assignment(
    tx: &mut AnyConnection,
    id: &str,
    revision: i64,
    last_day: Date,
    reason: ExitReason,
    note: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let moved = sqlx::query(
        "UPDATE assignments SET state = 'ended', last_day = $1, slot_last = $2, exit_reason = $3, exit_note = $4, \
         updated_us = $5, revision = revision + 1 WHERE id = $6 AND state = 'active' AND revision = $7",
    )
    .bind(date_text(last_day))
    .bind(day_number(last_day))
    .bind(reason.as_str())
    .bind(note)
    .bind(to_micros(now))
    .bind(id)
    .bind(revision)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Withdraws the signings that renew `id` and start after `last_day` (its holder left before
/// they began); the number withdrawn.
pub async fn withdraw_renewals(tx: &mut AnyConnection, id: &str, last_day: Date, now: OffsetDateTime) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE assignments SET state = 'withdrawn', updated_us = $1, revision = revision + 1 \
         WHERE renews = $2 AND state IN ('proposed', 'active') AND start_date > $3",
    )
    .bind(to_micros(now))
    .bind(id)
    .bind(date_text(last_day))
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

pub async fn mark_employment_recorded(tx: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("UPDATE assignments SET employment_recorded = 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Objections

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObjection {
    pub id: String,
    pub notice_id: String,
    pub assignment_id: String,
    pub content: String,
    pub received_from: String,
    pub state: ObjectionState,
    pub resolution: String,
    pub raise_subject: String,
    pub resolve_subject: Option<String>,
    pub created: OffsetDateTime,
}

impl StoredObjection {
    pub fn name(&self) -> String {
        format!("objections/{}", self.id)
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_objection(
    tx: &mut AnyConnection,
    id: &str,
    notice_id: &str,
    assignment_id: &str,
    content: &str,
    received_from: &str,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO objections (id, notice_id, assignment_id, content, received_from, state, raise_subject, created_us) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7)",
    )
    .bind(id)
    .bind(notice_id)
    .bind(assignment_id)
    .bind(content)
    .bind(received_from)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_objection(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredObjection>> {
    let row = sqlx::query("SELECT * FROM objections WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref()
        .map(|row| {
            Ok(StoredObjection {
                id: row.try_get("id")?,
                notice_id: row.try_get("notice_id")?,
                assignment_id: row.try_get("assignment_id")?,
                content: row.try_get("content")?,
                received_from: row.try_get("received_from")?,
                state: parsed(row, "state", ObjectionState::parse)?,
                resolution: row.try_get("resolution")?,
                raise_subject: row.try_get("raise_subject")?,
                resolve_subject: row.try_get("resolve_subject")?,
                created: instant(row, "created_us")?,
            })
        })
        .transpose()
}

/// Resolves an open objection; false when it was resolved already.
pub async fn resolve_objection(
    tx: &mut AnyConnection,
    id: &str,
    to: ObjectionState,
    resolution: &str,
    subject: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE objections SET state = $1, resolution = $2, resolve_subject = $3, resolved_us = $4 \
         WHERE id = $5 AND state = 'open'",
    )
    .bind(to.as_str())
    .bind(resolution)
    .bind(subject)
    .bind(to_micros(now))
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Assignments of a notice with an upheld objection.
pub async fn upheld_assignments(conn: &mut AnyConnection, notice_id: &str) -> Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT assignment_id FROM objections WHERE notice_id = $1 AND state = 'upheld'")
        .bind(notice_id)
        .fetch_all(&mut *conn)
        .await
}

// ---------------------------------------------------------------------------------------------
// Cadres

#[allow(clippy::too_many_arguments)]
pub async fn insert_cadre(
    tx: &mut AnyConnection,
    id: &str,
    village: &str,
    person_id: &str,
    household: &str,
    office: &str,
    term: (Date, Option<Date>),
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO village_cadres (id, village, person_id, household, office, term_start, term_end, create_subject, \
         created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(village)
    .bind(person_id)
    .bind(household)
    .bind(office)
    .bind(date_text(term.0))
    .bind(term.1.map(date_text))
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A cadre registration in office on `day` whose person is `person_id` or who shares its
/// household: (registration id, office, whether it is the person).
pub async fn cadres_for(
    conn: &mut AnyConnection,
    person_id: &str,
    household: &str,
    day: Date,
) -> Result<Vec<(String, String, bool)>> {
    let rows = sqlx::query(
        "SELECT id, office, person_id FROM village_cadres WHERE (person_id = $1 OR ($2 <> '' AND household = $2)) \
         AND term_start <= $3 AND (term_end IS NULL OR term_end >= $3) ORDER BY id",
    )
    .bind(person_id)
    .bind(household)
    .bind(date_text(day))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let person: String = row.try_get("person_id")?;
            Ok((row.try_get("id")?, row.try_get("office")?, person == person_id))
        })
        .collect()
}

pub struct StoredCadre {
    pub id: String,
    pub village: String,
    pub person_id: String,
    pub office: String,
    pub term_start: Date,
    pub term_end: Option<Date>,
    pub created: OffsetDateTime,
}

pub async fn get_cadre(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredCadre>> {
    let row = sqlx::query("SELECT * FROM village_cadres WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref()
        .map(|row| {
            Ok(StoredCadre {
                id: row.try_get("id")?,
                village: row.try_get("village")?,
                person_id: row.try_get("person_id")?,
                office: row.try_get("office")?,
                term_start: day(row, "term_start")?,
                term_end: optional_day(row, "term_end")?,
                created: instant(row, "created_us")?,
            })
        })
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Evaluations

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvaluation {
    pub assignment_id: String,
    pub month: String,
    pub days_on_post: i64,
    pub hours_on_post: i64,
    pub score: i64,
    pub passed: bool,
    pub remark: String,
    pub updated: OffsetDateTime,
    pub revision: i64,
}

impl StoredEvaluation {
    pub fn name(&self) -> String {
        format!("assignments/{}/evaluations/{}", self.assignment_id, self.month)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

fn evaluation_from(row: &AnyRow) -> Result<StoredEvaluation> {
    let passed: i64 = row.try_get("passed")?;
    Ok(StoredEvaluation {
        assignment_id: row.try_get("assignment_id")?,
        month: row.try_get("month")?,
        days_on_post: row.try_get("days_on_post")?,
        hours_on_post: row.try_get("hours_on_post")?,
        score: row.try_get("score")?,
        passed: passed != 0,
        remark: row.try_get("remark")?,
        updated: instant(row, "updated_us")?,
        revision: row.try_get("revision")?,
    })
}

pub async fn get_evaluation(
    conn: &mut AnyConnection,
    assignment_id: &str,
    month: &str,
) -> Result<Option<StoredEvaluation>> {
    let row = sqlx::query("SELECT * FROM evaluations WHERE assignment_id = $1 AND month = $2")
        .bind(assignment_id)
        .bind(month)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(evaluation_from).transpose()
}

/// Records a month, or corrects it when `revision` is the stored one; false when the month
/// exists and `revision` is not its current one (or it does not exist and one was given).
pub async fn put_evaluation(
    tx: &mut AnyConnection,
    record: &StoredEvaluation,
    revision: Option<i64>,
    subject: &str,
) -> Result<bool> {
    let written = match revision {
        None => sqlx::query(
            "INSERT INTO evaluations (assignment_id, month, days_on_post, hours_on_post, score, passed, remark, subject, \
             updated_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (assignment_id, month) DO NOTHING",
        )
        .bind(&record.assignment_id)
        .bind(&record.month)
        .bind(record.days_on_post)
        .bind(record.hours_on_post)
        .bind(record.score)
        .bind(i64::from(record.passed))
        .bind(&record.remark)
        .bind(subject)
        .bind(to_micros(record.updated))
        .execute(&mut *tx)
        .await?
        .rows_affected(),
        Some(revision) => sqlx::query(
            "UPDATE evaluations SET days_on_post = $1, hours_on_post = $2, score = $3, passed = $4, remark = $5, \
             subject = $6, updated_us = $7, revision = revision + 1 WHERE assignment_id = $8 AND month = $9 \
             AND revision = $10",
        )
        .bind(record.days_on_post)
        .bind(record.hours_on_post)
        .bind(record.score)
        .bind(i64::from(record.passed))
        .bind(&record.remark)
        .bind(subject)
        .bind(to_micros(record.updated))
        .bind(&record.assignment_id)
        .bind(&record.month)
        .bind(revision)
        .execute(&mut *tx)
        .await?
        .rows_affected(),
    };
    Ok(written == 1)
}

// ---------------------------------------------------------------------------------------------
// Closing a month

/// A holder whose signing covers part of a month, with the month's evaluation if recorded.
#[derive(Debug, Clone)]
pub struct HolderMonth {
    pub assignment: StoredAssignment,
    pub days_per_month: i64,
    pub monthly_standard: Option<i64>,
    pub subsidy_policy: String,
    /// Days on post, hours on post, passed.
    pub evaluation: Option<(i64, i64, bool)>,
}

/// Every signing (active, or ended within the month) on posts under `prefix` that covers a day
/// of the month, with the post's terms and the month's evaluation. A page of them: the
/// signings after `after` (village, id), at most `limit`, read along the (village, id) index.
///
/// The month's lines are not read here: `insert_month_lines` keeps a line pending or sent as it
/// is. Joined here, they were the lines of the month being written, which the planner's
/// statistics always took for none: it read them once per page and compared every signing
/// with every line, and a page of a city's month (200,000 holders, PostgreSQL) took 13–25 s
/// instead of 0.2 s.
pub async fn holders_in_month(
    conn: &mut AnyConnection,
    prefix: &str,
    month: &str,
    (first, last): (Date, Date),
    after: (&str, &str),
    limit: i64,
) -> Result<Vec<HolderMonth>> {
    let rows = sqlx::query(
        "SELECT a.*, p.days_per_month, p.monthly_standard_fen, p.subsidy_policy, \
         e.days_on_post AS e_days, e.hours_on_post AS e_hours, e.passed AS e_passed \
         FROM assignments a JOIN posts p ON p.id = a.post_id \
         LEFT JOIN evaluations e ON e.assignment_id = a.id AND e.month = $2 \
         WHERE a.village >= $1 AND a.village < $7 AND (a.village, a.id) > ($5, $8) \
         AND a.state IN ('active', 'ended') AND a.start_date <= $3 AND a.last_day >= $4 \
         ORDER BY a.village, a.id LIMIT $6",
    )
    .bind(prefix)
    .bind(month)
    .bind(date_text(last))
    .bind(date_text(first))
    .bind(after.0)
    .bind(limit)
    .bind(prefix_upper_bound(prefix))
    .bind(after.1)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let days: Option<i64> = row.try_get("e_days")?;
            let hours: Option<i64> = row.try_get("e_hours")?;
            let passed: Option<i64> = row.try_get("e_passed")?;
            Ok(HolderMonth {
                assignment: assignment_from(row)?,
                days_per_month: row.try_get("days_per_month")?,
                monthly_standard: row.try_get("monthly_standard_fen")?,
                subsidy_policy: row.try_get("subsidy_policy")?,
                evaluation: days
                    .zip(passed.map(|p| p != 0))
                    .map(|(days, passed)| (days, hours.unwrap_or(0), passed)),
            })
        })
        .collect()
}

/// One holder's closed month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthLine {
    pub assignment_id: String,
    pub month: String,
    pub village: String,
    pub display_name: String,
    pub person_id: String,
    pub outcome: MonthOutcome,
    pub facts: String,
    pub claim: String,
    pub message: String,
}

/// Writes lines. A line pending or sent is kept as it is, so a re-run sends nothing twice; a line
/// without a claim (no or failed evaluation, too few days, refused) is written again from the
/// evaluation as it is now.
pub async fn insert_month_lines(
    tx: &mut AnyConnection,
    lines: &[MonthLine],
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    const COLUMNS: usize = 9;
    for chunk in lines.chunks(500) {
        let sql = format!(
            "INSERT INTO month_lines (assignment_id, month, village, outcome, facts, claim, message, subject, updated_us) \
             VALUES {} ON CONFLICT (assignment_id, month) DO UPDATE SET outcome = excluded.outcome, \
             facts = excluded.facts, claim = excluded.claim, message = excluded.message, subject = excluded.subject, \
             updated_us = excluded.updated_us WHERE month_lines.outcome NOT IN ('pending', 'claim_submitted')",
            bangfu_platform::db::values_groups(tx, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for line in chunk {
            query = query
                .bind(line.assignment_id.clone())
                .bind(line.month.clone())
                .bind(line.village.clone())
                .bind(line.outcome.as_str())
                .bind(line.facts.clone())
                .bind(line.claim.clone())
                .bind(line.message.clone())
                .bind(subject.to_string())
                .bind(to_micros(now));
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Lines of a month under `prefix` (all months when `month` is empty) with outcome `outcome`
/// A page of the lines of one outcome under `prefix`, of `month` (every month when empty): the
/// lines after (month, village, assignment), at most `limit`, read along the sending index.
pub async fn month_lines_after(
    conn: &mut AnyConnection,
    prefix: &str,
    month: &str,
    outcome: MonthOutcome,
    after: (&str, &str, &str),
    limit: i64,
) -> Result<Vec<MonthLine>> {
    let rows = sqlx::query(
        "SELECT l.*, a.display_name, a.person_id FROM month_lines l JOIN assignments a ON a.id = l.assignment_id \
         WHERE l.outcome = $3 AND l.village >= $1 AND l.village < $8 AND ($2 = '' OR l.month = $2) \
         AND (l.month, l.village, l.assignment_id) > ($4, $5, $6) \
         ORDER BY l.month, l.village, l.assignment_id LIMIT $7",
    )
    .bind(prefix)
    .bind(month)
    .bind(outcome.as_str())
    .bind(after.0)
    .bind(after.1)
    .bind(after.2)
    .bind(limit)
    .bind(prefix_upper_bound(prefix))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(month_line_from).collect()
}

fn month_line_from(row: &AnyRow) -> Result<MonthLine> {
    Ok(MonthLine {
        assignment_id: row.try_get("assignment_id")?,
        month: row.try_get("month")?,
        village: row.try_get("village")?,
        display_name: row.try_get("display_name")?,
        person_id: row.try_get("person_id")?,
        outcome: parsed(row, "outcome", MonthOutcome::parse)?,
        facts: row.try_get("facts")?,
        claim: row.try_get("claim")?,
        message: row.try_get("message")?,
    })
}

/// What subsidy payment answered for one line: the outcome, the claim, the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub assignment_id: String,
    pub month: String,
    pub village: String,
    pub facts: String,
    pub outcome: MonthOutcome,
    pub claim: String,
    pub message: String,
}

/// Sets pending (or refused) lines' outcomes after subsidy payment answered, a few hundred
/// per statement. An upsert on the key, not an UPDATE joined to a VALUES list: the key's index
/// finds each line whatever the planner believes of a table just filled.
pub async fn settle_month_lines(
    tx: &mut AnyConnection,
    settled: &[Settled],
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    const COLUMNS: usize = 9;
    for chunk in settled.chunks(500) {
        let sql = format!(
            "INSERT INTO month_lines (assignment_id, month, village, facts, outcome, claim, message, subject, updated_us) \
             VALUES {} ON CONFLICT (assignment_id, month) DO UPDATE SET outcome = excluded.outcome, \
             claim = excluded.claim, message = excluded.message, updated_us = excluded.updated_us \
             WHERE month_lines.outcome IN ('pending', 'claim_refused')",
            bangfu_platform::db::values_groups(tx, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for line in chunk {
            query = query
                .bind(line.assignment_id.clone())
                .bind(line.month.clone())
                .bind(line.village.clone())
                .bind(line.facts.clone())
                .bind(line.outcome.as_str())
                .bind(line.claim.clone())
                .bind(line.message.clone())
                .bind(subject.to_string())
                .bind(to_micros(now));
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// What subsidy payment's claim feed says of a month line's claim: the claim exists (whatever
/// the sending call's answer settles later), and how it was decided or paid. One line per
/// statement, found by its key. An UPDATE joined to a VALUES list of lines is planned on what
/// the statistics say of a table being filled; tried, it was logged at 1.1 s and 4.6 s for
/// 500 lines in a city's month (PostgreSQL, a build sharing the machine). `settle_month_lines`
/// upserts for the same reason. A line the sending call already left as the outcome says (the
/// decision comes back with the call) is not written again: a month's line is written once, not
/// twice, and the follower does not queue on the sender's transaction for it.
pub async fn note_month_claim(
    tx: &mut AnyConnection,
    assignment_id: &str,
    month: &str,
    claim: &str,
    message: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE month_lines SET outcome = 'claim_submitted', claim = $1, message = $2, updated_us = $3 \
         WHERE assignment_id = $4 AND month = $5 AND outcome IN ('pending', 'claim_submitted', 'claim_refused') \
         AND NOT (outcome = 'claim_submitted' AND claim = $1 AND message = $2)",
    )
    .bind(claim)
    .bind(message)
    .bind(to_micros(now))
    .bind(assignment_id)
    .bind(month)
    .execute(tx)
    .await?;
    Ok(())
}

/// What a month line shows of its claim, for the claim feed's follower to compare with an
/// outcome before writing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineClaim {
    pub outcome: MonthOutcome,
    pub claim: String,
    pub message: String,
}

impl LineClaim {
    /// Whether `note_month_claim` would change this line: the same condition as its WHERE.
    pub fn takes_claim(&self, claim: &str, message: &str) -> bool {
        match self.outcome {
            MonthOutcome::Pending | MonthOutcome::ClaimRefused => true,
            MonthOutcome::ClaimSubmitted => self.claim != claim || self.message != message,
            _ => false,
        }
    }
}

/// The claim each of these lines (signing, month) shows; lines not closed are missing. One
/// statement for a page of the claim feed, an index probe per line on both backends. On
/// PostgreSQL the probe is fenced by OFFSET 0: a list joined to a table still being filled was
/// planned as a scan of it (see `note_month_claim`).
pub async fn month_line_claims(
    tx: &mut AnyConnection,
    keys: &[(&str, &str)],
) -> Result<std::collections::HashMap<(String, String), LineClaim>> {
    let mut shown = std::collections::HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(shown);
    }
    let wanted = bangfu_platform::db::values_groups(tx, keys.len(), 2);
    let sql = if tx.backend_name().eq_ignore_ascii_case("sqlite") {
        // A CROSS JOIN keeps the listed lines outside, each probing the key; `(a, b) IN
        // (VALUES …)` was planned as a scan of the table.
        format!(
            "SELECT l.assignment_id, l.month, l.outcome, l.claim, l.message FROM (VALUES {wanted}) AS wanted \
             CROSS JOIN month_lines l ON l.assignment_id = wanted.column1 AND l.month = wanted.column2"
        )
    } else {
        format!(
            "SELECT l.assignment_id, l.month, l.outcome, l.claim, l.message FROM (VALUES {wanted}) AS wanted(a, m) \
             CROSS JOIN LATERAL (SELECT assignment_id, month, outcome, claim, message FROM month_lines \
               WHERE assignment_id = wanted.a AND month = wanted.m OFFSET 0) l"
        )
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (assignment_id, month) in keys {
        query = query.bind(*assignment_id).bind(*month);
    }
    for row in query.fetch_all(&mut *tx).await? {
        shown.insert(
            (row.try_get("assignment_id")?, row.try_get("month")?),
            LineClaim {
                outcome: parsed(&row, "outcome", MonthOutcome::parse)?,
                claim: row.try_get("claim")?,
                message: row.try_get("message")?,
            },
        );
    }
    Ok(shown)
}

/// One holder's line of a month, if the month was closed for them.
pub async fn get_month_line(conn: &mut AnyConnection, assignment_id: &str, month: &str) -> Result<Option<MonthLine>> {
    let row = sqlx::query(
        "SELECT l.*, a.display_name, a.person_id FROM month_lines l JOIN assignments a ON a.id = l.assignment_id \
         WHERE l.assignment_id = $1 AND l.month = $2",
    )
    .bind(assignment_id)
    .bind(month)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(month_line_from).transpose()
}

/// How many lines of a month under `prefix` have each outcome.
pub async fn month_counts(conn: &mut AnyConnection, prefix: &str, month: &str) -> Result<Vec<(MonthOutcome, i64)>> {
    // A range of codes, not LIKE: the (month, village) index bounds it on both backends.
    let rows = sqlx::query(
        "SELECT outcome, COUNT(*) AS lines FROM month_lines WHERE month = $1 AND village >= $2 AND village < $3 \
         GROUP BY outcome",
    )
    .bind(month)
    .bind(prefix)
    .bind(prefix_upper_bound(prefix))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((parsed(row, "outcome", MonthOutcome::parse)?, row.try_get("lines")?)))
        .collect()
}

/// How many lines of a month under `prefix` are still to send: read from the sending index
/// alone, so it costs what is left, not the whole month.
pub async fn pending_lines(conn: &mut AnyConnection, prefix: &str, month: &str) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM month_lines WHERE outcome = 'pending' AND month = $1 AND village >= $2 AND village < $3",
    )
    .bind(month)
    .bind(prefix)
    .bind(prefix_upper_bound(prefix))
    .fetch_one(&mut *conn)
    .await
}

/// Whether any line of a month under `prefix` is still to send: the first entry of the sending
/// index, where counting what is left walks all of it.
pub async fn any_pending_line(conn: &mut AnyConnection, prefix: &str, month: &str) -> Result<bool> {
    let first: Option<String> = sqlx::query_scalar(
        "SELECT assignment_id FROM month_lines WHERE outcome = 'pending' AND month = $1 AND village >= $2 \
         AND village < $3 LIMIT 1",
    )
    .bind(month)
    .bind(prefix)
    .bind(prefix_upper_bound(prefix))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(first.is_some())
}

/// Up to `limit` lines of a month under `prefix`, those without a submitted claim first, each
/// part by village and signing.
pub async fn month_lines_first(
    conn: &mut AnyConnection,
    prefix: &str,
    month: &str,
    limit: i64,
) -> Result<Vec<MonthLine>> {
    // Each half read in the sending index's order and cut at the limit, so a city's month is
    // not sorted whole for the few lines an answer shows (1.1 s for 200,000 lines, PostgreSQL).
    // Every outcome but a submitted claim, listed so the sending index serves each of them.
    let unsent = MonthOutcome::ALL
        .iter()
        .filter(|o| **o != MonthOutcome::ClaimSubmitted)
        .map(|o| format!("'{}'", o.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let half = |claimed: u8| {
        let outcomes = if claimed == 1 {
            "l.outcome = 'claim_submitted'".to_string()
        } else {
            format!("l.outcome IN ({unsent})")
        };
        format!(
            "SELECT * FROM (SELECT l.*, a.display_name, a.person_id, {claimed} AS claimed \
             FROM month_lines l JOIN assignments a ON a.id = l.assignment_id \
             WHERE {outcomes} AND l.month = $1 AND l.village >= $2 AND l.village < $3 \
             ORDER BY l.village, l.assignment_id LIMIT $4) AS half{claimed}"
        )
    };
    let sql = format!(
        "{} UNION ALL {} ORDER BY claimed, village, assignment_id LIMIT $4",
        half(0),
        half(1)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(month)
        .bind(prefix)
        .bind(prefix_upper_bound(prefix))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(month_line_from).collect()
}

/// The day the person was first hired on a post of this deployment, if ever.
pub async fn first_hire(conn: &mut AnyConnection, person_id: &str) -> Result<Option<Date>> {
    let first: Option<String> = sqlx::query_scalar(
        "SELECT MIN(first_hire_date) FROM assignments WHERE person_id = $1 AND state IN ('active', 'ended')",
    )
    .bind(person_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(first.as_deref().and_then(parse_date_text))
}

/// Active signings started by `today` whose employment identity has not recorded yet
/// (identity records no future employment, and may have been down).
pub async fn unrecorded_employment(conn: &mut AnyConnection, today: Date, limit: i64) -> Result<Vec<StoredAssignment>> {
    let rows = sqlx::query(
        "SELECT * FROM assignments WHERE state = 'active' AND employment_recorded = 0 AND start_date <= $1 \
         ORDER BY id LIMIT $2",
    )
    .bind(date_text(today))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(assignment_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Exit proposals

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredExitProposal {
    pub id: String,
    pub assignment_id: String,
    pub village: String,
    pub display_name: String,
    pub reason: ExitReason,
    pub effective_date: Option<Date>,
    pub source: String,
    pub done: bool,
    pub created: OffsetDateTime,
}

impl StoredExitProposal {
    pub fn name(&self) -> String {
        format!("exitProposals/{}", self.id)
    }
}

/// Opens an exit proposal for each active signing of `person_id` (one per signing and reason;
/// the id is the signing's and the reason's, so a feed event applied twice opens nothing new).
/// Whose signings an exit proposal is opened for.
#[derive(Debug, Clone, Copy)]
pub enum ExitOf<'a> {
    /// Every proposed or active signing of a person (identity's feed).
    Person(&'a str),
    /// One signing, while proposed or active (subsidy payment's claim feed).
    Assignment(&'a str),
}

/// Opens an exit proposal for each proposed or active signing `of` names, once per signing and
/// reason; how many were opened.
pub async fn propose_exits(
    tx: &mut AnyConnection,
    of: ExitOf<'_>,
    reason: ExitReason,
    effective_date: Option<Date>,
    source: &str,
    now: OffsetDateTime,
) -> Result<u64> {
    let (column, key) = match of {
        ExitOf::Person(person_id) => ("person_id", person_id),
        ExitOf::Assignment(assignment_id) => ("id", assignment_id),
    };
    let opened = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO exit_proposals (id, assignment_id, village, reason, effective_date, source, state, created_us) \
         SELECT id || '-' || $1, id, village, $1, $2, $3, 'open', $4 FROM assignments \
         WHERE {column} = $5 AND state IN ('proposed', 'active') ON CONFLICT (assignment_id, reason) DO NOTHING"
    )))
    .bind(reason.as_str())
    .bind(effective_date.map(date_text))
    .bind(source)
    .bind(to_micros(now))
    .bind(key)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(opened)
}

pub async fn list_exit_proposals(
    conn: &mut AnyConnection,
    prefix: &str,
    open_only: Option<bool>,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredExitProposal>> {
    let rows = sqlx::query(
        "SELECT e.*, a.display_name FROM exit_proposals e JOIN assignments a ON a.id = e.assignment_id \
         WHERE e.village LIKE $1 AND e.id > $2 AND ($3 = '' OR e.state = $3) ORDER BY e.id LIMIT $4",
    )
    .bind(format!("{prefix}%"))
    .bind(after)
    .bind(match open_only {
        Some(true) => "open",
        Some(false) => "done",
        None => "",
    })
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let state: String = row.try_get("state")?;
            Ok(StoredExitProposal {
                id: row.try_get("id")?,
                assignment_id: row.try_get("assignment_id")?,
                village: row.try_get("village")?,
                display_name: row.try_get("display_name")?,
                reason: parsed(row, "reason", ExitReason::parse)?,
                effective_date: optional_day(row, "effective_date")?,
                source: row.try_get("source")?,
                done: state == "done",
                created: instant(row, "created_us")?,
            })
        })
        .collect()
}

/// Closes an open proposal of `assignment_id`; false when there is no such open proposal.
pub async fn close_exit_proposal(tx: &mut AnyConnection, id: &str, assignment_id: &str) -> Result<bool> {
    let closed =
        sqlx::query("UPDATE exit_proposals SET state = 'done' WHERE id = $1 AND assignment_id = $2 AND state = 'open'")
            .bind(id)
            .bind(assignment_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    Ok(closed == 1)
}

// ---------------------------------------------------------------------------------------------
// Fraud signals and statistics

/// A signal's raw finding: where, what, and the records it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSignal {
    pub region: String,
    pub detail: String,
    pub resources: Vec<String>,
}

fn split_ids(text: &str, prefix: &str) -> Vec<String> {
    let mut ids: Vec<String> = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|id| format!("{prefix}/{id}"))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Two signings of one person, confirmed, over overlapping days (一人多岗).
pub async fn two_posts(conn: &mut AnyConnection, prefix: &str) -> Result<Vec<RawSignal>> {
    let rows = sqlx::query(
        "SELECT a.village, a.id AS a_id, b.id AS b_id, a.display_name FROM assignments a JOIN assignments b \
         ON b.person_id = a.person_id AND a.id < b.id AND a.slot_first <= b.slot_last AND b.slot_first <= a.slot_last \
         WHERE a.state IN ('active', 'ended') AND b.state IN ('active', 'ended') \
         AND a.village LIKE $1 AND b.village LIKE $1 ORDER BY a.village, a.id",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let a: String = row.try_get("a_id")?;
            let b: String = row.try_get("b_id")?;
            let name: String = row.try_get("display_name")?;
            Ok(RawSignal {
                region: row.try_get("village")?,
                detail: format!("{name} 同一时期在两个公益性岗位上"),
                resources: vec![format!("assignments/{a}"), format!("assignments/{b}")],
            })
        })
        .collect()
}

/// Holders on `day` in the household of a cadre in office that day (优亲厚友).
pub async fn cadre_relatives(conn: &mut AnyConnection, prefix: &str, day: Date) -> Result<Vec<RawSignal>> {
    let day = date_text(day);
    let rows = sqlx::query(
        "SELECT a.village, a.id AS a_id, a.display_name, c.id AS c_id, c.office FROM assignments a \
         JOIN village_cadres c ON (c.person_id = a.person_id OR (c.household <> '' AND c.household = a.household)) \
         WHERE a.village LIKE $1 AND a.state IN ('active', 'ended') AND a.start_date <= $2 AND a.last_day >= $2 \
         AND c.village LIKE $1 AND c.term_start <= $2 AND (c.term_end IS NULL OR c.term_end >= $2) \
         ORDER BY a.village, a.id",
    )
    .bind(format!("{prefix}%"))
    .bind(&day)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let a: String = row.try_get("a_id")?;
            let c: String = row.try_get("c_id")?;
            let name: String = row.try_get("display_name")?;
            let office: String = row.try_get("office")?;
            Ok(RawSignal {
                region: row.try_get("village")?,
                detail: format!("在岗人员 {name} 为村干部（{office}）本人或同户成员"),
                resources: vec![format!("assignments/{a}"), format!("villageCadres/{c}")],
            })
        })
        .collect()
}

/// Posts whose first signings (renewals aside) went to three or more persons of at most two
/// households (轮流坐庄).
pub async fn rotations(conn: &mut AnyConnection, prefix: &str) -> Result<Vec<RawSignal>> {
    let rows = sqlx::query(
        "SELECT p.id AS post_id, p.village, p.title, COUNT(DISTINCT a.person_id) AS persons, \
         COUNT(DISTINCT a.household) AS households FROM posts p JOIN assignments a ON a.post_id = p.id \
         WHERE p.village LIKE $1 AND a.renews IS NULL AND a.state IN ('active', 'ended') AND a.household <> '' \
         GROUP BY p.id, p.village, p.title \
         HAVING COUNT(DISTINCT a.person_id) >= 3 AND COUNT(DISTINCT a.household) <= 2 ORDER BY p.village, p.id",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(&mut *conn)
    .await?;
    let mut found = Vec::new();
    for row in &rows {
        let post: String = row.try_get("post_id")?;
        let title: String = row.try_get("title")?;
        let persons: i64 = row.try_get("persons")?;
        let households: i64 = row.try_get("households")?;
        let signings: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM assignments WHERE post_id = $1 AND renews IS NULL AND state IN ('active', 'ended') ORDER BY start_date",
        )
        .bind(&post)
        .fetch_all(&mut *conn)
        .await?;
        let mut resources = vec![format!("posts/{post}")];
        resources.extend(signings.iter().map(|id| format!("assignments/{id}")));
        found.push(RawSignal {
            region: row.try_get("village")?,
            detail: format!("岗位「{title}」先后聘用 {persons} 人，仅来自 {households} 户"),
            resources,
        });
    }
    Ok(found)
}

/// Open posts per village under `prefix`: (village, count, post ids).
pub async fn open_posts_by_village(conn: &mut AnyConnection, prefix: &str) -> Result<Vec<(String, i64, Vec<String>)>> {
    let rows =
        sqlx::query("SELECT village, id FROM posts WHERE village LIKE $1 AND state = 'open' ORDER BY village, id")
            .bind(format!("{prefix}%"))
            .fetch_all(&mut *conn)
            .await?;
    let mut villages: Vec<(String, i64, Vec<String>)> = Vec::new();
    for row in &rows {
        let village: String = row.try_get("village")?;
        let id: String = row.try_get("id")?;
        match villages.last_mut() {
            Some((last, count, ids)) if *last == village => {
                *count += 1;
                ids.push(format!("posts/{id}"));
            }
            _ => villages.push((village, 1, vec![format!("posts/{id}")])),
        }
    }
    Ok(villages)
}

/// Townships where open posts of one type and class have different monthly standards.
pub async fn uneven_pay(conn: &mut AnyConnection, prefix: &str) -> Result<Vec<RawSignal>> {
    let rows = sqlx::query(
        "SELECT SUBSTR(village, 1, 9) AS township, post_type, post_class, \
         MIN(monthly_standard_fen) AS low, MAX(monthly_standard_fen) AS high FROM posts \
         WHERE village LIKE $1 AND state = 'open' AND monthly_standard_fen IS NOT NULL \
         GROUP BY SUBSTR(village, 1, 9), post_type, post_class \
         HAVING COUNT(DISTINCT monthly_standard_fen) > 1 ORDER BY township, post_type, post_class",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(&mut *conn)
    .await?;
    let mut found = Vec::new();
    for row in &rows {
        let township: String = row.try_get("township")?;
        let post_type: String = row.try_get("post_type")?;
        let post_class: String = row.try_get("post_class")?;
        let low: i64 = row.try_get("low")?;
        let high: i64 = row.try_get("high")?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM posts WHERE SUBSTR(village, 1, 9) = $1 AND post_type = $2 AND post_class = $3 \
             AND state = 'open' AND monthly_standard_fen IS NOT NULL AND village LIKE $4 ORDER BY id",
        )
        .bind(&township)
        .bind(&post_type)
        .bind(&post_class)
        .bind(format!("{prefix}%"))
        .fetch_all(&mut *conn)
        .await?;
        found.push(RawSignal {
            region: township,
            detail: format!(
                "同一乡镇同类型（{post_type}）同级别（{post_class}）岗位补贴标准不一：{:.2} 元至 {:.2} 元",
                low as f64 / 100.0,
                high as f64 / 100.0
            ),
            resources: split_ids(&ids.join(","), "posts"),
        });
    }
    Ok(found)
}

/// Months sent as claims with no evaluation recorded (一发了之).
pub async fn paid_without_evaluation(conn: &mut AnyConnection, prefix: &str) -> Result<Vec<RawSignal>> {
    let rows = sqlx::query(
        "SELECT l.village, l.assignment_id, l.month, l.claim FROM month_lines l \
         LEFT JOIN evaluations e ON e.assignment_id = l.assignment_id AND e.month = l.month \
         WHERE l.village LIKE $1 AND l.outcome = 'claim_submitted' AND e.assignment_id IS NULL \
         ORDER BY l.village, l.assignment_id, l.month",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let assignment: String = row.try_get("assignment_id")?;
            let month: String = row.try_get("month")?;
            let claim: String = row.try_get("claim")?;
            Ok(RawSignal {
                region: row.try_get("village")?,
                detail: format!("{month} 已报送补贴申请，但未录入当月考勤考核"),
                resources: vec![format!("assignments/{assignment}"), claim],
            })
        })
        .collect()
}

/// Open posts and holders on `day` by type and funding source under `prefix`.
pub async fn counts_on(
    conn: &mut AnyConnection,
    prefix: &str,
    day: Date,
    day_end_us: i64,
) -> Result<Vec<(String, String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT p.post_type, p.funding_source, COUNT(DISTINCT p.id) AS posts, \
         COUNT(DISTINCT CASE WHEN a.id IS NOT NULL THEN a.person_id END) AS holders FROM posts p \
         LEFT JOIN assignments a ON a.post_id = p.id AND a.state IN ('active', 'ended') \
         AND a.start_date <= $2 AND a.last_day >= $2 \
         WHERE p.village LIKE $1 AND p.created_us <= $3 AND (p.state = 'open' OR p.updated_us > $3) \
         GROUP BY p.post_type, p.funding_source ORDER BY p.post_type, p.funding_source",
    )
    .bind(format!("{prefix}%"))
    .bind(date_text(day))
    .bind(day_end_us)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("post_type")?,
                row.try_get("funding_source")?,
                row.try_get("posts")?,
                row.try_get("holders")?,
            ))
        })
        .collect()
}

/// Distinct persons placed (first signings starting) and on post within [first, last].
pub async fn persons_in(conn: &mut AnyConnection, prefix: &str, first: Date, last: Date) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT CASE WHEN renews IS NULL AND start_date >= $2 THEN person_id END) AS placed, \
         COUNT(DISTINCT person_id) AS on_post FROM assignments \
         WHERE village LIKE $1 AND state IN ('active', 'ended') AND start_date <= $3 AND last_day >= $2",
    )
    .bind(format!("{prefix}%"))
    .bind(date_text(first))
    .bind(date_text(last))
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("placed")?, row.try_get("on_post")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(outcome: MonthOutcome, claim: &str, message: &str) -> LineClaim {
        LineClaim {
            outcome,
            claim: claim.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_line_takes_an_outcome_only_when_the_update_would_change_it() {
        let decided = "已核定补贴 50000 分";
        // Sent but not yet answered, or refused by the call: the feed's word settles it.
        assert!(line(MonthOutcome::Pending, "", "").takes_claim("claims/1", decided));
        assert!(line(MonthOutcome::ClaimRefused, "", "subsidy refused").takes_claim("claims/1", decided));
        // The sending call already wrote this decision: nothing to write.
        assert!(!line(MonthOutcome::ClaimSubmitted, "claims/1", decided).takes_claim("claims/1", decided));
        // A later outcome of the same claim (paid) changes what the line says.
        assert!(line(MonthOutcome::ClaimSubmitted, "claims/1", decided).takes_claim("claims/1", "已发放 50000 分"));
        // A month that yielded no claim is never overwritten by the feed.
        assert!(!line(MonthOutcome::NoEvaluation, "", "").takes_claim("claims/1", decided));
        assert!(!line(MonthOutcome::BelowMinimumDays, "", "").takes_claim("claims/1", decided));
    }
}
