//! Categories a department certifies a person into (脱贫人口, 防止返贫监测对象, …), each for a
//! period on a document. Whether a person is a target person on a day is a question of these
//! certifications, asked as of that day: a payroll for March run in May gets March's answer.

use time::Date;

/// A category of target person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Poverty-alleviated (脱贫人口).
    PovertyAlleviated,
    /// Monitored, at risk of falling back (防止返贫监测对象).
    MonitoredAtRisk,
    /// Rural low-income (农村低收入人口).
    RuralLowIncome,
    /// Relocated from a poor area (易地扶贫搬迁群众).
    Relocated,
    /// Resettled from the Yellow River flood plain (黄河滩区迁建).
    YellowRiverResettled,
    /// Employment-difficulty (就业困难人员).
    EmploymentDifficulty,
    /// Disabled (残疾人).
    Disabled,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Self::PovertyAlleviated,
        Self::MonitoredAtRisk,
        Self::RuralLowIncome,
        Self::Relocated,
        Self::YellowRiverResettled,
        Self::EmploymentDifficulty,
        Self::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PovertyAlleviated => "poverty_alleviated",
            Self::MonitoredAtRisk => "monitored_at_risk",
            Self::RuralLowIncome => "rural_low_income",
            Self::Relocated => "relocated",
            Self::YellowRiverResettled => "yellow_river_resettled",
            Self::EmploymentDifficulty => "employment_difficulty",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// The three kinds of monitored household.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HouseholdType {
    /// Not a monitored household.
    None,
    /// 脱贫不稳定户.
    UnstableAlleviated,
    /// 边缘易致贫户.
    MarginalAtRisk,
    /// 突发严重困难户.
    SuddenHardship,
}

impl HouseholdType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::UnstableAlleviated => "unstable_alleviated",
            Self::MarginalAtRisk => "marginal_at_risk",
            Self::SuddenHardship => "sudden_hardship",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::None,
            Self::UnstableAlleviated,
            Self::MarginalAtRisk,
            Self::SuddenHardship,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// A certification to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertification {
    pub category: Category,
    pub household_type: HouseholdType,
    pub certifying_body: String,
    pub document_reference: String,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
}

/// Why a certification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificationError {
    #[error("a monitored household needs its type (unstable, marginal or sudden hardship)")]
    HouseholdTypeRequired,
    #[error("only a monitored household has a household type")]
    HouseholdTypeNotAllowed,
    #[error("valid_to is before valid_from")]
    EndsBeforeStart,
    #[error("{0} must be 1 to 100 characters without control characters")]
    Text(&'static str),
}

impl CertificationError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::HouseholdTypeRequired | Self::HouseholdTypeNotAllowed => "certification.household_type",
            Self::EndsBeforeStart => "certification.valid_to",
            Self::Text(field) => field,
        }
    }

    pub fn message_zh(&self) -> &'static str {
        match self {
            Self::HouseholdTypeRequired => "监测对象须注明监测类型（脱贫不稳定户、边缘易致贫户或突发严重困难户）",
            Self::HouseholdTypeNotAllowed => "只有防止返贫监测对象才填写监测类型",
            Self::EndsBeforeStart => "失效日期不能早于生效日期",
            Self::Text(_) => "认定机构和文件编号须填写，且不超过100个字",
        }
    }
}

/// A short required text: trimmed, 1 to 100 characters, no control characters.
pub fn short_text(value: &str, field: &'static str) -> Result<String, CertificationError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 100 || value.chars().any(char::is_control) {
        return Err(CertificationError::Text(field));
    }
    Ok(value.to_string())
}

impl NewCertification {
    /// Checks the rules a certification obeys on its own.
    pub fn check(&self) -> Result<(), CertificationError> {
        match (self.category, self.household_type) {
            (Category::MonitoredAtRisk, HouseholdType::None) => return Err(CertificationError::HouseholdTypeRequired),
            (Category::MonitoredAtRisk, _) | (_, HouseholdType::None) => {}
            _ => return Err(CertificationError::HouseholdTypeNotAllowed),
        }
        if self.valid_to.is_some_and(|to| to < self.valid_from) {
            return Err(CertificationError::EndsBeforeStart);
        }
        Ok(())
    }
}

/// Whether a certification holds on `day`.
pub fn holds_on(valid_from: Date, valid_to: Option<Date>, annulled: bool, day: Date) -> bool {
    !annulled && valid_from <= day && valid_to.is_none_or(|to| day <= to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn certification(category: Category, household_type: HouseholdType) -> NewCertification {
        NewCertification {
            category,
            household_type,
            certifying_body: "枣庄市乡村振兴局".into(),
            document_reference: "枣振发〔2026〕3号".into(),
            valid_from: date!(2026 - 01 - 01),
            valid_to: None,
        }
    }

    #[test]
    fn a_monitored_household_needs_its_type_and_others_have_none() {
        assert_eq!(
            certification(Category::MonitoredAtRisk, HouseholdType::None).check(),
            Err(CertificationError::HouseholdTypeRequired)
        );
        assert!(
            certification(Category::MonitoredAtRisk, HouseholdType::MarginalAtRisk)
                .check()
                .is_ok()
        );
        assert_eq!(
            certification(Category::Disabled, HouseholdType::SuddenHardship).check(),
            Err(CertificationError::HouseholdTypeNotAllowed)
        );
    }

    #[test]
    fn a_certification_ending_before_it_starts_is_refused() {
        let mut backwards = certification(Category::PovertyAlleviated, HouseholdType::None);
        backwards.valid_to = Some(date!(2025 - 12 - 31));
        assert_eq!(backwards.check(), Err(CertificationError::EndsBeforeStart));
    }

    #[test]
    fn a_category_holds_from_its_first_to_its_last_day_unless_annulled() {
        let (from, to) = (date!(2026 - 01 - 01), Some(date!(2026 - 03 - 31)));
        assert!(!holds_on(from, to, false, date!(2025 - 12 - 31)));
        assert!(holds_on(from, to, false, date!(2026 - 01 - 01)));
        assert!(holds_on(from, to, false, date!(2026 - 03 - 31)));
        assert!(!holds_on(from, to, false, date!(2026 - 04 - 01)));
        assert!(holds_on(from, None, false, date!(2030 - 01 - 01)));
        assert!(!holds_on(from, None, true, date!(2026 - 02 - 01)));
    }
}
