//! Bulk import (ImportPersons) as a use case: the rows of a national-system export, a chunk at
//! a time.
//!
//! Each chunk of at most 1,000 rows is parsed, checked against the database in a few set-based
//! queries and written in one transaction, and its results go back before the next chunk is
//! read, so neither side ever holds more than a chunk. The import is idempotent, not atomic: a
//! re-sent file finds its persons by blind index and changes only what differs. The rows stay
//! in their wire form (`pb::ImportRow`) up to `Importer::parse`: they are many, flat and read
//! once, and the parse is where each becomes domain values or a refusal for that row alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bangfu_platform::audit::{AuditEntry, Outcome};
use bangfu_platform::auth::{Permission, Principal};
use bangfu_platform::clock::Clock;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::outbox::NewEvent;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::pii::CitizenId;
use bangfu_platform::regions::{DivisionTable, Level, RegionError};
use bangfu_platform::wire;
use bangfu_platform::write;
use bangfu_proto::identity::v1 as pb;
use time::Date;

use super::certifications::certifying_body;
use super::persons::{HISTORY_START, append_update_events};
use super::{Identity, method};
use crate::domain::categories::{Category, HouseholdType, NewCertification, short_text};
use crate::domain::monitoring::EmploymentStatus;
use crate::domain::{
    ChangeKind, HouseholdRelation, IdentityError, LaborCapacity, NewPerson, PersonName, exported,
    parse_household_number, resolve_track, retirement_month,
};
use crate::store::{ImportHolder, ImportedPerson, NewEmployment, NewPending, PersonChanges, Store};

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowResult {
    pub row_number: i64,
    pub outcome: RowOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// The person is registered, with what a clerk should check about the row.
    Accepted {
        change: RowChange,
        person_id: String,
        notes: Vec<RowNote>,
    },
    /// The row was refused, for this reason; the other rows go on.
    Rejected(Problem),
}

/// What an accepted row did to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowChange {
    Created,
    Updated,
    Unchanged,
}

/// Something an accepted row did that a clerk should check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowNote {
    /// Some of the row's categories wait for the certifying department to confirm them.
    CategoriesPending,
    /// The row moved the registered village; the residence, recorded elsewhere, stays here.
    ResidenceKept { residence: String },
}

/// An import of at least this many rows refreshes the planner's statistics before it ends.
const ANALYZE_AFTER_ROWS: usize = 10_000;

/// A row ready to be written: everything parsed and checked that needs no database.
struct ParsedRow {
    row_number: i64,
    person: NewPerson,
    /// The blind index under the active key, and under every loaded key.
    index: String,
    indexes: Vec<String>,
    national_person_number: Option<String>,
    household_number: Option<String>,
    relation: Option<HouseholdRelation>,
    labor_capacity: Option<LaborCapacity>,
    employment: Option<EmploymentStatus>,
    categories: Vec<(Category, HouseholdType)>,
    category_start: Date,
}

/// What an import knows for its whole length: one per ImportPersons call, fed chunk by chunk.
pub struct Importer {
    store: Store,
    parameters: Arc<Parameters>,
    regions: &'static DivisionTable,
    clock: Clock,
    caller: Arc<Principal>,
    import_id: String,
    export_date: Date,
    document: String,
    /// The categories the caller's department certifies itself; others become proposals.
    certifiable: Vec<Category>,
}

fn rejected(row_number: i64, problem: &Problem) -> RowResult {
    RowResult {
        row_number,
        outcome: RowOutcome::Rejected(problem.clone()),
    }
}

fn accepted(row_number: i64, change: RowChange, person_id: &str, notes: Vec<RowNote>) -> RowResult {
    RowResult {
        row_number,
        outcome: RowOutcome::Accepted {
            change,
            person_id: person_id.to_string(),
            notes,
        },
    }
}

fn invalid(field: &str, what: &str, what_zh: &str) -> Problem {
    Problem::invalid_field(ErrorReason::FieldInvalid, field, what, what_zh)
}

fn duplicate(field: &str) -> Problem {
    Problem::invalid_field(
        ErrorReason::DuplicateInImport,
        field,
        "an earlier row of this import has the same citizen ID",
        "本次导入中已有相同身份证号码的行，请核对是否重复",
    )
}

/// The import row's field a division-table error points at.
fn region_field(error: &RegionError) -> &'static str {
    let level = match error {
        RegionError::NameNotFound { level, .. }
        | RegionError::Ambiguous { level, .. }
        | RegionError::Missing { level } => *level,
        _ => Level::Village,
    };
    match level {
        Level::Province => "province_name",
        Level::City => "city_name",
        Level::County => "county_name",
        Level::Township => "township_name",
        Level::Village => "village_name",
    }
}

impl Importer {
    /// Parses one row, or the reason it is refused.
    fn parse(&self, row: &pb::ImportRow, today: Date) -> Result<ParsedRow, Problem> {
        let name = PersonName::parse(&row.display_name).map_err(|source| IdentityError::Name {
            field: "display_name".into(),
            source,
        })?;
        let citizen_id = CitizenId::parse(&row.citizen_id, today).map_err(|source| IdentityError::CitizenId {
            field: "citizen_id".into(),
            source,
        })?;
        let region = if row.registered_region.trim().is_empty() {
            self.regions
                .resolve(
                    &row.province_name,
                    &row.city_name,
                    &row.county_name,
                    &row.township_name,
                    &row.village_name,
                )
                .map_err(|error| {
                    Problem::invalid_field(
                        ErrorReason::RegionUnknown,
                        region_field(&error),
                        error.to_string(),
                        "省市县乡村名称与现行区划表对不上，请核对或填写12位村级代码",
                    )
                })?
        } else {
            let code = row.registered_region.trim();
            if !(code.len() == 12 && self.regions.is_village(code)) {
                return Err(IdentityError::RegionUnknown {
                    field: "registered_region".into(),
                    code: code.to_string(),
                }
                .into());
            }
            code.to_string()
        };
        if !self.caller.scope.contains(&region) {
            return Err(IdentityError::RegionOutsideScope {
                field: "registered_region".into(),
            }
            .into());
        }
        let household_number = match row.household_number.trim() {
            "" => None,
            text => Some(parse_household_number(text).ok_or_else(|| {
                invalid(
                    "household_number",
                    "must be 1 to 50 letters, digits or '-'",
                    "户编号应为1至50位字母、数字或“-”",
                )
            })?),
        };
        let relation = match row.relation.trim() {
            "" => None,
            text => Some(exported::relation(text).ok_or_else(|| {
                invalid(
                    "relation",
                    "is not a relation to the household head",
                    "与户主关系无法识别（如户主、配偶、之子、之女）",
                )
            })?),
        };
        if relation.is_some() && household_number.is_none() {
            return Err(invalid(
                "relation",
                "a relation needs the household number",
                "填写了与户主关系但没有户编号",
            ));
        }
        let labor_capacity = match row.labor_skill.trim() {
            "" => None,
            text => Some(exported::labor_skill(text).ok_or_else(|| {
                invalid(
                    "labor_skill",
                    "is not a labor skill of the export",
                    "劳动技能无法识别（普通劳动力、技能劳动力、弱劳动力、半劳动力、丧失劳动力、无劳动力）",
                )
            })?),
        };
        let employment = exported::employment(row.months_worked, &row.work_location).map_err(|field| {
            invalid(
                field,
                "months worked and work location contradict each other",
                "务工时间与务工地点不一致（务工月数0至12，务工时须填写县内、省内县外或省外）",
            )
        })?;
        let categories = exported::categories(&row.categories).map_err(|word| {
            invalid(
                "categories",
                &format!("{word:?} is not a category of the export"),
                &format!("人员类别“{word}”无法识别；监测户须写明脱贫不稳定户、边缘易致贫户或突发严重困难户"),
            )
        })?;
        let category_start =
            wire::optional_date("category_start_date", row.category_start_date.as_ref())?.unwrap_or(self.export_date);
        if category_start > self.export_date {
            return Err(invalid(
                "category_start_date",
                "is after the export date",
                "认定日期晚于导出日期，请核对",
            ));
        }
        let national_person_number = match row.national_person_number.trim() {
            "" => None,
            text if text.len() <= 50 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                Some(text.to_string())
            }
            _ => {
                return Err(invalid(
                    "national_person_number",
                    "must be 1 to 50 letters, digits or '-'",
                    "人口编号应为1至50位字母、数字或“-”",
                ));
            }
        };
        let indexes = self.store.blind_indexes(&citizen_id);
        let index = indexes.first().cloned().ok_or_else(Problem::internal)?;
        Ok(ParsedRow {
            row_number: row.row_number,
            person: NewPerson {
                name,
                citizen_id,
                phone: None,
                registered_region: region.clone(),
                residence_region: region,
                labor_capacity: labor_capacity.unwrap_or(LaborCapacity::Unassessed),
                skills: Vec::new(),
                retirement_track: None,
                household: None,
            },
            index,
            indexes,
            national_person_number,
            household_number,
            relation,
            labor_capacity,
            employment,
            categories,
            category_start,
        })
    }

    /// One chunk: a result per row, in order; counted in `bangfu.import.rows` by outcome, so an
    /// operator sees an import's progress and its rejects as it runs.
    pub async fn chunk(&self, rows: Vec<pb::ImportRow>) -> Result<Vec<RowResult>, Problem> {
        let results = self.chunk_rows(rows).await?;
        let counter = opentelemetry::global::meter("bangfu")
            .u64_counter("bangfu.import.rows")
            .with_description("rows of bulk imports, by outcome (created, updated, unchanged, rejected)")
            .with_unit("{row}")
            .build();
        let mut counts = [0u64; 4];
        for result in &results {
            let slot = match &result.outcome {
                RowOutcome::Accepted {
                    change: RowChange::Created,
                    ..
                } => 0,
                RowOutcome::Accepted {
                    change: RowChange::Updated,
                    ..
                } => 1,
                RowOutcome::Accepted {
                    change: RowChange::Unchanged,
                    ..
                } => 2,
                RowOutcome::Rejected(_) => 3,
            };
            counts[slot] += 1;
        }
        for (outcome, count) in ["created", "updated", "unchanged", "rejected"].into_iter().zip(counts) {
            if count > 0 {
                counter.add(
                    count,
                    &[
                        opentelemetry::KeyValue::new("service", crate::SERVICE),
                        opentelemetry::KeyValue::new("outcome", outcome),
                    ],
                );
            }
        }
        Ok(results)
    }

    async fn chunk_rows(&self, rows: Vec<pb::ImportRow>) -> Result<Vec<RowResult>, Problem> {
        let today = self.clock.today();
        let mut results: Vec<Option<RowResult>> = vec![None; rows.len()];
        let mut ready: Vec<(usize, ParsedRow)> = Vec::with_capacity(rows.len());
        let mut seen: HashSet<String> = HashSet::new();
        let started = std::time::Instant::now();
        for (slot, row) in rows.iter().enumerate() {
            match self.parse(row, today) {
                Ok(parsed) if !seen.insert(parsed.index.clone()) => {
                    results[slot] = Some(rejected(row.row_number, &duplicate("citizen_id")));
                }
                Ok(parsed) => ready.push((slot, parsed)),
                Err(problem) => results[slot] = Some(rejected(row.row_number, &problem)),
            }
        }
        tracing::debug!(parse_ms = started.elapsed().as_millis() as u64, "import chunk parsed");
        let parsed_at = std::time::Instant::now();
        let written = self.write(ready).await?;
        tracing::debug!(
            write_ms = parsed_at.elapsed().as_millis() as u64,
            "import chunk written"
        );
        for (slot, result) in written {
            results[slot] = Some(result);
        }
        Ok(results
            .into_iter()
            .zip(rows.iter())
            .map(|(result, row)| result.unwrap_or_else(|| rejected(row.row_number, &Problem::internal())))
            .collect())
    }

    /// Writes the parsed rows in one transaction. When it fails for a reason other than the
    /// database being away, the rows are split in halves and retried, so one bad row costs
    /// only itself.
    async fn write(&self, rows: Vec<(usize, ParsedRow)>) -> Result<Vec<(usize, RowResult)>, Problem> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        match self.write_once(&rows).await {
            Ok(results) => Ok(results),
            Err(problem) if problem.reason == ErrorReason::DatabaseUnavailable => Err(problem),
            Err(problem) if rows.len() == 1 => {
                tracing::warn!(reason = problem.reason_code(), message = %problem.message, "an import row was not written");
                Ok(rows
                    .iter()
                    .map(|(slot, row)| (*slot, rejected(row.row_number, &problem)))
                    .collect())
            }
            Err(_) => {
                let mut rows = rows;
                let second = rows.split_off(rows.len() / 2);
                let mut results = Box::pin(self.write(rows)).await?;
                results.extend(Box::pin(self.write(second)).await?);
                Ok(results)
            }
        }
    }

    async fn write_once(&self, rows: &[(usize, ParsedRow)]) -> Result<Vec<(usize, RowResult)>, Problem> {
        let now = self.clock.now();
        let today = self.clock.today();
        let subject = self.caller.subject.clone();
        let mut results = Vec::with_capacity(rows.len());
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;

        let indexes: Vec<String> = rows.iter().flat_map(|(_, r)| r.indexes.iter().cloned()).collect();
        let holders: HashMap<String, ImportHolder> = self
            .store
            .import_holders(unit.tx(), &indexes)
            .await?
            .into_iter()
            .map(|h| (h.citizen_id_index.clone(), h))
            .collect();
        let holder_of = |row: &ParsedRow| row.indexes.iter().find_map(|i| holders.get(i));

        // Households: found by number, or created in the row's village.
        let numbers: Vec<&str> = rows.iter().filter_map(|(_, r)| r.household_number.as_deref()).collect();
        let mut households = self.store.households_by_numbers(unit.tx(), &numbers).await?;
        let household_ids: Vec<String> = households.values().map(|(id, _)| id.clone()).collect();
        let id_refs: Vec<&str> = household_ids.iter().map(String::as_str).collect();
        let mut heads = self.store.heads_of(unit.tx(), &id_refs).await?;
        let mut new_households: Vec<(String, String, String)> = Vec::new();

        let mut refused = 0usize;
        let mut new_persons: Vec<(usize, &ParsedRow, String)> = Vec::new();
        let mut existing: Vec<(usize, &ParsedRow, &ImportHolder)> = Vec::new();
        for (slot, row) in rows {
            let holder = holder_of(row);
            if let Some(holder) = holder {
                if holder.last_import.as_deref() == Some(self.import_id.as_str()) {
                    results.push((*slot, rejected(row.row_number, &duplicate("citizen_id"))));
                    continue;
                }
                if !self.caller.scope.contains(&holder.registered_region)
                    && !self.caller.scope.contains(&holder.residence_region)
                {
                    refused += 1;
                    results.push((
                        *slot,
                        rejected(row.row_number, &IdentityError::PersonExistsOutsideScope.into()),
                    ));
                    continue;
                }
            }
            let person_id = holder.map(|h| h.id.clone()).unwrap_or_else(Store::new_person_id);
            if let Some(number) = &row.household_number {
                let household_id = match households.get(number) {
                    Some((id, region)) if self.caller.scope.contains(region) => id.clone(),
                    Some(_) => {
                        results.push((
                            *slot,
                            rejected(
                                row.row_number,
                                &Problem::new(
                                    tonic::Code::NotFound,
                                    ErrorReason::NotFound,
                                    "the household number belongs to a household outside the caller's scope",
                                    "该户编号属于您管辖范围以外的户",
                                )
                                .with_violation("household_number", "outside the caller's scope"),
                            ),
                        ));
                        continue;
                    }
                    None => {
                        let id = Store::new_person_id();
                        households.insert(number.clone(), (id.clone(), row.person.registered_region.clone()));
                        new_households.push((id.clone(), number.clone(), row.person.registered_region.clone()));
                        id
                    }
                };
                if row.relation == Some(HouseholdRelation::Head) {
                    match heads.get(&household_id) {
                        Some(head) if *head != person_id => {
                            results.push((
                                *slot,
                                rejected(
                                    row.row_number,
                                    &invalid(
                                        "relation",
                                        "the household already has a head",
                                        "该户已有户主，请核对与户主关系",
                                    ),
                                ),
                            ));
                            continue;
                        }
                        _ => {
                            heads.insert(household_id.clone(), person_id.clone());
                        }
                    }
                }
            }
            match holder {
                Some(holder) => existing.push((*slot, row, holder)),
                None => new_persons.push((*slot, row, person_id)),
            }
        }
        let household_of = |row: &ParsedRow| -> Option<(String, HouseholdRelation)> {
            let number = row.household_number.as_ref()?;
            let (id, _) = households.get(number)?;
            Some((id.clone(), row.relation.unwrap_or(HouseholdRelation::Other)))
        };
        self.store.insert_households(unit.tx(), &new_households, now).await?;

        // New persons, set-based.
        let mut persons = Vec::with_capacity(new_persons.len());
        let mut new_rows: Vec<NewPerson> = Vec::with_capacity(new_persons.len());
        for (_, row, _) in &new_persons {
            let mut person = row.person.clone();
            person.household = household_of(row);
            new_rows.push(person);
        }
        for ((_, row, id), person) in new_persons.iter().zip(new_rows.iter()) {
            let default_female_age = self
                .parameters
                .lookup(
                    "identity.default_female_retirement_age",
                    &person.registered_region,
                    today,
                )
                .await?
                .unwrap_or(55);
            let track = resolve_track(None, person.citizen_id.sex(), default_female_age);
            persons.push(ImportedPerson {
                id: id.clone(),
                person,
                track,
                retirement: retirement_month(person.citizen_id.birth_date(), track),
                national_person_number: row.national_person_number.clone(),
            });
        }
        self.store
            .insert_imported(unit.tx(), &persons, &self.import_id, HISTORY_START, now)
            .await?;

        let mut events: Vec<(ChangeKind, String, [String; 2], Date, String)> = Vec::new();
        for (_, row, id) in &new_persons {
            let regions = [
                row.person.registered_region.clone(),
                row.person.residence_region.clone(),
            ];
            events.push((ChangeKind::Created, id.clone(), regions, self.export_date, "{}".into()));
        }

        // Existing persons: unchanged, or updated field by field.
        let mut updated: HashSet<String> = HashSet::new();
        // Where each existing person is after this chunk (registered, residence), for the
        // events and proposals below; and the residences kept away from a moved registration.
        let mut placed: HashMap<&str, (String, String)> = existing
            .iter()
            .map(|(_, _, h)| (h.id.as_str(), (h.registered_region.clone(), h.residence_region.clone())))
            .collect();
        let mut kept_residence: HashMap<&str, String> = HashMap::new();
        let mut seen: Vec<(String, Option<String>)> = Vec::with_capacity(existing.len());
        for (_, row, holder) in &existing {
            seen.push((holder.id.clone(), row.national_person_number.clone()));
            let household = household_of(row);
            let name_changed = holder.name_key != self.store.name_key(row.person.name.as_str());
            let region_changed = holder.registered_region != row.person.registered_region;
            let household_changed =
                household.is_some() && household != holder.household_id.clone().zip(holder.household_relation);
            let labor_changed = row.labor_capacity.is_some_and(|c| c != holder.labor_capacity);
            if !(name_changed || region_changed || household_changed || labor_changed) {
                continue;
            }
            let current = self
                .store
                .get(unit.tx(), &holder.id)
                .await?
                .ok_or_else(Problem::internal)?;
            let mut changed_fields = Vec::new();
            // A residence recorded as the registered village follows it, as the export only
            // knows registration; one recorded elsewhere is a fact of its own and stays.
            let residence_region = if region_changed && current.residence_region == current.registered_region {
                changed_fields.push("residence_region".to_string());
                row.person.registered_region.clone()
            } else {
                current.residence_region.clone()
            };
            if region_changed && residence_region != row.person.registered_region {
                kept_residence.insert(holder.id.as_str(), residence_region.clone());
            }
            let changes = PersonChanges {
                name: name_changed.then(|| {
                    changed_fields.push("display_name".to_string());
                    row.person.name.as_str().to_string()
                }),
                phone: None,
                registered_region: row.person.registered_region.clone(),
                residence_region,
                labor_capacity: row.labor_capacity.unwrap_or(current.labor_capacity),
                skills: current.skills.clone(),
                retirement_track: current.retirement_track,
                retirement_month: current.retirement_month,
                death_date: current.death_date,
                moved_away_date: current.moved_away_date,
                household: if household_changed {
                    household.clone()
                } else {
                    current.household_id.clone().zip(current.household_relation)
                },
            };
            if labor_changed {
                changed_fields.push("labor_capacity".to_string());
            }
            if household_changed {
                changed_fields.push("household".to_string());
            }
            if region_changed {
                changed_fields.push("registered_region".to_string());
            }
            if !self
                .store
                .update(unit.tx(), &current, current.revision, &changes, self.export_date, now)
                .await?
            {
                return Err(Problem::internal());
            }
            append_update_events(&mut unit, &current, &changes, &changed_fields, self.export_date).await?;
            placed.insert(
                holder.id.as_str(),
                (changes.registered_region.clone(), changes.residence_region.clone()),
            );
            updated.insert(holder.id.clone());
        }
        self.store.mark_imported(unit.tx(), &seen, &self.import_id).await?;
        let regions_now = |holder: &ImportHolder| -> (String, String) {
            placed
                .get(holder.id.as_str())
                .cloned()
                .unwrap_or_else(|| (holder.registered_region.clone(), holder.residence_region.clone()))
        };

        // Employment as of the export date.
        let reporting_system = format!("导入：{}", self.document);
        let employment_of = |row: &ParsedRow| {
            row.employment.map(|status| NewEmployment {
                status,
                employer: String::new(),
                work_region: match status {
                    EmploymentStatus::EmployedInCounty => row.person.registered_region[..6].to_string(),
                    EmploymentStatus::EmployedOutOfCounty => row.person.registered_region[..2].to_string(),
                    _ => String::new(),
                },
                start_date: self.export_date,
                end_date: None,
                reporting_system: reporting_system.clone(),
            })
        };
        let mut first_employments = Vec::new();
        for (_, row, id) in &new_persons {
            if let Some(record) = employment_of(row) {
                first_employments.push((Store::new_person_id(), id.clone(), record));
                let regions = [
                    row.person.registered_region.clone(),
                    row.person.residence_region.clone(),
                ];
                events.push((
                    ChangeKind::EmploymentChanged,
                    id.clone(),
                    regions,
                    self.export_date,
                    "{}".into(),
                ));
            }
        }
        self.store
            .insert_first_employments(unit.tx(), &first_employments, &subject, now)
            .await?;
        let existing_ids: Vec<&str> = existing.iter().map(|(_, _, h)| h.id.as_str()).collect();
        let statuses = self
            .store
            .employment_on(unit.tx(), &existing_ids, self.export_date)
            .await?;
        for (_, row, holder) in &existing {
            let Some(record) = employment_of(row) else { continue };
            if statuses.get(&holder.id).map(|s| s.status) == Some(record.status) {
                continue;
            }
            self.store
                .insert_employment(unit.tx(), &Store::new_person_id(), &holder.id, &record, &subject, now)
                .await?;
            let (registered, residence) = regions_now(holder);
            let regions = [registered, residence];
            events.push((
                ChangeKind::EmploymentChanged,
                holder.id.clone(),
                regions,
                self.export_date,
                "{}".into(),
            ));
            updated.insert(holder.id.clone());
        }

        // Categories: certified when the caller's department may, else proposed.
        let held = self
            .store
            .certified_from(unit.tx(), &existing_ids, self.export_date)
            .await?;
        let body = certifying_body(self.caller.department);
        let mut certifications = Vec::new();
        let mut proposals = Vec::new();
        let mut pending_rows: HashSet<usize> = HashSet::new();
        let everyone = new_persons
            .iter()
            .map(|(slot, row, id)| {
                (
                    *slot,
                    *row,
                    id.as_str(),
                    row.person.registered_region.clone(),
                    row.person.residence_region.clone(),
                )
            })
            .chain(existing.iter().map(|(slot, row, h)| {
                let (registered, residence) = regions_now(h);
                (*slot, *row, h.id.as_str(), registered, residence)
            }));
        for (slot, row, id, registered, residence) in everyone {
            for &(category, household_type) in &row.categories {
                if held.get(id).is_some_and(|h| h.contains(&(category, household_type))) {
                    continue;
                }
                if self.certifiable.contains(&category) {
                    let certification = NewCertification {
                        category,
                        household_type,
                        certifying_body: body.to_string(),
                        document_reference: self.document.clone(),
                        valid_from: row.category_start,
                        valid_to: None,
                    };
                    certifications.push((Store::new_person_id(), id.to_string(), certification));
                    let detail = serde_json::json!({ "category": category.as_str() }).to_string();
                    let regions = [registered.clone(), residence.clone()];
                    events.push((
                        ChangeKind::CategoryCertified,
                        id.to_string(),
                        regions,
                        row.category_start,
                        detail,
                    ));
                    updated.insert(id.to_string());
                } else {
                    pending_rows.insert(slot);
                    proposals.push(NewPending {
                        person_id: id.to_string(),
                        region: registered.clone(),
                        category,
                        household_type,
                        valid_from: row.category_start,
                        document_reference: self.document.clone(),
                    });
                }
            }
        }
        self.store
            .insert_certifications(unit.tx(), &certifications, &subject, now)
            .await?;
        self.store.insert_pending(unit.tx(), &proposals, &subject, now).await?;

        let resources: Vec<String> = events.iter().map(|(_, id, ..)| format!("persons/{id}")).collect();
        let region_lists: Vec<[&str; 2]> = events
            .iter()
            .map(|(_, _, r, ..)| [r[0].as_str(), r[1].as_str()])
            .collect();
        let new_events: Vec<NewEvent> = events
            .iter()
            .zip(resources.iter())
            .zip(region_lists.iter())
            .map(|(((kind, _, _, day, detail), resource), regions)| NewEvent {
                kind: kind.as_str(),
                resource,
                regions,
                effective_date: Some(*day),
                detail,
            })
            .collect();
        unit.publish_many(&new_events).await?;
        let method = method("ImportPersons");
        let resource = format!("imports/{}", self.import_id);
        for _ in 0..refused {
            let entry = AuditEntry::by(&self.caller, &method, resource.clone(), now)
                .with_outcome(Outcome::Failed, "PERSON_EXISTS_OUTSIDE_SCOPE");
            unit.audit(entry).await?;
        }
        unit.commit(AuditEntry::by(&self.caller, &method, resource, now))
            .await?;

        let notes = |slot: usize, kept: Option<&String>| {
            let pending = pending_rows.contains(&slot).then_some(RowNote::CategoriesPending);
            let kept = kept.map(|residence| RowNote::ResidenceKept {
                residence: residence.clone(),
            });
            pending.into_iter().chain(kept).collect::<Vec<_>>()
        };
        for (slot, row, id) in &new_persons {
            results.push((
                *slot,
                accepted(row.row_number, RowChange::Created, id, notes(*slot, None)),
            ));
        }
        for (slot, row, holder) in &existing {
            let outcome = if updated.contains(&holder.id) {
                RowChange::Updated
            } else {
                RowChange::Unchanged
            };
            results.push((
                *slot,
                accepted(
                    row.row_number,
                    outcome,
                    &holder.id,
                    notes(*slot, kept_residence.get(holder.id.as_str())),
                ),
            ));
        }
        Ok(results)
    }
}

impl Importer {
    /// The import's id, as its audit rows name it (`imports/{id}`).
    pub fn id(&self) -> &str {
        &self.import_id
    }

    /// Ends an import of `rows` rows: a large one refreshes the planner's statistics.
    pub async fn finish(&self, rows: usize) {
        if rows >= ANALYZE_AFTER_ROWS
            && let Err(problem) = self.store.analyze_after_import().await
        {
            tracing::warn!(message = %problem.message, "statistics not refreshed after the import");
        }
    }
}

impl Identity {
    /// Starts an import of the export made on `export_date` from `source_document`.
    pub async fn start_import(
        &self,
        caller: Arc<Principal>,
        export_date: Date,
        source_document: &str,
    ) -> Result<Importer, Problem> {
        if export_date > self.clock.today() {
            return Err(invalid("export_date", "is in the future", "导出日期晚于今天，请核对"));
        }
        let document = short_text(source_document, "source_document").map_err(|e| {
            Problem::invalid_field(ErrorReason::FieldRequired, e.field(), e.to_string(), e.message_zh())
        })?;
        // Certified at once only when the caller may certify (the permission) and its department
        // certifies the category (the table); everything else waits for a reviewer.
        let certifiable = if caller.has(Permission::IdentityCategoriesCertify) {
            self.certifiable_by(&caller).await?
        } else {
            Vec::new()
        };
        let importer = Importer {
            store: self.store.clone(),
            parameters: self.parameters.clone(),
            regions: self.regions,
            clock: self.clock.clone(),
            caller,
            import_id: Store::new_person_id(),
            export_date,
            document,
            certifiable,
        };
        tracing::info!(import = %importer.import_id, subject = %importer.caller.subject, "import started");
        Ok(importer)
    }
}
