//! Job matching's SQL, the same on SQLite and PostgreSQL (sqlx's Any driver). Every function
//! takes the connection it runs on, so a use case's reads and writes share its transaction.
//! Region filters are ranges (`region >= prefix AND region < upper bound`), which an index
//! serves, not LIKE. Ranking is one statement per recommendation that scores every candidate
//! with the arithmetic of `domain::score` and keeps the best.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use bangfu_platform::db::to_micros;
use bangfu_platform::parameters::date_text;
use bangfu_platform::regions::prefix_upper_bound;
pub use bangfu_platform::rows::new_id;
use bangfu_platform::rows::{day, instant, optional_day, parsed};

use crate::domain::{
    ApplicationState, CarrierKind, ClaimProgress, EmploymentPlace, EndReason, EnrolmentState, ExportBatchState,
    ExportSubsidy, LaborCapacity, PlacementState, PostingProfile, PostingState, Priority, RecruitmentEventKind,
    SeekerProfile, SeekerState, TravelMode, Weights, WorkIntention, level_prefixes, natural_code,
};

pub mod claims;

type Result<T> = std::result::Result<T, sqlx::Error>;

fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    let value: i64 = row.try_get(column)?;
    Ok(value != 0)
}

fn optional_instant(row: &AnyRow, column: &str) -> Result<Option<OffsetDateTime>> {
    let micros: Option<i64> = row.try_get(column)?;
    Ok(micros.and_then(bangfu_platform::db::from_micros))
}

fn region_range(prefix: &str) -> (String, String) {
    (prefix.to_string(), prefix_upper_bound(prefix))
}

/// A list stored as "|a|b|" (skills, labor capacities): one LIKE per item tests membership.
fn piped(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut text = String::from("|");
    for item in items {
        text.push_str(item.as_ref());
        text.push('|');
    }
    text
}

fn unpiped(text: &str) -> Vec<String> {
    text.split('|').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A list of region prefixes stored as ",3704,5001,".
fn commaed(items: &[String]) -> String {
    format!(",{},", items.join(","))
}

fn uncommaed(text: &str) -> Vec<String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn b(value: bool) -> i64 {
    i64::from(value)
}

/// A unique index refused the row.
pub fn is_duplicate(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}

// ---------------------------------------------------------------------------------------------
// Carriers

/// What a clerk enters for a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierData {
    pub display_name: String,
    pub kind: CarrierKind,
    pub credit_code: String,
    pub region: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub relocation_site: bool,
}

/// A department's certification of a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certification {
    pub body: String,
    pub document: String,
    pub date: Date,
    pub valid_until: Option<Date>,
    pub subject: String,
}

#[derive(Debug, Clone)]
pub struct StoredCarrier {
    pub id: String,
    pub data: CarrierData,
    pub certification: Option<Certification>,
    pub revision: i64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

impl StoredCarrier {
    pub fn name(&self) -> String {
        format!("carriers/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

fn carrier_from(row: &AnyRow) -> Result<StoredCarrier> {
    let certification = match row.try_get::<Option<String>, _>("cert_body")? {
        Some(body) => Some(Certification {
            body,
            document: row.try_get::<Option<String>, _>("cert_document")?.unwrap_or_default(),
            date: optional_day(row, "cert_date")?.unwrap_or(Date::MIN),
            valid_until: optional_day(row, "cert_valid_until")?,
            subject: row.try_get::<Option<String>, _>("cert_subject")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(StoredCarrier {
        id: row.try_get("id")?,
        data: CarrierData {
            display_name: row.try_get("display_name")?,
            kind: parsed(row, "kind", CarrierKind::parse)?,
            credit_code: row.try_get("credit_code")?,
            region: row.try_get("region")?,
            contact_name: row.try_get("contact_name")?,
            contact_phone: row.try_get("contact_phone")?,
            relocation_site: flag(row, "relocation_site")?,
        },
        certification,
        revision: row.try_get("revision")?,
        created: instant(row, "created_us")?,
        updated: instant(row, "updated_us")?,
    })
}

pub async fn insert_carrier(
    tx: &mut AnyConnection,
    id: &str,
    carrier: &CarrierData,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_carriers (id, display_name, kind, credit_code, region, contact_name, contact_phone, \
         relocation_site, revision, create_subject, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $10)",
    )
    .bind(id)
    .bind(&carrier.display_name)
    .bind(carrier.kind.as_str())
    .bind(&carrier.credit_code)
    .bind(&carrier.region)
    .bind(&carrier.contact_name)
    .bind(&carrier.contact_phone)
    .bind(b(carrier.relocation_site))
    .bind(subject)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_carrier(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredCarrier>> {
    sqlx::query("SELECT * FROM jobs_carriers WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(carrier_from)
        .transpose()
}

/// Which carriers a list returns.
#[derive(Debug, Clone, Default)]
pub struct CarrierFilter {
    pub region_prefix: String,
    pub kind: Option<CarrierKind>,
}

pub async fn list_carriers(
    conn: &mut AnyConnection,
    filter: &CarrierFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredCarrier>> {
    let (low, high) = region_range(&filter.region_prefix);
    let rows = sqlx::query(
        "SELECT * FROM jobs_carriers WHERE region >= $1 AND region < $2 AND id > $3 AND ($4 = '' OR kind = $4) \
         ORDER BY id LIMIT $5",
    )
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(filter.kind.map(CarrierKind::as_str).unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(carrier_from).collect()
}

/// Writes a changed carrier at the revision read; false when it moved meanwhile.
pub async fn update_carrier(
    tx: &mut AnyConnection,
    carrier: &StoredCarrier,
    read_revision: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let data = &carrier.data;
    let certification = carrier.certification.as_ref();
    let done = sqlx::query(
        "UPDATE jobs_carriers SET display_name = $1, region = $2, contact_name = $3, contact_phone = $4, \
         relocation_site = $5, cert_body = $6, cert_document = $7, cert_date = $8, cert_valid_until = $9, \
         cert_subject = $10, revision = revision + 1, updated_us = $11 WHERE id = $12 AND revision = $13",
    )
    .bind(&data.display_name)
    .bind(&data.region)
    .bind(&data.contact_name)
    .bind(&data.contact_phone)
    .bind(b(data.relocation_site))
    .bind(certification.map(|c| c.body.clone()))
    .bind(certification.map(|c| c.document.clone()))
    .bind(certification.map(|c| date_text(c.date)))
    .bind(certification.and_then(|c| c.valid_until).map(date_text))
    .bind(certification.map(|c| c.subject.clone()))
    .bind(to_micros(now))
    .bind(&carrier.id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A carrier's active placements and the counted target persons among them.
pub async fn carrier_counts(conn: &mut AnyConnection, carrier_id: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS active, \
         CAST(COALESCE(SUM(CASE WHEN priority >= 2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS absorbed \
         FROM jobs_placements WHERE carrier_id = $1 AND state = 'active'",
    )
    .bind(carrier_id)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("active")?, row.try_get("absorbed")?))
}

// ---------------------------------------------------------------------------------------------
// Postings

/// What a clerk enters for a posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingData {
    pub carrier_id: String,
    pub title: String,
    pub occupation_code: String,
    pub occupation_name: String,
    /// At its own level ([`natural_code`]).
    pub work_region: String,
    pub wage_min_fen: i64,
    pub wage_max_fen: i64,
    pub headcount: i64,
    pub contract_months: i64,
    pub weekly_hours: i64,
    /// What the posting takes, the default applied (full labor only when none is named).
    pub accepted: Vec<LaborCapacity>,
    pub min_age: i64,
    pub max_age: i64,
    pub skills: Vec<String>,
    pub accommodation: bool,
    pub meals: bool,
    pub valid_until: Date,
    pub shared: bool,
}

impl PostingData {
    pub fn profile(&self) -> PostingProfile {
        PostingProfile {
            work_region: self.work_region.clone(),
            wage_max_fen: self.wage_max_fen,
            accepted: self.accepted.clone(),
            skills: self.skills.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredPosting {
    pub id: String,
    pub data: PostingData,
    pub open_date: Date,
    /// As stored: open or closed (expiry is [`StoredPosting::state_on`]).
    pub state: PostingState,
    pub placed: i64,
    pub close_reason: String,
    pub revision: i64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

impl StoredPosting {
    pub fn name(&self) -> String {
        format!("postings/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }

    /// Open, closed, or expired past its last day.
    pub fn state_on(&self, today: Date) -> PostingState {
        match self.state {
            PostingState::Open if self.data.valid_until < today => PostingState::Expired,
            state => state,
        }
    }
}

fn posting_from(row: &AnyRow) -> Result<StoredPosting> {
    let accepted: String = row.try_get("accepted")?;
    let skills: String = row.try_get("skills")?;
    Ok(StoredPosting {
        id: row.try_get("id")?,
        data: PostingData {
            carrier_id: row.try_get("carrier_id")?,
            title: row.try_get("title")?,
            occupation_code: row.try_get("occupation_code")?,
            occupation_name: row.try_get("occupation_name")?,
            work_region: row.try_get("work_region")?,
            wage_min_fen: row.try_get("wage_min_fen")?,
            wage_max_fen: row.try_get("wage_max_fen")?,
            headcount: row.try_get("headcount")?,
            contract_months: row.try_get("contract_months")?,
            weekly_hours: row.try_get("weekly_hours")?,
            accepted: unpiped(&accepted)
                .iter()
                .filter_map(|c| LaborCapacity::parse(c))
                .collect(),
            min_age: row.try_get("min_age")?,
            max_age: row.try_get("max_age")?,
            skills: unpiped(&skills),
            accommodation: flag(row, "accommodation")?,
            meals: flag(row, "meals")?,
            valid_until: day(row, "valid_until")?,
            shared: flag(row, "shared")?,
        },
        open_date: day(row, "open_date")?,
        state: parsed(row, "state", PostingState::parse)?,
        placed: row.try_get("placed")?,
        close_reason: row.try_get("close_reason")?,
        revision: row.try_get("revision")?,
        created: instant(row, "created_us")?,
        updated: instant(row, "updated_us")?,
    })
}

pub async fn insert_posting(
    tx: &mut AnyConnection,
    id: &str,
    posting: &PostingData,
    subject: &str,
    now: OffsetDateTime,
    today: Date,
) -> Result<()> {
    let [province, city, county, township, village] = level_prefixes(&posting.work_region);
    sqlx::query(
        "INSERT INTO jobs_postings (id, carrier_id, title, occupation_code, occupation_name, work_region, \
         r_province, r_city, r_county, r_township, r_village, wage_min_fen, wage_max_fen, headcount, \
         contract_months, weekly_hours, accepted, min_age, max_age, skills, skill_count, accommodation, meals, \
         valid_until, shared, open_date, state, placed, close_reason, revision, create_subject, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
         $22, $23, $24, $25, $26, 'open', 0, '', 1, $27, $28, $28)",
    )
    .bind(id)
    .bind(&posting.carrier_id)
    .bind(&posting.title)
    .bind(&posting.occupation_code)
    .bind(&posting.occupation_name)
    .bind(&posting.work_region)
    .bind(province)
    .bind(city)
    .bind(county)
    .bind(township)
    .bind(village)
    .bind(posting.wage_min_fen)
    .bind(posting.wage_max_fen)
    .bind(posting.headcount)
    .bind(posting.contract_months)
    .bind(posting.weekly_hours)
    .bind(piped(posting.accepted.iter().map(|c| c.as_str())))
    .bind(posting.min_age)
    .bind(posting.max_age)
    .bind(piped(&posting.skills))
    .bind(posting.skills.len() as i64)
    .bind(b(posting.accommodation))
    .bind(b(posting.meals))
    .bind(date_text(posting.valid_until))
    .bind(b(posting.shared))
    .bind(date_text(today))
    .bind(subject)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_posting(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredPosting>> {
    sqlx::query("SELECT * FROM jobs_postings WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(posting_from)
        .transpose()
}

/// Which postings a list returns.
#[derive(Debug, Clone, Default)]
pub struct PostingFilter {
    pub region_prefix: String,
    pub carrier_id: String,
    pub occupation_prefix: String,
    pub state: Option<PostingState>,
}

pub async fn list_postings(
    conn: &mut AnyConnection,
    filter: &PostingFilter,
    today: Date,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredPosting>> {
    let (low, high) = region_range(&filter.region_prefix);
    let (occupation_low, occupation_high) = region_range(&filter.occupation_prefix);
    let (state, expiry) = match filter.state {
        None => ("", ""),
        Some(PostingState::Open) => ("open", "current"),
        Some(PostingState::Expired) => ("open", "expired"),
        Some(PostingState::Closed) => ("closed", ""),
    };
    let rows = sqlx::query(
        "SELECT * FROM jobs_postings WHERE work_region >= $1 AND work_region < $2 AND id > $3 \
         AND ($4 = '' OR carrier_id = $4) AND occupation_code >= $5 AND occupation_code < $6 \
         AND ($7 = '' OR state = $7) AND ($8 = '' OR ($8 = 'current' AND valid_until >= $9) \
         OR ($8 = 'expired' AND valid_until < $9)) ORDER BY id LIMIT $10",
    )
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(&filter.carrier_id)
    .bind(occupation_low)
    .bind(occupation_high)
    .bind(state)
    .bind(expiry)
    .bind(date_text(today))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(posting_from).collect()
}

/// Writes a changed open posting at the revision read; false when it moved or closed
/// meanwhile, or its headcount fell below the placements made.
pub async fn update_posting(
    tx: &mut AnyConnection,
    posting: &StoredPosting,
    read_revision: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let data = &posting.data;
    let done = sqlx::query(
        "UPDATE jobs_postings SET title = $1, occupation_code = $2, occupation_name = $3, wage_min_fen = $4, \
         wage_max_fen = $5, headcount = $6, contract_months = $7, weekly_hours = $8, accepted = $9, min_age = $10, \
         max_age = $11, skills = $12, skill_count = $13, accommodation = $14, meals = $15, valid_until = $16, \
         shared = $17, revision = revision + 1, updated_us = $18 \
         WHERE id = $19 AND revision = $20 AND state = 'open' AND placed <= $6",
    )
    .bind(&data.title)
    .bind(&data.occupation_code)
    .bind(&data.occupation_name)
    .bind(data.wage_min_fen)
    .bind(data.wage_max_fen)
    .bind(data.headcount)
    .bind(data.contract_months)
    .bind(data.weekly_hours)
    .bind(piped(data.accepted.iter().map(|c| c.as_str())))
    .bind(data.min_age)
    .bind(data.max_age)
    .bind(piped(&data.skills))
    .bind(data.skills.len() as i64)
    .bind(b(data.accommodation))
    .bind(b(data.meals))
    .bind(date_text(data.valid_until))
    .bind(b(data.shared))
    .bind(to_micros(now))
    .bind(&posting.id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Closes an open posting at the revision read; false when it moved or closed meanwhile.
pub async fn close_posting(
    tx: &mut AnyConnection,
    id: &str,
    read_revision: i64,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_postings SET state = 'closed', close_reason = $1, revision = revision + 1, updated_us = $2 \
         WHERE id = $3 AND revision = $4 AND state = 'open'",
    )
    .bind(reason)
    .bind(to_micros(now))
    .bind(id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes one of an open posting's places; false when it is closed, expired or full. The guard
/// is the statement, so two clerks placing the last place at once cannot both take it.
pub async fn take_place(tx: &mut AnyConnection, id: &str, today: Date, now: OffsetDateTime) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_postings SET placed = placed + 1, updated_us = $1 \
         WHERE id = $2 AND state = 'open' AND valid_until >= $3 AND placed < headcount",
    )
    .bind(to_micros(now))
    .bind(id)
    .bind(date_text(today))
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------------
// Seekers

/// What identity says of a seeker's person, kept for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSnapshot {
    pub display_name: String,
    pub registered_region: String,
    pub labor_capacity: Option<LaborCapacity>,
    pub priority: Priority,
    /// "YYYY-MM", or empty when identity does not say.
    pub birth_month: String,
}

/// What a clerk enters for a seeker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekerData {
    pub person_id: String,
    pub skills: Vec<String>,
    pub intentions: Vec<WorkIntention>,
    pub destinations: Vec<String>,
    pub expected_wage_fen: i64,
    pub available_from: Date,
    /// (origin province, destination province), or empty strings.
    pub route: (String, String),
}

#[derive(Debug, Clone)]
pub struct StoredSeeker {
    pub id: String,
    pub data: SeekerData,
    pub person: PersonSnapshot,
    pub state: SeekerState,
    pub revision: i64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

impl StoredSeeker {
    pub fn name(&self) -> String {
        format!("seekers/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }

    pub fn profile(&self) -> SeekerProfile {
        SeekerProfile {
            home: self.person.registered_region.clone(),
            labor_capacity: self.person.labor_capacity,
            priority: self.person.priority,
            skills: self.data.skills.clone(),
            intentions: self.data.intentions.clone(),
            destinations: self.data.destinations.clone(),
            expected_wage_fen: self.data.expected_wage_fen,
            route_destination: self.data.route.1.clone(),
        }
    }
}

fn seeker_from(row: &AnyRow) -> Result<StoredSeeker> {
    let skills: String = row.try_get("skills")?;
    let destinations: String = row.try_get("destinations")?;
    let capacity: String = row.try_get("labor_capacity")?;
    let mut intentions = Vec::new();
    for (column, intention) in [
        ("want_local", WorkIntention::Local),
        ("want_out_county", WorkIntention::OutOfCounty),
        ("want_out_province", WorkIntention::OutOfProvince),
    ] {
        if flag(row, column)? {
            intentions.push(intention);
        }
    }
    Ok(StoredSeeker {
        id: row.try_get("id")?,
        data: SeekerData {
            person_id: row.try_get("person_id")?,
            skills: unpiped(&skills),
            intentions,
            destinations: uncommaed(&destinations),
            expected_wage_fen: row.try_get("expected_wage_fen")?,
            available_from: day(row, "available_from")?,
            route: (row.try_get("route_origin")?, row.try_get("route_destination")?),
        },
        person: PersonSnapshot {
            display_name: row.try_get("display_name")?,
            registered_region: row.try_get("registered_region")?,
            labor_capacity: LaborCapacity::parse(&capacity),
            priority: bangfu_platform::rows::decode("priority", Priority::from_rank(row.try_get("priority")?))?,
            birth_month: row.try_get("birth_month")?,
        },
        state: parsed(row, "state", SeekerState::parse)?,
        revision: row.try_get("revision")?,
        created: instant(row, "created_us")?,
        updated: instant(row, "updated_us")?,
    })
}

pub async fn insert_seeker(
    tx: &mut AnyConnection,
    id: &str,
    seeker: &SeekerData,
    person: &PersonSnapshot,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    insert_seekers(tx, &[(id.to_string(), seeker.clone(), person.clone())], subject, now).await
}

/// Columns a seeker row is written with, in bind order.
const SEEKER_COLUMNS: usize = 20;

/// Registers many seekers in statements of a few hundred rows (a county's list of those willing
/// to work, or the bench's million), all active.
pub async fn insert_seekers(
    tx: &mut AnyConnection,
    seekers: &[(String, SeekerData, PersonSnapshot)],
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    for chunk in seekers.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO jobs_seekers (id, person_id, display_name, registered_region, labor_capacity, priority, \
             birth_month, facts_read_us, skills, want_local, want_out_county, want_out_province, destinations, \
             expected_wage_fen, available_from, route_origin, route_destination, create_subject, created_us, \
             updated_us, state, revision) VALUES ",
        );
        for row in 0..chunk.len() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "({}, 'active', 1)",
                bangfu_platform::db::numbered_parameters(1 + row * SEEKER_COLUMNS, SEEKER_COLUMNS)
            ));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, seeker, person) in chunk {
            query = query
                .bind(id.clone())
                .bind(seeker.person_id.clone())
                .bind(person.display_name.clone())
                .bind(person.registered_region.clone())
                .bind(person.labor_capacity.map(LaborCapacity::as_str).unwrap_or(""))
                .bind(person.priority.rank())
                .bind(person.birth_month.clone())
                .bind(to_micros(now))
                .bind(piped(&seeker.skills))
                .bind(b(seeker.intentions.contains(&WorkIntention::Local)))
                .bind(b(seeker.intentions.contains(&WorkIntention::OutOfCounty)))
                .bind(b(seeker.intentions.contains(&WorkIntention::OutOfProvince)))
                .bind(commaed(&seeker.destinations))
                .bind(seeker.expected_wage_fen)
                .bind(date_text(seeker.available_from))
                .bind(seeker.route.0.clone())
                .bind(seeker.route.1.clone())
                .bind(subject.to_string())
                .bind(to_micros(now))
                .bind(to_micros(now));
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

pub async fn get_seeker(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredSeeker>> {
    sqlx::query("SELECT * FROM jobs_seekers WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(seeker_from)
        .transpose()
}

pub async fn get_seeker_of_person(conn: &mut AnyConnection, person_id: &str) -> Result<Option<StoredSeeker>> {
    sqlx::query("SELECT * FROM jobs_seekers WHERE person_id = $1")
        .bind(person_id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(seeker_from)
        .transpose()
}

/// Which seekers a list returns.
#[derive(Debug, Clone, Default)]
pub struct SeekerFilter {
    pub region_prefix: String,
    pub state: Option<SeekerState>,
    pub min_priority: Priority,
}

pub async fn list_seekers(
    conn: &mut AnyConnection,
    filter: &SeekerFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredSeeker>> {
    let (low, high) = region_range(&filter.region_prefix);
    let rows = sqlx::query(
        "SELECT * FROM jobs_seekers WHERE registered_region >= $1 AND registered_region < $2 AND id > $3 \
         AND ($4 = '' OR state = $4) AND priority >= $5 ORDER BY id LIMIT $6",
    )
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(filter.state.map(SeekerState::as_str).unwrap_or(""))
    .bind(filter.min_priority.rank())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(seeker_from).collect()
}

/// Writes a changed seeker at the revision read; false when it moved meanwhile.
pub async fn update_seeker(
    tx: &mut AnyConnection,
    seeker: &StoredSeeker,
    read_revision: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let data = &seeker.data;
    let done = sqlx::query(
        "UPDATE jobs_seekers SET skills = $1, want_local = $2, want_out_county = $3, want_out_province = $4, \
         destinations = $5, expected_wage_fen = $6, available_from = $7, route_origin = $8, route_destination = $9, \
         state = $10, revision = revision + 1, updated_us = $11 WHERE id = $12 AND revision = $13",
    )
    .bind(piped(&data.skills))
    .bind(b(data.intentions.contains(&WorkIntention::Local)))
    .bind(b(data.intentions.contains(&WorkIntention::OutOfCounty)))
    .bind(b(data.intentions.contains(&WorkIntention::OutOfProvince)))
    .bind(commaed(&data.destinations))
    .bind(data.expected_wage_fen)
    .bind(date_text(data.available_from))
    .bind(&data.route.0)
    .bind(&data.route.1)
    .bind(seeker.state.as_str())
    .bind(to_micros(now))
    .bind(&seeker.id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a seeker from one state to another; false when it was not in `from`.
pub async fn set_seeker_state(
    tx: &mut AnyConnection,
    id: &str,
    from: SeekerState,
    to: SeekerState,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_seekers SET state = $1, revision = revision + 1, updated_us = $2 WHERE id = $3 AND state = $4",
    )
    .bind(to.as_str())
    .bind(to_micros(now))
    .bind(id)
    .bind(from.as_str())
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores what identity says of a seeker's person now.
pub async fn refresh_person(
    conn: &mut AnyConnection,
    id: &str,
    person: &PersonSnapshot,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs_seekers SET display_name = $1, registered_region = $2, labor_capacity = $3, priority = $4, \
         birth_month = $5, facts_read_us = $6 WHERE id = $7",
    )
    .bind(&person.display_name)
    .bind(&person.registered_region)
    .bind(person.labor_capacity.map(LaborCapacity::as_str).unwrap_or(""))
    .bind(person.priority.rank())
    .bind(&person.birth_month)
    .bind(to_micros(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Ranking

/// Numbered parameters for a statement built at run time.
#[derive(Default)]
struct Binds {
    values: Vec<Bound>,
}

enum Bound {
    Int(i64),
    Text(String),
}

impl Binds {
    fn int(&mut self, value: i64) -> String {
        self.values.push(Bound::Int(value));
        format!("${}", self.values.len())
    }

    fn text(&mut self, value: impl Into<String>) -> String {
        self.values.push(Bound::Text(value.into()));
        format!("${}", self.values.len())
    }

    /// Runs `sql`, built from fixed fragments with every value bound, never spliced in: each
    /// row whole, with its score.
    async fn fetch<T>(
        self,
        sql: String,
        conn: &mut AnyConnection,
        decode: fn(&AnyRow) -> Result<T>,
    ) -> Result<Vec<Ranked<T>>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in self.values {
            query = match value {
                Bound::Int(value) => query.bind(value),
                Bound::Text(value) => query.bind(value),
            };
        }
        let rows = query.fetch_all(conn).await?;
        rows.iter()
            .map(|row| {
                Ok(Ranked {
                    row: decode(row)?,
                    score: row.try_get("score")?,
                })
            })
            .collect()
    }
}

/// `weight × fit / 10000` as SQL, as `domain::score` rounds it.
fn points(binds: &mut Binds, weight: i64, fit: &str) -> String {
    format!("({} * ({fit})) / 10000", binds.int(weight))
}

/// A candidate the ranking kept, whole, with the score SQL gave it.
#[derive(Debug, Clone)]
pub struct Ranked<T> {
    pub row: T,
    pub score: i64,
}

/// The active seekers under `region_prefix` best for `posting`, scored in one statement.
pub async fn rank_seekers(
    conn: &mut AnyConnection,
    posting: &PostingData,
    weights: &Weights,
    region_prefix: &str,
    today: Date,
    limit: i64,
) -> Result<Vec<Ranked<StoredSeeker>>> {
    let mut q = Binds::default();
    let [province, city, county, township, village] = level_prefixes(&posting.work_region);
    let home = "s.registered_region";
    // Distance on the division tree, then the route.
    let distance = format!(
        "CASE WHEN {v} <> '' AND {home} = {v} THEN 10000 WHEN {t} <> '' AND substr({home}, 1, 9) = {t} THEN 9000 \
         WHEN {c} <> '' AND substr({home}, 1, 6) = {c} THEN 8000 WHEN {ci} <> '' AND substr({home}, 1, 4) = {ci} THEN 6000 \
         WHEN substr({home}, 1, 2) = {p} THEN 4000 WHEN s.route_destination = {p} THEN 3000 ELSE 0 END",
        v = q.text(village),
        t = q.text(township.clone()),
        c = q.text(county.clone()),
        ci = q.text(city.clone()),
        p = q.text(province.clone()),
    );
    // A named destination that is a prefix of the work region, else the intention its place
    // answers to.
    let named: Vec<String> = [
        &province,
        &city,
        &county,
        &township,
        &level_prefixes(&posting.work_region)[4],
    ]
    .iter()
    .filter(|prefix| !prefix.is_empty())
    .map(|prefix| format!("s.destinations LIKE {}", q.text(format!("%,{prefix},%"))))
    .collect();
    let intention = format!(
        "CASE WHEN {named} THEN 10000 WHEN substr({home}, 1, 2) <> {p} THEN 10000 * s.want_out_province \
         WHEN {c} <> '' AND substr({home}, 1, 6) = {c} THEN 10000 * s.want_local ELSE 10000 * s.want_out_county END",
        named = named.join(" OR "),
        p = q.text(province.clone()),
        c = q.text(county.clone()),
    );
    let skills = if posting.skills.is_empty() {
        "10000".to_string()
    } else {
        let matched: Vec<String> = posting
            .skills
            .iter()
            .map(|skill| {
                format!(
                    "CASE WHEN s.skills LIKE {} THEN 1 ELSE 0 END",
                    q.text(format!("%|{skill}|%"))
                )
            })
            .collect();
        format!(
            "({}) * 10000 / {}",
            matched.join(" + "),
            q.int(posting.skills.len() as i64)
        )
    };
    let wage_max = posting.wage_max_fen;
    let wage = format!(
        "CASE WHEN {w} >= s.expected_wage_fen THEN 10000 ELSE {w2} * 10000 / s.expected_wage_fen END",
        w = q.int(wage_max),
        w2 = q.int(wage_max),
    );
    let accepted: Vec<String> = crate::domain::accepted_or_default(&posting.accepted)
        .iter()
        .map(|c| q.text(c.as_str()))
        .collect();
    let capacity = format!(
        "CASE WHEN s.labor_capacity IN ({}) THEN 10000 ELSE 0 END",
        accepted.join(", ")
    );
    let priority = "CASE s.priority WHEN 3 THEN 10000 WHEN 2 THEN 7000 WHEN 1 THEN 4000 ELSE 0 END";
    let score = [
        points(&mut q, weights.distance, &distance),
        points(&mut q, weights.intention, &intention),
        points(&mut q, weights.skills, &skills),
        points(&mut q, weights.wage, &wage),
        points(&mut q, weights.labor_capacity, &capacity),
        points(&mut q, weights.priority, priority),
    ]
    .join(" + ");
    let (low, high) = region_range(region_prefix);
    let (born_after, born_by) = crate::domain::birth_month_range(today, posting.min_age, posting.max_age);
    let sql = format!(
        "SELECT s.*, CAST({score} AS BIGINT) AS score FROM jobs_seekers s \
         WHERE s.state = 'active' AND s.registered_region >= {low} AND s.registered_region < {high} \
         AND s.birth_month > {after} AND s.birth_month <= {by} AND s.available_from <= {until} \
         ORDER BY score DESC, s.id LIMIT {limit}",
        low = q.text(low),
        high = q.text(high),
        after = q.text(born_after),
        by = q.text(born_by),
        until = q.text(date_text(posting.valid_until)),
        limit = q.int(limit),
    );
    q.fetch(sql, conn, seeker_from).await
}

/// The open postings best for `seeker` among those whose work region lies under
/// `region_prefix` or that are shared across regions, scored in one statement.
pub async fn rank_postings(
    conn: &mut AnyConnection,
    seeker: &SeekerProfile,
    age: Option<i64>,
    weights: &Weights,
    region_prefix: &str,
    today: Date,
    limit: i64,
) -> Result<Vec<Ranked<StoredPosting>>> {
    let mut q = Binds::default();
    let [province, city, county, township, village] = level_prefixes(&seeker.home);
    let distance = format!(
        "CASE WHEN {v} <> '' AND p.r_village = {v} THEN 10000 WHEN {t} <> '' AND p.r_township = {t} THEN 9000 \
         WHEN {c} <> '' AND p.r_county = {c} THEN 8000 WHEN {ci} <> '' AND p.r_city = {ci} THEN 6000 \
         WHEN {p} <> '' AND p.r_province = {p} THEN 4000 WHEN {route} <> '' AND p.r_province = {route} THEN 3000 \
         ELSE 0 END",
        v = q.text(village),
        t = q.text(township),
        c = q.text(county.clone()),
        ci = q.text(city),
        p = q.text(province.clone()),
        route = q.text(seeker.route_destination.clone()),
    );
    let want = |intention: WorkIntention| {
        if seeker.intentions.contains(&intention) {
            10_000
        } else {
            0
        }
    };
    let named: Vec<String> = seeker
        .destinations
        .iter()
        .map(|d| format!("p.work_region LIKE {}", q.text(format!("{}%", natural_code(d)))))
        .collect();
    let named = if named.is_empty() {
        "1 = 0".to_string()
    } else {
        named.join(" OR ")
    };
    let intention = format!(
        "CASE WHEN {named} THEN 10000 WHEN p.r_province <> {p} THEN {op} WHEN {c} <> '' AND p.r_county = {c} THEN {local} \
         ELSE {oc} END",
        p = q.text(province),
        op = q.int(want(WorkIntention::OutOfProvince)),
        c = q.text(county),
        local = q.int(want(WorkIntention::Local)),
        oc = q.int(want(WorkIntention::OutOfCounty)),
    );
    let matched: Vec<String> = seeker
        .skills
        .iter()
        .map(|skill| {
            format!(
                "CASE WHEN p.skills LIKE {} THEN 1 ELSE 0 END",
                q.text(format!("%|{skill}|%"))
            )
        })
        .collect();
    let matched = if matched.is_empty() {
        "0".to_string()
    } else {
        matched.join(" + ")
    };
    let skills = format!("CASE WHEN p.skill_count = 0 THEN 10000 ELSE ({matched}) * 10000 / p.skill_count END");
    let expected = seeker.expected_wage_fen.max(1);
    let wage = format!(
        "CASE WHEN p.wage_max_fen >= {e} THEN 10000 ELSE p.wage_max_fen * 10000 / {e2} END",
        e = q.int(expected),
        e2 = q.int(expected),
    );
    let capacity = match seeker.labor_capacity {
        Some(capacity) => format!(
            "CASE WHEN p.accepted LIKE {} THEN 10000 ELSE 0 END",
            q.text(format!("%|{}|%", capacity.as_str()))
        ),
        None => "0".to_string(),
    };
    let priority = match seeker.priority {
        Priority::MonitoredAtRisk => 10_000,
        Priority::PovertyAlleviated => 7_000,
        Priority::OtherTarget => 4_000,
        Priority::None => 0,
    };
    let priority = q.int(priority);
    let score = [
        points(&mut q, weights.distance, &distance),
        points(&mut q, weights.intention, &intention),
        points(&mut q, weights.skills, &skills),
        points(&mut q, weights.wage, &wage),
        points(&mut q, weights.labor_capacity, &capacity),
        points(&mut q, weights.priority, &priority),
    ]
    .join(" + ");
    let (low, high) = region_range(region_prefix);
    let age_filter = match age {
        Some(age) => {
            let a = q.int(age);
            format!("AND p.min_age <= {a} AND p.max_age >= {a}")
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT p.*, CAST({score} AS BIGINT) AS score FROM jobs_postings p \
         WHERE p.state = 'open' AND p.valid_until >= {today} AND p.placed < p.headcount \
         AND ((p.work_region >= {low} AND p.work_region < {high}) OR p.shared = 1) {age_filter} \
         ORDER BY score DESC, p.id LIMIT {limit}",
        today = q.text(date_text(today)),
        low = q.text(low),
        high = q.text(high),
        limit = q.int(limit),
    );
    q.fetch(sql, conn, posting_from).await
}

// ---------------------------------------------------------------------------------------------
// Applications

#[derive(Debug, Clone)]
pub struct StoredApplication {
    pub id: String,
    pub posting_id: String,
    pub seeker_id: String,
    pub display_name: String,
    pub home_region: String,
    pub state: ApplicationState,
    pub decision_note: String,
    pub decided_by: String,
    pub revision: i64,
    pub created: OffsetDateTime,
    pub decided: Option<OffsetDateTime>,
}

impl StoredApplication {
    pub fn name(&self) -> String {
        format!("applications/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

fn application_from(row: &AnyRow) -> Result<StoredApplication> {
    Ok(StoredApplication {
        id: row.try_get("id")?,
        posting_id: row.try_get("posting_id")?,
        seeker_id: row.try_get("seeker_id")?,
        display_name: row.try_get("display_name")?,
        home_region: row.try_get("registered_region")?,
        state: parsed(row, "state", ApplicationState::parse)?,
        decision_note: row.try_get("decision_note")?,
        decided_by: row.try_get("decided_by")?,
        revision: row.try_get("revision")?,
        created: instant(row, "created_us")?,
        decided: optional_instant(row, "decided_us")?,
    })
}

const APPLICATION_COLUMNS: &str = "a.id, a.posting_id, a.seeker_id, a.state, a.decision_note, a.decided_by, \
     a.revision, a.created_us, a.decided_us, s.display_name, s.registered_region";

pub async fn insert_application(
    tx: &mut AnyConnection,
    id: &str,
    posting_id: &str,
    seeker_id: &str,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_applications (id, posting_id, seeker_id, state, decision_note, decided_by, revision, \
         create_subject, created_us) VALUES ($1, $2, $3, 'submitted', '', '', 1, $4, $5)",
    )
    .bind(id)
    .bind(posting_id)
    .bind(seeker_id)
    .bind(subject)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_application(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredApplication>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM jobs_applications a JOIN jobs_seekers s ON s.id = a.seeker_id WHERE a.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(application_from)
    .transpose()
}

/// Which applications a list returns.
#[derive(Debug, Clone, Default)]
pub struct ApplicationFilter {
    pub region_prefix: String,
    pub posting_id: String,
    pub seeker_id: String,
    pub state: Option<ApplicationState>,
}

pub async fn list_applications(
    conn: &mut AnyConnection,
    filter: &ApplicationFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredApplication>> {
    let (low, high) = region_range(&filter.region_prefix);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM jobs_applications a JOIN jobs_seekers s ON s.id = a.seeker_id \
         WHERE s.registered_region >= $1 AND s.registered_region < $2 AND a.id > $3 \
         AND ($4 = '' OR a.posting_id = $4) AND ($5 = '' OR a.seeker_id = $5) AND ($6 = '' OR a.state = $6) \
         ORDER BY a.id LIMIT $7"
    )))
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(&filter.posting_id)
    .bind(&filter.seeker_id)
    .bind(filter.state.map(ApplicationState::as_str).unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(application_from).collect()
}

/// Decides a submitted application at the revision read; false when it was decided or moved
/// meanwhile.
pub async fn decide_application(
    tx: &mut AnyConnection,
    id: &str,
    read_revision: i64,
    decision: ApplicationState,
    note: &str,
    subject: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_applications SET state = $1, decision_note = $2, decided_by = $3, decided_us = $4, \
         revision = revision + 1 WHERE id = $5 AND revision = $6 AND state = 'submitted'",
    )
    .bind(decision.as_str())
    .bind(note)
    .bind(subject)
    .bind(to_micros(now))
    .bind(id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------------
// Placements

/// A placement as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementData {
    pub posting_id: String,
    pub seeker_id: String,
    pub application_id: String,
    pub person_id: String,
    pub display_name: String,
    pub carrier_id: String,
    pub work_region: String,
    pub home_region: String,
    pub start: Date,
    pub contract_months: i64,
    pub monthly_wage_fen: i64,
    pub social_insurance: bool,
    pub place: EmploymentPlace,
    pub priority: Priority,
}

#[derive(Debug, Clone)]
pub struct StoredPlacement {
    pub id: String,
    pub data: PlacementData,
    pub state: PlacementState,
    pub end_date: Option<Date>,
    pub end_reason: Option<EndReason>,
    pub end_note: String,
    pub identity_recorded: bool,
    pub revision: i64,
    pub created: OffsetDateTime,
}

impl StoredPlacement {
    pub fn name(&self) -> String {
        format!("placements/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

fn placement_from(row: &AnyRow) -> Result<StoredPlacement> {
    let reason: Option<String> = row.try_get("end_reason")?;
    let priority: i64 = row.try_get("priority")?;
    Ok(StoredPlacement {
        id: row.try_get("id")?,
        data: PlacementData {
            posting_id: row.try_get("posting_id")?,
            seeker_id: row.try_get("seeker_id")?,
            application_id: row.try_get("application_id")?,
            person_id: row.try_get("person_id")?,
            display_name: row.try_get("display_name")?,
            carrier_id: row.try_get("carrier_id")?,
            work_region: row.try_get("work_region")?,
            home_region: row.try_get("home_region")?,
            start: day(row, "start_date")?,
            contract_months: row.try_get("contract_months")?,
            monthly_wage_fen: row.try_get("monthly_wage_fen")?,
            social_insurance: flag(row, "social_insurance")?,
            place: parsed(row, "place", EmploymentPlace::parse)?,
            priority: bangfu_platform::rows::decode("priority", Priority::from_rank(priority))?,
        },
        state: parsed(row, "state", PlacementState::parse)?,
        end_date: optional_day(row, "end_date")?,
        end_reason: reason.as_deref().and_then(EndReason::parse),
        end_note: row.try_get("end_note")?,
        identity_recorded: flag(row, "identity_recorded")?,
        revision: row.try_get("revision")?,
        created: instant(row, "created_us")?,
    })
}

pub async fn insert_placement(
    tx: &mut AnyConnection,
    id: &str,
    placement: &PlacementData,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let p = placement;
    sqlx::query(
        "INSERT INTO jobs_placements (id, posting_id, seeker_id, application_id, person_id, display_name, carrier_id, \
         work_region, home_region, start_date, contract_months, monthly_wage_fen, social_insurance, place, priority, \
         state, end_note, identity_recorded, revision, create_subject, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'active', '', 0, 1, $16, $17, $17)",
    )
    .bind(id)
    .bind(&p.posting_id)
    .bind(&p.seeker_id)
    .bind(&p.application_id)
    .bind(&p.person_id)
    .bind(&p.display_name)
    .bind(&p.carrier_id)
    .bind(&p.work_region)
    .bind(&p.home_region)
    .bind(date_text(p.start))
    .bind(p.contract_months)
    .bind(p.monthly_wage_fen)
    .bind(b(p.social_insurance))
    .bind(p.place.as_str())
    .bind(p.priority.rank())
    .bind(subject)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_placement(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredPlacement>> {
    sqlx::query("SELECT * FROM jobs_placements WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(placement_from)
        .transpose()
}

/// Which placements a list returns.
#[derive(Debug, Clone, Default)]
pub struct PlacementFilter {
    pub region_prefix: String,
    pub carrier_id: String,
    pub posting_id: String,
    pub state: Option<PlacementState>,
}

pub async fn list_placements(
    conn: &mut AnyConnection,
    filter: &PlacementFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredPlacement>> {
    let (low, high) = region_range(&filter.region_prefix);
    let rows = sqlx::query(
        "SELECT * FROM jobs_placements WHERE home_region >= $1 AND home_region < $2 AND id > $3 \
         AND ($4 = '' OR carrier_id = $4) AND ($5 = '' OR posting_id = $5) AND ($6 = '' OR state = $6) \
         ORDER BY id LIMIT $7",
    )
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(&filter.carrier_id)
    .bind(&filter.posting_id)
    .bind(filter.state.map(PlacementState::as_str).unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(placement_from).collect()
}

/// Ends an active placement at the revision read; false when it ended or moved meanwhile.
/// Identity has not heard of the end yet — unless the placement never started, when identity
/// never heard of it at all and hears nothing now.
#[allow(clippy::too_many_arguments)]
pub async fn end_placement(
    tx: &mut AnyConnection,
    id: &str,
    read_revision: i64,
    end: Date,
    reason: EndReason,
    note: &str,
    never_started: bool,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_placements SET state = 'ended', end_date = $1, end_reason = $2, end_note = $3, \
         identity_recorded = $4, revision = revision + 1, updated_us = $5 \
         WHERE id = $6 AND revision = $7 AND state = 'active'",
    )
    .bind(date_text(end))
    .bind(reason.as_str())
    .bind(note)
    .bind(b(never_started))
    .bind(to_micros(now))
    .bind(id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a posting back the place a placement that never started took.
pub async fn release_place(tx: &mut AnyConnection, id: &str, now: OffsetDateTime) -> Result<()> {
    sqlx::query("UPDATE jobs_postings SET placed = placed - 1, updated_us = $1 WHERE id = $2 AND placed > 0")
        .bind(to_micros(now))
        .bind(id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Marks that identity holds the placement's latest fact, unless it changed since (its
/// revision moved): an end recorded after a start must be sent too.
pub async fn mark_placement_recorded(conn: &mut AnyConnection, id: &str, revision: i64) -> Result<()> {
    sqlx::query("UPDATE jobs_placements SET identity_recorded = 1 WHERE id = $1 AND revision = $2")
        .bind(id)
        .bind(revision)
        .execute(conn)
        .await?;
    Ok(())
}

/// Placements started by `today` whose latest fact identity has not recorded, oldest first.
pub async fn unrecorded_placements(conn: &mut AnyConnection, today: Date, limit: i64) -> Result<Vec<StoredPlacement>> {
    let rows = sqlx::query(
        "SELECT * FROM jobs_placements WHERE identity_recorded = 0 AND start_date <= $1 ORDER BY created_us LIMIT $2",
    )
    .bind(date_text(today))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(placement_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Follow-ups

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpData {
    /// (year, month)
    pub month: (i32, u8),
    pub still_employed: bool,
    pub income_fen: i64,
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct StoredFollowUp {
    pub id: String,
    pub placement_id: String,
    pub data: FollowUpData,
    pub identity_recorded: bool,
    pub created: OffsetDateTime,
}

impl StoredFollowUp {
    pub fn name(&self) -> String {
        format!("placements/{}/followUps/{}", self.placement_id, self.id)
    }
}

fn month_text(month: (i32, u8)) -> String {
    format!("{:04}-{:02}", month.0, month.1)
}

fn follow_up_from(row: &AnyRow) -> Result<StoredFollowUp> {
    let month: String = row.try_get("month")?;
    let parsed_month = month
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse().ok()?, m.parse().ok()?)));
    Ok(StoredFollowUp {
        id: row.try_get("id")?,
        placement_id: row.try_get("placement_id")?,
        data: FollowUpData {
            month: bangfu_platform::rows::decode("month", parsed_month)?,
            still_employed: flag(row, "still_employed")?,
            income_fen: row.try_get("income_fen")?,
            note: row.try_get("note")?,
        },
        identity_recorded: flag(row, "identity_recorded")?,
        created: instant(row, "created_us")?,
    })
}

/// Records a month's follow-up; a month recorded again replaces the first (a correction), and
/// identity hears of it again.
pub async fn upsert_follow_up(
    tx: &mut AnyConnection,
    id: &str,
    placement_id: &str,
    follow_up: &FollowUpData,
    subject: &str,
    now: OffsetDateTime,
) -> Result<StoredFollowUp> {
    sqlx::query(
        "INSERT INTO jobs_follow_ups (id, placement_id, month, still_employed, income_fen, note, identity_recorded, \
         create_subject, created_us) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) \
         ON CONFLICT (placement_id, month) DO UPDATE SET still_employed = excluded.still_employed, \
         income_fen = excluded.income_fen, note = excluded.note, identity_recorded = 0, \
         create_subject = excluded.create_subject, created_us = excluded.created_us",
    )
    .bind(id)
    .bind(placement_id)
    .bind(month_text(follow_up.month))
    .bind(b(follow_up.still_employed))
    .bind(follow_up.income_fen)
    .bind(&follow_up.note)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query("SELECT * FROM jobs_follow_ups WHERE placement_id = $1 AND month = $2")
        .bind(placement_id)
        .bind(month_text(follow_up.month))
        .fetch_one(tx)
        .await?;
    follow_up_from(&row)
}

pub async fn latest_follow_up(conn: &mut AnyConnection, placement_id: &str) -> Result<Option<StoredFollowUp>> {
    sqlx::query("SELECT * FROM jobs_follow_ups WHERE placement_id = $1 ORDER BY month DESC LIMIT 1")
        .bind(placement_id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(follow_up_from)
        .transpose()
}

pub async fn get_follow_up(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredFollowUp>> {
    sqlx::query("SELECT * FROM jobs_follow_ups WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(follow_up_from)
        .transpose()
}

/// Marks that identity holds the follow-up's income, unless a correction replaced it since.
pub async fn mark_follow_up_recorded(conn: &mut AnyConnection, id: &str, created: OffsetDateTime) -> Result<()> {
    sqlx::query("UPDATE jobs_follow_ups SET identity_recorded = 1 WHERE id = $1 AND created_us = $2")
        .bind(id)
        .bind(to_micros(created))
        .execute(conn)
        .await?;
    Ok(())
}

/// Follow-ups whose income identity has not recorded, with their placement's person.
pub async fn unrecorded_follow_ups(conn: &mut AnyConnection, limit: i64) -> Result<Vec<(StoredFollowUp, String)>> {
    let rows = sqlx::query(
        "SELECT f.*, p.person_id AS person_id FROM jobs_follow_ups f JOIN jobs_placements p ON p.id = f.placement_id \
         WHERE f.identity_recorded = 0 ORDER BY f.created_us LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((follow_up_from(row)?, row.try_get("person_id")?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Organized labor export

/// What a clerk enters for an export batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBatchData {
    pub display_name: String,
    pub agency_id: String,
    pub mode: TravelMode,
    pub origin: String,
    pub destination: String,
    pub departure: Date,
    pub transport_policy: String,
    pub agency_policy: String,
}

#[derive(Debug, Clone)]
pub struct StoredExportBatch {
    pub id: String,
    pub data: ExportBatchData,
    pub state: ExportBatchState,
    pub departed: Option<Date>,
    pub revision: i64,
    pub created: OffsetDateTime,
}

impl StoredExportBatch {
    pub fn name(&self) -> String {
        format!("exportBatches/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }

    /// The policy a subsidy is claimed under; empty when the batch claims none.
    pub fn policy(&self, subsidy: ExportSubsidy) -> &str {
        match subsidy {
            ExportSubsidy::Transport => &self.data.transport_policy,
            ExportSubsidy::Agency => &self.data.agency_policy,
        }
    }
}

fn export_batch_from(row: &AnyRow) -> Result<StoredExportBatch> {
    Ok(StoredExportBatch {
        id: row.try_get("id")?,
        data: ExportBatchData {
            display_name: row.try_get("display_name")?,
            agency_id: row.try_get("agency_id")?,
            mode: parsed(row, "mode", TravelMode::parse)?,
            origin: row.try_get("origin")?,
            destination: row.try_get("destination")?,
            departure: day(row, "departure_date")?,
            transport_policy: row.try_get("transport_policy")?,
            agency_policy: row.try_get("agency_policy")?,
        },
        state: parsed(row, "state", ExportBatchState::parse)?,
        departed: optional_day(row, "departed_date")?,
        revision: row.try_get("revision")?,
        created: instant(row, "created_us")?,
    })
}

pub async fn insert_export_batch(
    tx: &mut AnyConnection,
    id: &str,
    batch: &ExportBatchData,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_export_batches (id, display_name, agency_id, mode, origin, destination, departure_date, \
         transport_policy, agency_policy, state, revision, create_subject, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'planned', 1, $10, $11, $11)",
    )
    .bind(id)
    .bind(&batch.display_name)
    .bind(&batch.agency_id)
    .bind(batch.mode.as_str())
    .bind(&batch.origin)
    .bind(&batch.destination)
    .bind(date_text(batch.departure))
    .bind(&batch.transport_policy)
    .bind(&batch.agency_policy)
    .bind(subject)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_export_batch(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredExportBatch>> {
    sqlx::query("SELECT * FROM jobs_export_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(export_batch_from)
        .transpose()
}

pub async fn list_export_batches(
    conn: &mut AnyConnection,
    region_prefix: &str,
    state: Option<ExportBatchState>,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredExportBatch>> {
    let (low, high) = region_range(region_prefix);
    let rows = sqlx::query(
        "SELECT * FROM jobs_export_batches WHERE origin >= $1 AND origin < $2 AND id > $3 AND ($4 = '' OR state = $4) \
         ORDER BY id LIMIT $5",
    )
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(state.map(ExportBatchState::as_str).unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(export_batch_from).collect()
}

/// Moves a planned batch's revision on (travellers added); false when it moved or left
/// meanwhile.
pub async fn touch_export_batch(
    tx: &mut AnyConnection,
    id: &str,
    read_revision: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_export_batches SET revision = revision + 1, updated_us = $1 \
         WHERE id = $2 AND revision = $3 AND state = 'planned'",
    )
    .bind(to_micros(now))
    .bind(id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A planned batch departs; false when it moved or left meanwhile.
pub async fn depart_export_batch(
    tx: &mut AnyConnection,
    id: &str,
    read_revision: i64,
    departed: Date,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_export_batches SET state = 'departed', departed_date = $1, revision = revision + 1, updated_us = $2 \
         WHERE id = $3 AND revision = $4 AND state = 'planned'",
    )
    .bind(date_text(departed))
    .bind(to_micros(now))
    .bind(id)
    .bind(read_revision)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Where a subsidy claim stands, as this service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    pub state: ClaimProgress,
    pub claim: String,
    pub amount_fen: i64,
    pub detail: String,
}

/// A traveller with what the claims need of their placement.
#[derive(Debug, Clone)]
pub struct StoredTraveller {
    pub batch_id: String,
    pub placement: StoredPlacement,
    pub fare_fen: i64,
}

impl StoredTraveller {
    /// The claim source reference of one of its subsidies: the pair (system, reference) keys
    /// the claim, so it is claimed once however often it is sent.
    pub fn reference(&self, subsidy: ExportSubsidy) -> String {
        format!(
            "exportBatches/{}/travellers/{}/{}",
            self.batch_id,
            self.placement.id,
            subsidy.as_str()
        )
    }
}

fn traveller_from(row: &AnyRow) -> Result<StoredTraveller> {
    Ok(StoredTraveller {
        batch_id: row.try_get("batch_id")?,
        placement: placement_from(row)?,
        fare_fen: row.try_get("fare_fen")?,
    })
}

pub async fn insert_traveller(tx: &mut AnyConnection, batch_id: &str, placement_id: &str, fare_fen: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_travellers (batch_id, placement_id, position, fare_fen) \
         VALUES ($1, $2, (SELECT COUNT(*) FROM jobs_travellers WHERE batch_id = $1) + 1, $3)",
    )
    .bind(batch_id)
    .bind(placement_id)
    .bind(fare_fen)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn travellers_of(conn: &mut AnyConnection, batch_id: &str) -> Result<Vec<StoredTraveller>> {
    let rows = sqlx::query(
        "SELECT t.*, p.* FROM jobs_travellers t JOIN jobs_placements p ON p.id = t.placement_id \
         WHERE t.batch_id = $1 ORDER BY t.position",
    )
    .bind(batch_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(traveller_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Training

/// What a clerk enters for a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseData {
    pub display_name: String,
    pub provider: String,
    pub occupation_code: String,
    pub occupation_name: String,
    pub region: String,
    pub start: Date,
    pub end: Date,
    pub days: i64,
    pub place: String,
    /// The provider's unified social credit code; empty when no training subsidy is claimed.
    pub provider_credit_code: String,
    /// The policy a completion's training subsidy is claimed under (to the provider), and the
    /// amount per trainee the subsidy project approved; empty and zero for none.
    pub training_subsidy_policy: String,
    pub training_subsidy_fen: i64,
    /// The policy a completion's living allowance is claimed under (to the person); empty for none.
    pub living_allowance_policy: String,
}

#[derive(Debug, Clone)]
pub struct StoredCourse {
    pub id: String,
    pub data: CourseData,
    pub enrolled: i64,
    pub completed: i64,
    pub created: OffsetDateTime,
}

impl StoredCourse {
    pub fn name(&self) -> String {
        format!("trainingCourses/{}", self.id)
    }
}

fn course_from(row: &AnyRow) -> Result<StoredCourse> {
    Ok(StoredCourse {
        id: row.try_get("id")?,
        data: CourseData {
            display_name: row.try_get("display_name")?,
            provider: row.try_get("provider")?,
            occupation_code: row.try_get("occupation_code")?,
            occupation_name: row.try_get("occupation_name")?,
            region: row.try_get("region")?,
            start: day(row, "start_date")?,
            end: day(row, "end_date")?,
            days: row.try_get("days")?,
            place: row.try_get("place")?,
            provider_credit_code: row.try_get("provider_credit_code")?,
            training_subsidy_policy: row.try_get("training_subsidy_policy")?,
            training_subsidy_fen: row.try_get("training_subsidy_fen")?,
            living_allowance_policy: row.try_get("living_allowance_policy")?,
        },
        enrolled: row.try_get("enrolled")?,
        completed: row.try_get("completed")?,
        created: instant(row, "created_us")?,
    })
}

pub async fn insert_course(
    tx: &mut AnyConnection,
    id: &str,
    course: &CourseData,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_courses (id, display_name, provider, occupation_code, occupation_name, region, start_date, \
         end_date, days, place, create_subject, created_us, provider_credit_code, training_subsidy_policy, \
         training_subsidy_fen, living_allowance_policy) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(id)
    .bind(&course.display_name)
    .bind(&course.provider)
    .bind(&course.occupation_code)
    .bind(&course.occupation_name)
    .bind(&course.region)
    .bind(date_text(course.start))
    .bind(date_text(course.end))
    .bind(course.days)
    .bind(&course.place)
    .bind(subject)
    .bind(to_micros(now))
    .bind(&course.provider_credit_code)
    .bind(&course.training_subsidy_policy)
    .bind(course.training_subsidy_fen)
    .bind(&course.living_allowance_policy)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_course(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredCourse>> {
    sqlx::query(
        "SELECT c.*, \
         CAST((SELECT COUNT(*) FROM jobs_enrolments e WHERE e.course_id = c.id) AS BIGINT) AS enrolled, \
         CAST((SELECT COUNT(*) FROM jobs_enrolments e WHERE e.course_id = c.id AND e.state = 'completed') AS BIGINT) \
         AS completed FROM jobs_courses c WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(course_from)
    .transpose()
}

#[derive(Debug, Clone)]
pub struct StoredEnrolment {
    pub id: String,
    pub course_id: String,
    pub person_id: String,
    pub display_name: String,
    pub home_region: String,
    pub target_person: bool,
    pub state: EnrolmentState,
    pub certificate: String,
    pub identity_recorded: bool,
    pub created: OffsetDateTime,
}

impl StoredEnrolment {
    pub fn name(&self) -> String {
        format!("trainingCourses/{}/enrolments/{}", self.course_id, self.id)
    }
}

fn enrolment_from(row: &AnyRow) -> Result<StoredEnrolment> {
    Ok(StoredEnrolment {
        id: row.try_get("id")?,
        course_id: row.try_get("course_id")?,
        person_id: row.try_get("person_id")?,
        display_name: row.try_get("display_name")?,
        home_region: row.try_get("home_region")?,
        target_person: flag(row, "target_person")?,
        state: parsed(row, "state", EnrolmentState::parse)?,
        certificate: row.try_get("certificate")?,
        identity_recorded: flag(row, "identity_recorded")?,
        created: instant(row, "created_us")?,
    })
}

pub async fn insert_enrolment(
    tx: &mut AnyConnection,
    id: &str,
    course_id: &str,
    person: (&str, &PersonSnapshot),
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let (person_id, snapshot) = person;
    sqlx::query(
        "INSERT INTO jobs_enrolments (id, course_id, person_id, display_name, home_region, target_person, state, \
         certificate, identity_recorded, create_subject, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, 'enrolled', '', 0, $7, $8, $8)",
    )
    .bind(id)
    .bind(course_id)
    .bind(person_id)
    .bind(&snapshot.display_name)
    .bind(&snapshot.registered_region)
    .bind(b(snapshot.priority.is_counted_target()))
    .bind(subject)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_enrolment(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredEnrolment>> {
    sqlx::query("SELECT * FROM jobs_enrolments WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(enrolment_from)
        .transpose()
}

/// Ends an enrolment (completed or dropped); false when it had ended already. Identity has not
/// heard of a drop-out yet.
pub async fn finish_enrolment(
    tx: &mut AnyConnection,
    id: &str,
    outcome: EnrolmentState,
    certificate: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_enrolments SET state = $1, certificate = $2, updated_us = $3, \
         identity_recorded = CASE WHEN $1 = 'dropped' THEN 0 ELSE identity_recorded END \
         WHERE id = $4 AND state = 'enrolled'",
    )
    .bind(outcome.as_str())
    .bind(certificate)
    .bind(to_micros(now))
    .bind(id)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn mark_enrolment_recorded(conn: &mut AnyConnection, id: &str, state: EnrolmentState) -> Result<()> {
    sqlx::query("UPDATE jobs_enrolments SET identity_recorded = 1 WHERE id = $1 AND state = $2")
        .bind(id)
        .bind(state.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Enrolments identity has not recorded whose course has started by `today`, with the course.
pub async fn unrecorded_enrolments(
    conn: &mut AnyConnection,
    today: Date,
    limit: i64,
) -> Result<Vec<(StoredEnrolment, Date, Date)>> {
    let rows = sqlx::query(
        "SELECT e.*, c.start_date AS course_start, c.end_date AS course_end FROM jobs_enrolments e \
         JOIN jobs_courses c ON c.id = e.course_id WHERE e.identity_recorded = 0 AND c.start_date <= $1 \
         ORDER BY e.created_us LIMIT $2",
    )
    .bind(date_text(today))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((enrolment_from(row)?, day(row, "course_start")?, day(row, "course_end")?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Recruitment events

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    pub display_name: String,
    pub kind: RecruitmentEventKind,
    pub region: String,
    pub date: Date,
    pub carriers: Vec<String>,
    pub postings: Vec<String>,
    pub persons_reached: i64,
    pub persons_placed: i64,
}

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub data: EventData,
    pub created: OffsetDateTime,
}

impl StoredEvent {
    pub fn name(&self) -> String {
        format!("recruitmentEvents/{}", self.id)
    }
}

fn event_from(row: &AnyRow) -> Result<StoredEvent> {
    let carriers: String = row.try_get("carriers")?;
    let postings: String = row.try_get("postings")?;
    Ok(StoredEvent {
        id: row.try_get("id")?,
        data: EventData {
            display_name: row.try_get("display_name")?,
            kind: parsed(row, "kind", RecruitmentEventKind::parse)?,
            region: row.try_get("region")?,
            date: day(row, "event_date")?,
            carriers: uncommaed(&carriers),
            postings: uncommaed(&postings),
            persons_reached: row.try_get("persons_reached")?,
            persons_placed: row.try_get("persons_placed")?,
        },
        created: instant(row, "created_us")?,
    })
}

pub async fn insert_event(
    tx: &mut AnyConnection,
    id: &str,
    event: &EventData,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_events (id, display_name, kind, region, event_date, carriers, postings, persons_reached, \
         persons_placed, create_subject, created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(&event.display_name)
    .bind(event.kind.as_str())
    .bind(&event.region)
    .bind(date_text(event.date))
    .bind(commaed(&event.carriers))
    .bind(commaed(&event.postings))
    .bind(event.persons_reached)
    .bind(event.persons_placed)
    .bind(subject)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_event(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredEvent>> {
    sqlx::query("SELECT * FROM jobs_events WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(event_from)
        .transpose()
}

pub async fn list_events(
    conn: &mut AnyConnection,
    region_prefix: &str,
    kind: Option<RecruitmentEventKind>,
    year: Option<i32>,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredEvent>> {
    let (low, high) = region_range(region_prefix);
    let (first, last) = match year {
        Some(year) => (format!("{year:04}-01-01"), format!("{year:04}-12-31")),
        None => ("0000-01-01".to_string(), "9999-12-31".to_string()),
    };
    let rows = sqlx::query(
        "SELECT * FROM jobs_events WHERE region >= $1 AND region < $2 AND id > $3 AND ($4 = '' OR kind = $4) \
         AND event_date >= $5 AND event_date <= $6 ORDER BY id LIMIT $7",
    )
    .bind(low)
    .bind(high)
    .bind(after)
    .bind(kind.map(RecruitmentEventKind::as_str).unwrap_or(""))
    .bind(first)
    .bind(last)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(event_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Statistics (附件1)

/// What 附件1 asks of job matching for one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub labor_alliances: i64,
    pub labor_brands: i64,
    pub labor_bases: i64,
    pub labor_base_target_persons: i64,
    pub labor_cooperatives: i64,
    pub assistance_workshops: i64,
    pub workshop_target_persons: i64,
    pub target_persons_in_training: i64,
    pub relocation_site_target_persons: i64,
    pub recruitment_events: i64,
    pub relocation_site_events: i64,
    pub target_persons_placed: i64,
}

/// Grouped counts: the region's county (the first 6 digits, or the whole code when shorter)
/// and a count.
async fn grouped(
    conn: &mut AnyConnection,
    sql: &'static str,
    (prefix, key_length): (&str, i64),
    first: Date,
    last: Date,
) -> Result<Vec<(String, String, i64)>> {
    let (low, high) = region_range(prefix);
    let rows = sqlx::query(sql)
        .bind(low)
        .bind(high)
        .bind(date_text(first))
        .bind(date_text(last))
        .bind(key_length)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("county")?, row.try_get("what")?, row.try_get("n")?)))
        .collect()
}

/// 附件1's counts under `prefix` from `first` to `last`, by the first `key_length` digits of the
/// region (6: by county; 0: one total under the key "", each person counted once however many
/// counties they appear in).
pub async fn job_counts(
    conn: &mut AnyConnection,
    prefix: &str,
    key_length: i64,
    first: Date,
    last: Date,
) -> Result<std::collections::BTreeMap<String, JobCounts>> {
    let mut counts: std::collections::BTreeMap<String, JobCounts> = std::collections::BTreeMap::new();
    // Carriers certified at some time in the period, by kind.
    for (county, kind, n) in grouped(
        conn,
        "SELECT substr(region, 1, CAST($5 AS INTEGER)) AS county, kind AS what, CAST(COUNT(*) AS BIGINT) AS n FROM jobs_carriers \
         WHERE region >= $1 AND region < $2 AND cert_date IS NOT NULL AND cert_date <= $4 \
         AND (cert_valid_until IS NULL OR cert_valid_until >= $3) GROUP BY substr(region, 1, CAST($5 AS INTEGER)), kind",
        (prefix, key_length),
        first,
        last,
    )
    .await?
    {
        let row = counts.entry(county).or_default();
        match CarrierKind::parse(&kind) {
            Some(CarrierKind::LaborAlliance) => row.labor_alliances += n,
            Some(CarrierKind::LaborBrand) => row.labor_brands += n,
            Some(CarrierKind::LaborBase) => row.labor_bases += n,
            Some(CarrierKind::LaborCooperative) => row.labor_cooperatives += n,
            Some(CarrierKind::AssistanceWorkshop) => row.assistance_workshops += n,
            _ => {}
        }
    }
    // Target persons working with a labor base, a workshop or at a relocation site at some time
    // in the period, where the carrier is.
    for (county, what, n) in grouped(
        conn,
        "SELECT substr(c.region, 1, CAST($5 AS INTEGER)) AS county, \
         CASE WHEN c.kind = 'labor_base' THEN 'labor_base' WHEN c.kind = 'assistance_workshop' THEN 'workshop' \
         ELSE 'other' END AS what, CAST(COUNT(DISTINCT p.person_id) AS BIGINT) AS n \
         FROM jobs_placements p JOIN jobs_carriers c ON c.id = p.carrier_id \
         WHERE c.region >= $1 AND c.region < $2 AND p.priority >= 2 AND p.start_date <= $4 \
         AND (p.end_date IS NULL OR p.end_date >= $3) AND c.kind IN ('labor_base', 'assistance_workshop') \
         GROUP BY substr(c.region, 1, CAST($5 AS INTEGER)), CASE WHEN c.kind = 'labor_base' THEN 'labor_base' \
         WHEN c.kind = 'assistance_workshop' THEN 'workshop' ELSE 'other' END",
        (prefix, key_length),
        first,
        last,
    )
    .await?
    {
        let row = counts.entry(county).or_default();
        match what.as_str() {
            "labor_base" => row.labor_base_target_persons += n,
            "workshop" => row.workshop_target_persons += n,
            _ => {}
        }
    }
    for (county, _, n) in grouped(
        conn,
        "SELECT substr(c.region, 1, CAST($5 AS INTEGER)) AS county, 'site' AS what, CAST(COUNT(DISTINCT p.person_id) AS BIGINT) AS n \
         FROM jobs_placements p JOIN jobs_carriers c ON c.id = p.carrier_id \
         WHERE c.region >= $1 AND c.region < $2 AND p.priority >= 2 AND p.start_date <= $4 \
         AND (p.end_date IS NULL OR p.end_date >= $3) AND c.relocation_site = 1 GROUP BY substr(c.region, 1, CAST($5 AS INTEGER))",
        (prefix, key_length),
        first,
        last,
    )
    .await?
    {
        counts.entry(county).or_default().relocation_site_target_persons += n;
    }
    // Target persons placed in the period, where they are registered.
    for (county, _, n) in grouped(
        conn,
        "SELECT substr(home_region, 1, CAST($5 AS INTEGER)) AS county, 'placed' AS what, CAST(COUNT(DISTINCT person_id) AS BIGINT) AS n \
         FROM jobs_placements WHERE home_region >= $1 AND home_region < $2 AND priority >= 2 \
         AND start_date >= $3 AND start_date <= $4 GROUP BY substr(home_region, 1, CAST($5 AS INTEGER))",
        (prefix, key_length),
        first,
        last,
    )
    .await?
    {
        counts.entry(county).or_default().target_persons_placed += n;
    }
    // Target persons enrolled on a course running in the period, where it is held.
    for (county, _, n) in grouped(
        conn,
        "SELECT substr(c.region, 1, CAST($5 AS INTEGER)) AS county, 'training' AS what, CAST(COUNT(DISTINCT e.person_id) AS BIGINT) AS n \
         FROM jobs_enrolments e JOIN jobs_courses c ON c.id = e.course_id \
         WHERE c.region >= $1 AND c.region < $2 AND e.target_person = 1 AND e.state <> 'dropped' \
         AND c.start_date <= $4 AND c.end_date >= $3 \
         GROUP BY substr(c.region, 1, CAST($5 AS INTEGER))",
        (prefix, key_length),
        first,
        last,
    )
    .await?
    {
        counts.entry(county).or_default().target_persons_in_training += n;
    }
    // Recruitment events held in the period.
    for (county, kind, n) in grouped(
        conn,
        "SELECT substr(region, 1, CAST($5 AS INTEGER)) AS county, kind AS what, CAST(COUNT(*) AS BIGINT) AS n FROM jobs_events \
         WHERE region >= $1 AND region < $2 AND event_date >= $3 AND event_date <= $4 \
         GROUP BY substr(region, 1, CAST($5 AS INTEGER)), kind",
        (prefix, key_length),
        first,
        last,
    )
    .await?
    {
        let row = counts.entry(county).or_default();
        row.recruitment_events += n;
        if kind == RecruitmentEventKind::RelocationSite.as_str() {
            row.relocation_site_events += n;
        }
    }
    Ok(counts)
}

/// Target persons' placements with `carrier_id` at work some day from `first` to `last`.
pub async fn target_placements_with(
    conn: &mut AnyConnection,
    carrier_id: &str,
    first: Date,
    last: Date,
) -> Result<Vec<StoredPlacement>> {
    let rows = sqlx::query(
        "SELECT * FROM jobs_placements WHERE carrier_id = $1 AND priority >= 2 AND start_date <= $3 \
         AND (end_date IS NULL OR end_date >= $2) ORDER BY id",
    )
    .bind(carrier_id)
    .bind(date_text(first))
    .bind(date_text(last))
    .fetch_all(conn)
    .await?;
    rows.iter().map(placement_from).collect()
}

/// Months of a placement's follow-ups that found the person still at work.
pub async fn months_followed_at_work(conn: &mut AnyConnection, placement_id: &str) -> Result<i64> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM jobs_follow_ups WHERE placement_id = $1 AND still_employed = 1",
    )
    .bind(placement_id)
    .fetch_one(conn)
    .await?;
    row.try_get("n")
}

/// Marks a person's seeker (if any) to be read again from identity: something about them
/// changed there (a category, the registered region).
pub async fn mark_person_stale(tx: &mut AnyConnection, person_id: &str) -> Result<()> {
    sqlx::query("UPDATE jobs_seekers SET facts_read_us = 0 WHERE person_id = $1")
        .bind(person_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Withdraws a person's active seeker: identity says they died or moved away.
pub async fn withdraw_person(tx: &mut AnyConnection, person_id: &str, now: OffsetDateTime) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_seekers SET state = 'withdrawn', revision = revision + 1, updated_us = $1 \
         WHERE person_id = $2 AND state = 'active'",
    )
    .bind(to_micros(now))
    .bind(person_id)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Seekers whose person is to be read again from identity.
pub async fn stale_seekers(conn: &mut AnyConnection, limit: i64) -> Result<Vec<StoredSeeker>> {
    let rows = sqlx::query("SELECT * FROM jobs_seekers WHERE facts_read_us = 0 ORDER BY id LIMIT $1")
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(seeker_from).collect()
}
