//! A person's name as the registry keeps it, and the form names are compared in. Names come
//! from many systems: half- and full-width forms, stray spaces, and three different middle dots
//! in minority names (·•・). Two names match when they are equal after Unicode NFKC, with every
//! space removed and the dots unified; the comparison runs on a keyed hash of that form, so a
//! lookup never decrypts the stored name.

use unicode_normalization::UnicodeNormalization;

/// Longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 50;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("the name contains control characters")]
    ControlCharacters,
}

impl NameError {
    pub fn message_zh(&self) -> &'static str {
        match self {
            Self::Empty => "请填写姓名",
            Self::TooLong => "姓名不能超过50个字",
            Self::ControlCharacters => "姓名中含有不可见的控制字符，请重新输入",
        }
    }
}

/// A validated name: trimmed, 1 to 50 characters, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacters);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form names are compared in.
    pub fn comparable(&self) -> String {
        comparable(&self.0)
    }
}

/// Debug shows the masked name only, so a name never reaches a log in clear.
impl std::fmt::Debug for PersonName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PersonName({})", bangfu_platform::pii::mask_name(&self.0))
    }
}

/// NFKC, no whitespace, middle dots unified.
pub fn comparable(name: &str) -> String {
    name.nfkc()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '•' | '・' | '‧' | '∙' | '⋅' => '·',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_across_widths_spaces_and_middle_dots() {
        assert_eq!(comparable("买买提·艾力"), comparable("买买提•艾力"));
        assert_eq!(comparable("买买提・艾力"), comparable("买买提 · 艾力"));
        assert_eq!(comparable("ＷＡＮＧ　Li"), comparable("WANGLi"));
        assert_ne!(comparable("张三"), comparable("张山"));
    }

    #[test]
    fn a_name_of_500_characters_is_refused() {
        assert_eq!(PersonName::parse(&"张".repeat(500)), Err(NameError::TooLong));
        assert!(PersonName::parse(&"张".repeat(50)).is_ok());
    }

    #[test]
    fn empty_names_and_control_characters_are_refused() {
        assert_eq!(PersonName::parse("  "), Err(NameError::Empty));
        assert_eq!(PersonName::parse("张\u{0}三"), Err(NameError::ControlCharacters));
        assert_eq!(PersonName::parse("李\n四"), Err(NameError::ControlCharacters));
    }

    #[test]
    fn sql_looking_names_are_just_names() {
        let name = PersonName::parse("Robert'); DROP TABLE persons;--").expect("a name, stored as data");
        assert_eq!(name.as_str(), "Robert'); DROP TABLE persons;--");
    }

    #[test]
    fn debug_output_masks_the_name() {
        assert_eq!(
            format!("{:?}", PersonName::parse("张三").expect("name")),
            "PersonName(张*)"
        );
    }
}
