//! Synthetic data for the benchmarks: an export shaped like the national monitoring system's,
//! with valid citizen IDs, real villages of Zaozhuang (枣庄市), households of four, work and
//! categories on a fixed pattern, so runs are repeatable and every row imports.

use std::io::{BufWriter, Write};
use std::path::Path;

use bangfu_platform::regions::DivisionTable;
use time::{Date, Duration};

use crate::Failure;

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马",
    "罗",
];
const GIVEN: [&str; 20] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平",
];
const RELATIONS: [&str; 4] = ["户主", "配偶", "之子", "之女"];

/// GB 11643 check character of a 17-digit body.
pub(crate) fn check_character(body: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b.wrapping_sub(b'0')) * w)
        .sum();
    CHECK[(sum % 11) as usize] as char
}

/// The villages under `prefix`, in code order.
fn villages(table: &DivisionTable, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![prefix.to_string()];
    while let Some(code) = pending.pop() {
        for (child, _) in table.children(&code) {
            if table.is_village(child) {
                found.push(child.to_string());
            } else {
                pending.push(child.to_string());
            }
        }
    }
    found.sort();
    found
}

/// Writes `rows` rows to `out`: row i is born on 1950-01-01 plus (i mod 20,000) days with
/// sequence i / 20,000, so every ID is distinct up to 20 million rows.
pub fn write_persons_csv(rows: u64, out: &Path) -> Result<(), Failure> {
    if rows > 20_000_000 {
        return Err(Failure::usage("--rows: at most 20,000,000"));
    }
    let table = DivisionTable::embedded();
    let villages = villages(table, "3704");
    if villages.is_empty() {
        return Err(Failure::failed("the division table has no villages under 3704"));
    }
    let file = std::fs::File::create(out).map_err(|e| Failure::usage(format!("--out {}: {e}", out.display())))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let first_birth =
        Date::from_calendar_date(1950, time::Month::January, 1).map_err(|e| Failure::failed(e.to_string()))?;
    let written = (|| -> std::io::Result<()> {
        writeln!(
            writer,
            "户编号,人口编号,姓名,证件号码,村代码,与户主关系,劳动技能,务工时间（月）,务工地点,人员类型,认定日期"
        )?;
        for i in 0..rows {
            let household = i / 4;
            let village = &villages[(household as usize) % villages.len()];
            let birth = first_birth + Duration::days((i % 20_000) as i64);
            let body = format!(
                "370402{:04}{:02}{:02}{:03}",
                birth.year(),
                u8::from(birth.month()),
                birth.day(),
                i / 20_000
            );
            let name = format!(
                "{}{}",
                SURNAMES[(household % 20) as usize],
                GIVEN[((i / 3) % 20) as usize]
            );
            let (months, place) = match i % 3 {
                0 => ("8", "省外"),
                1 => ("0", ""),
                _ => ("12", "县内"),
            };
            let (categories, since) = match i % 50 {
                7 => ("脱贫户、边缘易致贫户", "2021-01-01"),
                n if n % 10 < 3 => ("脱贫户", "2021-01-01"),
                _ => ("", ""),
            };
            writeln!(
                writer,
                "{village}{household:08},P{i:010},{name},{body}{},{village},{},{},{months},{place},{categories},{since}",
                check_character(&body),
                RELATIONS[(i % 4) as usize],
                if i % 5 == 4 { "弱劳动力" } else { "普通劳动力" },
            )?;
        }
        writer.flush()
    })();
    written.map_err(|e| Failure::failed(format!("{}: {e}", out.display())))?;
    say!(
        "wrote {rows} rows over {} villages to {}",
        villages.len(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_character_follows_gb_11643() {
        assert_eq!(check_character("11010519491231002"), 'X');
        assert_eq!(check_character("37040219800101001"), '1');
    }
}
