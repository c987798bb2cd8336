//! Payee accounts (收款账户): where a payee's money goes, and how the account was checked.

use super::FieldError;
use super::policy::text_enum;

text_enum!(
    /// Social-security card (社保卡金融账户) or bank account.
    AccountKind {
        SocialSecurityCard => "social_security_card",
        BankAccount => "bank_account",
    }
);

text_enum!(
    /// Where an account's check stands; only VERIFIED is usable for payment.
    VerificationState {
        Pending => "pending",
        Verified => "verified",
        NameMismatch => "name_mismatch",
        PersonNotFound => "person_not_found",
    }
);

text_enum!(
    /// How an account was checked.
    VerificationMethod {
        None => "none",
        IdentityNameMatch => "identity_name_match",
        OrganizationRegistration => "organization_registration",
    }
);

/// Digits only, 8 to 32: a card or account number as banks print it, without spaces.
pub fn check_account_number(field: &str, number: &str) -> Result<(), FieldError> {
    if (8..=32).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(FieldError::new(field, "must be 8 to 32 digits", "账号应为8至32位数字"))
    }
}

/// A bank branch's clearing code (联行号): 12 digits, or empty.
pub fn check_bank_code(field: &str, code: &str) -> Result<(), FieldError> {
    if code.is_empty() || (code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit())) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "a clearing code has 12 digits",
            "联行号应为12位数字",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_numbers_are_digits() {
        assert!(check_account_number("a", "6217000012341234").is_ok());
        assert!(check_account_number("a", "6217 0000 1234").is_err());
        assert!(check_account_number("a", "1234567").is_err());
        assert!(check_bank_code("b", "").is_ok());
        assert!(check_bank_code("b", "103465000011").is_ok());
        assert!(check_bank_code("b", "10346500001").is_err());
    }
}
