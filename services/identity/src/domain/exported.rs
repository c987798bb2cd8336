//! Values as the national monitoring system (全国防返贫监测信息系统) writes them in its exports:
//! relations, labor skills, work locations and categories in Chinese words. Each parser answers
//! `None` for a word it does not know, so the import rejects the row naming the column instead
//! of guessing.

use super::categories::{Category, HouseholdType};
use super::{HouseholdRelation, LaborCapacity};
use crate::domain::monitoring::EmploymentStatus;

/// Relation to the household head (与户主关系) as written: 户主, 配偶, 之子, 之女, 之父…
pub fn relation(text: &str) -> Option<HouseholdRelation> {
    let word = text.trim();
    let word = word.strip_prefix('之').unwrap_or(word);
    let relation = match word {
        "户主" | "本人" => HouseholdRelation::Head,
        "配偶" | "妻" | "夫" | "妻子" | "丈夫" => HouseholdRelation::Spouse,
        "子" | "女" | "子女" | "儿子" | "女儿" | "独生子" | "独生女" | "长子" | "次子" | "三子" | "长女" | "次女"
        | "三女" | "养子" | "养女" | "继子" | "继女" | "其他儿子" | "其他女儿" => {
            HouseholdRelation::Child
        }
        "父" | "母" | "父亲" | "母亲" | "父母" | "公公" | "婆婆" | "岳父" | "岳母" => {
            HouseholdRelation::Parent
        }
        "孙子" | "孙女" | "外孙子" | "外孙女" | "孙子女" | "外孙子女" | "曾孙子" | "曾孙女" => {
            HouseholdRelation::Grandchild
        }
        "祖父" | "祖母" | "外祖父" | "外祖母" | "祖父母" | "外祖父母" => {
            HouseholdRelation::Grandparent
        }
        "兄" | "弟" | "姐" | "妹" | "兄弟姐妹" | "哥哥" | "弟弟" | "姐姐" | "妹妹" => {
            HouseholdRelation::Sibling
        }
        "儿媳" | "女婿" | "媳" | "婿" => HouseholdRelation::ChildInLaw,
        "其他" | "其他亲属" | "非亲属" => HouseholdRelation::Other,
        _ => return None,
    };
    Some(relation)
}

/// Labor skill (劳动技能) as written.
pub fn labor_skill(text: &str) -> Option<LaborCapacity> {
    let capacity = match text.trim() {
        "普通劳动力" | "技能劳动力" => LaborCapacity::Full,
        "弱劳动力" | "弱劳动力或半劳动力" => LaborCapacity::Weak,
        "半劳动力" => LaborCapacity::Half,
        "丧失劳动力" | "无劳动力" => LaborCapacity::None,
        _ => return None,
    };
    Some(capacity)
}

/// The employment a row states: months worked in the export's year and where. No months and no
/// place says nothing (no record); months without a place, or a place without months, is a
/// contradiction the clerk must fix.
pub fn employment(months_worked: i32, work_location: &str) -> Result<Option<EmploymentStatus>, &'static str> {
    let place = work_location.trim();
    if !(0..=12).contains(&months_worked) {
        return Err("months_worked");
    }
    let status = match place {
        "" if months_worked == 0 => return Ok(None),
        "" => return Err("work_location"),
        "县内" | "县内务工" | "乡镇内" | "乡内" | "村内" => EmploymentStatus::EmployedInCounty,
        "省内县外" | "县外省内" | "省内" => EmploymentStatus::EmployedOutOfCounty,
        "省外" | "外省" | "境外" | "国外" => EmploymentStatus::EmployedOutOfProvince,
        _ => return Err("work_location"),
    };
    if months_worked == 0 {
        return Err("months_worked");
    }
    Ok(Some(status))
}

/// One category word (脱贫户, 边缘易致贫户…). `监测户` alone does not say which of the three kinds
/// of monitored household, so it is refused rather than guessed.
pub fn category(text: &str) -> Option<(Category, HouseholdType)> {
    let pair = match text.trim() {
        "脱贫户" | "脱贫人口" | "脱贫户（含监测）" => (Category::PovertyAlleviated, HouseholdType::None),
        "脱贫不稳定户" => (Category::MonitoredAtRisk, HouseholdType::UnstableAlleviated),
        "边缘易致贫户" => (Category::MonitoredAtRisk, HouseholdType::MarginalAtRisk),
        "突发严重困难户" => (Category::MonitoredAtRisk, HouseholdType::SuddenHardship),
        "易地扶贫搬迁" | "易地搬迁" | "易地扶贫搬迁户" => (Category::Relocated, HouseholdType::None),
        "黄河滩区迁建" | "滩区迁建" => (Category::YellowRiverResettled, HouseholdType::None),
        "就业困难人员" => (Category::EmploymentDifficulty, HouseholdType::None),
        "农村低收入人口" | "低保" | "农村低保" | "低保户" | "特困" | "特困人员" => {
            (Category::RuralLowIncome, HouseholdType::None)
        }
        "残疾人" | "残疾" => (Category::Disabled, HouseholdType::None),
        _ => return None,
    };
    Some(pair)
}

/// Every category of a cell, split on the separators exports use; the first word not known is
/// the error.
pub fn categories(text: &str) -> Result<Vec<(Category, HouseholdType)>, String> {
    let mut found: Vec<(Category, HouseholdType)> = Vec::new();
    for word in text
        .split([',', '，', ';', '；', '、', '/', '|', ' ', '\u{3000}'])
        .filter(|w| !w.trim().is_empty())
    {
        let pair = category(word).ok_or_else(|| word.trim().to_string())?;
        if !found.contains(&pair) {
            found.push(pair);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_are_read_with_and_without_the_possessive() {
        assert_eq!(relation("户主"), Some(HouseholdRelation::Head));
        assert_eq!(relation("子女"), Some(HouseholdRelation::Child));
        assert_eq!(relation("之子"), Some(HouseholdRelation::Child));
        assert_eq!(relation(" 之女 "), Some(HouseholdRelation::Child));
        assert_eq!(relation("之儿媳"), Some(HouseholdRelation::ChildInLaw));
        assert_eq!(relation("邻居"), None);
    }

    #[test]
    fn months_and_place_make_an_employment_or_contradict_each_other() {
        assert_eq!(employment(0, ""), Ok(None));
        assert_eq!(employment(6, "省外"), Ok(Some(EmploymentStatus::EmployedOutOfProvince)));
        assert_eq!(employment(6, ""), Err("work_location"));
        assert_eq!(employment(0, "县内"), Err("months_worked"));
        assert_eq!(employment(13, "县内"), Err("months_worked"));
        assert_eq!(employment(3, "月球"), Err("work_location"));
    }

    #[test]
    fn a_cell_of_categories_is_split_and_an_unknown_word_is_named() {
        assert_eq!(
            categories("脱贫户，边缘易致贫户"),
            Ok(vec![
                (Category::PovertyAlleviated, HouseholdType::None),
                (Category::MonitoredAtRisk, HouseholdType::MarginalAtRisk)
            ])
        );
        assert_eq!(categories(""), Ok(vec![]));
        assert_eq!(categories("脱贫户、监测户"), Err("监测户".to_string()));
    }
}
