//! The SQL of reports. Every function runs on the connection it is given: inside a use case's
//! transaction, every read uses that transaction.

use std::collections::BTreeMap;

use bangfu_platform::db::DbError;
use bangfu_platform::regions::prefix_upper_bound;
use bangfu_platform::rows::{decode, json, parsed, to_json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::{Content, Form, Period, State};

type Result<T> = std::result::Result<T, DbError>;

/// A report as stored.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub id: String,
    pub form: Form,
    pub region: String,
    pub period: Period,
    pub state: State,
    pub prior_state: State,
    pub revision: i64,
    /// Empty in listings.
    pub content: Content,
    pub generated_by: String,
    pub generated_us: i64,
    pub generation_started_us: i64,
    pub live: Option<(Content, i64)>,
    pub submitted_by: String,
}

impl StoredReport {
    /// The etag a sign-off call sends back.
    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }
}

/// One step of the sign-off.
#[derive(Debug, Clone)]
pub struct SignOff {
    pub action: String,
    pub subject: String,
    pub scope: String,
    pub note: String,
    pub at_us: i64,
}

const SUMMARY_COLUMNS: &str = "id, form, region, year, quarter, state, prior_state, revision, generated_by, \
     generated_us, generation_started_us, live_read_us, submitted_by";

fn report_from(row: &AnyRow, with_content: bool) -> Result<StoredReport> {
    let (content, live) = if with_content {
        let live_text: Option<String> = row.try_get("live_content")?;
        let live_read_us: Option<i64> = row.try_get("live_read_us")?;
        let live = match (live_text, live_read_us) {
            (Some(_), Some(at)) => Some((json(row, "live_content")?, at)),
            _ => None,
        };
        (json(row, "content")?, live)
    } else {
        (Content::default(), None)
    };
    Ok(StoredReport {
        id: row.try_get("id")?,
        form: parsed(row, "form", Form::parse)?,
        region: row.try_get("region")?,
        period: Period {
            year: decode("year", i32::try_from(row.try_get::<i64, _>("year")?).ok())?,
            quarter: decode("quarter", u8::try_from(row.try_get::<i64, _>("quarter")?).ok())?,
        },
        state: parsed(row, "state", State::parse)?,
        prior_state: parsed(row, "prior_state", State::parse)?,
        revision: row.try_get("revision")?,
        content,
        generated_by: row.try_get("generated_by")?,
        generated_us: row.try_get("generated_us")?,
        generation_started_us: row.try_get("generation_started_us")?,
        live,
        submitted_by: row.try_get("submitted_by")?,
    })
}

/// The report with its numbers.
pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredReport>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUMMARY_COLUMNS}, content, live_content FROM rp_reports WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| report_from(&row, true)).transpose()
}

/// A new report, generating; false when another caller created it first.
pub async fn insert_generating(
    conn: &mut AnyConnection,
    id: &str,
    form: Form,
    region: &str,
    period: Period,
    subject: &str,
    now_us: i64,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO rp_reports (id, form, region, year, quarter, state, prior_state, revision, content, \
         generated_by, generated_us, generation_started_us, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, 'generating', 'incomplete', 1, $6, $7, $8, $8, $8, $8) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(form.as_str())
    .bind(region)
    .bind(i64::from(period.year))
    .bind(i64::from(period.quarter))
    .bind(to_json(&Content::default()))
    .bind(subject)
    .bind(now_us)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Marks a report generating from `revision` (the state it leaves is kept, to go back to when
/// the generation is abandoned); false when it changed meanwhile.
pub async fn claim_generation(
    conn: &mut AnyConnection,
    id: &str,
    revision: i64,
    prior: State,
    now_us: i64,
) -> Result<bool> {
    let claimed = sqlx::query(
        "UPDATE rp_reports SET state = 'generating', prior_state = $1, revision = revision + 1, \
         generation_started_us = $2, updated_us = $2 WHERE id = $3 AND revision = $4 \
         AND state IN ('generating', 'draft', 'incomplete', 'returned')",
    )
    .bind(prior.as_str())
    .bind(now_us)
    .bind(id)
    .bind(revision)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Writes a generation's numbers, if the generation started at `started_us` still holds the
/// report (another may have taken it over after the timeout).
pub async fn finish_generation(
    conn: &mut AnyConnection,
    id: &str,
    started_us: i64,
    state: State,
    content: &str,
    subject: &str,
    now_us: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE rp_reports SET state = $1, content = $2, generated_by = $3, generated_us = $4, \
         revision = revision + 1, updated_us = $4, live_content = NULL, live_read_us = NULL \
         WHERE id = $5 AND state = 'generating' AND generation_started_us = $6",
    )
    .bind(state.as_str())
    .bind(content)
    .bind(subject)
    .bind(now_us)
    .bind(id)
    .bind(started_us)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Puts a report left generating back where it was (its generation failed before writing).
pub async fn abandon_generation(conn: &mut AnyConnection, id: &str, started_us: i64, now_us: i64) -> Result<()> {
    sqlx::query(
        "UPDATE rp_reports SET state = prior_state, revision = revision + 1, updated_us = $1 \
         WHERE id = $2 AND state = 'generating' AND generation_started_us = $3",
    )
    .bind(now_us)
    .bind(id)
    .bind(started_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Keeps the live numbers beside a frozen report's; false when it is no longer frozen.
pub async fn store_live(conn: &mut AnyConnection, id: &str, content: &str, now_us: i64) -> Result<bool> {
    let stored = sqlx::query(
        "UPDATE rp_reports SET live_content = $1, live_read_us = $2, updated_us = $2 \
         WHERE id = $3 AND state IN ('submitted', 'approved')",
    )
    .bind(content)
    .bind(now_us)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// Moves a report from `from` to `to` at `revision`; false when either changed meanwhile.
pub async fn change_state(
    conn: &mut AnyConnection,
    id: &str,
    (from, to): (State, State),
    revision: i64,
    submitted_by: Option<&str>,
    now_us: i64,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE rp_reports SET state = $1, revision = revision + 1, updated_us = $2, \
         submitted_by = COALESCE($3, submitted_by) WHERE id = $4 AND state = $5 AND revision = $6",
    )
    .bind(to.as_str())
    .bind(now_us)
    .bind(submitted_by)
    .bind(id)
    .bind(from.as_str())
    .bind(revision)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Records a step of the sign-off.
pub async fn add_sign_off(conn: &mut AnyConnection, id: &str, step: &SignOff) -> Result<()> {
    sqlx::query(
        "INSERT INTO rp_sign_off (report_id, action, subject, scope, note, at_us) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(&step.action)
    .bind(&step.subject)
    .bind(&step.scope)
    .bind(&step.note)
    .bind(step.at_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A report's sign-off, oldest first.
pub async fn sign_offs(conn: &mut AnyConnection, id: &str) -> Result<Vec<SignOff>> {
    let rows =
        sqlx::query("SELECT action, subject, scope, note, at_us FROM rp_sign_off WHERE report_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|row| {
            Ok(SignOff {
                action: row.try_get("action")?,
                subject: row.try_get("subject")?,
                scope: row.try_get("scope")?,
                note: row.try_get("note")?,
                at_us: row.try_get("at_us")?,
            })
        })
        .collect()
}

/// The state of each of `regions`' reports of a form and period that exist, by region.
pub async fn states_of(
    conn: &mut AnyConnection,
    form: Form,
    period: Period,
    regions: &[String],
) -> Result<BTreeMap<String, (String, State)>> {
    if regions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let sql = format!(
        "SELECT id, region, state FROM rp_reports WHERE form = $1 AND year = $2 AND quarter = $3 AND region IN ({})",
        bangfu_platform::db::numbered_parameters(4, regions.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(form.as_str())
        .bind(i64::from(period.year))
        .bind(i64::from(period.quarter));
    for region in regions {
        query = query.bind(region);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut states = BTreeMap::new();
    for row in &rows {
        states.insert(
            row.try_get("region")?,
            (row.try_get("id")?, parsed(row, "state", State::parse)?),
        );
    }
    Ok(states)
}

/// What a listing asks.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Regions under this prefix; empty for all.
    pub region_prefix: String,
    pub form: Option<Form>,
    pub year: Option<i32>,
    pub state: Option<State>,
}

/// Reports by id after `after`, without their numbers.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &ReportFilter,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredReport>> {
    let high = if filter.region_prefix.is_empty() {
        "~".to_string()
    } else {
        prefix_upper_bound(&filter.region_prefix)
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUMMARY_COLUMNS} FROM rp_reports WHERE region >= $1 AND region < $2 AND id > $3 \
         AND ($4 = '' OR form = $4) AND ($5 = 0 OR year = $5) AND ($6 = '' OR state = $6) ORDER BY id LIMIT $7"
    )))
    .bind(&filter.region_prefix)
    .bind(&high)
    .bind(after)
    .bind(filter.form.map(Form::as_str).unwrap_or(""))
    .bind(i64::from(filter.year.unwrap_or(0)))
    .bind(filter.state.map(State::as_str).unwrap_or(""))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|row| report_from(row, false)).collect()
}
