//! Persons: register, read (masked, or whole for a stated purpose), update what changes in a
//! life, find by citizen ID one at a time or a whole file at once, list.

use std::path::PathBuf;

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::{Identity, connect_identity};
use crate::Failure;
use crate::client::{ClientArgs, PageArgs, call, list_pages};
use crate::format::{enum_filter, enum_value, optional_date, parse_past_date, resource_name};
use crate::print::{Columns, Output, show};

/// BatchLookupPersons takes at most this many citizen IDs a call.
const LOOKUP_BATCH: usize = 1000;

const PERSON: &str = "bangfu.identity.v1.Person";

/// `identity list`: one line a person, as the list answers (masked).
const PERSON_ROW: Columns = Columns {
    message: PERSON,
    columns: &[
        ("person", "name"),
        ("citizen id", "citizen_id"),
        ("registered", "registered_region"),
        ("employment", "employment_status"),
        ("name", "display_name"),
    ],
};

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Name.
    #[arg(long)]
    name: String,
    /// Citizen ID (18 characters).
    #[arg(long)]
    citizen_id: String,
    /// Registered region: a 12-digit village code.
    #[arg(long)]
    region: String,
    /// Mobile phone, 11 digits.
    #[arg(long, default_value = "")]
    phone: String,
    /// A unique id making a retry safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

/// How a clerk asks for a person's clear data: the unmasked view needs a purpose, and every
/// such read is audited under it.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Show the whole record in clear (citizen ID, name, phone, birth date): needs the
    /// personal-data permission and --purpose; the read is audited.
    #[arg(long, requires = "purpose")]
    unmasked: bool,
    /// With --unmasked: the case, file or document number the read serves, e.g.
    /// 枣人社函〔2026〕12号.
    #[arg(long, requires = "unmasked")]
    purpose: Option<String>,
    /// With --unmasked: why, one of eligibility-review, payment, identity-verification,
    /// case-handling, data-correction, audit-inspection.
    #[arg(long, default_value = "case-handling", requires = "unmasked")]
    purpose_code: String,
}

impl ViewArgs {
    /// The view and purpose of a read.
    fn request(&self) -> Result<(i32, Option<common::AccessPurpose>), Failure> {
        match (&self.purpose, self.unmasked) {
            (Some(reference), true) => Ok((
                common::PersonalDataView::Unmasked as i32,
                Some(common::AccessPurpose {
                    code: enum_value::<common::AccessPurposeCode>("--purpose-code", &self.purpose_code)?,
                    reference: reference.clone(),
                }),
            )),
            _ => Ok((common::PersonalDataView::Masked as i32, None)),
        }
    }
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
    #[command(flatten)]
    view: ViewArgs,
    /// The record as of this day (YYYY-MM-DD): categories, labor capacity and employment
    /// status then. Default: today.
    #[arg(long)]
    on: Option<String>,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Citizen ID.
    citizen_id: String,
    /// A name to compare.
    #[arg(long, default_value = "")]
    name: String,
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// A CSV file (UTF-8 or GBK) or workbook (.xlsx, .xls) with a column of citizen IDs
    /// (身份证号, 证件号码, 身份证号码 or citizen_id) and optionally names (姓名, name).
    #[arg(long)]
    file: PathBuf,
    /// The sheet of a workbook (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// Where to write the result (.csv with a byte-order mark for Excel, or .xlsx). Default:
    /// beside the file, NAME.lookup.csv.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only persons registered or residing under this division-code prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region: String,
    /// Only persons holding this category today: poverty-alleviated, monitored-at-risk,
    /// rural-low-income, relocated, yellow-river-resettled, employment-difficulty, disabled.
    #[arg(long)]
    category: Option<String>,
    /// Only persons with this employment status today (the values `employment --status` takes).
    #[arg(long)]
    status: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

/// What changes in a person's life. Employment status is recorded with `identity employment`
/// (it keeps its history and the system that reported it); households with `identity
/// household`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
    /// The name as registered (a correction of spelling).
    #[arg(long)]
    name: Option<String>,
    /// Mobile phone, 11 digits; an empty value removes it.
    #[arg(long)]
    phone: Option<String>,
    /// Registered region (户籍地): a 12-digit village code.
    #[arg(long)]
    registered_region: Option<String>,
    /// Residence region (居住地): a 12-digit village code.
    #[arg(long)]
    residence_region: Option<String>,
    /// Labor capacity: full, weak, half, none.
    #[arg(long)]
    labor_capacity: Option<String>,
    /// Skills, comma-separated (replaces the list).
    #[arg(long)]
    skills: Option<String>,
    /// The retirement track: man, woman-55, woman-50.
    #[arg(long)]
    retirement_track: Option<String>,
    /// The date of death, YYYY-MM-DD.
    #[arg(long)]
    death_date: Option<String>,
    /// The date the person moved away from the area, YYYY-MM-DD.
    #[arg(long)]
    moved_away_date: Option<String>,
    /// The day the change takes effect, YYYY-MM-DD (regions and labor capacity keep their
    /// history). Default: today.
    #[arg(long)]
    effective: Option<String>,
}

pub(super) async fn create(args: CreateArgs) -> Result<(), Failure> {
    let mut identity = connect_identity(&args.client).await?;
    let person = pb::Person {
        display_name: args.name,
        citizen_id: args.citizen_id,
        phone: args.phone,
        registered_region: Some(region(args.region)),
        ..Default::default()
    };
    let created = call(identity.create_person(pb::CreatePersonRequest {
        person: Some(person),
        request_id: args.request_id,
    }))
    .await?;
    show(
        PERSON,
        &created.person.unwrap_or_default(),
        args.client.output().is_json(),
    )
}

pub(super) async fn get(args: GetArgs) -> Result<(), Failure> {
    let (view, purpose) = args.view.request()?;
    let period = optional_date("--on", args.on.as_deref())?.map(|day| common::Period {
        first_day: Some(day),
        last_day: Some(day),
    });
    let mut identity = connect_identity(&args.client).await?;
    let read = call(identity.get_person(pb::GetPersonRequest {
        name: resource_name("persons", &args.person),
        period,
        view,
        purpose,
    }))
    .await?;
    show(PERSON, &read.person.unwrap_or_default(), args.client.output().is_json())
}

pub(super) async fn find(args: FindArgs) -> Result<(), Failure> {
    let mut identity = connect_identity(&args.client).await?;
    let found = call(identity.lookup_person(pb::LookupPersonRequest {
        citizen_id: args.citizen_id,
        display_name: args.name,
    }))
    .await?;
    if found.person.is_empty() {
        // A script tells "not registered" from "registered" by the exit code alone.
        return Err(Failure::not_found("no person in your scope holds this citizen ID"));
    }
    show(
        "bangfu.identity.v1.LookupPersonResponse",
        &found,
        args.client.output().is_json(),
    )
}

pub(super) async fn list(args: ListArgs) -> Result<(), Failure> {
    let category = enum_filter::<common::PersonCategory>("--category", args.category.as_deref())?;
    let employment_status = enum_filter::<common::EmploymentStatus>("--status", args.status.as_deref())?;
    let mut identity = connect_identity(&args.client).await?;
    list_pages(
        &mut identity,
        args.client.output(),
        &args.page,
        &PERSON_ROW,
        |identity, page_size, page_token| {
            let request = pb::ListPersonsRequest {
                region_prefix: args.region.clone(),
                category,
                employment_status,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(identity.list_persons(request)).await?;
                Ok((page.persons, page.next_page_token))
            })
        },
    )
    .await
}

pub(super) async fn update(args: UpdateArgs) -> Result<(), Failure> {
    let mut person = pb::Person {
        name: resource_name("persons", &args.person),
        ..Default::default()
    };
    let mut paths = Vec::new();
    let mut set = |path: &str| paths.push(path.to_string());
    if let Some(name) = args.name {
        person.display_name = name;
        set("display_name");
    }
    if let Some(phone) = args.phone {
        person.phone = phone;
        set("phone");
    }
    if let Some(code) = args.registered_region {
        person.registered_region = Some(region(code));
        set("registered_region");
    }
    if let Some(code) = args.residence_region {
        person.residence_region = Some(region(code));
        set("residence_region");
    }
    if let Some(capacity) = args.labor_capacity {
        person.labor_capacity = enum_value::<common::LaborCapacity>("--labor-capacity", &capacity)?;
        set("labor_capacity");
    }
    if let Some(skills) = args.skills {
        person.skills = skills
            .split([',', '，', '、'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        set("skills");
    }
    if let Some(track) = args.retirement_track {
        person.retirement_track = enum_value::<pb::RetirementTrack>("--retirement-track", &track)?;
        set("retirement_track");
    }
    if let Some(day) = args.death_date {
        person.death_date = Some(parse_past_date("--death-date", &day)?);
        set("death_date");
    }
    if let Some(day) = args.moved_away_date {
        person.moved_away_date = Some(parse_past_date("--moved-away-date", &day)?);
        set("moved_away_date");
    }
    if paths.is_empty() {
        return Err(Failure::usage(
            "nothing to change: give at least one of --name, --phone, --registered-region, --residence-region, \
             --labor-capacity, --skills, --retirement-track, --death-date, --moved-away-date",
        ));
    }
    let effective_date = optional_date("--effective", args.effective.as_deref())?;
    let mut identity = connect_identity(&args.client).await?;
    let updated = change(&mut identity, person, paths, effective_date).await?;
    show(PERSON, &updated, args.client.output().is_json())
}

/// Reads the person's etag and sends the change with it, so that a change someone else made
/// since is refused rather than overwritten; the refusal says what to do.
pub(super) async fn change(
    identity: &mut Identity,
    mut person: pb::Person,
    paths: Vec<String>,
    effective_date: Option<common::Date>,
) -> Result<pb::Person, Failure> {
    let current = call(identity.get_person(pb::GetPersonRequest {
        name: person.name.clone(),
        ..Default::default()
    }))
    .await?
    .person
    .unwrap_or_default();
    person.etag = current.etag;
    let answer = identity
        .update_person(pb::UpdatePersonRequest {
            person: Some(person),
            update_mask: Some(prost_types::FieldMask { paths }),
            effective_date,
        })
        .await;
    match answer {
        Ok(answer) => Ok(answer.into_inner().person.unwrap_or_default()),
        Err(status) if status.code() == tonic::Code::Aborted => {
            let mut failure = crate::client::call_failed(&status);
            failure.message = format!(
                "someone else changed this person after it was read, so nothing was changed: read it again \
                 (identity get) and repeat the change if it still applies ({})",
                failure.message
            );
            Err(failure)
        }
        Err(status) => Err(crate::client::call_failed(&status)),
    }
}

fn region(code: String) -> common::RegionCode {
    common::RegionCode {
        code,
        display_name: String::new(),
    }
}

pub(super) async fn lookup(args: LookupArgs) -> Result<(), Failure> {
    let table = crate::table_file::read_table(&args.file, args.sheet.as_deref())?;
    let lookups = lookup_rows(&table)?;
    let output = args.output.clone().unwrap_or_else(|| {
        let stem = args.file.file_stem().and_then(|s| s.to_str()).unwrap_or("lookup");
        args.file.with_file_name(format!("{stem}.lookup.csv"))
    });
    let mut identity = connect_identity(&args.client).await?;
    // A file often repeats an ID: ask once for each, answer every row.
    let mut unique: Vec<&pb::LookupPersonRequest> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for row in &lookups {
        if let Some(request) = &row.request {
            let key = (request.citizen_id.clone(), request.display_name.clone());
            seen.entry(key).or_insert_with(|| {
                unique.push(request);
                unique.len() - 1
            });
        }
    }
    let mut answers = Vec::with_capacity(unique.len());
    for batch in unique.chunks(LOOKUP_BATCH) {
        let answered = call(identity.batch_lookup_persons(pb::BatchLookupPersonsRequest {
            lookups: batch.iter().map(|r| (*r).clone()).collect(),
        }))
        .await
        .map_err(|mut failure| {
            failure.message = format!(
                "{} ({} of {} IDs looked up before this; nothing was written)",
                failure.message,
                answers.len(),
                unique.len()
            );
            failure
        })?;
        answers.extend(answered.results);
    }
    let header = ["行号", "身份证号", "姓名", "结果", "姓名比对", "人员"].map(String::from);
    let mut rows = Vec::with_capacity(lookups.len());
    let (mut found, mut not_found, mut mismatched, mut invalid) = (0, 0, 0, 0);
    for row in &lookups {
        let (result, name_match, person) = match &row.request {
            None => {
                invalid += 1;
                (row.problem.clone(), String::new(), String::new())
            }
            Some(request) => {
                let index = seen[&(request.citizen_id.clone(), request.display_name.clone())];
                let answer = answers.get(index).cloned().unwrap_or_default();
                let name_match = match pb::NameMatch::try_from(answer.name_match) {
                    Ok(pb::NameMatch::Matched) => "一致",
                    Ok(pb::NameMatch::Mismatched) => "不一致",
                    _ => "",
                };
                if answer.person.is_empty() {
                    not_found += 1;
                    ("未找到".to_string(), String::new(), String::new())
                } else {
                    found += 1;
                    if name_match == "不一致" {
                        mismatched += 1;
                    }
                    ("已登记".to_string(), name_match.to_string(), answer.person)
                }
            }
        };
        rows.push(vec![
            row.line.to_string(),
            row.citizen_id.clone(),
            row.name.clone(),
            result,
            name_match,
            person,
        ]);
    }
    crate::table_file::write_table(&output, &header, &rows)?;
    let summary = serde_json::json!({
        "rows": lookups.len(),
        "found": found,
        "notFound": not_found,
        "nameMismatched": mismatched,
        "invalid": invalid,
        "output": output.display().to_string(),
    });
    if args.client.output() == Output::Text {
        crate::client::print_rows(&[
            ("rows", lookups.len().to_string()),
            ("found", found.to_string()),
            ("not found", not_found.to_string()),
            ("name mismatched", mismatched.to_string()),
            ("invalid", invalid.to_string()),
            ("written to", output.display().to_string()),
        ]);
    } else {
        say!("{summary:#}");
    }
    Ok(())
}

/// One row of a lookup file: what it asks, or why it cannot be asked.
struct LookupRow {
    line: usize,
    citizen_id: String,
    name: String,
    request: Option<pb::LookupPersonRequest>,
    problem: String,
}

/// The rows of a lookup file under its header row; an ID checked here before it is sent, so
/// a typo is reported on its row and costs no lookup.
fn lookup_rows(table: &[Vec<String>]) -> Result<Vec<LookupRow>, Failure> {
    let header = table
        .first()
        .ok_or_else(|| Failure::usage("the lookup file is empty: it needs a header row with 身份证号 (citizen_id)"))?;
    let position = |names: &[&str]| {
        header.iter().position(|cell| {
            let cell = cell.trim().trim_start_matches('\u{feff}').to_lowercase();
            names.contains(&cell.as_str())
        })
    };
    let id_column = position(&["身份证号", "身份证号码", "证件号码", "citizen_id"]).ok_or_else(|| {
        Failure::usage(format!(
            "the lookup file's header ({}) has no column of citizen IDs: name it 身份证号 or citizen_id",
            header.join(", ")
        ))
    })?;
    let name_column = position(&["姓名", "name", "display_name"]);
    let cell = |row: &Vec<String>, column: usize| row.get(column).map(|c| c.trim().to_string()).unwrap_or_default();
    Ok(table
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, row)| row.iter().any(|c| !c.trim().is_empty()))
        .map(|(index, row)| {
            let citizen_id = cell(row, id_column).to_ascii_uppercase();
            let name = name_column.map(|c| cell(row, c)).unwrap_or_default();
            let problem = id_problem(&citizen_id);
            LookupRow {
                line: index + 1,
                request: problem.is_none().then(|| pb::LookupPersonRequest {
                    citizen_id: citizen_id.clone(),
                    display_name: name.clone(),
                }),
                problem: problem.unwrap_or_default(),
                citizen_id,
                name,
            }
        })
        .collect())
}

/// Why a cell is not a citizen ID, in the words a clerk fixes it by.
pub(crate) fn id_problem(citizen_id: &str) -> Option<String> {
    if citizen_id.is_empty() {
        return Some("身份证号为空".to_string());
    }
    if citizen_id.contains('E') && citizen_id.contains('.') {
        return Some(format!(
            "身份证号 {citizen_id} 被 Excel 转成了科学计数法：请把该列设为文本格式后重新录入"
        ));
    }
    if citizen_id.chars().count() != 18 {
        return Some(format!("身份证号 {citizen_id} 不是 18 位"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|c| (*c).to_string()).collect())
            .collect()
    }

    #[test]
    fn a_lookup_file_is_read_by_its_header_and_bad_ids_are_named_on_their_rows() {
        let rows = lookup_rows(&table(&[
            &["姓名", "身份证号"],
            &["张三", "37040219800101001x"],
            &["", ""],
            &["李四", "3.70402E+17"],
            &["王五", "12345"],
        ]))
        .expect("read");
        assert_eq!(rows.len(), 3, "the blank row is skipped");
        assert_eq!(rows[0].line, 2);
        let asked = rows[0].request.as_ref().expect("asked");
        assert_eq!(
            asked.citizen_id, "37040219800101001X",
            "the check character is upper case"
        );
        assert_eq!(asked.display_name, "张三");
        assert!(rows[1].request.is_none());
        assert!(rows[1].problem.contains("文本"), "{}", rows[1].problem);
        assert_eq!(rows[1].line, 4);
        assert!(rows[2].problem.contains("18"), "{}", rows[2].problem);
    }

    #[test]
    fn a_lookup_file_without_an_id_column_is_refused_naming_its_columns() {
        let failure = lookup_rows(&table(&[&["姓名", "电话"], &["张三", "1"]]))
            .err()
            .expect("refused");
        assert!(failure.message.contains("姓名, 电话"), "{}", failure.message);
    }
}
