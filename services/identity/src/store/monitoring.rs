//! Employment periods, monthly income and alerts.

use std::collections::HashMap;

use bangfu_platform::db::{Backend, from_micros, to_micros};
use bangfu_platform::error::Problem;
use bangfu_platform::parameters::{date_text, parse_date_text};
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use super::Store;
use crate::domain::categories::Category;
use crate::domain::monitoring::{AlertKind, EmploymentStatus, Month};
use bangfu_platform::db::numbered_parameters;
use bangfu_platform::regions::prefix_upper_bound;

/// An employment period to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmployment {
    pub status: EmploymentStatus,
    pub employer: String,
    pub work_region: String,
    pub start_date: Date,
    pub end_date: Option<Date>,
    pub reporting_system: String,
}

/// An employment period as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEmployment {
    pub id: String,
    pub person_id: String,
    pub status: EmploymentStatus,
    pub employer: String,
    pub work_region: String,
    pub start_date: Date,
    pub end_date: Option<Date>,
    pub reporting_system: String,
}

impl StoredEmployment {
    pub fn resource(&self) -> String {
        format!("persons/{}/employmentRecords/{}", self.person_id, self.id)
    }
}

/// A month's income from work as a system reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomeReport {
    pub month: Month,
    pub income_fen: i64,
    pub reporting_system: String,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    pub id: String,
    pub kind: AlertKind,
    pub person_id: Option<String>,
    pub region: String,
    pub effective_date: Date,
    pub drop_basis_points: i64,
    pub created: OffsetDateTime,
    pub acknowledged: Option<OffsetDateTime>,
    pub acknowledge_subject: Option<String>,
    pub acknowledge_note: Option<String>,
}

impl StoredAlert {
    pub fn resource(&self) -> String {
        format!("alerts/{}", self.id)
    }
}

/// An alert to raise; `dedupe_key` says what makes it the same alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub person_id: Option<String>,
    pub region: String,
    pub effective_date: Date,
    pub drop_basis_points: i64,
    pub dedupe_key: String,
}

/// The filters of an alert listing, inside the caller's scope.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub region_prefix: String,
    pub kind: Option<AlertKind>,
    pub include_acknowledged: bool,
}

const EMPLOYMENT_COLUMNS: &str = "id, person_id, status, employer, work_region, start_date, end_date, reporting_system";
const ALERT_COLUMNS: &str = "id, kind, person_id, region, effective_date, drop_basis_points, created_us, \
     acknowledged_us, acknowledge_subject, acknowledge_note";

fn date_of(row: &sqlx::any::AnyRow, column: &str) -> Result<Date, Problem> {
    let text: String = row.try_get(column)?;
    parse_date_text(&text).ok_or_else(Problem::internal)
}

fn optional_date_of(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<Date>, Problem> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| parse_date_text(&t).ok_or_else(Problem::internal))
        .transpose()
}

fn employment_of(row: &sqlx::any::AnyRow) -> Result<StoredEmployment, Problem> {
    let status: String = row.try_get("status")?;
    Ok(StoredEmployment {
        id: row.try_get("id")?,
        person_id: row.try_get("person_id")?,
        status: EmploymentStatus::parse(&status).ok_or_else(Problem::internal)?,
        employer: row.try_get("employer")?,
        work_region: row.try_get("work_region")?,
        start_date: date_of(row, "start_date")?,
        end_date: optional_date_of(row, "end_date")?,
        reporting_system: row.try_get("reporting_system")?,
    })
}

fn alert_of(row: &sqlx::any::AnyRow) -> Result<StoredAlert, Problem> {
    let kind: String = row.try_get("kind")?;
    let acknowledged: Option<i64> = row.try_get("acknowledged_us")?;
    Ok(StoredAlert {
        id: row.try_get("id")?,
        kind: AlertKind::parse(&kind).ok_or_else(Problem::internal)?,
        person_id: row.try_get("person_id")?,
        region: row.try_get("region")?,
        effective_date: date_of(row, "effective_date")?,
        drop_basis_points: row.try_get("drop_basis_points")?,
        created: from_micros(row.try_get("created_us")?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        acknowledged: acknowledged.and_then(from_micros),
        acknowledge_subject: row.try_get("acknowledge_subject")?,
        acknowledge_note: row.try_get("acknowledge_note")?,
    })
}

impl Store {
    /// The period in force on `day` for each person (absent: nothing known).
    pub async fn employment_on(
        &self,
        connection: &mut AnyConnection,
        person_ids: &[&str],
        day: Date,
    ) -> Result<HashMap<String, StoredEmployment>, Problem> {
        let mut found = HashMap::new();
        if person_ids.is_empty() {
            return Ok(found);
        }
        // Ordered by start, so the last row of each person is the one in force.
        let sql = format!(
            "SELECT {EMPLOYMENT_COLUMNS} FROM employment_records WHERE start_date <= $1 \
             AND (end_date IS NULL OR end_date >= $1) AND person_id IN ({}) ORDER BY person_id, start_date, id",
            numbered_parameters(2, person_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(date_text(day));
        for id in person_ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *connection).await? {
            let record = employment_of(&row)?;
            found.insert(record.person_id.clone(), record);
        }
        Ok(found)
    }

    /// A person's periods, latest start first, after the (start date, id) `after` of a page.
    pub async fn employment_records(
        &self,
        connection: &mut AnyConnection,
        person_id: &str,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<Vec<StoredEmployment>, Problem> {
        let (after_start, after_id) = after.unwrap_or_else(|| ("9999-12-31".into(), "\u{10ffff}".into()));
        let sql = format!(
            "SELECT {EMPLOYMENT_COLUMNS} FROM employment_records WHERE person_id = $1 \
             AND (start_date < $2 OR (start_date = $2 AND id < $3)) ORDER BY start_date DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(person_id)
            .bind(after_start)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *connection)
            .await?;
        rows.iter().map(employment_of).collect()
    }

    /// Records a period. An open period that started before it ends the day before it starts;
    /// a period starting the same day is replaced, so the timeline never overlaps.
    pub async fn insert_employment(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        person_id: &str,
        record: &NewEmployment,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let start = date_text(record.start_date);
        let day_before = record.start_date.previous_day().map(date_text).unwrap_or_default();
        sqlx::query(
            "UPDATE employment_records SET end_date = $1 \
             WHERE person_id = $2 AND start_date < $3 AND (end_date IS NULL OR end_date >= $3)",
        )
        .bind(&day_before)
        .bind(person_id)
        .bind(&start)
        .execute(&mut *connection)
        .await?;
        sqlx::query("DELETE FROM employment_records WHERE person_id = $1 AND start_date = $2")
            .bind(person_id)
            .bind(&start)
            .execute(&mut *connection)
            .await?;
        // A backdated record ends the day before the next one recorded starts: one person's
        // periods never overlap, so no day is counted twice in the county's figures.
        let next_start: Option<String> = sqlx::query_scalar(
            "SELECT MIN(start_date) FROM employment_records WHERE person_id = $1 AND start_date > $2",
        )
        .bind(person_id)
        .bind(&start)
        .fetch_one(&mut *connection)
        .await?;
        let next_start = next_start.as_deref().and_then(parse_date_text);
        let end_date = match (record.end_date, next_start) {
            (end, Some(next)) if end.is_none_or(|end| end >= next) => next.previous_day(),
            (end, _) => end,
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO employment_records ({EMPLOYMENT_COLUMNS}, record_subject, recorded_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(id)
        .bind(person_id)
        .bind(record.status.as_str())
        .bind(&record.employer)
        .bind(&record.work_region)
        .bind(&start)
        .bind(end_date.map(date_text))
        .bind(&record.reporting_system)
        .bind(subject)
        .bind(to_micros(now))
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    pub async fn employment(
        &self,
        connection: &mut AnyConnection,
        person_id: &str,
        id: &str,
    ) -> Result<Option<StoredEmployment>, Problem> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EMPLOYMENT_COLUMNS} FROM employment_records WHERE id = $1 AND person_id = $2"
        )))
        .bind(id)
        .bind(person_id)
        .fetch_optional(&mut *connection)
        .await?;
        row.as_ref().map(employment_of).transpose()
    }

    /// Stores a month's income, replacing an earlier report of the same month.
    pub async fn upsert_income(
        &self,
        connection: &mut AnyConnection,
        person_id: &str,
        report: &IncomeReport,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        sqlx::query(
            "INSERT INTO income_records (person_id, month, income_fen, reporting_system, record_subject, recorded_us) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (person_id, month) DO UPDATE SET \
             income_fen = excluded.income_fen, reporting_system = excluded.reporting_system, \
             record_subject = excluded.record_subject, recorded_us = excluded.recorded_us",
        )
        .bind(person_id)
        .bind(report.month.text())
        .bind(report.income_fen)
        .bind(&report.reporting_system)
        .bind(subject)
        .bind(to_micros(now))
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    /// The income recorded for a month, if any.
    pub async fn income(
        &self,
        connection: &mut AnyConnection,
        person_id: &str,
        month: Month,
    ) -> Result<Option<i64>, Problem> {
        let row = sqlx::query("SELECT income_fen FROM income_records WHERE person_id = $1 AND month = $2")
            .bind(person_id)
            .bind(month.text())
            .fetch_optional(&mut *connection)
            .await?;
        Ok(row.map(|r| r.try_get("income_fen")).transpose()?)
    }

    /// Raises an alert unless the same one exists; answers the stored alert either way.
    pub async fn raise_alert(
        &self,
        connection: &mut AnyConnection,
        alert: &NewAlert,
        now: OffsetDateTime,
    ) -> Result<StoredAlert, Problem> {
        Ok(self.raise_alert_once(connection, alert, now).await?.0)
    }

    /// `raise_alert`, also telling whether this call raised it (true) or found it raised.
    pub async fn raise_alert_once(
        &self,
        connection: &mut AnyConnection,
        alert: &NewAlert,
        now: OffsetDateTime,
    ) -> Result<(StoredAlert, bool), Problem> {
        let inserted = sqlx::query(
            "INSERT INTO alerts (id, kind, person_id, region, effective_date, drop_basis_points, dedupe_key, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(Store::new_person_id())
        .bind(alert.kind.as_str())
        .bind(alert.person_id.clone())
        .bind(&alert.region)
        .bind(date_text(alert.effective_date))
        .bind(alert.drop_basis_points)
        .bind(&alert.dedupe_key)
        .bind(to_micros(now))
        .execute(&mut *connection)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE dedupe_key = $1"
        )))
        .bind(&alert.dedupe_key)
        .fetch_one(&mut *connection)
        .await?;
        Ok((alert_of(&row)?, inserted))
    }

    /// The alerts raised under these dedupe keys, in the keys' order (what a retried report
    /// answers with).
    pub async fn alerts_by_dedupe_keys(
        &self,
        connection: &mut AnyConnection,
        keys: &[String],
    ) -> Result<Vec<StoredAlert>, Problem> {
        let mut alerts = Vec::new();
        for key in keys {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE dedupe_key = $1"
            )))
            .bind(key)
            .fetch_optional(&mut *connection)
            .await?;
            if let Some(row) = row {
                alerts.push(alert_of(&row)?);
            }
        }
        Ok(alerts)
    }

    pub async fn alert(&self, connection: &mut AnyConnection, id: &str) -> Result<Option<StoredAlert>, Problem> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.as_ref().map(alert_of).transpose()
    }

    /// Acknowledges an alert once; false when it already was.
    pub async fn acknowledge_alert(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        subject: &str,
        note: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Problem> {
        let done = sqlx::query(
            "UPDATE alerts SET acknowledged_us = $1, acknowledge_subject = $2, acknowledge_note = $3 \
             WHERE id = $4 AND acknowledged_us IS NULL",
        )
        .bind(to_micros(now))
        .bind(subject)
        .bind(note)
        .bind(id)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Alerts newest first, after the keyset `after` (created_us, id) of the previous page.
    pub async fn list_alerts(
        &self,
        connection: &mut AnyConnection,
        filter: &AlertFilter,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, Problem> {
        let mut sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE region >= $1 AND region < $2");
        let mut next = 3;
        let mut conditions = Vec::new();
        if filter.kind.is_some() {
            conditions.push(format!("kind = ${next}"));
            next += 1;
        }
        if !filter.include_acknowledged {
            conditions.push("acknowledged_us IS NULL".to_string());
        }
        if after.is_some() {
            conditions.push(format!(
                "created_us <= ${a} AND (created_us, id) < (${a}, ${b})",
                a = next,
                b = next + 1
            ));
            next += 2;
        }
        for condition in conditions {
            sql.push_str(" AND ");
            sql.push_str(&condition);
        }
        sql.push_str(&format!(" ORDER BY created_us DESC, id DESC LIMIT ${next}"));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.region_prefix.clone())
            .bind(prefix_upper_bound(&filter.region_prefix));
        if let Some(kind) = filter.kind {
            query = query.bind(kind.as_str());
        }
        if let Some((created, id)) = after {
            query = query.bind(created).bind(id);
        }
        query = query.bind(i64::from(limit));
        query.fetch_all(&mut *connection).await?.iter().map(alert_of).collect()
    }

    /// How many persons residing under `prefix` on `day` were employed that day.
    pub async fn employed_count(
        &self,
        connection: &mut AnyConnection,
        prefix: &str,
        day: Date,
    ) -> Result<i64, Problem> {
        let employed: Vec<&str> = EmploymentStatus::ALL
            .iter()
            .filter(|s| s.is_employed())
            .map(|s| s.as_str())
            .collect();
        let upper = prefix_upper_bound(prefix);
        let sql = format!(
            "{} SELECT COUNT(*) AS n FROM placed p JOIN employment_records e ON e.person_id = p.id \
             WHERE p.residence >= $1 AND p.residence < $2 AND e.start_date <= $3 \
             AND (e.end_date IS NULL OR e.end_date >= $3) AND e.status IN ({})",
            self.regions_on_day(prefix),
            numbered_parameters(4, employed.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(prefix.to_string())
            .bind(upper)
            .bind(date_text(day));
        for status in employed {
            query = query.bind(status);
        }
        let row = query.fetch_one(&mut *connection).await?;
        Ok(row.try_get("n")?)
    }
}

impl Store {
    /// `placed`: every person registered or residing under the prefix `$1..$2` on the day `$3`,
    /// with both regions as they stood that day (a person who moved in March counts where they
    /// were for February). Set-based on purpose: statistics run over a million persons.
    ///
    /// A person with no history row after the day stood that day where `persons`' columns say
    /// (they are the latest row of the history, the store keeps them so), found on the persons'
    /// region indexes (or in one read of the table, below). Only the persons with a later row (`later`, from the history's day index:
    /// few, for a past quarter) are placed from the history: those with a row under the prefix by
    /// that day, each kind's row in force being the one no later row of its kind supersedes by
    /// `$3`, all found on the history's primary key.
    fn regions_on_day(&self, prefix: &str) -> String {
        // A province (or the whole registry) is most of the persons table: SQLite reads it
        // faster whole than through two region indexes joined by rowid (its plan for the OR),
        // 0.5 s against 1.1 s over a million persons. PostgreSQL chooses by its statistics.
        let persons = match self.db.backend() {
            Backend::Sqlite if prefix.len() <= 2 => "persons p NOT INDEXED",
            _ => "persons p",
        };
        format!(
            "WITH later AS ( \
       SELECT person_id FROM person_regions WHERE valid_from > $3 \
     ), placed AS ( \
       SELECT p.id AS id, p.registered_region AS registered, p.residence_region AS residence \
       FROM {persons} \
       WHERE ((p.residence_region >= $1 AND p.residence_region < $2) \
              OR (p.registered_region >= $1 AND p.registered_region < $2)) \
         AND p.id NOT IN (SELECT person_id FROM later) \
       UNION ALL \
       SELECT r.person_id AS id, \
              MAX(CASE WHEN r.kind = 'registered' THEN r.region END) AS registered, \
              MAX(CASE WHEN r.kind = 'residence' THEN r.region END) AS residence \
       FROM person_regions r \
       WHERE r.valid_from <= $3 \
         AND r.person_id IN (SELECT person_id FROM later) \
         AND EXISTS (SELECT 1 FROM person_regions c WHERE c.person_id = r.person_id \
                     AND c.region >= $1 AND c.region < $2 AND c.valid_from <= $3) \
         AND NOT EXISTS (SELECT 1 FROM person_regions l WHERE l.person_id = r.person_id AND l.kind = r.kind \
                         AND l.valid_from > r.valid_from AND l.valid_from <= $3) \
       GROUP BY r.person_id \
     )"
        )
    }
}

/// Counts for one region of a monitoring report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionCounts {
    pub by_category: HashMap<String, i64>,
    pub by_status: HashMap<String, i64>,
    pub target_persons: i64,
}

impl Store {
    /// Counts persons registered or residing under `prefix` on `last`, grouped by the first
    /// `digits` digits of the region that placed them there that day (residence first):
    /// categories valid in `first..=last`, employment status on `last` ("unknown" when none is
    /// recorded).
    pub async fn monitoring_counts(
        &self,
        connection: &mut AnyConnection,
        prefix: &str,
        digits: usize,
        (first, last): (Date, Date),
    ) -> Result<HashMap<String, RegionCounts>, Problem> {
        let upper = prefix_upper_bound(prefix);
        // The region a person is counted in: where they lived when that is inside the report,
        // else where they were registered.
        let placed = format!(
            "substr(CASE WHEN p.residence >= $1 AND p.residence < $2 \
             THEN p.residence ELSE p.registered END, 1, {digits})"
        );
        let inside = "((p.residence >= $1 AND p.residence < $2) \
             OR (p.registered >= $1 AND p.registered < $2))";
        // One pass over the persons placed: each person's categories valid in the period as a
        // bit set (a person certified twice in one category counts once) and status on the
        // last day, counted by (region, set, status); the few rows that come back are spread
        // over the categories here. Three passes, one per count, cost three times the region
        // history's walk. The persons are taken in id order, the order of the certification and
        // employment indexes the per-person reads descend: over a province that locality alone
        // took the statement from 13.9 s to 9.6 s (a million persons, sqlite3 shell).
        let bit = Category::ALL
            .iter()
            .enumerate()
            .map(|(index, category)| format!("WHEN '{}' THEN {}", category.as_str(), 1_i64 << index))
            .collect::<Vec<_>>()
            .join(" ");
        let sql = format!(
            "{}, people AS ( \
               SELECT {placed} AS region, \
                 COALESCE((SELECT SUM(DISTINCT CASE c.category {bit} ELSE 0 END) FROM certifications c \
                   WHERE c.person_id = p.id AND c.annulled = 0 AND c.valid_from <= $3 \
                   AND (c.valid_to IS NULL OR c.valid_to >= $4)), 0) AS categories, \
                 (SELECT e.status FROM employment_records e WHERE e.person_id = p.id \
                   AND e.start_date <= $3 AND (e.end_date IS NULL OR e.end_date >= $3) \
                   ORDER BY e.start_date DESC LIMIT 1) AS status \
               FROM (SELECT * FROM placed ORDER BY id) p WHERE {inside} \
             ) \
             SELECT region, categories, status, COUNT(*) AS n FROM people GROUP BY region, categories, status",
            self.regions_on_day(prefix)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(prefix.to_string())
            .bind(upper)
            .bind(date_text(last))
            .bind(date_text(first))
            .fetch_all(&mut *connection)
            .await?;
        let mut counts: HashMap<String, RegionCounts> = HashMap::new();
        for row in rows {
            let region: String = row.try_get("region")?;
            let categories: i64 = row.try_get("categories")?;
            let status: Option<String> = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            let entry = counts.entry(region).or_default();
            if categories != 0 {
                entry.target_persons += n;
            }
            for (index, category) in Category::ALL.iter().enumerate() {
                if categories & (1_i64 << index) != 0 {
                    *entry.by_category.entry(category.as_str().to_string()).or_default() += n;
                }
            }
            *entry
                .by_status
                .entry(status.unwrap_or_else(|| "unknown".to_string()))
                .or_default() += n;
        }
        Ok(counts)
    }

    /// The counties (6-digit codes) persons reside in.
    pub async fn residence_counties(&self, connection: &mut AnyConnection) -> Result<Vec<String>, Problem> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT substr(residence_region, 1, 6) FROM persons")
                .fetch_all(&mut *connection)
                .await?,
        )
    }
}
