//! Set-based writes for bulk import: one statement per table per chunk, because per-row round
//! trips, not encryption, are what a million-row import spends its time on.

use std::collections::HashMap;

use bangfu_platform::db::{to_micros, values_groups};
use bangfu_platform::error::Problem;
use bangfu_platform::parameters::{date_text, parse_date_text};
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use super::{NewEmployment, PERSON_COLUMNS, Store, sex_text};
use crate::domain::categories::{Category, HouseholdType, NewCertification};
use crate::domain::{HouseholdRelation, LaborCapacity, NewPerson, RetirementTrack, YearMonth};
use bangfu_platform::db::numbered_parameters;
use bangfu_platform::pii::{mask_name, mask_phone};
use bangfu_platform::regions::prefix_upper_bound;

/// Rows per INSERT: keeps the widest table (persons, 26 columns) under SQLite's 32,766 bind
/// parameters with room to spare.
const ROWS_PER_STATEMENT: usize = 500;

/// One bound value of a bulk insert.
enum Value {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Bytes(Vec<u8>),
    OptBytes(Option<Vec<u8>>),
}

/// `INSERT INTO {table} ({columns}) VALUES (…), (…) {tail}` for every row, in statements of
/// at most [`ROWS_PER_STATEMENT`] rows.
async fn insert_rows(
    connection: &mut AnyConnection,
    table: &str,
    columns: &str,
    rows: Vec<Vec<Value>>,
    tail: &str,
) -> Result<(), Problem> {
    let width = columns.split(',').count();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<Vec<Value>> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
        let groups = values_groups(connection, batch.len(), width);
        let sql = format!("INSERT INTO {table} ({columns}) VALUES {groups} {tail}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in batch {
            debug_assert_eq!(row.len(), width);
            for value in row {
                query = match value {
                    Value::Text(v) => query.bind(v),
                    Value::OptText(v) => query.bind(v),
                    Value::Int(v) => query.bind(v),
                    Value::Bytes(v) => query.bind(v),
                    Value::OptBytes(v) => query.bind(v),
                };
            }
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// A person an import row names, as far as the import compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportHolder {
    pub id: String,
    pub citizen_id_index: String,
    pub registered_region: String,
    pub residence_region: String,
    pub name_key: String,
    pub household_id: Option<String>,
    pub household_relation: Option<HouseholdRelation>,
    pub labor_capacity: LaborCapacity,
    pub national_person_number: Option<String>,
    pub last_import: Option<String>,
}

/// A person to insert from an import row.
pub struct ImportedPerson<'a> {
    pub id: String,
    pub person: &'a NewPerson,
    pub track: RetirementTrack,
    pub retirement: YearMonth,
    pub national_person_number: Option<String>,
}

/// A certification an import proposes for a reviewer of the certifying department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPending {
    pub person_id: String,
    pub region: String,
    pub category: Category,
    pub household_type: HouseholdType,
    pub valid_from: Date,
    pub document_reference: String,
}

/// A proposed certification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPending {
    pub id: String,
    pub person_id: String,
    pub region: String,
    pub category: Category,
    pub household_type: HouseholdType,
    pub valid_from: Date,
    pub document_reference: String,
    pub import_subject: String,
    pub confirmed: bool,
}

impl StoredPending {
    pub fn resource(&self) -> String {
        format!("pendingCertifications/{}", self.id)
    }
}

const PENDING_COLUMNS: &str =
    "id, person_id, region, category, household_type, valid_from, document_reference, import_subject, state";

fn pending_of(row: &sqlx::any::AnyRow) -> Result<StoredPending, Problem> {
    let category: String = row.try_get("category")?;
    let household_type: String = row.try_get("household_type")?;
    let valid_from: String = row.try_get("valid_from")?;
    let state: String = row.try_get("state")?;
    Ok(StoredPending {
        id: row.try_get("id")?,
        person_id: row.try_get("person_id")?,
        region: row.try_get("region")?,
        category: Category::parse(&category).ok_or_else(Problem::internal)?,
        household_type: HouseholdType::parse(&household_type).ok_or_else(Problem::internal)?,
        valid_from: parse_date_text(&valid_from).ok_or_else(Problem::internal)?,
        document_reference: row.try_get("document_reference")?,
        import_subject: row.try_get("import_subject")?,
        confirmed: state == "confirmed",
    })
}

impl Store {
    /// The persons holding any of `indexes` (blind indexes of every loaded key version).
    pub async fn import_holders(
        &self,
        connection: &mut AnyConnection,
        indexes: &[String],
    ) -> Result<Vec<ImportHolder>, Problem> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, citizen_id_index, registered_region, residence_region, name_key, household_id, \
             household_relation, labor_capacity, national_person_number, last_import FROM persons \
             WHERE citizen_id_index IN ({})",
            numbered_parameters(1, indexes.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for index in indexes {
            query = query.bind(index);
        }
        query
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(|row| {
                let relation: Option<String> = row.try_get("household_relation")?;
                let capacity: String = row.try_get("labor_capacity")?;
                Ok(ImportHolder {
                    id: row.try_get("id")?,
                    citizen_id_index: row.try_get("citizen_id_index")?,
                    registered_region: row.try_get("registered_region")?,
                    residence_region: row.try_get("residence_region")?,
                    name_key: row.try_get("name_key")?,
                    household_id: row.try_get("household_id")?,
                    household_relation: relation.as_deref().and_then(HouseholdRelation::parse),
                    labor_capacity: LaborCapacity::parse(&capacity).ok_or_else(Problem::internal)?,
                    national_person_number: row.try_get("national_person_number")?,
                    last_import: row.try_get("last_import")?,
                })
            })
            .collect()
    }

    /// Inserts new persons with the first entries of their histories, from `effective`.
    pub async fn insert_imported(
        &self,
        connection: &mut AnyConnection,
        persons: &[ImportedPerson<'_>],
        import_id: &str,
        effective: Date,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let now_us = to_micros(now);
        let effective = date_text(effective);
        let mut rows = Vec::with_capacity(persons.len());
        let mut regions = Vec::with_capacity(persons.len() * 2);
        let mut capacities = Vec::with_capacity(persons.len());
        for imported in persons {
            let (id, person) = (&imported.id, imported.person);
            rows.push(vec![
                Value::Text(id.clone()),
                Value::Bytes(self.seal(id, "citizen_id", person.citizen_id.as_str())?),
                Value::Text(person.citizen_id.masked()),
                Value::Bytes(self.seal(id, "name", person.name.as_str())?),
                Value::Text(self.name_key(person.name.as_str())),
                Value::Text(mask_name(person.name.as_str())),
                Value::OptBytes(person.phone.as_deref().map(|p| self.seal(id, "phone", p)).transpose()?),
                Value::OptText(person.phone.as_deref().map(mask_phone)),
                Value::Text(sex_text(person.citizen_id.sex()).to_string()),
                Value::Text(date_text(person.citizen_id.birth_date())),
                Value::Text(imported.track.as_str().to_string()),
                Value::Text(imported.retirement.text()),
                Value::Text(person.registered_region.clone()),
                Value::Text(person.residence_region.clone()),
                Value::Text(person.labor_capacity.as_str().to_string()),
                Value::Text(serde_json::to_string(&person.skills).map_err(|_| Problem::internal())?),
                Value::OptText(None),
                Value::OptText(None),
                Value::Int(now_us),
                Value::Int(now_us),
                Value::Int(1),
                Value::OptText(person.household.as_ref().map(|(h, _)| h.clone())),
                Value::OptText(person.household.as_ref().map(|(_, r)| r.as_str().to_string())),
                Value::Text(self.keys.blind_index(person.citizen_id.as_str()).to_hex()),
                Value::OptText(imported.national_person_number.clone()),
                Value::Text(import_id.to_string()),
            ]);
            for (kind, region) in [
                ("registered", &person.registered_region),
                ("residence", &person.residence_region),
            ] {
                regions.push(vec![
                    Value::Text(id.clone()),
                    Value::Text(kind.to_string()),
                    Value::Text(region.clone()),
                    Value::Text(effective.clone()),
                    Value::Int(now_us),
                ]);
            }
            capacities.push(vec![
                Value::Text(id.clone()),
                Value::Text(person.labor_capacity.as_str().to_string()),
                Value::Text(effective.clone()),
                Value::Int(now_us),
            ]);
        }
        let columns = format!("{PERSON_COLUMNS}, citizen_id_index, national_person_number, last_import");
        insert_rows(connection, "persons", &columns, rows, "").await?;
        insert_rows(
            connection,
            "person_regions",
            "person_id, kind, region, valid_from, recorded_us",
            regions,
            "",
        )
        .await?;
        insert_rows(
            connection,
            "person_labor_capacity",
            "person_id, labor_capacity, valid_from, recorded_us",
            capacities,
            "",
        )
        .await
    }

    /// Marks persons as seen by `import_id` (and stores their national person number).
    pub async fn mark_imported(
        &self,
        connection: &mut AnyConnection,
        seen: &[(String, Option<String>)],
        import_id: &str,
    ) -> Result<(), Problem> {
        for batch in seen.chunks(ROWS_PER_STATEMENT) {
            let plain: Vec<&str> = batch
                .iter()
                .filter(|(_, number)| number.is_none())
                .map(|(id, _)| id.as_str())
                .collect();
            if !plain.is_empty() {
                let sql = format!(
                    "UPDATE persons SET last_import = $1 WHERE id IN ({})",
                    numbered_parameters(2, plain.len())
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(import_id);
                for id in plain {
                    query = query.bind(id);
                }
                query.execute(&mut *connection).await?;
            }
            for (id, number) in batch.iter().filter(|(_, number)| number.is_some()) {
                sqlx::query("UPDATE persons SET last_import = $1, national_person_number = $2 WHERE id = $3")
                    .bind(import_id)
                    .bind(number.clone())
                    .bind(id)
                    .execute(&mut *connection)
                    .await?;
            }
        }
        Ok(())
    }

    /// Households by number.
    pub async fn households_by_numbers(
        &self,
        connection: &mut AnyConnection,
        numbers: &[&str],
    ) -> Result<HashMap<String, (String, String)>, Problem> {
        let mut found = HashMap::new();
        if numbers.is_empty() {
            return Ok(found);
        }
        let sql = format!(
            "SELECT id, household_number, region FROM households WHERE household_number IN ({})",
            numbered_parameters(1, numbers.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for number in numbers {
            query = query.bind(*number);
        }
        for row in query.fetch_all(&mut *connection).await? {
            let number: String = row.try_get("household_number")?;
            found.insert(number, (row.try_get("id")?, row.try_get("region")?));
        }
        Ok(found)
    }

    /// The head of each household that has one.
    pub async fn heads_of(
        &self,
        connection: &mut AnyConnection,
        household_ids: &[&str],
    ) -> Result<HashMap<String, String>, Problem> {
        let mut heads = HashMap::new();
        if household_ids.is_empty() {
            return Ok(heads);
        }
        let sql = format!(
            "SELECT household_id, id FROM persons WHERE household_relation = 'head' AND household_id IN ({})",
            numbered_parameters(1, household_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in household_ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *connection).await? {
            heads.insert(row.try_get("household_id")?, row.try_get("id")?);
        }
        Ok(heads)
    }

    /// The (category, household type) pairs each person holds on `day` or later (not annulled,
    /// not ended before `day`): what an import need not certify again.
    pub async fn certified_from(
        &self,
        connection: &mut AnyConnection,
        person_ids: &[&str],
        day: Date,
    ) -> Result<HashMap<String, Vec<(Category, HouseholdType)>>, Problem> {
        let mut held: HashMap<String, Vec<(Category, HouseholdType)>> = HashMap::new();
        if person_ids.is_empty() {
            return Ok(held);
        }
        let sql = format!(
            "SELECT person_id, category, household_type FROM certifications WHERE annulled = 0 \
             AND (valid_to IS NULL OR valid_to >= $1) AND person_id IN ({})",
            numbered_parameters(2, person_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(date_text(day));
        for id in person_ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *connection).await? {
            let category: String = row.try_get("category")?;
            let household_type: String = row.try_get("household_type")?;
            if let (Some(category), Some(household_type)) =
                (Category::parse(&category), HouseholdType::parse(&household_type))
            {
                held.entry(row.try_get("person_id")?)
                    .or_default()
                    .push((category, household_type));
            }
        }
        Ok(held)
    }

    /// Certifications of many persons at once: (certification id, person id, certification).
    pub async fn insert_certifications(
        &self,
        connection: &mut AnyConnection,
        certifications: &[(String, String, NewCertification)],
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let rows = certifications
            .iter()
            .map(|(id, person_id, c)| {
                vec![
                    Value::Text(id.clone()),
                    Value::Text(person_id.clone()),
                    Value::Text(c.category.as_str().to_string()),
                    Value::Text(c.household_type.as_str().to_string()),
                    Value::Text(c.certifying_body.clone()),
                    Value::Text(c.document_reference.clone()),
                    Value::Text(date_text(c.valid_from)),
                    Value::OptText(c.valid_to.map(date_text)),
                    Value::Int(0),
                    Value::Text(subject.to_string()),
                    Value::Int(to_micros(now)),
                ]
            })
            .collect();
        insert_rows(
            connection,
            "certifications",
            "id, person_id, category, household_type, certifying_body, document_reference, valid_from, valid_to, \
             annulled, certify_subject, certified_us",
            rows,
            "",
        )
        .await
    }

    /// Proposes certifications; one already pending for the same person, category and start is
    /// left as it is.
    pub async fn insert_pending(
        &self,
        connection: &mut AnyConnection,
        pending: &[NewPending],
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let rows = pending
            .iter()
            .map(|p| {
                vec![
                    Value::Text(Store::new_person_id()),
                    Value::Text(p.person_id.clone()),
                    Value::Text(p.region.clone()),
                    Value::Text(p.category.as_str().to_string()),
                    Value::Text(p.household_type.as_str().to_string()),
                    Value::Text(date_text(p.valid_from)),
                    Value::Text(p.document_reference.clone()),
                    Value::Text(subject.to_string()),
                    Value::Text("pending".to_string()),
                    Value::Int(to_micros(now)),
                ]
            })
            .collect();
        insert_rows(
            connection,
            "pending_certifications",
            &format!("{PENDING_COLUMNS}, created_us"),
            rows,
            "ON CONFLICT DO NOTHING",
        )
        .await
    }

    /// Pending proposals under `prefix` for the given categories, in (region, id) order after
    /// the keyset `after`.
    pub async fn list_pending(
        &self,
        connection: &mut AnyConnection,
        prefix: &str,
        categories: &[Category],
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<Vec<StoredPending>, Problem> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        let upper = prefix_upper_bound(prefix);
        let mut sql = format!(
            "SELECT {PENDING_COLUMNS} FROM pending_certifications WHERE state = 'pending' \
             AND region >= $1 AND region < $2 AND category IN ({})",
            numbered_parameters(3, categories.len())
        );
        let mut next = 3 + categories.len();
        if after.is_some() {
            sql.push_str(&format!(" AND (region, id) > (${a}, ${b})", a = next, b = next + 1));
            next += 2;
        }
        sql.push_str(&format!(" ORDER BY region, id LIMIT ${next}"));
        // The later of the prefix and the cursor: SQLite starts its index range only from a
        // plain bound, PostgreSQL from the row comparison.
        let lower = match &after {
            Some((region, _)) if region.as_str() > prefix => region.clone(),
            _ => prefix.to_string(),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(lower).bind(upper);
        for category in categories {
            query = query.bind(category.as_str());
        }
        if let Some((region, id)) = after {
            query = query.bind(region).bind(id);
        }
        query
            .bind(i64::from(limit))
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(pending_of)
            .collect()
    }

    pub async fn pending(&self, connection: &mut AnyConnection, id: &str) -> Result<Option<StoredPending>, Problem> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PENDING_COLUMNS} FROM pending_certifications WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.as_ref().map(pending_of).transpose()
    }

    /// Marks a proposal confirmed by the certification made from it; false when someone
    /// confirmed it first.
    pub async fn confirm_pending(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        certification_id: &str,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Problem> {
        let done = sqlx::query(
            "UPDATE pending_certifications SET state = 'confirmed', confirm_subject = $1, confirmed_us = $2, \
             certification_id = $3 WHERE id = $4 AND state = 'pending'",
        )
        .bind(subject)
        .bind(to_micros(now))
        .bind(certification_id)
        .bind(id)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Households of many rows at once: (id, household number, region).
    pub async fn insert_households(
        &self,
        connection: &mut AnyConnection,
        households: &[(String, String, String)],
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let rows = households
            .iter()
            .map(|(id, number, region)| {
                vec![
                    Value::Text(id.clone()),
                    Value::Text(number.clone()),
                    Value::Text(region.clone()),
                    Value::Int(to_micros(now)),
                ]
            })
            .collect();
        insert_rows(
            connection,
            "households",
            "id, household_number, region, created_us",
            rows,
            "",
        )
        .await
    }

    /// First employment periods of persons without any: (record id, person id, period).
    pub async fn insert_first_employments(
        &self,
        connection: &mut AnyConnection,
        records: &[(String, String, NewEmployment)],
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let rows = records
            .iter()
            .map(|(id, person_id, r)| {
                vec![
                    Value::Text(id.clone()),
                    Value::Text(person_id.clone()),
                    Value::Text(r.status.as_str().to_string()),
                    Value::Text(r.employer.clone()),
                    Value::Text(r.work_region.clone()),
                    Value::Text(date_text(r.start_date)),
                    Value::OptText(r.end_date.map(date_text)),
                    Value::Text(r.reporting_system.clone()),
                    Value::Text(subject.to_string()),
                    Value::Int(to_micros(now)),
                ]
            })
            .collect();
        insert_rows(
            connection,
            "employment_records",
            "id, person_id, status, employer, work_region, start_date, end_date, reporting_system, record_subject, \
             recorded_us",
            rows,
            "",
        )
        .await
    }

    /// Refreshes the planner's statistics of the tables an import fills. Right after a large
    /// import they still describe the empty tables, and PostgreSQL then plans a read of a
    /// hundred persons as a scan of millions of rows (measured: 270 ms instead of 1 ms per
    /// query, with autovacuum off; with it on, until its next round).
    ///
    /// On PostgreSQL only a table's owner (or, from PostgreSQL 17, a role granted MAINTAIN) may
    /// analyze it, and a deployment's runtime role owns nothing (`bangfu db init`): the tables it
    /// may not analyze are left to autovacuum, with a log line naming them, rather than to
    /// PostgreSQL's warning that nobody reads. So is a table the import left empty (see below).
    /// Returns the tables analyzed (on SQLite, which analyzes the whole file, every table).
    pub async fn analyze_after_import(&self) -> Result<Vec<String>, Problem> {
        const TABLES: [&str; 8] = [
            "persons",
            "person_regions",
            "person_labor_capacity",
            "households",
            "employment_records",
            "certifications",
            "pending_certifications",
            "outbox_events",
        ];
        let mut connection = self.db.acquire().await.map_err(Problem::from)?;
        match self.db.backend() {
            bangfu_platform::db::Backend::Postgres => {
                // The CASE keeps has_table_privilege from being asked about MAINTAIN on a server
                // that does not know it (it would fail the query).
                // The pool is sqlx's Any driver, which binds no arrays: the fixed names above
                // go into the text as literals.
                let names = TABLES.map(|t| format!("'{t}'")).join(", ");
                let allowed: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT c.relname::text FROM pg_class c \
                     WHERE c.relnamespace = to_regnamespace(current_schema()) AND c.relname IN ({names}) \
                       AND (pg_has_role(c.relowner, 'USAGE') \
                            OR CASE WHEN current_setting('server_version_num')::int >= 170000 \
                                    THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END) \
                     ORDER BY 1"
                )))
                .fetch_all(&mut *connection)
                .await?;
                if allowed.len() < TABLES.len() {
                    let refused: Vec<&str> = TABLES
                        .iter()
                        .copied()
                        .filter(|t| !allowed.iter().any(|a| a == t))
                        .collect();
                    tracing::info!(
                        tables = %refused.join(", "),
                        "statistics not refreshed after the import for tables this role does not own \
                         (the runtime role has data rights only); autovacuum's analyze refreshes them"
                    );
                }
                // An empty table is left unanalyzed (certifications confirmed after an import
                // were otherwise read by a sequential scan, 24 ms for 60 persons, until an
                // analyze came back, which on a server running with autovacuum off is never).
                let mut filled = Vec::with_capacity(allowed.len());
                for table in allowed {
                    // The names come from the fixed list above, checked against the catalog.
                    if bangfu_platform::db::holds_rows(&mut connection, &table).await? {
                        filled.push(table);
                    }
                }
                let allowed = filled;
                if !allowed.is_empty() {
                    // The names come from the fixed list above, checked against the catalog.
                    let statement = format!("ANALYZE {}", allowed.join(", "));
                    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                        .execute(&mut *connection)
                        .await?;
                }
                Ok(allowed)
            }
            bangfu_platform::db::Backend::Sqlite => {
                // A sampled ANALYZE: reading every index of a million rows would take longer than it helps.
                sqlx::raw_sql("PRAGMA analysis_limit = 1000; ANALYZE")
                    .execute(&mut *connection)
                    .await?;
                Ok(TABLES.iter().map(|t| t.to_string()).collect())
            }
        }
    }
}
