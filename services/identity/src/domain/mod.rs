//! Identity's domain: the values a person is made of and the rules they obey, in plain Rust.
//! No protobuf type and no SQL reaches here; `grpc` parses into these values and `store`
//! persists them.

pub mod categories;
pub mod exported;
pub mod monitoring;
pub mod names;
pub mod retirement;

use bangfu_platform::pii::{CitizenId, CitizenIdError, Sex};

pub use names::{NameError, PersonName};
pub use retirement::{RetirementTrack, YearMonth, retirement_month};

/// What a change-feed event says happened to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    CitizenIdCorrected,
    HouseholdChanged,
    ResidenceMoved,
    RegistrationMoved,
    CategoryCertified,
    CategoryRevoked,
    CategoryAnnulled,
    CategoryDatesChanged,
    EmploymentChanged,
    Died,
    MovedAway,
}

impl ChangeKind {
    /// The kind as the outbox stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::CitizenIdCorrected => "citizen_id_corrected",
            Self::HouseholdChanged => "household_changed",
            Self::ResidenceMoved => "residence_moved",
            Self::RegistrationMoved => "registration_moved",
            Self::CategoryCertified => "category_certified",
            Self::CategoryRevoked => "category_revoked",
            Self::CategoryAnnulled => "category_annulled",
            Self::CategoryDatesChanged => "category_dates_changed",
            Self::EmploymentChanged => "employment_changed",
            Self::Died => "died",
            Self::MovedAway => "moved_away",
        }
    }
}

/// A person's relation to the head of the household (与户主关系).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HouseholdRelation {
    Head,
    Spouse,
    Child,
    Parent,
    Grandchild,
    Grandparent,
    Sibling,
    ChildInLaw,
    Other,
}

impl HouseholdRelation {
    const ALL: [HouseholdRelation; 9] = [
        Self::Head,
        Self::Spouse,
        Self::Child,
        Self::Parent,
        Self::Grandchild,
        Self::Grandparent,
        Self::Sibling,
        Self::ChildInLaw,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::Spouse => "spouse",
            Self::Child => "child",
            Self::Parent => "parent",
            Self::Grandchild => "grandchild",
            Self::Grandparent => "grandparent",
            Self::Sibling => "sibling",
            Self::ChildInLaw => "child_in_law",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A household number (户编号): 1 to 50 letters, digits or '-'.
pub fn parse_household_number(input: &str) -> Option<String> {
    let number = input.trim();
    (!number.is_empty() && number.len() <= 50 && number.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| number.to_string())
}

/// How much work a person can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaborCapacity {
    Unassessed,
    Full,
    Weak,
    Half,
    None,
}

impl LaborCapacity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unassessed => "unassessed",
            Self::Full => "full",
            Self::Weak => "weak",
            Self::Half => "half",
            Self::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Unassessed, Self::Full, Self::Weak, Self::Half, Self::None]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// A mobile number: 11 digits starting with 1.
pub fn parse_phone(input: &str) -> Option<String> {
    let phone = input.trim();
    (phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit()))
        .then(|| phone.to_string())
}

/// Skills: at most 20 items of 1 to 50 characters, no control characters.
pub fn parse_skills(items: &[String]) -> Result<Vec<String>, IdentityError> {
    if items.len() > 20 {
        return Err(IdentityError::Skills("at most 20 skills"));
    }
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            if item.is_empty() || item.chars().count() > 50 || item.chars().any(char::is_control) {
                Err(IdentityError::Skills(
                    "each skill is 1 to 50 characters without control characters",
                ))
            } else {
                Ok(item.to_string())
            }
        })
        .collect()
}

/// The track a person's retirement month follows: the one given, else men's for men and the
/// region's default for women (a parameter: 55 or 50).
pub fn resolve_track(given: Option<RetirementTrack>, sex: Sex, default_female_age: i64) -> RetirementTrack {
    match (given, sex) {
        (Some(track), _) => track,
        (None, Sex::Male) => RetirementTrack::Man,
        (None, Sex::Female) if default_female_age == 50 => RetirementTrack::Woman50,
        (None, Sex::Female) => RetirementTrack::Woman55,
    }
}

/// A person ready to be registered.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub name: PersonName,
    pub citizen_id: CitizenId,
    pub phone: Option<String>,
    pub registered_region: String,
    pub residence_region: String,
    pub labor_capacity: LaborCapacity,
    pub skills: Vec<String>,
    pub retirement_track: Option<RetirementTrack>,
    /// The household id and the relation to its head.
    pub household: Option<(String, HouseholdRelation)>,
}

/// What can go wrong in identity, before it becomes a status (in `app`).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{field}: {source}")]
    CitizenId {
        field: String,
        #[source]
        source: CitizenIdError,
    },
    #[error("{field}: {source}")]
    Name {
        field: String,
        #[source]
        source: NameError,
    },
    #[error("{field}: {code:?} is not a village in the current division table")]
    RegionUnknown { field: String, code: String },
    #[error("{field}: the region lies outside the caller's scope")]
    RegionOutsideScope { field: String },
    #[error("person.phone: must be an 11-digit mobile number")]
    Phone,
    #[error("person.skills: {0}")]
    Skills(&'static str),
    #[error("{field}: {what}")]
    Invalid {
        field: String,
        what: String,
        what_zh: String,
    },
    #[error("a person with this citizen ID exists: {resource}")]
    PersonExists { resource: String },
    #[error("a person with this citizen ID exists outside the caller's scope")]
    PersonExistsOutsideScope,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_woman_without_a_track_takes_the_regions_default() {
        assert_eq!(resolve_track(None, Sex::Female, 50), RetirementTrack::Woman50);
        assert_eq!(resolve_track(None, Sex::Female, 55), RetirementTrack::Woman55);
        assert_eq!(resolve_track(None, Sex::Male, 50), RetirementTrack::Man);
        assert_eq!(
            resolve_track(Some(RetirementTrack::Woman55), Sex::Female, 50),
            RetirementTrack::Woman55
        );
    }

    #[test]
    fn phones_are_eleven_digit_mobiles() {
        assert_eq!(parse_phone(" 13812341234 "), Some("13812341234".into()));
        assert_eq!(parse_phone("0632-1234567"), None);
        assert_eq!(parse_phone("23812341234"), None);
    }
}
