//! Bulk import (ImportPersons) and the review of the certifications it proposes
//! (ListPendingCertifications, ConfirmCertifications).
//!
//! Rows arrive in chunks of at most 1,000; each chunk is parsed, checked against the database in
//! a few set-based queries and written in one transaction, and its results go back before the
//! next chunk is read, so neither side ever holds more than a chunk. The import is idempotent,
//! not atomic: a re-sent file finds its persons by blind index and changes only what differs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bangfu_platform::audit::{AuditEntry, Outcome};
use bangfu_platform::auth::{Department, Permission, Principal};
use bangfu_platform::clock::Clock;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::outbox::NewEvent;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::pii::CitizenId;
use bangfu_platform::regions::{DivisionTable, Level, RegionError};
use bangfu_platform::server::Shutdown;
use bangfu_platform::write;
use bangfu_platform::{paging, wire};
use bangfu_proto::identity::v1 as pb;
use time::Date;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::{BoxStream, HISTORY_START, Identity, MAX_BATCH, append_update_events, batch_too_large, method};
use crate::domain::categories::{Category, HouseholdType, NewCertification, short_text};
use crate::domain::monitoring::EmploymentStatus;
use crate::domain::{
    ChangeKind, HouseholdRelation, IdentityError, LaborCapacity, NewPerson, PersonName, exported,
    parse_household_number, resolve_track, retirement_month,
};
use crate::store::{ImportHolder, ImportedPerson, NewEmployment, NewPending, PersonChanges, Store, StoredPending};

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

/// What an import knows for its whole length.
struct Importer {
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

fn rejected(row_number: i64, problem: &Problem) -> pb::ImportRowResult {
    pb::ImportRowResult {
        row_number,
        outcome: pb::ImportOutcome::Rejected as i32,
        person: String::new(),
        reason: problem.reason_code().to_string(),
        field: problem.violations.first().map(|v| v.field.clone()).unwrap_or_default(),
        message: problem.message_zh.clone(),
    }
}

fn accepted(row_number: i64, outcome: pb::ImportOutcome, person_id: &str, pending: bool) -> pb::ImportRowResult {
    pb::ImportRowResult {
        row_number,
        outcome: outcome as i32,
        person: format!("persons/{person_id}"),
        reason: if pending {
            "CATEGORIES_PENDING".into()
        } else {
            String::new()
        },
        field: String::new(),
        message: if pending {
            "类别待认定部门审核确认".into()
        } else {
            String::new()
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

/// The certifying body an import's certification names: the importing department.
fn certifying_body(department: Option<Department>) -> &'static str {
    match department {
        Some(Department::Agri) => "农业农村（乡村振兴）部门",
        Some(Department::Hr) => "人力资源社会保障部门",
        Some(Department::Ndrc) => "发展改革部门",
        Some(Department::Finance) => "财政部门",
        None => "导入",
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

    /// One chunk: a result per row, in order.
    async fn chunk(&self, rows: Vec<pb::ImportRow>) -> Result<Vec<pb::ImportRowResult>, Problem> {
        let today = self.clock.today();
        let mut results: Vec<Option<pb::ImportRowResult>> = vec![None; rows.len()];
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
    async fn write(&self, rows: Vec<(usize, ParsedRow)>) -> Result<Vec<(usize, pb::ImportRowResult)>, Problem> {
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

    async fn write_once(&self, rows: &[(usize, ParsedRow)]) -> Result<Vec<(usize, pb::ImportRowResult)>, Problem> {
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
            let changes = PersonChanges {
                name: name_changed.then(|| {
                    changed_fields.push("display_name".to_string());
                    row.person.name.as_str().to_string()
                }),
                phone: None,
                registered_region: row.person.registered_region.clone(),
                residence_region: current.residence_region.clone(),
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
            updated.insert(holder.id.clone());
        }
        self.store.mark_imported(unit.tx(), &seen, &self.import_id).await?;

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
            let regions = [holder.registered_region.clone(), holder.residence_region.clone()];
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
                    &row.person.registered_region,
                    &row.person.residence_region,
                )
            })
            .chain(
                existing
                    .iter()
                    .map(|(slot, row, h)| (*slot, *row, h.id.as_str(), &h.registered_region, &h.residence_region)),
            );
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

        for (slot, row, id) in &new_persons {
            results.push((
                *slot,
                accepted(
                    row.row_number,
                    pb::ImportOutcome::Created,
                    id,
                    pending_rows.contains(slot),
                ),
            ));
        }
        for (slot, row, holder) in &existing {
            let outcome = if updated.contains(&holder.id) {
                pb::ImportOutcome::Updated
            } else {
                pb::ImportOutcome::Unchanged
            };
            results.push((
                *slot,
                accepted(row.row_number, outcome, &holder.id, pending_rows.contains(slot)),
            ));
        }
        Ok(results)
    }
}

/// Rows per message, at most.
const ROWS_PER_MESSAGE: usize = 1000;

/// An import of at least this many rows refreshes the planner's statistics before it ends.
const ANALYZE_AFTER_ROWS: usize = 10_000;

impl Identity {
    /// The categories the certifying-department table gives the caller's department.
    async fn certifiable_by(&self, caller: &Principal) -> Result<Vec<Category>, Problem> {
        let department = caller.department.map(|d| d.as_str()).unwrap_or("");
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let mut certifiable = Vec::new();
        for category in Category::ALL {
            if self.store.may_certify(&mut connection, category, department).await? {
                certifiable.push(category);
            }
        }
        Ok(certifiable)
    }

    pub(super) async fn import_persons_inner(
        &self,
        caller: Arc<Principal>,
        mut inbound: Streaming<pb::ImportPersonsRequest>,
    ) -> Result<BoxStream<pb::ImportPersonsResponse>, Problem> {
        let first = inbound
            .message()
            .await
            .map_err(|status| {
                Problem::new(
                    tonic::Code::InvalidArgument,
                    ErrorReason::MessageMalformed,
                    status.message().to_string(),
                    "导入请求无法读取",
                )
            })?
            .ok_or_else(|| Problem::required("export_date", "导出日期"))?;
        let export_date = wire::date("export_date", first.export_date.as_ref())?;
        if export_date > self.clock.today() {
            return Err(invalid("export_date", "is in the future", "导出日期晚于今天，请核对"));
        }
        let document = short_text(&first.source_document, "source_document").map_err(|e| {
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
        let (sender, receiver) = mpsc::channel(2);
        tokio::spawn(run_import(importer, inbound, first.rows, sender, self.shutdown.clone()));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver)))
    }
}

/// Reads chunks and answers each until the client finishes, goes away, or the server drains.
async fn run_import(
    importer: Importer,
    mut inbound: Streaming<pb::ImportPersonsRequest>,
    mut rows: Vec<pb::ImportRow>,
    sender: mpsc::Sender<Result<pb::ImportPersonsResponse, Status>>,
    shutdown: Shutdown,
) {
    let mut total = 0usize;
    loop {
        if rows.len() > ROWS_PER_MESSAGE {
            let _ = sender.send(Err(batch_too_large("rows").into())).await;
            return;
        }
        if !rows.is_empty() {
            total += rows.len();
            let answer = importer
                .chunk(std::mem::take(&mut rows))
                .await
                .map(|results| pb::ImportPersonsResponse { results })
                .map_err(Status::from);
            let failed = answer.is_err();
            if sender.send(answer).await.is_err() || failed {
                return;
            }
        }
        let next = tokio::select! {
            next = inbound.message() => next,
            () = shutdown.triggered() => {
                let problem = Problem::new(
                    tonic::Code::Unavailable,
                    ErrorReason::ShuttingDown,
                    "the server is shutting down; the rows answered so far are stored, send the file again",
                    "服务正在停止：已返回结果的行已保存，请重新导入该文件（不会重复登记）",
                );
                let _ = sender.send(Err(problem.into())).await;
                return;
            }
        };
        match next {
            Ok(Some(message)) => rows = message.rows,
            Ok(None) => {
                if total >= ANALYZE_AFTER_ROWS
                    && let Err(problem) = importer.store.analyze_after_import().await
                {
                    tracing::warn!(message = %problem.message, "statistics not refreshed after the import");
                }
                break;
            }
            Err(status) => {
                tracing::info!(import = %importer.import_id, %status, "the importing client went away");
                return;
            }
        }
    }
    tracing::info!(import = %importer.import_id, rows = total, "import finished");
}

impl Identity {
    pub(super) async fn list_pending_inner(
        &self,
        caller: &Principal,
        request: pb::ListPendingCertificationsRequest,
    ) -> Result<pb::ListPendingCertificationsResponse, Problem> {
        let limit = paging::page_size(request.page_size, 100, MAX_BATCH as u32)?;
        let prefix = super::scoped_prefix(caller, &request.region_prefix, "region_prefix")?;
        let department = caller.department.map(|d| d.as_str()).unwrap_or("");
        let categories = self.certifiable_by(caller).await?;
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let Some(prefix) = prefix else {
            return Ok(pb::ListPendingCertificationsResponse::default());
        };
        let fingerprint = paging::fingerprint(&[&prefix, department]);
        let after =
            paging::decode_token(&request.page_token, &fingerprint)?.and_then(|cursor| match cursor.as_slice() {
                [region, id] => Some((region.clone(), id.clone())),
                _ => None,
            });
        let mut found = self
            .store
            .list_pending(&mut connection, &prefix, &categories, after, limit + 1)
            .await?;
        let next_page_token = if found.len() > limit as usize {
            found.truncate(limit as usize);
            found
                .last()
                .map(|last| paging::encode_token(&fingerprint, &[last.region.clone(), last.id.clone()]))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListPendingCertificationsResponse {
            pending_certifications: found.iter().map(pending_to_wire).collect(),
            next_page_token,
        })
    }

    pub(super) async fn confirm_certifications_inner(
        &self,
        caller: &Principal,
        request: pb::ConfirmCertificationsRequest,
    ) -> Result<pb::ConfirmCertificationsResponse, Problem> {
        if request.names.is_empty() {
            return Err(Problem::required("names", "待确认的认定"));
        }
        if request.names.len() > MAX_BATCH {
            return Err(batch_too_large("names"));
        }
        let method = method("ConfirmCertifications");
        // Which categories the reviewer's department certifies: asked once, not per name.
        let certifiable = self.certifiable_by(caller).await?;
        let body = certifying_body(caller.department);
        let now = self.clock.now();
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        let mut confirmed = Vec::new();
        let mut not_confirmed = Vec::new();
        for name in &request.names {
            let Some(id) = name
                .strip_prefix("pendingCertifications/")
                .filter(|id| !id.is_empty() && !id.contains('/'))
            else {
                not_confirmed.push(name.clone());
                continue;
            };
            let Some(pending) = self.store.pending(unit.tx(), id).await? else {
                not_confirmed.push(name.clone());
                continue;
            };
            // Maker ≠ checker: whoever imported the proposal does not confirm it.
            let may = !pending.confirmed
                && caller.scope.contains(&pending.region)
                && pending.import_subject != caller.subject
                && certifiable.contains(&pending.category);
            if !may {
                not_confirmed.push(name.clone());
                continue;
            }
            let Some(person) = self.store.get(unit.tx(), &pending.person_id).await? else {
                not_confirmed.push(name.clone());
                continue;
            };
            let certification = NewCertification {
                category: pending.category,
                household_type: pending.household_type,
                certifying_body: body.to_string(),
                document_reference: pending.document_reference.clone(),
                valid_from: pending.valid_from,
                valid_to: None,
            };
            let certification_id = Store::new_person_id();
            if !self
                .store
                .confirm_pending(unit.tx(), &pending.id, &certification_id, &caller.subject, now)
                .await?
            {
                not_confirmed.push(name.clone());
                continue;
            }
            self.store
                .insert_certification(
                    unit.tx(),
                    &certification_id,
                    &person.id,
                    &certification,
                    &caller.subject,
                    now,
                )
                .await?;
            let detail = serde_json::json!({ "category": pending.category.as_str() }).to_string();
            let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
            let event = NewEvent {
                kind: ChangeKind::CategoryCertified.as_str(),
                resource: &person.resource(),
                regions: &regions,
                effective_date: Some(pending.valid_from),
                detail: &detail,
            };
            unit.publish(&event).await?;
            let resource = format!("persons/{}/certifications/{certification_id}", person.id);
            unit.audit(AuditEntry::by(caller, &method, resource, now)).await?;
            confirmed.push((person.id.clone(), certification_id));
        }
        unit.commit_audited().await?;
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let mut certifications = Vec::with_capacity(confirmed.len());
        for (person_id, id) in confirmed {
            let stored = self
                .store
                .certification(&mut connection, &person_id, &id)
                .await?
                .ok_or_else(Problem::internal)?;
            certifications.push(super::certification_to_wire(&stored));
        }
        Ok(pb::ConfirmCertificationsResponse {
            certifications,
            not_confirmed,
        })
    }
}

fn pending_to_wire(pending: &StoredPending) -> pb::PendingCertification {
    pb::PendingCertification {
        name: pending.resource(),
        person: format!("persons/{}", pending.person_id),
        certification: Some(bangfu_proto::common::v1::CategoryCertification {
            category: super::category_to_wire(pending.category) as i32,
            household_type: super::household_type_to_wire(pending.household_type) as i32,
            certifying_body: String::new(),
            document_reference: pending.document_reference.clone(),
            valid_from: Some(wire::date_to_wire(pending.valid_from)),
            ..Default::default()
        }),
        import_subject: pending.import_subject.clone(),
    }
}
