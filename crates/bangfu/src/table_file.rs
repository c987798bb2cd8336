//! The tables clerks hand in: a CSV file in UTF-8 or GBK, or a workbook's sheet (.xlsx, .xls),
//! read as rows of text cells the way the clerk sees them, for the commands that import them
//! (a muster roll, employers' postings).

use crate::Failure;

/// A sheet of text cells: a CSV file (UTF-8 or GBK) or a workbook's sheet (.xlsx, .xls).
pub(crate) fn read_table(path: &std::path::Path, sheet: Option<&str>) -> Result<Vec<Vec<String>>, Failure> {
    let unreadable = |e: &dyn std::fmt::Display| Failure::usage(format!("{}: {e}", path.display()));
    if is_workbook(path) {
        use calamine::Reader;
        let mut workbook = calamine::open_workbook_auto(path).map_err(|e| unreadable(&e))?;
        let name = match sheet {
            Some(name) => name.to_string(),
            None => workbook
                .sheet_names()
                .first()
                .cloned()
                .ok_or_else(|| Failure::usage(format!("{}: the workbook has no sheet", path.display())))?,
        };
        let range = workbook.worksheet_range(&name).map_err(|e| unreadable(&e))?;
        return Ok(range.rows().map(|row| row.iter().map(cell_text).collect()).collect());
    }
    let encoding = crate::identity_import::sniff(path)?;
    let bytes = std::fs::read(path).map_err(|e| unreadable(&e))?;
    let (text, _, bad) = encoding.decode(&bytes);
    if bad {
        return Err(Failure::usage(format!(
            "{}: not readable as {}",
            path.display(),
            encoding.name()
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|record| {
            record
                .map(|r| r.iter().map(str::to_string).collect())
                .map_err(|e| unreadable(&e))
        })
        .collect()
}

/// A workbook cell as the text a clerk sees: whole numbers without ".0"; a number of 16 or
/// more digits as Excel shows it (`3.70402E+17`), since a number that long has already lost its
/// last digits (an 18-digit ID typed into a number cell) and must not pass for the ID.
fn cell_text(cell: &calamine::Data) -> String {
    match cell {
        calamine::Data::Float(f) if f.abs() >= 1e15 => excel_scientific(*f),
        calamine::Data::Int(i) if i.unsigned_abs() >= 1_000_000_000_000_000 => excel_scientific(*i as f64),
        calamine::Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
        calamine::Data::Empty => String::new(),
        other => other.to_string(),
    }
}

/// `3.70402E+17`, as Excel's General format shows a long number.
fn excel_scientific(value: f64) -> String {
    let text = format!("{value:.5E}");
    let (mantissa, exponent) = text.split_once('E').unwrap_or((&text, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    match exponent.strip_prefix('-') {
        Some(negative) => format!("{mantissa}E-{negative:0>2}"),
        None => format!("{mantissa}E+{exponent:0>2}"),
    }
}

/// Writes a table for a clerk to open in Excel: a workbook for `.xlsx` (every cell text, so
/// IDs keep their digits), otherwise CSV in UTF-8 with a byte-order mark (without it, Excel on
/// Chinese Windows reads UTF-8 as GBK and garbles the Chinese).
pub(crate) fn write_table(path: &std::path::Path, header: &[String], rows: &[Vec<String>]) -> Result<(), Failure> {
    let unwritable = |e: &dyn std::fmt::Display| Failure::failed(format!("cannot write {}: {e}", path.display()));
    if is_workbook(path) {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        for (row_index, row) in std::iter::once(header)
            .chain(rows.iter().map(Vec::as_slice))
            .enumerate()
        {
            let row_number = u32::try_from(row_index).map_err(|e| unwritable(&e))?;
            for (column, cell) in row.iter().enumerate() {
                let column = u16::try_from(column).map_err(|e| unwritable(&e))?;
                let written = if row_index == 0 {
                    sheet.write_string_with_format(row_number, column, cell, &bold)
                } else {
                    sheet.write_string(row_number, column, cell)
                };
                written.map_err(|e| unwritable(&e))?;
            }
        }
        sheet.autofit();
        return workbook.save(path).map_err(|e| unwritable(&e));
    }
    let mut file = std::fs::File::create(path).map_err(|e| unwritable(&e))?;
    std::io::Write::write_all(&mut file, b"\xEF\xBB\xBF").map_err(|e| unwritable(&e))?;
    let mut writer = csv::Writer::from_writer(file);
    writer.write_record(header).map_err(|e| unwritable(&e))?;
    for row in rows {
        writer.write_record(row).map_err(|e| unwritable(&e))?;
    }
    writer.flush().map_err(|e| unwritable(&e))
}

/// Whether a path names a workbook (.xlsx, .xlsm, .xls) rather than a CSV file.
pub(crate) fn is_workbook(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "xlsx" | "xlsm" | "xls"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_number_reads_as_excel_shows_it_and_a_short_one_whole() {
        assert_eq!(
            cell_text(&calamine::Data::Float(370_402_198_001_011_000.0)),
            "3.70402E+17"
        );
        assert_eq!(cell_text(&calamine::Data::Float(3_704_020_010_130.0)), "3704020010130");
        assert_eq!(cell_text(&calamine::Data::Float(2.5)), "2.5");
        assert_eq!(
            cell_text(&calamine::Data::String("37040219800101001X".into())),
            "37040219800101001X"
        );
    }
}
