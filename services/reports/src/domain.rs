//! The forms, their periods and columns, the sign-off's states and levels, and the rules on
//! them; pure, no wire and no SQL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// A form Shandong's 2023 notice asks of every city and county (§(四) 加强工作调度).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Form {
    /// 防止返贫就业攻坚行动推进情况表 (附件1): quarterly, cumulative for the year.
    Progress,
    /// 脱贫人口就业帮扶项目清单 (附件2): the year's work-relief projects.
    ProjectList,
}

impl Form {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progress => "progress",
            Self::ProjectList => "project_list",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "progress" => Some(Self::Progress),
            "project_list" => Some(Self::ProjectList),
            _ => None,
        }
    }

    /// As a report's id begins.
    fn slug(self) -> &'static str {
        match self {
            Self::Progress => "progress",
            Self::ProjectList => "project-list",
        }
    }

    /// The form's own title, as the notice prints it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Progress => "防止返贫就业攻坚行动推进情况表",
            Self::ProjectList => "脱贫人口就业帮扶项目清单",
        }
    }

    /// Its attachment number in the notice.
    pub fn attachment(self) -> &'static str {
        match self {
            Self::Progress => "附件1",
            Self::ProjectList => "附件2",
        }
    }
}

/// A period reported: a quarter of a year (the progress form, counted from January 1), or the
/// year (the project list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub year: i32,
    /// 1 to 4; 0 for the year.
    pub quarter: u8,
}

impl Period {
    /// The quarter's or year's first day.
    pub fn first_day(self) -> Date {
        let month = if self.quarter == 0 { 1 } else { self.quarter * 3 - 2 };
        day(self.year, month, 1)
    }

    /// The quarter's or year's last day.
    pub fn last_day(self) -> Date {
        let month = if self.quarter == 0 { 12 } else { self.quarter * 3 };
        let month = Month::try_from(month).unwrap_or(Month::December);
        Date::from_calendar_date(self.year, month, month.length(self.year)).unwrap_or(Date::MAX)
    }

    /// The first day counted: the form is cumulative from the year's start.
    pub fn counted_from(self) -> Date {
        day(self.year, 1, 1)
    }

    /// The last day counted when generated on `today`: the period's end, or today when the
    /// period has not ended (the form is due before its quarter ends).
    pub fn as_of(self, today: Date) -> Date {
        self.last_day().min(today)
    }

    /// "2026q3" or "2026".
    pub fn label(self) -> String {
        if self.quarter == 0 {
            format!("{:04}", self.year)
        } else {
            format!("{:04}q{}", self.year, self.quarter)
        }
    }

    /// A label as `label` writes it ("2026q3", "2026"); the command line's "2026Q3" too.
    pub fn parse_label(text: &str) -> Option<Self> {
        let text = text.to_ascii_lowercase();
        let text = text.as_str();
        let (year, quarter) = match text.split_once('q') {
            Some((year, quarter)) => (year, quarter.parse::<u8>().ok().filter(|q| (1..=4).contains(q))?),
            None => (text, 0),
        };
        (year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
        Some(Self {
            year: year.parse().ok()?,
            quarter,
        })
    }

    /// "2026年第三季度" or "2026年度".
    pub fn label_zh(self) -> String {
        const QUARTERS: [&str; 4] = ["一", "二", "三", "四"];
        match self.quarter {
            0 => format!("{}年度", self.year),
            q => format!("{}年第{}季度", self.year, QUARTERS[usize::from(q - 1).min(3)]),
        }
    }
}

fn day(year: i32, month: u8, day: u8) -> Date {
    Month::try_from(month)
        .ok()
        .and_then(|m| Date::from_calendar_date(year, m, day).ok())
        .unwrap_or(Date::MIN)
}

/// Why a form, region and period cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("the year must be 2000 to 2100")]
    YearOutOfRange,
    #[error("the progress form is quarterly: quarter must be 1 to 4")]
    QuarterRequired,
    #[error("the project list is yearly: quarter must be 0")]
    QuarterNotAllowed,
    #[error("the period has not begun: it starts on {0}")]
    NotBegun(Date),
}

/// Checks the period a form is generated for on `today`.
pub fn check_period(form: Form, period: Period, today: Date) -> Result<(), PeriodError> {
    if !(2000..=2100).contains(&period.year) {
        return Err(PeriodError::YearOutOfRange);
    }
    match (form, period.quarter) {
        (Form::Progress, 1..=4) | (Form::ProjectList, 0) => {}
        (Form::Progress, _) => return Err(PeriodError::QuarterRequired),
        (Form::ProjectList, _) => return Err(PeriodError::QuarterNotAllowed),
    }
    if period.first_day() > today {
        return Err(PeriodError::NotBegun(period.first_day()));
    }
    Ok(())
}

/// The level of a region a form is filled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    Province,
    City,
    County,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Province => "province",
            Self::City => "city",
            Self::County => "county",
        }
    }

    /// The level of a 2-, 4- or 6-digit region code.
    pub fn of(region: &str) -> Option<Self> {
        if !region.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match region.len() {
            2 => Some(Self::Province),
            4 => Some(Self::City),
            6 => Some(Self::County),
            _ => None,
        }
    }
}

/// The scope that approves or returns a region's form: the level directly above (a county's
/// city, a city's province, and for a province the whole country: "*").
pub fn approver_scope(region: &str) -> &str {
    match region.len() {
        6 => &region[..4],
        4 => &region[..2],
        _ => "*",
    }
}

/// A report's id: "progress-370402-2026q3", "project-list-3704-2026".
pub fn report_id(form: Form, region: &str, period: Period) -> String {
    format!("{}-{region}-{}", form.slug(), period.label())
}

/// The form, region and period a report's id names.
pub fn parse_report_id(id: &str) -> Option<(Form, String, Period)> {
    let (form, rest) = if let Some(rest) = id.strip_prefix("progress-") {
        (Form::Progress, rest)
    } else {
        (Form::ProjectList, id.strip_prefix("project-list-")?)
    };
    let (region, period) = rest.split_once('-')?;
    Level::of(region)?;
    let period = Period::parse_label(period)?;
    (report_id(form, region, period) == id).then(|| (form, region.to_string(), period))
}

/// Where a report is in the sign-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Generating,
    Draft,
    Incomplete,
    Submitted,
    Approved,
    Returned,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generating => "generating",
            Self::Draft => "draft",
            Self::Incomplete => "incomplete",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Returned => "returned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Generating,
            Self::Draft,
            Self::Incomplete,
            Self::Submitted,
            Self::Approved,
            Self::Returned,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Submitted or approved: the numbers are the ones signed for.
    pub fn is_frozen(self) -> bool {
        matches!(self, Self::Submitted | Self::Approved)
    }
}

/// A column of the progress form, in its order; the reference columns stand beside the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Column {
    LaborAlliances,
    LaborBrands,
    LaborBases,
    LaborBaseTargetPersons,
    LaborCooperatives,
    AssistanceWorkshops,
    WorkshopTargetPersons,
    WorkReliefWorkers,
    WelfarePostTargetPersons,
    TrainingTargetPersons,
    RelocationSiteTargetPersons,
    RelocationRecruitmentEvents,
    ReferenceTargetPersonsRegistered,
    ReferencePartnerWorkersEmployed,
    ReferencePartnerTargetWorkersEmployed,
}

impl Column {
    /// The form's twelve columns, in its order.
    pub const FORM: [Column; 12] = [
        Self::LaborAlliances,
        Self::LaborBrands,
        Self::LaborBases,
        Self::LaborBaseTargetPersons,
        Self::LaborCooperatives,
        Self::AssistanceWorkshops,
        Self::WorkshopTargetPersons,
        Self::WorkReliefWorkers,
        Self::WelfarePostTargetPersons,
        Self::TrainingTargetPersons,
        Self::RelocationSiteTargetPersons,
        Self::RelocationRecruitmentEvents,
    ];

    /// The figures beside the form.
    pub const REFERENCE: [Column; 3] = [
        Self::ReferenceTargetPersonsRegistered,
        Self::ReferencePartnerWorkersEmployed,
        Self::ReferencePartnerTargetWorkersEmployed,
    ];

    /// The columns job matching's GetJobStats fills.
    pub const FROM_JOBS: [Column; 10] = [
        Self::LaborAlliances,
        Self::LaborBrands,
        Self::LaborBases,
        Self::LaborBaseTargetPersons,
        Self::LaborCooperatives,
        Self::AssistanceWorkshops,
        Self::WorkshopTargetPersons,
        Self::TrainingTargetPersons,
        Self::RelocationSiteTargetPersons,
        Self::RelocationRecruitmentEvents,
    ];

    /// The column's heading in the form (or beside it).
    pub fn title(self) -> &'static str {
        match self {
            Self::LaborAlliances => "劳务协作联盟个数",
            Self::LaborBrands => "特色劳务品牌个数",
            Self::LaborBases => "乡村振兴劳务基地个数",
            Self::LaborBaseTargetPersons => "乡村振兴劳务基地吸纳脱贫人口数",
            Self::LaborCooperatives => "劳务合作社个数",
            Self::AssistanceWorkshops => "就业帮扶车间个数",
            Self::WorkshopTargetPersons => "就业帮扶车间吸纳脱贫人口数",
            Self::WorkReliefWorkers => "以工代赈吸纳当地农村劳动力就业人数",
            Self::WelfarePostTargetPersons => "乡村公益性岗位安置脱贫人口数",
            Self::TrainingTargetPersons => "组织脱贫人口参加职业技能培训人数",
            Self::RelocationSiteTargetPersons => "易地搬迁安置区脱贫人口就业人数",
            Self::RelocationRecruitmentEvents => "举办“乐业搬迁（迁建）”专场招聘活动次数",
            Self::ReferenceTargetPersonsRegistered => "（参考）登记在册的脱贫人口和监测对象数",
            Self::ReferencePartnerWorkersEmployed => "（参考）协作省份劳动力在本省就业人数",
            Self::ReferencePartnerTargetWorkersEmployed => "（参考）其中协作省份脱贫人口数",
        }
    }

    /// The name the wire and the differences use ("LABOR_ALLIANCES").
    pub fn code(self) -> &'static str {
        match self {
            Self::LaborAlliances => "LABOR_ALLIANCES",
            Self::LaborBrands => "LABOR_BRANDS",
            Self::LaborBases => "LABOR_BASES",
            Self::LaborBaseTargetPersons => "LABOR_BASE_TARGET_PERSONS",
            Self::LaborCooperatives => "LABOR_COOPERATIVES",
            Self::AssistanceWorkshops => "ASSISTANCE_WORKSHOPS",
            Self::WorkshopTargetPersons => "WORKSHOP_TARGET_PERSONS",
            Self::WorkReliefWorkers => "WORK_RELIEF_WORKERS",
            Self::WelfarePostTargetPersons => "WELFARE_POST_TARGET_PERSONS",
            Self::TrainingTargetPersons => "TRAINING_TARGET_PERSONS",
            Self::RelocationSiteTargetPersons => "RELOCATION_SITE_TARGET_PERSONS",
            Self::RelocationRecruitmentEvents => "RELOCATION_RECRUITMENT_EVENTS",
            Self::ReferenceTargetPersonsRegistered => "REFERENCE_TARGET_PERSONS_REGISTERED",
            Self::ReferencePartnerWorkersEmployed => "REFERENCE_PARTNER_WORKERS_EMPLOYED",
            Self::ReferencePartnerTargetWorkersEmployed => "REFERENCE_PARTNER_TARGET_WORKERS_EMPLOYED",
        }
    }
}

/// One number and the source (an index into the report's sources) it was read from; `None`
/// for a sum of the rows under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub value: i64,
    pub source: Option<usize>,
}

/// A row of the progress form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The region's code: 2, 4 or 6 digits.
    pub region: String,
    pub name: String,
    pub level: Level,
    pub cells: BTreeMap<Column, Cell>,
}

/// A row of the project list (附件2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRow {
    pub county: String,
    pub county_name: String,
    pub sequence: u32,
    pub project: String,
    pub project_number: String,
    pub display_name: String,
    pub summary: String,
    pub people_employed: i64,
    pub target_persons: i64,
    pub in_key_assistance_county: bool,
    pub at_relocation_site: bool,
    pub in_flood_plain_resettlement: bool,
    pub contact_name: String,
    pub contact_phone: String,
    pub remarks: String,
    pub source: usize,
}

impl ProjectRow {
    /// The form's 项目所在地是否属于 cell: the circled numbers that apply ("①③"), or "否".
    pub fn location_flags(&self) -> String {
        let flags: String = [
            (self.in_key_assistance_county, '①'),
            (self.at_relocation_site, '②'),
            (self.in_flood_plain_resettlement, '③'),
        ]
        .into_iter()
        .filter_map(|(on, mark)| on.then_some(mark))
        .collect();
        if flags.is_empty() { "否".to_string() } else { flags }
    }

    /// The fields compared for differences, by name.
    fn fields(&self) -> [(&'static str, String); 8] {
        [
            ("display_name", self.display_name.clone()),
            ("summary", self.summary.clone()),
            ("people_employed", self.people_employed.to_string()),
            ("target_persons", self.target_persons.to_string()),
            ("location_flags", self.location_flags()),
            ("contact_name", self.contact_name.clone()),
            ("contact_phone", self.contact_phone.clone()),
            ("remarks", self.remarks.clone()),
        ]
    }
}

/// A stats call the numbers were read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub service: String,
    pub method: String,
    pub region_prefix: String,
    /// Microseconds since the epoch.
    pub read_us: i64,
}

/// A part that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub service: String,
    pub method: String,
    pub region_prefix: String,
    pub columns: Vec<Column>,
    pub reason: String,
}

/// What one generation read: the document a report keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Content {
    /// The last day counted, "YYYY-MM-DD".
    pub as_of: String,
    pub rows: Vec<Row>,
    pub projects: Vec<ProjectRow>,
    pub sources: Vec<Source>,
    pub missing: Vec<Missing>,
}

impl Content {
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The last day counted.
    pub fn as_of_date(&self) -> Option<Date> {
        bangfu_platform::parameters::parse_date_text(&self.as_of)
    }
}

/// A region's code and short name ("370402", "市中区").
pub type Named = (String, String);

/// A region's tree as the form lists it: each city (absent for a county's own form) with its
/// counties.
pub type Layout = Vec<(Option<Named>, Vec<Named>)>;

/// The progress form's rows for a region: each county as read, each city the sum of its
/// counties, the province the sum of its cities; the region's own row first, then each city
/// followed by its counties (as the form lists them).
///
/// `layout` is the region's tree: (city code and name, its counties' codes and names); a
/// county report is one city-less entry.
pub fn progress_rows(
    region: (&str, &str),
    layout: &[(Option<Named>, Vec<Named>)],
    county_cells: &BTreeMap<String, BTreeMap<Column, Cell>>,
    region_only: &BTreeMap<Column, Cell>,
) -> Vec<Row> {
    let level = Level::of(region.0).unwrap_or(Level::County);
    let county_row = |code: &str, name: &str| Row {
        region: code.to_string(),
        name: name.to_string(),
        level: Level::County,
        cells: county_cells.get(code).cloned().unwrap_or_default(),
    };
    if level == Level::County {
        let mut row = county_row(region.0, region.1);
        row.cells.extend(region_only.iter().map(|(c, v)| (*c, *v)));
        return vec![row];
    }
    let mut below = Vec::new();
    let mut children = Vec::new();
    for (city, counties) in layout {
        let rows: Vec<Row> = counties.iter().map(|(code, name)| county_row(code, name)).collect();
        match city {
            Some((code, name)) if level == Level::Province => {
                let city_row = Row {
                    region: code.clone(),
                    name: name.clone(),
                    level: Level::City,
                    cells: sum(&rows),
                };
                children.push(city_row.clone());
                below.push(city_row);
                below.extend(rows);
            }
            _ => {
                children.extend(rows.iter().cloned());
                below.extend(rows);
            }
        }
    }
    let mut top = Row {
        region: region.0.to_string(),
        name: region.1.to_string(),
        level,
        cells: sum(&children),
    };
    top.cells.extend(region_only.iter().map(|(c, v)| (*c, *v)));
    let mut rows = vec![top];
    rows.extend(below);
    rows
}

/// The sum of each column over `rows`, for the columns every row has: a column missing in a
/// child is missing in the sum (never a sum of what happened to answer).
fn sum(rows: &[Row]) -> BTreeMap<Column, Cell> {
    let mut totals = BTreeMap::new();
    for column in Column::FORM.iter().chain(Column::REFERENCE.iter()) {
        let values: Option<Vec<i64>> = rows.iter().map(|r| r.cells.get(column).map(|c| c.value)).collect();
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            totals.insert(
                *column,
                Cell {
                    value: values.iter().sum(),
                    source: None,
                },
            );
        }
    }
    totals
}

/// A cell whose live value differs from the frozen one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub row: String,
    pub column: String,
    pub frozen: String,
    pub live: String,
}

/// A document's rows as (row, [(column, value)]), in its order: the progress form's by region
/// and column code, the project list's by project and field ("" for a cell not read).
fn cells_of(content: &Content) -> Vec<(&str, Vec<(&'static str, String)>)> {
    let rows = content.rows.iter().map(|row| {
        let cells = Column::FORM
            .iter()
            .chain(Column::REFERENCE.iter())
            .map(|c| {
                (
                    c.code(),
                    row.cells.get(c).map(|cell| cell.value.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        (row.region.as_str(), cells)
    });
    let projects = content
        .projects
        .iter()
        .map(|p| (p.project.as_str(), p.fields().to_vec()));
    rows.chain(projects).collect()
}

/// Every cell of `live` that differs from `frozen`: the progress form's by region and column,
/// the project list's by project and field; rows in the frozen order, then rows only read now.
pub fn differences(frozen: &Content, live: &Content) -> Vec<Difference> {
    let (frozen, live) = (cells_of(frozen), cells_of(live));
    let frozen_rows: BTreeMap<&str, &[(&str, String)]> = frozen.iter().map(|(k, c)| (*k, c.as_slice())).collect();
    let live_rows: BTreeMap<&str, &[(&str, String)]> = live.iter().map(|(k, c)| (*k, c.as_slice())).collect();
    let only_live = live.iter().filter(|(k, _)| !frozen_rows.contains_key(k));
    let mut out = Vec::new();
    for (row, cells) in frozen.iter().chain(only_live) {
        let value = |side: Option<&&[(&str, String)]>, i: usize| side.map(|c| c[i].1.clone()).unwrap_or_default();
        let (f, l) = (frozen_rows.get(row), live_rows.get(row));
        for (i, (column, _)) in cells.iter().enumerate() {
            let (frozen, live) = (value(f, i), value(l, i));
            if frozen != live {
                out.push(Difference {
                    row: row.to_string(),
                    column: column.to_string(),
                    frozen,
                    live,
                });
            }
        }
    }
    out
}

/// When a form for `period` is due, from the deadline parameters: the progress form on
/// `progress_day` of the quarter's last month, the project list on `project_list` (month,
/// day) of the year. `None` when no deadline is configured.
pub fn due_date(
    form: Form,
    period: Period,
    progress_day: Option<i64>,
    project_list: Option<(i64, i64)>,
) -> Option<Date> {
    let (month, day_of_month) = match form {
        Form::Progress => (i64::from(period.quarter) * 3, progress_day?),
        Form::ProjectList => project_list?,
    };
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let day_of_month = u8::try_from(day_of_month).ok()?.min(month.length(period.year));
    Date::from_calendar_date(period.year, month, day_of_month).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn quarters_and_years_have_their_days_and_ids() {
        let q3 = Period { year: 2026, quarter: 3 };
        assert_eq!(q3.first_day(), date!(2026 - 07 - 01));
        assert_eq!(q3.last_day(), date!(2026 - 09 - 30));
        assert_eq!(q3.counted_from(), date!(2026 - 01 - 01));
        assert_eq!(q3.as_of(date!(2026 - 09 - 10)), date!(2026 - 09 - 10));
        assert_eq!(q3.as_of(date!(2026 - 12 - 06)), date!(2026 - 09 - 30));
        let id = report_id(Form::Progress, "370402", q3);
        assert_eq!(id, "progress-370402-2026q3");
        assert_eq!(parse_report_id(&id), Some((Form::Progress, "370402".into(), q3)));
        let year = Period { year: 2026, quarter: 0 };
        assert_eq!(year.last_day(), date!(2026 - 12 - 31));
        let id = report_id(Form::ProjectList, "3704", year);
        assert_eq!(parse_report_id(&id), Some((Form::ProjectList, "3704".into(), year)));
        assert_eq!(parse_report_id("progress-37040-2026q3"), None);
        assert_eq!(parse_report_id("progress-370402-2026q5"), None);
        assert_eq!(parse_report_id("progress-370402-26q3"), None);
        assert_eq!(year.label_zh(), "2026年度");
        assert_eq!(q3.label_zh(), "2026年第三季度");
    }

    #[test]
    fn a_period_must_have_begun_and_fit_its_form() {
        let today = date!(2026 - 12 - 06);
        let q = |quarter| Period { year: 2026, quarter };
        assert_eq!(check_period(Form::Progress, q(4), today), Ok(()));
        assert_eq!(
            check_period(Form::Progress, Period { year: 2027, quarter: 1 }, today),
            Err(PeriodError::NotBegun(date!(2027 - 01 - 01)))
        );
        assert_eq!(
            check_period(Form::Progress, q(0), today),
            Err(PeriodError::QuarterRequired)
        );
        assert_eq!(
            check_period(Form::ProjectList, q(2), today),
            Err(PeriodError::QuarterNotAllowed)
        );
        assert_eq!(check_period(Form::ProjectList, q(0), today), Ok(()));
    }

    #[test]
    fn the_level_above_approves() {
        assert_eq!(approver_scope("370402"), "3704");
        assert_eq!(approver_scope("3704"), "37");
        assert_eq!(approver_scope("37"), "*");
    }

    #[test]
    fn deadlines_follow_the_parameters() {
        let q1 = Period { year: 2026, quarter: 1 };
        assert_eq!(
            due_date(Form::Progress, q1, Some(15), None),
            Some(date!(2026 - 03 - 15))
        );
        assert_eq!(due_date(Form::Progress, q1, None, Some((10, 25))), None);
        let year = Period { year: 2026, quarter: 0 };
        assert_eq!(
            due_date(Form::ProjectList, year, Some(15), Some((10, 25))),
            Some(date!(2026 - 10 - 25))
        );
        // A day past the month's end is its last day.
        assert_eq!(
            due_date(Form::Progress, Period { year: 2026, quarter: 2 }, Some(31), None),
            Some(date!(2026 - 06 - 30))
        );
    }

    fn cells(values: &[(Column, i64)]) -> BTreeMap<Column, Cell> {
        values
            .iter()
            .map(|(c, v)| {
                (
                    *c,
                    Cell {
                        value: *v,
                        source: Some(0),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_total_row_sums_its_children_and_a_missing_cell_stays_missing() {
        let layout = vec![
            (
                Some(("3704".to_string(), "枣庄市".to_string())),
                vec![
                    ("370402".to_string(), "市中区".to_string()),
                    ("370403".to_string(), "薛城区".to_string()),
                ],
            ),
            (
                Some(("3701".to_string(), "济南市".to_string())),
                vec![("370102".to_string(), "历下区".to_string())],
            ),
        ];
        let mut county = BTreeMap::new();
        county.insert(
            "370402".to_string(),
            cells(&[(Column::LaborBrands, 2), (Column::WorkReliefWorkers, 5)]),
        );
        county.insert(
            "370403".to_string(),
            cells(&[(Column::LaborBrands, 1), (Column::WorkReliefWorkers, 7)]),
        );
        // 历下区's work relief could not be read.
        county.insert("370102".to_string(), cells(&[(Column::LaborBrands, 4)]));
        let rows = progress_rows(("37", "山东省"), &layout, &county, &BTreeMap::new());
        let regions: Vec<&str> = rows.iter().map(|r| r.region.as_str()).collect();
        assert_eq!(regions, ["37", "3704", "370402", "370403", "3701", "370102"]);
        assert_eq!(rows[0].cells[&Column::LaborBrands].value, 7);
        assert_eq!(rows[0].cells[&Column::LaborBrands].source, None);
        assert_eq!(rows[1].cells[&Column::WorkReliefWorkers].value, 12);
        assert!(!rows[4].cells.contains_key(&Column::WorkReliefWorkers));
        assert!(
            !rows[0].cells.contains_key(&Column::WorkReliefWorkers),
            "a sum over a missing cell is missing"
        );
    }

    #[test]
    fn differences_name_every_changed_cell() {
        let row = |v| Row {
            region: "370402".into(),
            name: "市中区".into(),
            level: Level::County,
            cells: cells(&[(Column::LaborBrands, v), (Column::LaborBases, 1)]),
        };
        let frozen = Content {
            rows: vec![row(2)],
            ..Content::default()
        };
        let live = Content {
            rows: vec![row(3)],
            ..Content::default()
        };
        assert_eq!(
            differences(&frozen, &live),
            vec![Difference {
                row: "370402".into(),
                column: "LABOR_BRANDS".into(),
                frozen: "2".into(),
                live: "3".into()
            }]
        );
        assert!(differences(&frozen, &frozen).is_empty());
    }
}
