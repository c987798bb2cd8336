//! Identity's wire forms: protobuf messages into domain values (or INVALID_ARGUMENT naming the
//! field), resource names into ids, and store values back into messages. Nothing here reads
//! the database; what needs the division table or today's date is given them.

use bangfu_platform::auth::RegionScope;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::outbox::FeedEvent;
use bangfu_platform::pii::{CitizenId, Sex};
use bangfu_platform::regions::{DivisionTable, FullNames};
use bangfu_platform::wire;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use time::Date;

use crate::app::{
    FieldChange, HouseholdView, LookupAnswer, PersonUpdate, PersonView, Revocation, RowChange, RowNote, RowOutcome,
    RowResult, stale_person,
};
use crate::domain::categories::{Category, CertificationError, HouseholdType, NewCertification, short_text};
use crate::domain::monitoring::{AlertKind, EmploymentStatus, Month};
use crate::domain::{
    ChangeKind, HouseholdRelation, IdentityError, LaborCapacity, NewPerson, PersonName, RetirementTrack, parse_phone,
    parse_skills,
};
use crate::store::{
    IncomeReport, NewEmployment, RegionCounts, StoredAlert, StoredCertification, StoredCorrection, StoredEmployment,
    StoredPending,
};

/// Checks a 12-digit village code against the current division table.
fn village(regions: &DivisionTable, field: &str, code: &str) -> Result<String, IdentityError> {
    let code = code.trim();
    if code.len() == 12 && regions.is_village(code) {
        Ok(code.to_string())
    } else {
        Err(IdentityError::RegionUnknown {
            field: field.to_string(),
            code: code.to_string(),
        })
    }
}

/// A person to register, as CreatePerson gives it.
pub(super) fn new_person(
    person: &pb::Person,
    regions: &DivisionTable,
    today: Date,
) -> Result<NewPerson, IdentityError> {
    let citizen_id = CitizenId::parse(&person.citizen_id, today).map_err(|source| IdentityError::CitizenId {
        field: "person.citizen_id".into(),
        source,
    })?;
    let name = PersonName::parse(&person.display_name).map_err(|source| IdentityError::Name {
        field: "person.display_name".into(),
        source,
    })?;
    // Birth date and sex come from the ID; anything given must agree with it.
    if let Some(given) = wire::optional_date("person.birth_date", person.birth_date.as_ref())
        .ok()
        .flatten()
        && given != citizen_id.birth_date()
    {
        return Err(IdentityError::Invalid {
            field: "person.birth_date".into(),
            what: "does not agree with the citizen ID".into(),
            what_zh: "出生日期与身份证号码不一致".into(),
        });
    }
    let sex_from_id = match citizen_id.sex() {
        Sex::Male => common::Sex::Male,
        Sex::Female => common::Sex::Female,
    };
    if person.sex != common::Sex::Unspecified as i32 && person.sex != sex_from_id as i32 {
        return Err(IdentityError::Invalid {
            field: "person.sex".into(),
            what: "does not agree with the citizen ID".into(),
            what_zh: "性别与身份证号码不一致".into(),
        });
    }
    let registered = person
        .registered_region
        .as_ref()
        .map(|r| r.code.as_str())
        .unwrap_or_default();
    let registered_region = village(regions, "person.registered_region.code", registered)?;
    let residence_region = match person
        .residence_region
        .as_ref()
        .map(|r| r.code.trim())
        .filter(|c| !c.is_empty())
    {
        Some(code) => village(regions, "person.residence_region.code", code)?,
        None => registered_region.clone(),
    };
    let phone = match person.phone.trim() {
        "" => None,
        text => Some(parse_phone(text).ok_or(IdentityError::Phone)?),
    };
    let household = household_of_wire(&person.household, person.household_relation)?;
    Ok(NewPerson {
        name,
        citizen_id,
        phone,
        registered_region,
        residence_region,
        labor_capacity: labor_capacity_from_wire(person.labor_capacity)?,
        skills: parse_skills(&person.skills)?,
        retirement_track: track_from_wire(person.retirement_track)?,
        household,
    })
}

/// A death or a move away is recorded on a registered person (UpdatePerson, with its history
/// and feed event): checked in a CreatePerson request like there, then refused rather than
/// silently dropped.
pub(super) fn no_registration_dates(person: &pb::Person) -> Result<(), Problem> {
    for (field, date) in [
        ("person.death_date", person.death_date.as_ref()),
        ("person.moved_away_date", person.moved_away_date.as_ref()),
    ] {
        if wire::optional_date(field, date)?.is_some() {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                field,
                "is recorded with UpdatePerson once the person is registered",
                "死亡或迁出日期请在人员登记后通过修改人员信息录入",
            ));
        }
    }
    Ok(())
}

/// The person an UpdatePerson request names and the changes its update mask lists.
pub(super) fn person_update<'a>(
    request: &'a pb::UpdatePersonRequest,
    regions: &DivisionTable,
) -> Result<(&'a str, PersonUpdate), Problem> {
    let person = request
        .person
        .as_ref()
        .ok_or_else(|| Problem::required("person", "人员信息"))?;
    let id = person_id(&person.name, "person.name")?;
    if person.etag.is_empty() {
        return Err(Problem::required("person.etag", "版本标记（etag，先读取再修改）"));
    }
    let revision: i64 = person
        .etag
        .strip_prefix('r')
        .and_then(|r| r.parse().ok())
        .ok_or_else(stale_person)?;
    let paths = request
        .update_mask
        .as_ref()
        .map(|m| m.paths.as_slice())
        .unwrap_or_default();
    if paths.is_empty() {
        return Err(Problem::required("update_mask", "要修改的字段"));
    }
    let effective = wire::optional_date("effective_date", request.effective_date.as_ref())?;
    fn region_code(region: Option<&common::RegionCode>) -> &str {
        region.map(|r| r.code.as_str()).unwrap_or_default()
    }
    let mut changes = Vec::with_capacity(paths.len());
    for path in paths {
        let change =
            match path.as_str() {
                "display_name" => FieldChange::Name(PersonName::parse(&person.display_name).map_err(|source| {
                    IdentityError::Name {
                        field: "person.display_name".into(),
                        source,
                    }
                })?),
                "phone" => FieldChange::Phone(match person.phone.trim() {
                    "" => None,
                    text => Some(parse_phone(text).ok_or(IdentityError::Phone)?),
                }),
                "registered_region" | "registered_region.code" => FieldChange::RegisteredRegion(village(
                    regions,
                    "person.registered_region.code",
                    region_code(person.registered_region.as_ref()),
                )?),
                "residence_region" | "residence_region.code" => FieldChange::ResidenceRegion(village(
                    regions,
                    "person.residence_region.code",
                    region_code(person.residence_region.as_ref()),
                )?),
                "labor_capacity" => FieldChange::LaborCapacity(labor_capacity_from_wire(person.labor_capacity)?),
                "skills" => FieldChange::Skills(parse_skills(&person.skills)?),
                "retirement_track" => FieldChange::RetirementTrack(track_from_wire(person.retirement_track)?),
                "death_date" => {
                    FieldChange::DeathDate(wire::optional_date("person.death_date", person.death_date.as_ref())?)
                }
                "moved_away_date" => FieldChange::MovedAwayDate(wire::optional_date(
                    "person.moved_away_date",
                    person.moved_away_date.as_ref(),
                )?),
                "household" | "household_relation" => {
                    FieldChange::Household(household_of_wire(&person.household, person.household_relation)?)
                }
                other => {
                    return Err(Problem::invalid_field(
                        ErrorReason::FieldInvalid,
                        "update_mask",
                        format!("{other} cannot be changed here (the citizen ID changes through CorrectCitizenId)"),
                        "该字段不能在此修改（身份证号码请通过更正流程修改）",
                    ));
                }
            };
        changes.push((path.split('.').next().unwrap_or(path).to_string(), change));
    }
    Ok((
        id,
        PersonUpdate {
            revision,
            effective,
            changes,
        },
    ))
}

/// The wire form of a person with its facts for a period: regions, labor capacity and
/// status as of the period's last day, every certification overlapping it; masked or
/// revealed.
pub(super) fn person_to_wire(view: PersonView, names: &mut FullNames<'_>) -> pb::Person {
    let PersonView {
        person,
        facts,
        revealed,
    } = view;
    let masked = revealed.is_none();
    let (citizen_id, display_name, phone) = match revealed {
        None => (
            person.citizen_id_masked.clone(),
            person.name_masked.clone(),
            person.phone_masked.clone().unwrap_or_default(),
        ),
        Some((id, name, phone)) => (id, name, phone.unwrap_or_default()),
    };
    let mut region = |code: String| common::RegionCode {
        display_name: names.of(&code),
        code,
    };
    pb::Person {
        name: person.resource(),
        display_name,
        citizen_id,
        sex: match person.sex {
            Sex::Male => common::Sex::Male,
            Sex::Female => common::Sex::Female,
        } as i32,
        // Masked, the year and month only (google.type.Date with day 0): with the day, the
        // registered county and the sex the masked ID could be rebuilt.
        birth_date: Some(if masked {
            common::Date {
                day: 0,
                ..wire::date_to_wire(person.birth_date)
            }
        } else {
            wire::date_to_wire(person.birth_date)
        }),
        phone,
        registered_region: Some(region(facts.registered_region)),
        residence_region: Some(region(facts.residence_region)),
        household: person
            .household_id
            .as_ref()
            .map(|id| format!("households/{id}"))
            .unwrap_or_default(),
        household_relation: person
            .household_relation
            .map_or(pb::HouseholdRelation::Unspecified, relation_to_wire) as i32,
        labor_capacity: labor_capacity_to_wire(facts.labor_capacity) as i32,
        skills: person.skills.clone(),
        retirement_track: track_to_wire(person.retirement_track) as i32,
        retirement_month: Some(common::YearMonth {
            year: person.retirement_month.year,
            month: i32::from(person.retirement_month.month),
        }),
        employment_status: status_to_wire(facts.employment_status) as i32,
        certifications: facts.certifications.iter().map(certification_to_wire).collect(),
        death_date: person.death_date.map(wire::date_to_wire),
        moved_away_date: person.moved_away_date.map(wire::date_to_wire),
        create_time: Some(wire::timestamp_to_wire(person.created)),
        update_time: Some(wire::timestamp_to_wire(person.updated)),
        etag: person.etag(),
    }
}

/// What a lookup found, as LookupPerson answers it.
pub(super) fn lookup_to_wire(answer: &LookupAnswer) -> pb::LookupPersonResponse {
    pb::LookupPersonResponse {
        person: answer.resource(),
        name_match: match answer.name_match {
            None => pb::NameMatch::Unspecified,
            Some(true) => pb::NameMatch::Matched,
            Some(false) => pb::NameMatch::Mismatched,
        } as i32,
    }
}

pub(super) fn correction_to_wire(correction: &StoredCorrection) -> pb::CitizenIdCorrection {
    pb::CitizenIdCorrection {
        name: correction.resource(),
        new_citizen_id: correction.new_citizen_id_masked.clone(),
        reason: correction.reason.clone(),
        state: match correction.state.as_str() {
            "proposed" => pb::CorrectionState::Proposed,
            "applied" => pb::CorrectionState::Applied,
            "rejected" => pb::CorrectionState::Rejected,
            _ => pb::CorrectionState::Unspecified,
        } as i32,
        propose_subject: correction.propose_subject.clone(),
        review_subject: correction.review_subject.clone().unwrap_or_default(),
        propose_time: Some(wire::timestamp_to_wire(correction.proposed)),
        review_time: correction.reviewed.map(wire::timestamp_to_wire),
    }
}

/// The household number and the village a CreateHousehold request gives.
pub(super) fn new_household(household: &pb::Household, regions: &DivisionTable) -> Result<(String, String), Problem> {
    let number = crate::domain::parse_household_number(&household.household_number).ok_or_else(|| {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "household.household_number",
            "must be 1 to 50 letters, digits or '-'",
            "户编号应为1至50位字母、数字或“-”",
        )
    })?;
    let code = household.region.as_ref().map(|r| r.code.as_str()).unwrap_or_default();
    let region = village(regions, "household.region.code", code)?;
    Ok((number, region))
}

pub(super) fn household_to_wire(view: HouseholdView, regions: &DivisionTable) -> pb::Household {
    let HouseholdView { household, members } = view;
    pb::Household {
        name: household.resource(),
        household_number: household.household_number.clone(),
        region: Some(common::RegionCode {
            display_name: regions.full_name(&household.region).unwrap_or_default(),
            code: household.region.clone(),
        }),
        members: members
            .into_iter()
            .map(|m| pb::HouseholdMember {
                person: format!("persons/{}", m.person_id),
                relation: m.relation.map_or(pb::HouseholdRelation::Unspecified, relation_to_wire) as i32,
                display_name: m.name_masked,
            })
            .collect(),
        create_time: Some(wire::timestamp_to_wire(household.created)),
    }
}

/// The requested region of a listing, a division-code prefix (empty: the whole country).
pub(super) fn region_scope(requested: &str, field: &str) -> Result<RegionScope, Problem> {
    let requested = requested.trim();
    if !requested.is_empty() && RegionScope::parse(requested).is_none() {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be a 2, 4, 6, 9 or 12 digit division code",
            "地区代码应为2、4、6、9或12位数字",
        ));
    }
    Ok(RegionScope::parse(requested).unwrap_or(RegionScope::Country))
}

/// The ids of a resource name made of `collections` each followed by an id (20 hex digits):
/// `ids("persons/ab…/certifications/cd…", &["persons", "certifications"])` is `[ab…, cd…]`.
pub(super) fn ids<'a>(name: &'a str, collections: &[&str]) -> Option<Vec<&'a str>> {
    let mut parts = name.split('/');
    let mut found = Vec::with_capacity(collections.len());
    for collection in collections {
        if parts.next() != Some(*collection) {
            return None;
        }
        let id = parts
            .next()
            .filter(|id| id.len() == 20 && id.bytes().all(|b| b.is_ascii_hexdigit()))?;
        found.push(id);
    }
    parts.next().is_none().then_some(found)
}

/// The id in `persons/{id}`.
pub(super) fn person_id<'a>(name: &'a str, field: &str) -> Result<&'a str, Problem> {
    ids(name, &["persons"]).map(|found| found[0]).ok_or_else(|| {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be a person's resource name, persons/{person}",
            "人员编号格式不正确",
        )
    })
}

pub(super) fn relation_to_wire(value: HouseholdRelation) -> pb::HouseholdRelation {
    match value {
        HouseholdRelation::Head => pb::HouseholdRelation::Head,
        HouseholdRelation::Spouse => pb::HouseholdRelation::Spouse,
        HouseholdRelation::Child => pb::HouseholdRelation::Child,
        HouseholdRelation::Parent => pb::HouseholdRelation::Parent,
        HouseholdRelation::Grandchild => pb::HouseholdRelation::Grandchild,
        HouseholdRelation::Grandparent => pb::HouseholdRelation::Grandparent,
        HouseholdRelation::Sibling => pb::HouseholdRelation::Sibling,
        HouseholdRelation::ChildInLaw => pb::HouseholdRelation::ChildInLaw,
        HouseholdRelation::Other => pb::HouseholdRelation::Other,
    }
}

/// The household and relation a person names: both or neither.
pub(super) fn household_of_wire(
    household: &str,
    relation: i32,
) -> Result<Option<(String, HouseholdRelation)>, IdentityError> {
    let relation = match pb::HouseholdRelation::try_from(relation) {
        Ok(pb::HouseholdRelation::Unspecified) => None,
        Ok(pb::HouseholdRelation::Head) => Some(HouseholdRelation::Head),
        Ok(pb::HouseholdRelation::Spouse) => Some(HouseholdRelation::Spouse),
        Ok(pb::HouseholdRelation::Child) => Some(HouseholdRelation::Child),
        Ok(pb::HouseholdRelation::Parent) => Some(HouseholdRelation::Parent),
        Ok(pb::HouseholdRelation::Grandchild) => Some(HouseholdRelation::Grandchild),
        Ok(pb::HouseholdRelation::Grandparent) => Some(HouseholdRelation::Grandparent),
        Ok(pb::HouseholdRelation::Sibling) => Some(HouseholdRelation::Sibling),
        Ok(pb::HouseholdRelation::ChildInLaw) => Some(HouseholdRelation::ChildInLaw),
        Ok(pb::HouseholdRelation::Other) => Some(HouseholdRelation::Other),
        Err(_) => return Err(unknown_value("person.household_relation")),
    };
    match (household.trim(), relation) {
        ("", None) => Ok(None),
        ("", Some(_)) => Err(IdentityError::Invalid {
            field: "person.household".into(),
            what: "is required with a household relation".into(),
            what_zh: "填写与户主关系时须同时填写所在户".into(),
        }),
        (_, None) => Err(IdentityError::Invalid {
            field: "person.household_relation".into(),
            what: "is required with a household".into(),
            what_zh: "请填写与户主关系".into(),
        }),
        (name, Some(relation)) => {
            let id = household_id(name).ok_or_else(|| IdentityError::Invalid {
                field: "person.household".into(),
                what: "must be households/{household}".into(),
                what_zh: "户编号格式不正确".into(),
            })?;
            Ok(Some((id.to_string(), relation)))
        }
    }
}

/// The id in `households/{household}`.
pub(super) fn household_id(name: &str) -> Option<&str> {
    ids(name, &["households"]).map(|found| found[0])
}

/// A reason a clerk or reviewer gives: 1 to 500 characters, no control characters.
pub(super) fn review_reason(value: &str, field: &str) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Problem::required(field, "理由"));
    }
    if value.chars().count() > 500 || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Problem::invalid_field(
            ErrorReason::FieldTooLong,
            field,
            "must be 1 to 500 characters without control characters",
            "理由不能超过500个字",
        ));
    }
    Ok(value.to_string())
}

/// The ids in `persons/{person}/citizenIdCorrections/{correction}`.
pub(super) fn correction_name(name: &str) -> Result<(&str, &str), Problem> {
    let invalid = || {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "name",
            "must be persons/{person}/citizenIdCorrections/{correction}",
            "更正申请编号格式不正确",
        )
    };
    let found = ids(name, &["persons", "citizenIdCorrections"]).ok_or_else(invalid)?;
    Ok((found[0], found[1]))
}

/// The ids in `persons/{person}/certifications/{certification}`.
pub(super) fn certification_name(name: &str) -> Result<(&str, &str), Problem> {
    let invalid = || {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "name",
            "must be persons/{person}/certifications/{certification}",
            "认定记录编号格式不正确",
        )
    };
    let found = ids(name, &["persons", "certifications"]).ok_or_else(invalid)?;
    Ok((found[0], found[1]))
}

pub(super) fn category_from_wire(value: i32) -> Result<Category, Problem> {
    match common::PersonCategory::try_from(value) {
        Ok(common::PersonCategory::PovertyAlleviated) => Ok(Category::PovertyAlleviated),
        Ok(common::PersonCategory::MonitoredAtRisk) => Ok(Category::MonitoredAtRisk),
        Ok(common::PersonCategory::RuralLowIncome) => Ok(Category::RuralLowIncome),
        Ok(common::PersonCategory::Relocated) => Ok(Category::Relocated),
        Ok(common::PersonCategory::YellowRiverResettled) => Ok(Category::YellowRiverResettled),
        Ok(common::PersonCategory::EmploymentDifficulty) => Ok(Category::EmploymentDifficulty),
        Ok(common::PersonCategory::Disabled) => Ok(Category::Disabled),
        Ok(common::PersonCategory::Unspecified) => Err(Problem::required("certification.category", "认定类别")),
        Err(_) => Err(unknown_value("certification.category").into()),
    }
}

pub(super) fn category_to_wire(value: Category) -> common::PersonCategory {
    match value {
        Category::PovertyAlleviated => common::PersonCategory::PovertyAlleviated,
        Category::MonitoredAtRisk => common::PersonCategory::MonitoredAtRisk,
        Category::RuralLowIncome => common::PersonCategory::RuralLowIncome,
        Category::Relocated => common::PersonCategory::Relocated,
        Category::YellowRiverResettled => common::PersonCategory::YellowRiverResettled,
        Category::EmploymentDifficulty => common::PersonCategory::EmploymentDifficulty,
        Category::Disabled => common::PersonCategory::Disabled,
    }
}

pub(super) fn household_type_from_wire(value: i32) -> Result<HouseholdType, Problem> {
    match common::MonitoredHouseholdType::try_from(value) {
        Ok(common::MonitoredHouseholdType::Unspecified) => Ok(HouseholdType::None),
        Ok(common::MonitoredHouseholdType::UnstableAlleviated) => Ok(HouseholdType::UnstableAlleviated),
        Ok(common::MonitoredHouseholdType::MarginalAtRisk) => Ok(HouseholdType::MarginalAtRisk),
        Ok(common::MonitoredHouseholdType::SuddenHardship) => Ok(HouseholdType::SuddenHardship),
        Err(_) => Err(unknown_value("certification.household_type").into()),
    }
}

pub(super) fn household_type_to_wire(value: HouseholdType) -> common::MonitoredHouseholdType {
    match value {
        HouseholdType::None => common::MonitoredHouseholdType::Unspecified,
        HouseholdType::UnstableAlleviated => common::MonitoredHouseholdType::UnstableAlleviated,
        HouseholdType::MarginalAtRisk => common::MonitoredHouseholdType::MarginalAtRisk,
        HouseholdType::SuddenHardship => common::MonitoredHouseholdType::SuddenHardship,
    }
}

pub(super) fn certification_from_wire(value: &common::CategoryCertification) -> Result<NewCertification, Problem> {
    let text_problem = |e: CertificationError| {
        Problem::invalid_field(ErrorReason::FieldInvalid, e.field(), e.to_string(), e.message_zh())
    };
    let certification = NewCertification {
        category: category_from_wire(value.category)?,
        household_type: household_type_from_wire(value.household_type)?,
        certifying_body: short_text(&value.certifying_body, "certification.certifying_body").map_err(text_problem)?,
        document_reference: short_text(&value.document_reference, "certification.document_reference")
            .map_err(text_problem)?,
        valid_from: wire::date("certification.valid_from", value.valid_from.as_ref())?,
        valid_to: wire::optional_date("certification.valid_to", value.valid_to.as_ref())?,
    };
    certification.check().map_err(text_problem)?;
    Ok(certification)
}

pub(super) fn certification_to_wire(value: &StoredCertification) -> pb::Certification {
    pb::Certification {
        name: value.resource(),
        certification: Some(common::CategoryCertification {
            category: category_to_wire(value.category) as i32,
            household_type: household_type_to_wire(value.household_type) as i32,
            certifying_body: value.certifying_body.clone(),
            document_reference: value.document_reference.clone(),
            valid_from: Some(wire::date_to_wire(value.valid_from)),
            valid_to: value.valid_to.map(wire::date_to_wire),
            annulled: value.annulled,
        }),
        revoke_time: value.revoked.map(wire::timestamp_to_wire),
        annul_time: value.annulled_at.map(wire::timestamp_to_wire),
        certify_subject: value.certify_subject.clone(),
    }
}

/// How a RevokeCategory request ends the certification.
pub(super) fn revocation(request: &pb::RevokeCategoryRequest) -> Result<Revocation, Problem> {
    let document = short_text(&request.document_reference, "document_reference")
        .map_err(|e| Problem::invalid_field(ErrorReason::FieldRequired, e.field(), e.to_string(), e.message_zh()))?;
    let valid_to = wire::optional_date("valid_to", request.valid_to.as_ref())?;
    if !request.annul && valid_to.is_none() {
        return Err(Problem::required("valid_to", "失效日期（或选择撤销认定）"));
    }
    Ok(Revocation {
        annul: request.annul,
        valid_to,
        document,
    })
}

pub(super) fn labor_capacity_from_wire(value: i32) -> Result<LaborCapacity, IdentityError> {
    match common::LaborCapacity::try_from(value) {
        Ok(common::LaborCapacity::Unspecified) => Ok(LaborCapacity::Unassessed),
        Ok(common::LaborCapacity::Full) => Ok(LaborCapacity::Full),
        Ok(common::LaborCapacity::Weak) => Ok(LaborCapacity::Weak),
        Ok(common::LaborCapacity::Half) => Ok(LaborCapacity::Half),
        Ok(common::LaborCapacity::None) => Ok(LaborCapacity::None),
        Err(_) => Err(unknown_value("person.labor_capacity")),
    }
}

pub(super) fn labor_capacity_to_wire(value: LaborCapacity) -> common::LaborCapacity {
    match value {
        LaborCapacity::Unassessed => common::LaborCapacity::Unspecified,
        LaborCapacity::Full => common::LaborCapacity::Full,
        LaborCapacity::Weak => common::LaborCapacity::Weak,
        LaborCapacity::Half => common::LaborCapacity::Half,
        LaborCapacity::None => common::LaborCapacity::None,
    }
}

pub(super) fn track_from_wire(value: i32) -> Result<Option<RetirementTrack>, IdentityError> {
    match pb::RetirementTrack::try_from(value) {
        Ok(pb::RetirementTrack::Unspecified) => Ok(None),
        Ok(pb::RetirementTrack::Man) => Ok(Some(RetirementTrack::Man)),
        Ok(pb::RetirementTrack::Woman55) => Ok(Some(RetirementTrack::Woman55)),
        Ok(pb::RetirementTrack::Woman50) => Ok(Some(RetirementTrack::Woman50)),
        Err(_) => Err(unknown_value("person.retirement_track")),
    }
}

pub(super) fn track_to_wire(value: RetirementTrack) -> pb::RetirementTrack {
    match value {
        RetirementTrack::Man => pb::RetirementTrack::Man,
        RetirementTrack::Woman55 => pb::RetirementTrack::Woman55,
        RetirementTrack::Woman50 => pb::RetirementTrack::Woman50,
    }
}

pub(super) fn unknown_value(field: &str) -> IdentityError {
    IdentityError::Invalid {
        field: field.to_string(),
        what: "is not one of the values the contract lists".into(),
        what_zh: "选项取值无效".into(),
    }
}

/// Each kind of change and its wire value.
const CHANGE_KINDS: [(ChangeKind, pb::ChangeKind); 13] = [
    (ChangeKind::Created, pb::ChangeKind::Created),
    (ChangeKind::Updated, pb::ChangeKind::Updated),
    (ChangeKind::CitizenIdCorrected, pb::ChangeKind::CitizenIdCorrected),
    (ChangeKind::HouseholdChanged, pb::ChangeKind::HouseholdChanged),
    (ChangeKind::ResidenceMoved, pb::ChangeKind::ResidenceMoved),
    (ChangeKind::RegistrationMoved, pb::ChangeKind::RegistrationMoved),
    (ChangeKind::CategoryCertified, pb::ChangeKind::CategoryCertified),
    (ChangeKind::CategoryRevoked, pb::ChangeKind::CategoryRevoked),
    (ChangeKind::CategoryAnnulled, pb::ChangeKind::CategoryAnnulled),
    (ChangeKind::CategoryDatesChanged, pb::ChangeKind::CategoryDatesChanged),
    (ChangeKind::EmploymentChanged, pb::ChangeKind::EmploymentChanged),
    (ChangeKind::Died, pb::ChangeKind::Died),
    (ChangeKind::MovedAway, pb::ChangeKind::MovedAway),
];

/// The kinds a watcher asks for (`kinds`): each a listed kind, none unspecified.
pub(super) fn change_kinds_from_wire(values: &[i32]) -> Result<Vec<ChangeKind>, IdentityError> {
    values
        .iter()
        .map(|value| {
            CHANGE_KINDS
                .iter()
                .find(|(_, wire)| *wire as i32 == *value)
                .map(|(domain, _)| *domain)
                .ok_or_else(|| unknown_value("kinds"))
        })
        .collect()
}

/// A feed event as watchers read it: what changed, never personal data.
pub(super) fn change_to_wire(event: &FeedEvent) -> pb::PersonChange {
    let kind = CHANGE_KINDS
        .iter()
        .find(|(domain, _)| domain.as_str() == event.kind)
        .map_or(pb::ChangeKind::Unspecified, |(_, wire)| *wire);
    let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap_or_default();
    let changed_fields = detail
        .get("changed")
        .and_then(|v| v.as_array())
        .map(|fields| fields.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let category = detail
        .get("category")
        .and_then(|v| v.as_str())
        .and_then(|c| common::PersonCategory::from_str_name(&format!("PERSON_CATEGORY_{}", c.to_uppercase())))
        .map_or(0, |c| c as i32);
    pb::PersonChange {
        cursor: event.position.encode(),
        person: event.resource.clone(),
        kind: kind as i32,
        effective_date: event.effective_date.map(wire::date_to_wire),
        category,
        changed_fields,
        record_time: Some(wire::timestamp_to_wire(event.recorded)),
        changes_behind: i64::try_from(event.behind).unwrap_or(i64::MAX),
    }
}

pub(super) fn status_from_wire(value: i32, field: &str) -> Result<EmploymentStatus, Problem> {
    use common::EmploymentStatus as W;
    let status = match W::try_from(value) {
        Ok(W::Unemployed) => EmploymentStatus::Unemployed,
        Ok(W::EmployedInCounty) => EmploymentStatus::EmployedInCounty,
        Ok(W::EmployedOutOfCounty) => EmploymentStatus::EmployedOutOfCounty,
        Ok(W::EmployedOutOfProvince) => EmploymentStatus::EmployedOutOfProvince,
        Ok(W::SelfEmployed) => EmploymentStatus::SelfEmployed,
        Ok(W::PublicWelfarePost) => EmploymentStatus::PublicWelfarePost,
        Ok(W::WorkRelief) => EmploymentStatus::WorkRelief,
        Ok(W::InTraining) => EmploymentStatus::InTraining,
        Ok(W::NotInLaborForce) => EmploymentStatus::NotInLaborForce,
        Ok(W::Unspecified) => return Err(Problem::required(field, "就业状态")),
        Err(_) => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                field,
                "is not a known employment status",
                "就业状态无法识别",
            ));
        }
    };
    Ok(status)
}

pub(super) fn status_to_wire(value: Option<EmploymentStatus>) -> common::EmploymentStatus {
    use common::EmploymentStatus as W;
    match value {
        None => W::Unspecified,
        Some(EmploymentStatus::Unemployed) => W::Unemployed,
        Some(EmploymentStatus::EmployedInCounty) => W::EmployedInCounty,
        Some(EmploymentStatus::EmployedOutOfCounty) => W::EmployedOutOfCounty,
        Some(EmploymentStatus::EmployedOutOfProvince) => W::EmployedOutOfProvince,
        Some(EmploymentStatus::SelfEmployed) => W::SelfEmployed,
        Some(EmploymentStatus::PublicWelfarePost) => W::PublicWelfarePost,
        Some(EmploymentStatus::WorkRelief) => W::WorkRelief,
        Some(EmploymentStatus::InTraining) => W::InTraining,
        Some(EmploymentStatus::NotInLaborForce) => W::NotInLaborForce,
    }
}

pub(super) fn kind_from_wire(value: i32) -> Result<Option<AlertKind>, Problem> {
    use pb::AlertKind as W;
    Ok(match W::try_from(value) {
        Ok(W::Unspecified) => None,
        Ok(W::IncomeDropYearOnYear) => Some(AlertKind::IncomeDropYearOnYear),
        Ok(W::IncomeDropMonthOnMonth) => Some(AlertKind::IncomeDropMonthOnMonth),
        Ok(W::EmploymentLost) => Some(AlertKind::EmploymentLost),
        Ok(W::RegionEmploymentDrop) => Some(AlertKind::RegionEmploymentDrop),
        Err(_) => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "kind",
                "is not a known alert kind",
                "预警类型无法识别",
            ));
        }
    })
}

pub(super) fn kind_to_wire(value: AlertKind) -> pb::AlertKind {
    match value {
        AlertKind::IncomeDropYearOnYear => pb::AlertKind::IncomeDropYearOnYear,
        AlertKind::IncomeDropMonthOnMonth => pb::AlertKind::IncomeDropMonthOnMonth,
        AlertKind::EmploymentLost => pb::AlertKind::EmploymentLost,
        AlertKind::RegionEmploymentDrop => pb::AlertKind::RegionEmploymentDrop,
    }
}

pub(super) fn alert_to_wire(alert: &StoredAlert) -> pb::Alert {
    pb::Alert {
        name: alert.resource(),
        kind: kind_to_wire(alert.kind) as i32,
        person: alert
            .person_id
            .as_ref()
            .map(|id| format!("persons/{id}"))
            .unwrap_or_default(),
        region: alert.region.clone(),
        effective_date: Some(wire::date_to_wire(alert.effective_date)),
        drop_basis_points: alert.drop_basis_points,
        create_time: Some(wire::timestamp_to_wire(alert.created)),
        acknowledge_time: alert.acknowledged.map(wire::timestamp_to_wire),
        acknowledge_subject: alert.acknowledge_subject.clone().unwrap_or_default(),
        acknowledge_note: alert.acknowledge_note.clone().unwrap_or_default(),
    }
}

pub(super) fn employment_to_wire(record: &StoredEmployment) -> pb::EmploymentRecord {
    pb::EmploymentRecord {
        name: record.resource(),
        status: status_to_wire(Some(record.status)) as i32,
        employer: record.employer.clone(),
        work_region: record.work_region.clone(),
        start_date: Some(wire::date_to_wire(record.start_date)),
        end_date: record.end_date.map(wire::date_to_wire),
        reporting_system: record.reporting_system.clone(),
    }
}

fn text_problem(error: CertificationError) -> Problem {
    Problem::invalid_field(
        ErrorReason::FieldRequired,
        error.field(),
        error.to_string(),
        error.message_zh(),
    )
}

/// An employment record as RecordEmployment gives it; it may not start after `today`.
pub(super) fn employment_from_wire(
    record: &pb::EmploymentRecord,
    regions: &DivisionTable,
    today: Date,
) -> Result<NewEmployment, Problem> {
    let status = status_from_wire(record.status, "record.status")?;
    let employer = record.employer.trim();
    if employer.chars().count() > 100 || employer.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            ErrorReason::FieldTooLong,
            "record.employer",
            "at most 100 characters without control characters",
            "用工单位不超过100个字",
        ));
    }
    let work_region = record.work_region.trim();
    if !work_region.is_empty() && !regions.is_known(work_region) {
        return Err(IdentityError::RegionUnknown {
            field: "record.work_region".into(),
            code: work_region.to_string(),
        }
        .into());
    }
    let start_date = wire::date("record.start_date", record.start_date.as_ref())?;
    let end_date = wire::optional_date("record.end_date", record.end_date.as_ref())?;
    if end_date.is_some_and(|end| end < start_date) {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "record.end_date",
            "is before the start date",
            "结束日期早于开始日期",
        ));
    }
    if start_date > today {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "record.start_date",
            "is in the future",
            "开始日期晚于今天",
        ));
    }
    let reporting_system = short_text(&record.reporting_system, "record.reporting_system").map_err(text_problem)?;
    Ok(NewEmployment {
        status,
        employer: employer.to_string(),
        work_region: work_region.to_string(),
        start_date,
        end_date,
        reporting_system,
    })
}

/// A month's income as RecordIncome gives it; the month may not lie after `today`'s.
pub(super) fn income_report(request: &pb::RecordIncomeRequest, today: Date) -> Result<IncomeReport, Problem> {
    let month = request
        .month
        .as_ref()
        .ok_or_else(|| Problem::required("month", "月份"))
        .and_then(|m| {
            Month::new(m.year, m.month).ok_or_else(|| {
                Problem::invalid_field(ErrorReason::FieldInvalid, "month", "is not a month", "月份不正确")
            })
        })?;
    if month > Month::of(today) {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "month",
            "is in the future",
            "月份晚于本月",
        ));
    }
    let income = request
        .income
        .as_ref()
        .ok_or_else(|| Problem::required("income", "收入"))?
        .fen;
    if income < 0 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "income.fen",
            "must be zero or more",
            "收入不能为负数",
        ));
    }
    let reporting_system = short_text(&request.reporting_system, "reporting_system").map_err(text_problem)?;
    Ok(IncomeReport {
        month,
        income_fen: income,
        reporting_system,
    })
}

/// The id in `alerts/{alert}`.
pub(super) fn alert_id(name: &str) -> Result<&str, Problem> {
    ids(name, &["alerts"])
        .and_then(|ids| ids.first().copied())
        .ok_or_else(|| {
            Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "name",
                "must be alerts/{alert}",
                "预警编号格式不正确",
            )
        })
}

/// What a clerk did about an alert: 1 to 500 characters, no control characters.
pub(super) fn acknowledgement_note(note: &str) -> Result<&str, Problem> {
    let note = note.trim();
    if note.is_empty() {
        return Err(Problem::required("note", "处理情况"));
    }
    if note.chars().count() > 500 || note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Problem::invalid_field(
            ErrorReason::FieldTooLong,
            "note",
            "at most 500 characters without control characters",
            "处理情况不超过500个字",
        ));
    }
    Ok(note)
}

/// Monitoring counts by region, categories and statuses named as the contract's enums.
pub(super) fn stats_to_wire(
    counts: Vec<(String, RegionCounts)>,
    regions: &DivisionTable,
) -> pb::GetMonitoringStatsResponse {
    let category_name = |text: &str| {
        Category::parse(text)
            .map(|c| category_to_wire(c).as_str_name().to_string())
            .unwrap_or_else(|| text.to_string())
    };
    let status_name = |text: &str| status_to_wire(EmploymentStatus::parse(text)).as_str_name().to_string();
    pb::GetMonitoringStatsResponse {
        regions: counts
            .into_iter()
            .map(|(code, counts)| pb::RegionStats {
                region: Some(common::RegionCode {
                    display_name: regions.name(&code).unwrap_or_default().to_string(),
                    code,
                }),
                persons_by_category: counts.by_category.iter().map(|(k, v)| (category_name(k), *v)).collect(),
                persons_by_employment_status: counts.by_status.iter().map(|(k, v)| (status_name(k), *v)).collect(),
                target_persons: counts.target_persons,
            })
            .collect(),
    }
}

pub(super) fn pending_to_wire(pending: &StoredPending) -> pb::PendingCertification {
    pb::PendingCertification {
        name: pending.resource(),
        person: format!("persons/{}", pending.person_id),
        certification: Some(common::CategoryCertification {
            category: category_to_wire(pending.category) as i32,
            household_type: household_type_to_wire(pending.household_type) as i32,
            certifying_body: String::new(),
            document_reference: pending.document_reference.clone(),
            valid_from: Some(wire::date_to_wire(pending.valid_from)),
            ..Default::default()
        }),
        import_subject: pending.import_subject.clone(),
    }
}

/// One import row's result: the person it registered or found, or why it was refused.
pub(super) fn row_result_to_wire(result: RowResult) -> pb::ImportRowResult {
    match result.outcome {
        RowOutcome::Rejected(problem) => pb::ImportRowResult {
            row_number: result.row_number,
            outcome: pb::ImportOutcome::Rejected as i32,
            person: String::new(),
            reason: problem.reason_code().to_string(),
            field: problem.violations.first().map(|v| v.field.clone()).unwrap_or_default(),
            message: problem.message_zh,
            notes: Vec::new(),
        },
        RowOutcome::Accepted {
            change,
            person_id,
            notes,
        } => pb::ImportRowResult {
            row_number: result.row_number,
            outcome: match change {
                RowChange::Created => pb::ImportOutcome::Created,
                RowChange::Updated => pb::ImportOutcome::Updated,
                RowChange::Unchanged => pb::ImportOutcome::Unchanged,
            } as i32,
            person: format!("persons/{person_id}"),
            reason: notes.first().map(note_code).unwrap_or_default().into(),
            field: String::new(),
            message: notes.iter().map(note_message).collect::<Vec<_>>().join("；"),
            notes: notes.iter().map(|note| note_code(note).to_string()).collect(),
        },
    }
}

fn note_code(note: &RowNote) -> &'static str {
    match note {
        RowNote::CategoriesPending => "CATEGORIES_PENDING",
        RowNote::ResidenceKept { .. } => "RESIDENCE_KEPT",
    }
}

fn note_message(note: &RowNote) -> String {
    match note {
        RowNote::CategoriesPending => "类别待认定部门审核确认".into(),
        RowNote::ResidenceKept { residence } => {
            format!("户籍地已按导入变更，现居住地与原户籍地不同，仍保留为{residence}，请核实是否随迁")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ids;

    const A: &str = "0123456789abcdef0123";
    const B: &str = "fedcba9876543210fedc";

    #[test]
    fn resource_names_give_their_ids_and_nothing_else_passes() {
        assert_eq!(ids(&format!("persons/{A}"), &["persons"]), Some(vec![A]));
        assert_eq!(
            ids(
                &format!("persons/{A}/certifications/{B}"),
                &["persons", "certifications"]
            ),
            Some(vec![A, B])
        );
        assert_eq!(
            ids(&format!("households/{A}"), &["persons"]),
            None,
            "another collection"
        );
        assert_eq!(
            ids(&format!("persons/{A}/certifications/{B}"), &["persons"]),
            None,
            "trailing segments"
        );
        assert_eq!(ids("persons/not-hex-not-twenty", &["persons"]), None);
        assert_eq!(
            ids(&format!("persons/{A}/certifications"), &["persons", "certifications"]),
            None
        );
    }
}
