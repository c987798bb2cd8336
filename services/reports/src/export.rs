//! A report as a file: the form as the notice prints it (title, header rows, merged cells,
//! numbers as numbers) in an xlsx workbook with its sources beside it, or as CSV.

use bangfu_platform::error::Problem;
use bangfu_platform::regions::DivisionTable;
use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};
use time::OffsetDateTime;

use crate::app::ReportView;
use crate::domain::{Column, Content, Form, Level};

/// The row of the progress form's first region (after the title, the unit line and two header
/// rows), and of the project list's first project.
pub const FIRST_DATA_ROW: u32 = 4;

/// The file's name: "附件1_防止返贫就业攻坚行动推进情况表_370402_2026q3.xlsx".
pub fn file_name(view: &ReportView, extension: &str) -> String {
    let report = &view.report;
    format!(
        "{}_{}_{}_{}.{extension}",
        report.form.attachment(),
        report.form.title(),
        report.region,
        report.period.label()
    )
}

/// A stored instant (microseconds since the epoch).
pub fn instant(micros: i64) -> OffsetDateTime {
    bangfu_platform::db::from_micros(micros).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn china(instant: OffsetDateTime) -> OffsetDateTime {
    instant.to_offset(time::macros::offset!(+8))
}

fn date_zh(date: time::Date) -> String {
    format!("{}年{:02}月{:02}日", date.year(), u8::from(date.month()), date.day())
}

fn time_zh(instant: OffsetDateTime) -> String {
    let at = china(instant);
    format!("{} {:02}:{:02}", date_zh(at.date()), at.hour(), at.minute())
}

fn failed(error: XlsxError) -> Problem {
    tracing::error!(%error, "writing a workbook failed");
    Problem::internal()
}

struct Formats {
    title: Format,
    plain: Format,
    header: Format,
    name: Format,
    number: Format,
    total_name: Format,
    total_number: Format,
}

impl Formats {
    fn new() -> Self {
        let cell = Format::new()
            .set_border(FormatBorder::Thin)
            .set_align(FormatAlign::VerticalCenter);
        Self {
            title: Format::new()
                .set_bold()
                .set_font_size(18)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            plain: Format::new().set_align(FormatAlign::VerticalCenter),
            header: cell.clone().set_bold().set_text_wrap().set_align(FormatAlign::Center),
            name: cell.clone(),
            number: cell.clone().set_num_format("0"),
            total_name: cell.clone().set_bold(),
            total_number: cell.set_bold().set_num_format("0"),
        }
    }
}

/// The report as an xlsx workbook: the form on the first sheet, where each number came from on
/// the second.
pub fn xlsx(view: &ReportView) -> Result<Vec<u8>, Problem> {
    let mut workbook = Workbook::new();
    let formats = Formats::new();
    let content = &view.report.content;
    let sheet = workbook.add_worksheet();
    sheet.set_name(view.report.form.attachment()).map_err(failed)?;
    match view.report.form {
        Form::Progress => progress_sheet(sheet, view, &formats).map_err(failed)?,
        Form::ProjectList => project_sheet(sheet, view, &formats).map_err(failed)?,
    }
    let sources = workbook.add_worksheet();
    sources.set_name("数据来源").map_err(failed)?;
    sources_sheet(sources, view, content, &formats).map_err(failed)?;
    workbook.save_to_buffer().map_err(failed)
}

fn progress_sheet(sheet: &mut Worksheet, view: &ReportView, f: &Formats) -> Result<(), XlsxError> {
    let report = &view.report;
    let content = &report.content;
    let table = DivisionTable::embedded();
    let last_col: u16 = 12;
    sheet.set_row_height(0, 36)?;
    sheet.merge_range(0, 0, 0, last_col, report.form.title(), &f.title)?;
    let unit = table.full_name(&report.region).unwrap_or_else(|| report.region.clone());
    sheet.merge_range(1, 0, 1, 6, &format!("单位（公章）：{unit}"), &f.plain)?;
    sheet.merge_range(
        1,
        7,
        1,
        last_col,
        &format!("填表日期：{}", date_zh(china(instant(report.generated_us)).date())),
        &f.plain,
    )?;
    // Two header rows: the two carrier groups each span their count and the target persons
    // they absorb; every other heading spans both rows.
    let spanning: [(u16, &str); 9] = [
        (0, "市、县（市、区）"),
        (1, "劳务协作联盟个数"),
        (2, "特色劳务品牌个数"),
        (5, "劳务合作社个数"),
        (8, Column::WorkReliefWorkers.title()),
        (9, Column::WelfarePostTargetPersons.title()),
        (10, Column::TrainingTargetPersons.title()),
        (11, Column::RelocationSiteTargetPersons.title()),
        (12, Column::RelocationRecruitmentEvents.title()),
    ];
    for (col, title) in spanning {
        sheet.merge_range(2, col, 3, col, title, &f.header)?;
    }
    sheet.merge_range(2, 3, 2, 4, "乡村振兴劳务基地", &f.header)?;
    sheet.merge_range(2, 6, 2, 7, "就业帮扶车间", &f.header)?;
    for (col, title) in [(3, "个数"), (4, "吸纳脱贫人口数"), (6, "个数"), (7, "吸纳脱贫人口数")] {
        sheet.write_string_with_format(3, col, title, &f.header)?;
    }
    sheet.set_row_height(2, 30)?;
    sheet.set_row_height(3, 48)?;
    sheet.set_column_width(0, 18)?;
    for col in 1..=last_col {
        sheet.set_column_width(col, 12)?;
    }
    let mut row = FIRST_DATA_ROW;
    for line in &content.rows {
        let (name_format, number_format) = if line.level == Level::County {
            (&f.name, &f.number)
        } else {
            (&f.total_name, &f.total_number)
        };
        sheet.write_string_with_format(row, 0, &line.name, name_format)?;
        for (i, column) in Column::FORM.iter().enumerate() {
            let col = u16::try_from(i + 1).unwrap_or(u16::MAX);
            match line.cells.get(column) {
                // Counts are far below 2^53: exact as a spreadsheet number.
                Some(cell) => sheet.write_number_with_format(row, col, cell.value as f64, number_format)?,
                // A part that could not be read stays blank, named in the note below.
                None => sheet.write_blank(row, col, number_format)?,
            };
        }
        row += 1;
    }
    row += 1;
    sheet.merge_range(row, 0, row, last_col, "注：相关数据填当年累计数。", &f.plain)?;
    row += 1;
    sheet.merge_range(
        row,
        0,
        row,
        last_col,
        &format!(
            "数据截至{}（{}，自当年1月1日起累计），由 {} 于 {} 从帮扶系统各业务服务的统计接口生成。",
            content
                .as_of_date()
                .map(date_zh)
                .unwrap_or_else(|| content.as_of.clone()),
            report.period.label_zh(),
            report.generated_by,
            time_zh(instant(report.generated_us))
        ),
        &f.plain,
    )?;
    if !content.missing.is_empty() {
        row += 1;
        sheet.merge_range(
            row,
            0,
            row,
            last_col,
            &format!("缺失数据（空白单元格）：{}", missing_text(content)),
            &f.plain,
        )?;
    }
    row += 1;
    sheet.merge_range(row, 0, row, 6, &format!("填表人：{}", report.generated_by), &f.plain)?;
    sheet.merge_range(row, 7, row, last_col, "电话：", &f.plain)?;
    Ok(())
}

fn project_sheet(sheet: &mut Worksheet, view: &ReportView, f: &Formats) -> Result<(), XlsxError> {
    let report = &view.report;
    let content = &report.content;
    let table = DivisionTable::embedded();
    let last_col: u16 = 9;
    sheet.set_row_height(0, 36)?;
    sheet.merge_range(0, 0, 0, last_col, report.form.title(), &f.title)?;
    let unit = table.full_name(&report.region).unwrap_or_else(|| report.region.clone());
    sheet.merge_range(1, 0, 1, 5, &unit, &f.plain)?;
    sheet.merge_range(
        1,
        6,
        1,
        last_col,
        &format!("填表日期：{}", date_zh(china(instant(report.generated_us)).date())),
        &f.plain,
    )?;
    let spanning: [(u16, &str); 8] = [
        (0, "县（市、区）"),
        (1, "序号"),
        (2, "项目名称"),
        (3, "项目简介"),
        (
            6,
            "项目所在地是否属于：①省乡村振兴重点帮扶县②易地搬迁安置区③黄河滩区居民迁建安置区",
        ),
        (7, "项目联系人"),
        (8, "联系电话"),
        (9, "备注"),
    ];
    for (col, title) in spanning {
        sheet.merge_range(2, col, 3, col, title, &f.header)?;
    }
    sheet.merge_range(2, 4, 2, 5, "带动就业人数", &f.header)?;
    sheet.write_string_with_format(3, 4, "合计", &f.header)?;
    sheet.write_string_with_format(3, 5, "带动脱贫人口就业人数", &f.header)?;
    sheet.set_row_height(2, 30)?;
    sheet.set_row_height(3, 48)?;
    for (col, width) in [
        (0, 14),
        (1, 6),
        (2, 28),
        (3, 40),
        (4, 10),
        (5, 12),
        (6, 30),
        (7, 12),
        (8, 16),
        (9, 20),
    ] {
        sheet.set_column_width(col, width)?;
    }
    let mut row = FIRST_DATA_ROW;
    for project in &content.projects {
        sheet.write_string_with_format(row, 0, &project.county_name, &f.name)?;
        sheet.write_number_with_format(row, 1, f64::from(project.sequence), &f.number)?;
        sheet.write_string_with_format(row, 2, &project.display_name, &f.name)?;
        sheet.write_string_with_format(row, 3, &project.summary, &f.name)?;
        sheet.write_number_with_format(row, 4, project.people_employed as f64, &f.number)?;
        sheet.write_number_with_format(row, 5, project.target_persons as f64, &f.number)?;
        sheet.write_string_with_format(row, 6, project.location_flags(), &f.name)?;
        sheet.write_string_with_format(row, 7, &project.contact_name, &f.name)?;
        sheet.write_string_with_format(row, 8, &project.contact_phone, &f.name)?;
        sheet.write_string_with_format(row, 9, &project.remarks, &f.name)?;
        row += 1;
    }
    row += 1;
    sheet.merge_range(
        row,
        0,
        row,
        last_col,
        &format!(
            "数据截至{}，由 {} 于 {} 从以工代赈服务生成。{}",
            content
                .as_of_date()
                .map(date_zh)
                .unwrap_or_else(|| content.as_of.clone()),
            report.generated_by,
            time_zh(instant(report.generated_us)),
            if content.missing.is_empty() {
                String::new()
            } else {
                format!("缺失数据：{}", missing_text(content))
            }
        ),
        &f.plain,
    )?;
    Ok(())
}

fn missing_text(content: &Content) -> String {
    content
        .missing
        .iter()
        .map(|m| format!("{}.{}（{}）：{}", m.service, m.method, m.region_prefix, m.reason))
        .collect::<Vec<_>>()
        .join("；")
}

/// Where each number came from: the calls, each cell's call, the reference figures beside the
/// form, what is missing, and the sign-off.
fn sources_sheet(sheet: &mut Worksheet, view: &ReportView, content: &Content, f: &Formats) -> Result<(), XlsxError> {
    let mut row = 0;
    sheet.write_string_with_format(row, 0, "数据来源（统计接口调用）", &f.total_name)?;
    row += 1;
    for (col, title) in ["序号", "服务", "方法", "地区", "读取时间"].into_iter().enumerate() {
        sheet.write_string_with_format(row, col as u16, title, &f.header)?;
    }
    row += 1;
    for (i, source) in content.sources.iter().enumerate() {
        sheet.write_number_with_format(row, 0, i as f64, &f.number)?;
        sheet.write_string_with_format(row, 1, &source.service, &f.name)?;
        sheet.write_string_with_format(row, 2, &source.method, &f.name)?;
        sheet.write_string_with_format(row, 3, &source.region_prefix, &f.name)?;
        sheet.write_string_with_format(row, 4, time_zh(instant(source.read_us)), &f.name)?;
        row += 1;
    }
    if view.report.form == Form::Progress {
        row += 1;
        sheet.write_string_with_format(
            row,
            0,
            "各单元格的来源序号（“合计”为下级之和）及参考数据",
            &f.total_name,
        )?;
        row += 1;
        let columns: Vec<Column> = Column::FORM.iter().chain(Column::REFERENCE.iter()).copied().collect();
        sheet.write_string_with_format(row, 0, "地区代码", &f.header)?;
        sheet.write_string_with_format(row, 1, "地区", &f.header)?;
        for (i, column) in columns.iter().enumerate() {
            sheet.write_string_with_format(row, (i + 2) as u16, column.title(), &f.header)?;
        }
        for (i, column) in Column::REFERENCE.iter().enumerate() {
            let col = (columns.len() + 2 + i) as u16;
            sheet.write_string_with_format(row, col, format!("{}：数值", column.title()), &f.header)?;
        }
        row += 1;
        for line in &content.rows {
            sheet.write_string_with_format(row, 0, &line.region, &f.name)?;
            sheet.write_string_with_format(row, 1, &line.name, &f.name)?;
            for (i, column) in columns.iter().enumerate() {
                let col = (i + 2) as u16;
                match line.cells.get(column) {
                    Some(cell) => match cell.source {
                        Some(source) => sheet.write_number_with_format(row, col, source as f64, &f.number)?,
                        None => sheet.write_string_with_format(row, col, "合计", &f.name)?,
                    },
                    None => sheet.write_string_with_format(row, col, "缺失", &f.name)?,
                };
            }
            for (i, column) in Column::REFERENCE.iter().enumerate() {
                let col = (columns.len() + 2 + i) as u16;
                if let Some(cell) = line.cells.get(column) {
                    sheet.write_number_with_format(row, col, cell.value as f64, &f.number)?;
                }
            }
            row += 1;
        }
    }
    if !content.missing.is_empty() {
        row += 1;
        sheet.write_string_with_format(row, 0, "缺失数据", &f.total_name)?;
        row += 1;
        for missing in &content.missing {
            let columns: Vec<&str> = missing.columns.iter().map(|c| c.title()).collect();
            sheet.write_string(row, 0, &missing.service)?;
            sheet.write_string(row, 1, &missing.method)?;
            sheet.write_string(row, 2, &missing.region_prefix)?;
            sheet.write_string(row, 3, columns.join("、"))?;
            sheet.write_string(row, 4, &missing.reason)?;
            row += 1;
        }
    }
    row += 1;
    sheet.write_string_with_format(row, 0, "报送审核", &f.total_name)?;
    row += 1;
    for step in &view.sign_off {
        let action = match step.action.as_str() {
            "submitted" => "报送",
            "approved" => "审核通过",
            "returned" => "退回",
            other => other,
        };
        sheet.write_string(row, 0, action)?;
        sheet.write_string(row, 1, &step.subject)?;
        sheet.write_string(row, 2, &step.scope)?;
        sheet.write_string(row, 3, time_zh(instant(step.at_us)))?;
        sheet.write_string(row, 4, &step.note)?;
        row += 1;
    }
    sheet.set_column_width(0, 14)?;
    sheet.set_column_width(1, 16)?;
    sheet.set_column_width(2, 22)?;
    sheet.set_column_width(3, 16)?;
    sheet.set_column_width(4, 22)?;
    Ok(())
}

/// The report as UTF-8 CSV with a byte-order mark (so Excel reads the Chinese right), one header
/// row, a region's code beside its name.
pub fn csv(view: &ReportView) -> Result<Vec<u8>, Problem> {
    let content = &view.report.content;
    let mut writer = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    let write_failed = |e: csv::Error| {
        tracing::error!(error = %e, "writing a CSV failed");
        Problem::internal()
    };
    match view.report.form {
        Form::Progress => {
            let mut header = vec!["地区代码".to_string(), "市、县（市、区）".to_string()];
            header.extend(
                Column::FORM
                    .iter()
                    .chain(Column::REFERENCE.iter())
                    .map(|c| c.title().to_string()),
            );
            writer.write_record(&header).map_err(write_failed)?;
            for line in &content.rows {
                let mut record = vec![line.region.clone(), line.name.clone()];
                record.extend(
                    Column::FORM
                        .iter()
                        .chain(Column::REFERENCE.iter())
                        .map(|c| line.cells.get(c).map(|cell| cell.value.to_string()).unwrap_or_default()),
                );
                writer.write_record(&record).map_err(write_failed)?;
            }
        }
        Form::ProjectList => {
            writer
                .write_record([
                    "县（市、区）代码",
                    "县（市、区）",
                    "序号",
                    "项目编号",
                    "项目名称",
                    "项目简介",
                    "带动就业人数",
                    "带动脱贫人口就业人数",
                    "项目所在地是否属于：①省乡村振兴重点帮扶县②易地搬迁安置区③黄河滩区居民迁建安置区",
                    "项目联系人",
                    "联系电话",
                    "备注",
                ])
                .map_err(write_failed)?;
            for p in &content.projects {
                writer
                    .write_record([
                        p.county.clone(),
                        p.county_name.clone(),
                        p.sequence.to_string(),
                        p.project_number.clone(),
                        p.display_name.clone(),
                        p.summary.clone(),
                        p.people_employed.to_string(),
                        p.target_persons.to_string(),
                        p.location_flags(),
                        p.contact_name.clone(),
                        p.contact_phone.clone(),
                        p.remarks.clone(),
                    ])
                    .map_err(write_failed)?;
            }
        }
    }
    writer.into_inner().map_err(|e| {
        tracing::error!(error = %e, "writing a CSV failed");
        Problem::internal()
    })
}
