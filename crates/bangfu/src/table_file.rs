//! The tables clerks hand in: a CSV file in UTF-8 or GBK, or a workbook's sheet (.xlsx, .xls),
//! read as rows of text cells the way the clerk sees them, for the commands that import them
//! (a muster roll, employers' postings).

use crate::Failure;

/// A sheet of text cells: a CSV file (UTF-8 or GBK) or a workbook's sheet (.xlsx, .xls).
pub(crate) fn read_table(path: &std::path::Path, sheet: Option<&str>) -> Result<Vec<Vec<String>>, Failure> {
    let unreadable = |e: &dyn std::fmt::Display| Failure::usage(format!("{}: {e}", path.display()));
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if matches!(extension.as_str(), "xlsx" | "xlsm" | "xls") {
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

/// A workbook cell as the text a clerk sees: whole numbers without ".0".
fn cell_text(cell: &calamine::Data) -> String {
    match cell {
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        calamine::Data::Empty => String::new(),
        other => other.to_string(),
    }
}
