//! Identity's tables: one SQL text for both backends, one transaction per use case. Personal
//! data goes in encrypted and comes out only through `reveal_*`, which the caller audits.

use std::collections::HashMap;
use std::sync::Arc;

use bangfu_platform::db::{Backend, Database, from_micros, numbered_parameters, to_micros};
use bangfu_platform::error::Problem;
use bangfu_platform::parameters::{date_text, parse_date_text};
use bangfu_platform::pii::{CitizenId, DataKeys, Sex, mask_name, mask_phone};
use bangfu_platform::regions::prefix_upper_bound;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use crate::domain::categories::{Category, HouseholdType, NewCertification};
use crate::domain::monitoring::EmploymentStatus;
use crate::domain::{HouseholdRelation, LaborCapacity, NewPerson, RetirementTrack, YearMonth, names};

mod import;
mod monitoring;

pub use import::{ImportHolder, ImportedPerson, NewPending, StoredPending};
pub use monitoring::{AlertFilter, IncomeReport, NewAlert, NewEmployment, RegionCounts, StoredAlert, StoredEmployment};

/// A person as stored, with personal data still sealed.
#[derive(Debug, Clone)]
pub struct StoredPerson {
    pub id: String,
    pub citizen_id_masked: String,
    pub name_masked: String,
    pub phone_masked: Option<String>,
    pub sex: Sex,
    pub birth_date: Date,
    pub retirement_track: RetirementTrack,
    pub retirement_month: YearMonth,
    pub registered_region: String,
    pub residence_region: String,
    pub labor_capacity: LaborCapacity,
    pub skills: Vec<String>,
    pub death_date: Option<Date>,
    pub moved_away_date: Option<Date>,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub revision: i64,
    pub household_id: Option<String>,
    pub household_relation: Option<HouseholdRelation>,
    /// None when the person was read for a masked answer, which leaves the sealed columns
    /// unread: they are the widest of the row, and most reads never open them.
    sealed: Option<Sealed>,
}

/// A person's ID, name and phone as stored, encrypted.
#[derive(Debug, Clone)]
struct Sealed {
    citizen_id: Vec<u8>,
    name: Vec<u8>,
    phone: Option<Vec<u8>>,
}

impl StoredPerson {
    pub fn resource(&self) -> String {
        format!("persons/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }
}

/// Where a person is known by citizen ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub id: String,
    pub registered_region: String,
    pub residence_region: String,
    /// The keyed hash of the name as registered: a lookup compares the name it is given
    /// without reading (or decrypting) the person.
    pub name_key: String,
}

/// Identity's store.
#[derive(Debug, Clone)]
pub struct Store {
    pub db: Database,
    keys: Arc<DataKeys>,
}

fn aad(id: &str, field: &str) -> Vec<u8> {
    format!("identity/persons/{id}/{field}").into_bytes()
}

fn sex_text(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

const PERSON_COLUMNS: &str = "id, citizen_id_enc, citizen_id_masked, name_enc, name_key, name_masked, phone_enc, \
     phone_masked, sex, birth_date, retirement_track, retirement_month, registered_region, residence_region, \
     labor_capacity, skills, death_date, moved_away_date, created_us, updated_us, revision, household_id, \
     household_relation";

/// The columns of a masked read: PERSON_COLUMNS without the sealed values and the name's key.
const MASKED_PERSON_COLUMNS: &str = "id, citizen_id_masked, name_masked, phone_masked, sex, birth_date, \
     retirement_track, retirement_month, registered_region, residence_region, labor_capacity, skills, death_date, \
     moved_away_date, created_us, updated_us, revision, household_id, household_relation";

impl Store {
    pub fn new(db: Database, keys: Arc<DataKeys>) -> Self {
        Self { db, keys }
    }

    /// Encrypts a person's field, bound to the person and the field so a ciphertext copied to
    /// another row or column does not decrypt.
    fn seal(&self, person_id: &str, field: &str, value: &str) -> Result<Vec<u8>, Problem> {
        self.keys
            .encrypt(value.as_bytes(), &aad(person_id, field))
            .map_err(|error| {
                tracing::error!(%error, "encryption failed");
                Problem::internal()
            })
    }

    /// A new opaque person id: 80 random bits, hex.
    pub fn new_person_id() -> String {
        bangfu_platform::rows::new_id()
    }

    /// The keyed hash names are compared by.
    pub fn name_key(&self, name: &str) -> String {
        hex(&self.keys.keyed_hash(&["person-name", &names::comparable(name)]))
    }

    /// Who holds `citizen_id`, under any blind-index key version still loaded.
    pub async fn holder(
        &self,
        connection: &mut AnyConnection,
        citizen_id: &CitizenId,
    ) -> Result<Option<Holder>, Problem> {
        for index in self.keys.blind_indexes(citizen_id.as_str()) {
            let row = sqlx::query(
                "SELECT id, registered_region, residence_region, name_key FROM persons WHERE citizen_id_index = $1",
            )
            .bind(index.to_hex())
            .fetch_optional(&mut *connection)
            .await?;
            if let Some(row) = row {
                return Ok(Some(Holder {
                    id: row.try_get("id")?,
                    registered_region: row.try_get("registered_region")?,
                    residence_region: row.try_get("residence_region")?,
                    name_key: row.try_get("name_key")?,
                }));
            }
        }
        Ok(None)
    }

    /// Inserts a person with the first entries of its region and labor histories.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        person: &NewPerson,
        track: RetirementTrack,
        retirement: YearMonth,
        effective: Date,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let seal = |value: &str, field: &str| self.seal(id, field, value);
        let citizen_id_enc = seal(person.citizen_id.as_str(), "citizen_id")?;
        let name_enc = seal(person.name.as_str(), "name")?;
        let phone_enc = person.phone.as_deref().map(|p| seal(p, "phone")).transpose()?;
        let skills = serde_json::to_string(&person.skills).map_err(|_| Problem::internal())?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO persons ({PERSON_COLUMNS}, citizen_id_index) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, NULL, NULL, $17, $17, 1, $18, $19, $20)"
        )))
        .bind(id)
        .bind(citizen_id_enc)
        .bind(person.citizen_id.masked())
        .bind(name_enc)
        .bind(self.name_key(person.name.as_str()))
        .bind(mask_name(person.name.as_str()))
        .bind(phone_enc)
        .bind(person.phone.as_deref().map(mask_phone))
        .bind(sex_text(person.citizen_id.sex()))
        .bind(date_text(person.citizen_id.birth_date()))
        .bind(track.as_str())
        .bind(retirement.text())
        .bind(&person.registered_region)
        .bind(&person.residence_region)
        .bind(person.labor_capacity.as_str())
        .bind(skills)
        .bind(to_micros(now))
        .bind(person.household.as_ref().map(|(id, _)| id.clone()))
        .bind(person.household.as_ref().map(|(_, relation)| relation.as_str()))
        .bind(self.keys.blind_index(person.citizen_id.as_str()).to_hex())
        .execute(&mut *connection)
        .await?;
        for (kind, region) in [
            ("registered", &person.registered_region),
            ("residence", &person.residence_region),
        ] {
            sqlx::query(
                "INSERT INTO person_regions (person_id, kind, region, valid_from, recorded_us) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(kind)
            .bind(region)
            .bind(date_text(effective))
            .bind(to_micros(now))
            .execute(&mut *connection)
            .await?;
        }
        sqlx::query(
            "INSERT INTO person_labor_capacity (person_id, labor_capacity, valid_from, recorded_us) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(person.labor_capacity.as_str())
        .bind(date_text(effective))
        .bind(to_micros(now))
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    /// A person by id.
    pub async fn get(&self, connection: &mut AnyConnection, id: &str) -> Result<Option<StoredPerson>, Problem> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM persons WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.map(|row| person_of(&row)).transpose()
    }

    /// The clear citizen ID, name and phone; the caller has checked the permission and purpose
    /// and audits the read.
    pub fn reveal(&self, person: &StoredPerson) -> Result<(String, String, Option<String>), Problem> {
        let open = |sealed: &[u8], field: &str| {
            self.keys
                .decrypt(sealed, &aad(&person.id, field))
                .ok()
                .and_then(|clear| String::from_utf8(clear).ok())
                .ok_or_else(|| {
                    tracing::error!(person = %person.id, field, "a stored value does not decrypt");
                    Problem::internal()
                })
        };
        let Some(sealed) = &person.sealed else {
            tracing::error!(person = %person.id, "a person read masked was asked to be revealed");
            return Err(Problem::internal());
        };
        let phone = sealed.phone.as_deref().map(|p| open(p, "phone")).transpose()?;
        Ok((
            open(&sealed.citizen_id, "citizen_id")?,
            open(&sealed.name, "name")?,
            phone,
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A person from a row of PERSON_COLUMNS.
fn person_of(row: &sqlx::any::AnyRow) -> Result<StoredPerson, Problem> {
    let sealed = Sealed {
        citizen_id: row.try_get("citizen_id_enc")?,
        name: row.try_get("name_enc")?,
        phone: row.try_get("phone_enc")?,
    };
    person_from(row, Some(sealed))
}

/// A person from a row holding MASKED_PERSON_COLUMNS, and the sealed values when given.
fn person_from(row: &sqlx::any::AnyRow, sealed: Option<Sealed>) -> Result<StoredPerson, Problem> {
    let corrupt = |what: &str| {
        tracing::error!(what, "a stored person row does not parse");
        Problem::internal()
    };
    let text = |column: &str| -> Result<String, Problem> { Ok(row.try_get::<String, _>(column)?) };
    // What is only parsed is read in place, without a copy.
    let parsed = |column: &str| -> Result<&str, Problem> { Ok(row.try_get::<&str, _>(column)?) };
    let optional_date = |column: &str| -> Result<Option<Date>, Problem> {
        Ok(row.try_get::<Option<&str>, _>(column)?.and_then(parse_date_text))
    };
    let sex = match parsed("sex")? {
        "male" => Sex::Male,
        "female" => Sex::Female,
        _ => return Err(corrupt("sex")),
    };
    Ok(StoredPerson {
        id: text("id")?,
        citizen_id_masked: text("citizen_id_masked")?,
        name_masked: text("name_masked")?,
        phone_masked: row.try_get("phone_masked")?,
        sex,
        birth_date: parse_date_text(parsed("birth_date")?).ok_or_else(|| corrupt("birth_date"))?,
        retirement_track: RetirementTrack::parse(parsed("retirement_track")?)
            .ok_or_else(|| corrupt("retirement_track"))?,
        retirement_month: YearMonth::parse(parsed("retirement_month")?).ok_or_else(|| corrupt("retirement_month"))?,
        registered_region: text("registered_region")?,
        residence_region: text("residence_region")?,
        labor_capacity: LaborCapacity::parse(parsed("labor_capacity")?).ok_or_else(|| corrupt("labor_capacity"))?,
        skills: serde_json::from_str(parsed("skills")?).map_err(|_| corrupt("skills"))?,
        death_date: optional_date("death_date")?,
        moved_away_date: optional_date("moved_away_date")?,
        created: from_micros(row.try_get("created_us")?).ok_or_else(|| corrupt("created_us"))?,
        updated: from_micros(row.try_get("updated_us")?).ok_or_else(|| corrupt("updated_us"))?,
        revision: row.try_get("revision")?,
        household_id: row.try_get("household_id")?,
        household_relation: row
            .try_get::<Option<&str>, _>("household_relation")?
            .and_then(HouseholdRelation::parse),
        sealed,
    })
}

/// A certification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertification {
    pub id: String,
    pub person_id: String,
    pub category: Category,
    pub household_type: HouseholdType,
    pub certifying_body: String,
    pub document_reference: String,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub annulled: bool,
    pub certify_subject: String,
    pub certified: OffsetDateTime,
    pub revoked: Option<OffsetDateTime>,
    pub annulled_at: Option<OffsetDateTime>,
}

impl StoredCertification {
    pub fn resource(&self) -> String {
        format!("persons/{}/certifications/{}", self.person_id, self.id)
    }
}

const CERTIFICATION_COLUMNS: &str = "id, person_id, category, household_type, certifying_body, document_reference, \
     valid_from, valid_to, annulled, certify_subject, certified_us, revoked_us, annulled_us";

impl Store {
    /// Whether `department` may certify `category` (the table is data, see the migration).
    pub async fn may_certify(
        &self,
        connection: &mut AnyConnection,
        category: Category,
        department: &str,
    ) -> Result<bool, Problem> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM certifying_departments WHERE category = $1 AND department = $2")
                .bind(category.as_str())
                .bind(department)
                .fetch_one(&mut *connection)
                .await?;
        Ok(count > 0)
    }

    /// The departments that certify `category`, for a refusal that says whom to ask.
    pub async fn certifiers(&self, connection: &mut AnyConnection, category: Category) -> Result<Vec<String>, Problem> {
        Ok(
            sqlx::query_scalar("SELECT department FROM certifying_departments WHERE category = $1 ORDER BY department")
                .bind(category.as_str())
                .fetch_all(&mut *connection)
                .await?,
        )
    }

    pub async fn insert_certification(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        person_id: &str,
        certification: &NewCertification,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        sqlx::query(
            "INSERT INTO certifications (id, person_id, category, household_type, certifying_body, document_reference, \
             valid_from, valid_to, annulled, certify_subject, certified_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10)",
        )
        .bind(id)
        .bind(person_id)
        .bind(certification.category.as_str())
        .bind(certification.household_type.as_str())
        .bind(&certification.certifying_body)
        .bind(&certification.document_reference)
        .bind(date_text(certification.valid_from))
        .bind(certification.valid_to.map(date_text))
        .bind(subject)
        .bind(to_micros(now))
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    pub async fn certification(
        &self,
        connection: &mut AnyConnection,
        person_id: &str,
        id: &str,
    ) -> Result<Option<StoredCertification>, Problem> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CERTIFICATION_COLUMNS} FROM certifications WHERE person_id = $1 AND id = $2"
        )))
        .bind(person_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.map(|row| certification_of(&row)).transpose()
    }

    /// Ends a certification on `valid_to`, unless it was annulled (false then).
    pub async fn revoke_certification(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        valid_to: Date,
        document: &str,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Problem> {
        let changed = sqlx::query(
            "UPDATE certifications SET valid_to = $1, revoke_document = $2, revoke_subject = $3, revoked_us = $4 \
             WHERE id = $5 AND annulled = 0",
        )
        .bind(date_text(valid_to))
        .bind(document)
        .bind(subject)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Voids a certification made in error, from its start, unless it was annulled already
    /// (false then).
    pub async fn annul_certification(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        document: &str,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Problem> {
        let changed = sqlx::query(
            "UPDATE certifications SET annulled = 1, revoke_document = $1, revoke_subject = $2, annulled_us = $3 \
             WHERE id = $4 AND annulled = 0",
        )
        .bind(document)
        .bind(subject)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }
}

fn certification_of(row: &sqlx::any::AnyRow) -> Result<StoredCertification, Problem> {
    let corrupt = |what: &str| {
        tracing::error!(what, "a stored certification row does not parse");
        Problem::internal()
    };
    let text = |column: &str| -> Result<String, Problem> { Ok(row.try_get::<String, _>(column)?) };
    // What is only parsed is read in place, without a copy.
    let parsed = |column: &str| -> Result<&str, Problem> { Ok(row.try_get::<&str, _>(column)?) };
    let instant = |column: &str| -> Result<Option<OffsetDateTime>, Problem> {
        Ok(row.try_get::<Option<i64>, _>(column)?.and_then(from_micros))
    };
    Ok(StoredCertification {
        id: text("id")?,
        person_id: text("person_id")?,
        category: Category::parse(parsed("category")?).ok_or_else(|| corrupt("category"))?,
        household_type: HouseholdType::parse(parsed("household_type")?).ok_or_else(|| corrupt("household_type"))?,
        certifying_body: text("certifying_body")?,
        document_reference: text("document_reference")?,
        valid_from: parse_date_text(parsed("valid_from")?).ok_or_else(|| corrupt("valid_from"))?,
        valid_to: row.try_get::<Option<&str>, _>("valid_to")?.and_then(parse_date_text),
        annulled: row.try_get::<i64, _>("annulled")? != 0,
        certify_subject: text("certify_subject")?,
        certified: instant("certified_us")?.ok_or_else(|| corrupt("certified_us"))?,
        revoked: instant("revoked_us")?,
        annulled_at: instant("annulled_us")?,
    })
}

/// What a person was on a period's last day, and the certifications overlapping the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub registered_region: String,
    pub residence_region: String,
    pub labor_capacity: LaborCapacity,
    /// None when nothing is recorded for the day.
    pub employment_status: Option<EmploymentStatus>,
    pub certifications: Vec<StoredCertification>,
}

/// What held for a person on a day (`$1`), each the latest row in force of its table: correlated
/// subqueries, so each is one index probe per person whatever the tables hold. Ordered as the
/// writes order them: the latest start, then the latest id among records starting the same day.
const FACTS_AS_OF: &str = "\
    (SELECT r.region FROM person_regions r WHERE r.person_id = persons.id AND r.kind = 'registered' \
       AND r.valid_from <= $1 ORDER BY r.valid_from DESC LIMIT 1) AS registered_as_of, \
    (SELECT r.region FROM person_regions r WHERE r.person_id = persons.id AND r.kind = 'residence' \
       AND r.valid_from <= $1 ORDER BY r.valid_from DESC LIMIT 1) AS residence_as_of, \
    (SELECT l.labor_capacity FROM person_labor_capacity l WHERE l.person_id = persons.id \
       AND l.valid_from <= $1 ORDER BY l.valid_from DESC LIMIT 1) AS labor_as_of, \
    (SELECT e.status FROM employment_records e WHERE e.person_id = persons.id AND e.start_date <= $1 \
       AND (e.end_date IS NULL OR e.end_date >= $1) ORDER BY e.start_date DESC, e.id DESC LIMIT 1) AS status_as_of";

/// A person's facts from a row holding FACTS_AS_OF, the person's own columns where no dated
/// row is in force; certifications are read apart.
fn facts_of(row: &sqlx::any::AnyRow, person: &StoredPerson) -> Result<Facts, Problem> {
    let registered: Option<String> = row.try_get("registered_as_of")?;
    let residence: Option<String> = row.try_get("residence_as_of")?;
    let labor: Option<&str> = row.try_get("labor_as_of")?;
    let status: Option<&str> = row.try_get("status_as_of")?;
    Ok(Facts {
        registered_region: registered.unwrap_or_else(|| person.registered_region.clone()),
        residence_region: residence.unwrap_or_else(|| person.residence_region.clone()),
        labor_capacity: labor.and_then(LaborCapacity::parse).unwrap_or(person.labor_capacity),
        employment_status: status.and_then(EmploymentStatus::parse),
        certifications: Vec::new(),
    })
}

/// What names the person an entry of facts belongs to.
trait PersonKey {
    fn person_id(&self) -> &str;
}

impl PersonKey for StoredPerson {
    fn person_id(&self) -> &str {
        &self.id
    }
}

impl PersonKey for String {
    fn person_id(&self) -> &str {
        self
    }
}

/// A person found by blind index, with what a batch lookup needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedHolder {
    pub holder: Holder,
    pub citizen_id_index: String,
}

impl Store {
    /// The persons of `ids` (those that exist) with what held for `first..=last`: one statement
    /// for the persons and their facts, one for their certifications, whatever the batch size.
    /// `sealed`: whether the answer may be revealed, which needs the sealed values read too.
    pub async fn persons_as_of(
        &self,
        connection: &mut AnyConnection,
        ids: &[&str],
        (first, last): (Date, Date),
        sealed: bool,
    ) -> Result<Vec<(StoredPerson, Facts)>, Problem> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let columns = if sealed { PERSON_COLUMNS } else { MASKED_PERSON_COLUMNS };
        let sql = format!(
            "SELECT {columns}, {FACTS_AS_OF} FROM persons WHERE id IN ({})",
            numbered_parameters(2, ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(date_text(last));
        for id in ids {
            query = query.bind(*id);
        }
        let mut found = Vec::with_capacity(ids.len());
        for row in query.fetch_all(&mut *connection).await? {
            let person = if sealed {
                person_of(&row)?
            } else {
                person_from(&row, None)?
            };
            let facts = facts_of(&row, &person)?;
            found.push((person, facts));
        }
        self.attach_certifications(connection, &mut found, first, last).await?;
        Ok(found)
    }

    /// The facts of each person already read, for `first..=last`, in two statements.
    pub async fn facts(
        &self,
        connection: &mut AnyConnection,
        persons: &[&StoredPerson],
        first: Date,
        last: Date,
    ) -> Result<HashMap<String, Facts>, Problem> {
        if persons.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT id, {FACTS_AS_OF} \
             FROM persons WHERE id IN ({})",
            numbered_parameters(2, persons.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(date_text(last));
        for person in persons {
            query = query.bind(&person.id);
        }
        let by_id: HashMap<&str, &StoredPerson> = persons.iter().map(|p| (p.id.as_str(), *p)).collect();
        let mut found = Vec::with_capacity(persons.len());
        for row in query.fetch_all(&mut *connection).await? {
            let id: String = row.try_get("id")?;
            if let Some(person) = by_id.get(id.as_str()) {
                found.push((id, facts_of(&row, person)?));
            }
        }
        self.attach_certifications(connection, &mut found, first, last).await?;
        Ok(found.into_iter().collect())
    }

    /// Fills each entry's certifications: those overlapping `first..=last`, annulled ones
    /// included (they show as annulled), by start.
    async fn attach_certifications<P: PersonKey>(
        &self,
        connection: &mut AnyConnection,
        entries: &mut [(P, Facts)],
        first: Date,
        last: Date,
    ) -> Result<(), Problem> {
        let ids: Vec<&str> = entries.iter().map(|(p, _)| p.person_id()).collect();
        let certifications = self.certifications_overlapping(connection, &ids, first, last).await?;
        // Found by binary search over the entries sorted by id: no index to build per batch.
        entries.sort_unstable_by(|a, b| a.0.person_id().cmp(b.0.person_id()));
        for certification in certifications {
            if let Ok(i) = entries.binary_search_by(|(p, _)| p.person_id().cmp(&certification.person_id)) {
                entries[i].1.certifications.push(certification);
            }
        }
        Ok(())
    }

    /// Every certification of these persons that overlaps `first..=last`, by person and start.
    async fn certifications_overlapping(
        &self,
        connection: &mut AnyConnection,
        person_ids: &[&str],
        first: Date,
        last: Date,
    ) -> Result<Vec<StoredCertification>, Problem> {
        if person_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = match self.db.backend() {
            // An index probe per person, fenced by OFFSET 0 so the planner cannot turn it into
            // a scan of the whole table: with an IN list it chose a sequential scan whenever the
            // table was small enough for its estimate (10 ms for 1,000 persons over 34,000
            // certifications, against 3 ms probed), and the scan grows with the county.
            Backend::Postgres => format!(
                "SELECT c.* FROM (VALUES {}) AS wanted(id) CROSS JOIN LATERAL \
                   (SELECT {CERTIFICATION_COLUMNS} FROM certifications WHERE person_id = wanted.id \
                      AND valid_from <= $1 AND (valid_to IS NULL OR valid_to >= $2) OFFSET 0) c \
                 ORDER BY c.person_id, c.valid_from, c.id",
                numbered_parameters(3, person_ids.len())
                    .split(", ")
                    .map(|p| format!("({p})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            // SQLite probes the index for each value of an IN list.
            Backend::Sqlite => format!(
                "SELECT {CERTIFICATION_COLUMNS} FROM certifications WHERE valid_from <= $1 \
                 AND (valid_to IS NULL OR valid_to >= $2) AND person_id IN ({}) ORDER BY person_id, valid_from, id",
                numbered_parameters(3, person_ids.len())
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(date_text(last))
            .bind(date_text(first));
        for id in person_ids {
            query = query.bind(*id);
        }
        query
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(certification_of)
            .collect()
    }

    /// One person with what held on `last` and the certifications overlapping the period.
    pub async fn get_as_of(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        period: (Date, Date),
        sealed: bool,
    ) -> Result<Option<(StoredPerson, Facts)>, Problem> {
        Ok(self.persons_as_of(connection, &[id], period, sealed).await?.pop())
    }

    /// Holders of the given blind indexes, any key version.
    pub async fn holders_by_index(
        &self,
        connection: &mut AnyConnection,
        indexes: &[String],
    ) -> Result<Vec<IndexedHolder>, Problem> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, registered_region, residence_region, citizen_id_index, name_key FROM persons \
             WHERE citizen_id_index IN ({})",
            numbered_parameters(1, indexes.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for index in indexes {
            query = query.bind(index);
        }
        let rows = query.fetch_all(&mut *connection).await?;
        rows.iter()
            .map(|row| {
                Ok(IndexedHolder {
                    holder: Holder {
                        id: row.try_get("id")?,
                        registered_region: row.try_get("registered_region")?,
                        residence_region: row.try_get("residence_region")?,
                        name_key: row.try_get("name_key")?,
                    },
                    citizen_id_index: row.try_get("citizen_id_index")?,
                })
            })
            .collect()
    }

    /// Every blind index of a citizen ID, one per loaded key version.
    pub fn blind_indexes(&self, citizen_id: &CitizenId) -> Vec<String> {
        self.keys
            .blind_indexes(citizen_id.as_str())
            .iter()
            .map(|i| i.to_hex())
            .collect()
    }
}

/// The mutable fields of a person after an update, in clear where they are stored sealed.
#[derive(Debug, Clone)]
pub struct PersonChanges {
    pub name: Option<String>,
    pub phone: Option<Option<String>>,
    pub registered_region: String,
    pub residence_region: String,
    pub labor_capacity: LaborCapacity,
    pub skills: Vec<String>,
    pub retirement_track: RetirementTrack,
    pub retirement_month: YearMonth,
    pub death_date: Option<Date>,
    pub moved_away_date: Option<Date>,
    pub household: Option<(String, HouseholdRelation)>,
}

impl Store {
    /// Writes `changes` if the person is still at `revision`; false when someone changed it
    /// since (the caller answers ABORTED). Region and labor changes enter their histories
    /// from `effective`.
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        connection: &mut AnyConnection,
        current: &StoredPerson,
        revision: i64,
        changes: &PersonChanges,
        effective: Date,
        now: OffsetDateTime,
    ) -> Result<bool, Problem> {
        let seal = |value: &str, field: &str| self.seal(&current.id, field, value);
        let (name_enc, name_key, name_masked) = match &changes.name {
            Some(name) => (
                Some(seal(name, "name")?),
                Some(self.name_key(name)),
                Some(mask_name(name)),
            ),
            None => (None, None, None),
        };
        let (phone_changed, phone_enc, phone_masked) = match &changes.phone {
            Some(Some(phone)) => (1i64, Some(seal(phone, "phone")?), Some(mask_phone(phone))),
            Some(None) => (1, None, None),
            None => (0, None, None),
        };
        let skills = serde_json::to_string(&changes.skills).map_err(|_| Problem::internal())?;
        let updated = sqlx::query(
            "UPDATE persons SET \
               name_enc = COALESCE($1, name_enc), name_key = COALESCE($2, name_key), \
               name_masked = COALESCE($3, name_masked), \
               phone_enc = CASE WHEN $4 = 1 THEN $5 ELSE phone_enc END, \
               phone_masked = CASE WHEN $4 = 1 THEN $6 ELSE phone_masked END, \
               registered_region = $7, residence_region = $8, labor_capacity = $9, skills = $10, \
               retirement_track = $11, retirement_month = $12, death_date = $13, moved_away_date = $14, \
               updated_us = $15, revision = revision + 1, household_id = $18, household_relation = $19 \
             WHERE id = $16 AND revision = $17",
        )
        .bind(name_enc)
        .bind(name_key)
        .bind(name_masked)
        .bind(phone_changed)
        .bind(phone_enc)
        .bind(phone_masked)
        .bind(&changes.registered_region)
        .bind(&changes.residence_region)
        .bind(changes.labor_capacity.as_str())
        .bind(skills)
        .bind(changes.retirement_track.as_str())
        .bind(changes.retirement_month.text())
        .bind(changes.death_date.map(date_text))
        .bind(changes.moved_away_date.map(date_text))
        .bind(to_micros(now))
        .bind(&current.id)
        .bind(revision)
        .bind(changes.household.as_ref().map(|(id, _)| id.clone()))
        .bind(changes.household.as_ref().map(|(_, relation)| relation.as_str()))
        .execute(&mut *connection)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        for (kind, before, after) in [
            ("registered", &current.registered_region, &changes.registered_region),
            ("residence", &current.residence_region, &changes.residence_region),
        ] {
            if before != after {
                sqlx::query(
                    "INSERT INTO person_regions (person_id, kind, region, valid_from, recorded_us) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (person_id, kind, valid_from) DO UPDATE SET region = excluded.region, \
                     recorded_us = excluded.recorded_us",
                )
                .bind(&current.id)
                .bind(kind)
                .bind(after)
                .bind(date_text(effective))
                .bind(to_micros(now))
                .execute(&mut *connection)
                .await?;
            }
        }
        if current.labor_capacity != changes.labor_capacity {
            sqlx::query(
                "INSERT INTO person_labor_capacity (person_id, labor_capacity, valid_from, recorded_us) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (person_id, valid_from) DO UPDATE SET labor_capacity = excluded.labor_capacity, \
                 recorded_us = excluded.recorded_us",
            )
            .bind(&current.id)
            .bind(changes.labor_capacity.as_str())
            .bind(date_text(effective))
            .bind(to_micros(now))
            .execute(&mut *connection)
            .await?;
        }
        let regions_or_labor = current.registered_region != changes.registered_region
            || current.residence_region != changes.residence_region
            || current.labor_capacity != changes.labor_capacity;
        if regions_or_labor {
            // A change backdated before one already recorded is history, not the present: the
            // columns scope checks, lists and statistics read stay the latest row of each
            // history, so "no row after the day" means "the columns held that day".
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE persons SET registered_region = {}, residence_region = {}, labor_capacity = {} WHERE id = $1",
                latest_row("person_regions", "region", Some("registered"), "registered_region"),
                latest_row("person_regions", "region", Some("residence"), "residence_region"),
                latest_row("person_labor_capacity", "labor_capacity", None, "labor_capacity"),
            )))
            .bind(&current.id)
            .execute(&mut *connection)
            .await?;
        }
        Ok(true)
    }
}

/// `column` as the latest row of its `history` (by `valid_from`; of `kind` where the history
/// has kinds) says, or as it is when the history holds no row.
fn latest_row(history: &str, value: &str, kind: Option<&str>, column: &str) -> String {
    let of_kind = kind.map(|kind| format!(" AND h.kind = '{kind}'")).unwrap_or_default();
    format!(
        "COALESCE((SELECT h.{value} FROM {history} h WHERE h.person_id = persons.id{of_kind} \
         ORDER BY h.valid_from DESC LIMIT 1), {column})"
    )
}

/// What a listing keeps of the persons in its range, as of `day`.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub category: Option<Category>,
    pub employment_status: Option<EmploymentStatus>,
    pub day: Date,
}

impl Store {
    /// A page of persons registered under `prefix`, ordered by (registered region, id), after
    /// `cursor`; only those holding the filter's category and in its employment status on its
    /// day, when given. Each filter is an index probe per row walked (certifications and the
    /// employment timeline by person), so the walk stays the one below. Keyset paging over the
    /// (registered_region, id) index: a page deep in a million rows costs what the first does.
    /// PostgreSQL starts its index range from the row comparison; SQLite only from a plain bound
    /// on the region, so the lower bound is the later of the prefix and the cursor.
    pub async fn list_registered(
        &self,
        connection: &mut AnyConnection,
        prefix: &str,
        cursor: Option<(&str, &str)>,
        filter: &ListFilter,
        limit: u32,
    ) -> Result<Vec<StoredPerson>, Problem> {
        let upper = prefix_upper_bound(prefix);
        let (after_region, after_id) = cursor.unwrap_or(("", ""));
        let category_text = filter.category.map(Category::as_str).unwrap_or("");
        let status_text = filter.employment_status.map(EmploymentStatus::as_str).unwrap_or("");
        // Periods of one person never overlap, so a period in this status covering the day is
        // the status that day.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM persons \
             WHERE registered_region >= $1 AND registered_region < $2 \
               AND (registered_region, id) > ($3, $4) \
               AND ($5 = '' OR EXISTS (SELECT 1 FROM certifications c WHERE c.person_id = persons.id \
                    AND c.category = $5 AND c.annulled = 0 AND c.valid_from <= $6 \
                    AND (c.valid_to IS NULL OR c.valid_to >= $6))) \
               AND ($8 = '' OR EXISTS (SELECT 1 FROM employment_records e WHERE e.person_id = persons.id \
                    AND e.status = $8 AND e.start_date <= $6 AND (e.end_date IS NULL OR e.end_date >= $6))) \
             ORDER BY registered_region, id LIMIT $7"
        )))
        .bind(prefix.max(after_region))
        .bind(upper)
        .bind(after_region)
        .bind(after_id)
        .bind(category_text)
        .bind(date_text(filter.day))
        .bind(i64::from(limit))
        .bind(status_text)
        .fetch_all(&mut *connection)
        .await?;
        rows.iter().map(person_of).collect()
    }
}

/// A proposed citizen-ID correction as stored.
#[derive(Debug, Clone)]
pub struct StoredCorrection {
    pub id: String,
    pub person_id: String,
    pub new_citizen_id_masked: String,
    pub new_citizen_id_index: String,
    pub reason: String,
    pub state: String,
    pub propose_subject: String,
    pub proposed: OffsetDateTime,
    pub review_subject: Option<String>,
    pub reviewed: Option<OffsetDateTime>,
    new_citizen_id_enc: Vec<u8>,
}

impl StoredCorrection {
    pub fn resource(&self) -> String {
        format!("persons/{}/citizenIdCorrections/{}", self.person_id, self.id)
    }
}

fn correction_aad(person_id: &str, id: &str) -> Vec<u8> {
    format!("identity/persons/{person_id}/citizenIdCorrections/{id}/citizen_id").into_bytes()
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_correction(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        person_id: &str,
        new_id: &CitizenId,
        reason: &str,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        let sealed = self
            .keys
            .encrypt(new_id.as_str().as_bytes(), &correction_aad(person_id, id))
            .map_err(|_| Problem::internal())?;
        sqlx::query(
            "INSERT INTO citizen_id_corrections (id, person_id, new_citizen_id_enc, new_citizen_id_index, \
             new_citizen_id_masked, reason, state, propose_subject, proposed_us) \
             VALUES ($1, $2, $3, $4, $5, $6, 'proposed', $7, $8)",
        )
        .bind(id)
        .bind(person_id)
        .bind(sealed)
        .bind(self.keys.blind_index(new_id.as_str()).to_hex())
        .bind(new_id.masked())
        .bind(reason)
        .bind(subject)
        .bind(to_micros(now))
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    pub async fn correction(
        &self,
        connection: &mut AnyConnection,
        person_id: &str,
        id: &str,
    ) -> Result<Option<StoredCorrection>, Problem> {
        let row = sqlx::query(
            "SELECT id, person_id, new_citizen_id_enc, new_citizen_id_index, new_citizen_id_masked, reason, state, \
             propose_subject, proposed_us, review_subject, reviewed_us FROM citizen_id_corrections \
             WHERE person_id = $1 AND id = $2",
        )
        .bind(person_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredCorrection {
            id: row.try_get("id")?,
            person_id: row.try_get("person_id")?,
            new_citizen_id_masked: row.try_get("new_citizen_id_masked")?,
            new_citizen_id_index: row.try_get("new_citizen_id_index")?,
            reason: row.try_get("reason")?,
            state: row.try_get("state")?,
            propose_subject: row.try_get("propose_subject")?,
            proposed: from_micros(row.try_get("proposed_us")?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            review_subject: row.try_get("review_subject")?,
            reviewed: row.try_get::<Option<i64>, _>("reviewed_us")?.and_then(from_micros),
            new_citizen_id_enc: row.try_get("new_citizen_id_enc")?,
        }))
    }

    /// The proposed ID in clear, to re-derive birth date and sex when it is applied.
    pub fn reveal_correction(&self, correction: &StoredCorrection) -> Result<String, Problem> {
        self.keys
            .decrypt(
                &correction.new_citizen_id_enc,
                &correction_aad(&correction.person_id, &correction.id),
            )
            .ok()
            .and_then(|clear| String::from_utf8(clear).ok())
            .ok_or_else(|| {
                tracing::error!(correction = %correction.id, "a proposed citizen ID does not decrypt");
                Problem::internal()
            })
    }

    /// Replaces the person's ID (old one kept encrypted in the history) if the person is still
    /// at `revision`; false when it changed since. The correction's own review is
    /// `review_correction`, made first in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_correction(
        &self,
        connection: &mut AnyConnection,
        person: &StoredPerson,
        correction: &StoredCorrection,
        new_id: &CitizenId,
        track: RetirementTrack,
        retirement: YearMonth,
        now: OffsetDateTime,
    ) -> Result<bool, Problem> {
        let Some(replaced) = &person.sealed else {
            tracing::error!(person = %person.id, "a correction was applied to a person read masked");
            return Err(Problem::internal());
        };
        sqlx::query(
            "INSERT INTO person_citizen_id_history (person_id, correction_id, citizen_id_enc, citizen_id_masked, replaced_us) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&person.id)
        .bind(&correction.id)
        .bind(replaced.citizen_id.clone())
        .bind(&person.citizen_id_masked)
        .bind(to_micros(now))
        .execute(&mut *connection)
        .await?;
        let sealed = self.seal(&person.id, "citizen_id", new_id.as_str())?;
        let updated = sqlx::query(
            "UPDATE persons SET citizen_id_enc = $1, citizen_id_index = $2, citizen_id_masked = $3, sex = $4, \
             birth_date = $5, retirement_track = $6, retirement_month = $7, updated_us = $8, revision = revision + 1 \
             WHERE id = $9 AND revision = $10",
        )
        .bind(sealed)
        .bind(self.keys.blind_index(new_id.as_str()).to_hex())
        .bind(new_id.masked())
        .bind(sex_text(new_id.sex()))
        .bind(date_text(new_id.birth_date()))
        .bind(track.as_str())
        .bind(retirement.text())
        .bind(to_micros(now))
        .bind(&person.id)
        .bind(person.revision)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Records the review of a correction still proposed; `state` is `applied` or `rejected`.
    /// False when it was reviewed already: the guard is the statement's `WHERE state`.
    pub async fn review_correction(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        state: &str,
        reviewer: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Problem> {
        let reviewed = sqlx::query(
            "UPDATE citizen_id_corrections SET state = $1, review_subject = $2, review_reason = $3, reviewed_us = $4 \
             WHERE id = $5 AND state = 'proposed'",
        )
        .bind(state)
        .bind(reviewer)
        .bind(reason)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        Ok(reviewed == 1)
    }
}

/// A household as stored, with its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHousehold {
    pub id: String,
    pub household_number: String,
    pub region: String,
    pub created: OffsetDateTime,
}

impl StoredHousehold {
    pub fn resource(&self) -> String {
        format!("households/{}", self.id)
    }
}

/// A member as a household lists it: masked name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub person_id: String,
    pub name_masked: String,
    pub relation: Option<HouseholdRelation>,
}

impl Store {
    pub async fn insert_household(
        &self,
        connection: &mut AnyConnection,
        id: &str,
        number: &str,
        region: &str,
        now: OffsetDateTime,
    ) -> Result<(), Problem> {
        sqlx::query("INSERT INTO households (id, household_number, region, created_us) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(number)
            .bind(region)
            .bind(to_micros(now))
            .execute(&mut *connection)
            .await?;
        Ok(())
    }

    async fn household_where(
        &self,
        connection: &mut AnyConnection,
        column: &str,
        value: &str,
    ) -> Result<Option<StoredHousehold>, Problem> {
        let sql = if column == "id" {
            "SELECT id, household_number, region, created_us FROM households WHERE id = $1"
        } else {
            "SELECT id, household_number, region, created_us FROM households WHERE household_number = $1"
        };
        let row = sqlx::query(sql).bind(value).fetch_optional(&mut *connection).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredHousehold {
            id: row.try_get("id")?,
            household_number: row.try_get("household_number")?,
            region: row.try_get("region")?,
            created: from_micros(row.try_get("created_us")?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }))
    }

    pub async fn household(
        &self,
        connection: &mut AnyConnection,
        id: &str,
    ) -> Result<Option<StoredHousehold>, Problem> {
        self.household_where(connection, "id", id).await
    }

    pub async fn household_by_number(
        &self,
        connection: &mut AnyConnection,
        number: &str,
    ) -> Result<Option<StoredHousehold>, Problem> {
        self.household_where(connection, "household_number", number).await
    }

    pub async fn members(&self, connection: &mut AnyConnection, household_id: &str) -> Result<Vec<Member>, Problem> {
        let rows = sqlx::query(
            "SELECT id, name_masked, household_relation FROM persons WHERE household_id = $1 ORDER BY household_relation, id",
        )
        .bind(household_id)
        .fetch_all(&mut *connection)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    person_id: row.try_get("id")?,
                    name_masked: row.try_get("name_masked")?,
                    relation: row
                        .try_get::<Option<String>, _>("household_relation")?
                        .as_deref()
                        .and_then(HouseholdRelation::parse),
                })
            })
            .collect()
    }
}
