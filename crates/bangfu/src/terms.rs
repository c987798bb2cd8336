//! The Chinese terms of the contract's enum values, read from the .proto files' own comments
//! (`// Spouse (配偶).`), so that there is one list of them: flags accept them as the CSV
//! imports do (`--category 脱贫户`), and a clerk under a Chinese locale reads them in tables.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost_reflect::{EnumDescriptor, EnumValueDescriptor};

/// Whether the user's locale is Chinese (LC_ALL, LC_MESSAGES, then LANG, as POSIX orders
/// them): `zh_CN.UTF-8`, `zh_CN.GB18030`, `zh`. Read once: every enum cell of a table asks.
pub fn chinese_locale() -> bool {
    static CHINESE: LazyLock<bool> = LazyLock::new(|| {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .is_some_and(|value| value.to_ascii_lowercase().starts_with("zh"))
    });
    *CHINESE
}

/// The terms a value's comment gives in parentheses, first the one to show: `(自主创业 /
/// 灵活就业)` gives both. Empty when the comment names no Chinese term.
pub fn terms(value: &EnumValueDescriptor) -> Vec<String> {
    static TERMS: LazyLock<HashMap<String, Vec<String>>> = LazyLock::new(|| {
        let Ok(pool) = crate::print::pool() else {
            return HashMap::new();
        };
        pool.all_enums()
            .flat_map(|descriptor| descriptor.values().collect::<Vec<_>>())
            .map(|value| (value.full_name().to_string(), read_terms(&value)))
            .filter(|(_, terms)| !terms.is_empty())
            .collect()
    });
    TERMS.get(value.full_name()).cloned().unwrap_or_default()
}

/// The terms of one value, read from its comment in the descriptor set's source info.
fn read_terms(value: &EnumValueDescriptor) -> Vec<String> {
    let file = value.parent_file();
    let Some(info) = &file.file_descriptor_proto().source_code_info else {
        return Vec::new();
    };
    let Some(comment) = info
        .location
        .iter()
        .find(|location| location.path == value.path())
        .and_then(|location| location.leading_comments.as_deref())
    else {
        return Vec::new();
    };
    let Some(inside) = comment
        .split('(')
        .skip(1)
        .filter_map(|part| part.split(')').next())
        .find(|inside| !inside.is_ascii())
    else {
        return Vec::new();
    };
    inside
        .split(['/', '、', '，', ','])
        .map(str::trim)
        .filter(|term| !term.is_empty() && !term.is_ascii())
        .map(str::to_string)
        .collect()
}

/// The value a Chinese term names, if one does.
pub fn value_of_term(descriptor: &EnumDescriptor, text: &str) -> Option<i32> {
    let text = text.trim();
    descriptor
        .values()
        .find(|value| terms(value).iter().any(|term| term == text))
        .map(|value| value.number())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(name: &str) -> EnumDescriptor {
        crate::print::pool()
            .expect("pool")
            .get_enum_by_name(name)
            .expect("enum")
    }

    #[test]
    fn the_contracts_comments_give_each_values_chinese_terms() {
        let relation = descriptor("bangfu.identity.v1.HouseholdRelation");
        let spouse = relation.get_value(2).expect("spouse");
        assert_eq!(terms(&spouse), ["配偶"]);
        let in_law = relation.get_value(8).expect("child in law");
        assert_eq!(terms(&in_law), ["儿媳", "女婿"]);
        assert_eq!(value_of_term(&relation, "女婿"), Some(8));
        let category = descriptor("bangfu.common.v1.PersonCategory");
        assert_eq!(value_of_term(&category, "脱贫户"), Some(1), "the CSV's word too");
        assert_eq!(value_of_term(&category, "户主"), None);
        let unspecified = relation.get_value(0).expect("unspecified");
        assert!(terms(&unspecified).is_empty(), "a value without a term has none");
    }
}
