//! Claims (补贴申请): what a submitter sends, the decision with its frozen facts, reviews, and
//! the states a claim goes through.

use serde::{Deserialize, Serialize};

use super::policy::{Fact, FactSource, Outcome, text_enum};
use super::rules::Rejection;
use super::{FieldError, Period};

text_enum!(
    /// Where a claim's state stands.
    ClaimState {
        Proposed => "proposed",
        Declined => "declined",
        Rejected => "rejected",
        PendingReview => "pending_review",
        Approved => "approved",
        Batched => "batched",
        Paid => "paid",
        PaymentFailed => "payment_failed",
        RecoveryOpen => "recovery_open",
        Recovered => "recovered",
        Withdrawn => "withdrawn",
    }
);

impl ClaimState {
    /// Whether the claim counts as granted: it holds its periods, counts towards caps and is
    /// what a duplicate collides with.
    pub fn is_granted(self) -> bool {
        matches!(
            self,
            Self::PendingReview
                | Self::Approved
                | Self::Batched
                | Self::Paid
                | Self::PaymentFailed
                | Self::RecoveryOpen
                | Self::Recovered
        )
    }
}

text_enum!(
    /// Why a claim waits for review.
    ReviewCause {
        AmountBand => "amount_band",
        ObjectionUpheld => "objection_upheld",
        Reevaluated => "reevaluated",
    }
);

text_enum!(
    /// A reviewer's verdict.
    ReviewVerdict {
        Approve => "approve",
        Reject => "reject",
    }
);

/// An organization as a payee, by its registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationPayee {
    pub credit_code: String,
    pub display_name: String,
    pub region: String,
}

/// Who receives the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payee {
    /// The beneficiary, "persons/{id}" by id.
    Person(String),
    Organization(OrganizationPayee),
}

/// Where a claim comes from: its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimSource {
    pub system: String,
    pub reference: String,
}

/// A claim as submitted. Stored whole, so a reused source is compared field by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimPayload {
    pub policy_code: String,
    pub person_id: String,
    pub payee: Payee,
    pub period: Period,
    pub facts: Vec<Fact>,
    pub note: String,
}

impl ClaimPayload {
    /// The subject (补贴对象) the claim's periods, caps, history and exclusivity are counted
    /// for: the beneficiary person's id, or, for a claim about an organization alone (no
    /// person), `org:` and the organization's credit code. Person ids are letters and digits
    /// only, so the two never meet.
    pub fn subject_key(&self) -> String {
        match &self.payee {
            Payee::Organization(org) if self.person_id.is_empty() => format!("org:{}", org.credit_code),
            _ => self.person_id.clone(),
        }
    }

    /// The fields in which `other` differs, by their request names.
    pub fn differences(&self, other: &ClaimPayload) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.policy_code != other.policy_code {
            fields.push("policy");
        }
        if self.person_id != other.person_id {
            fields.push("person");
        }
        if self.payee != other.payee {
            fields.push("payee");
        }
        if self.period != other.period {
            fields.push("period");
        }
        let mut mine = self.facts.clone();
        let mut theirs = other.facts.clone();
        mine.sort_by(|a, b| a.name.cmp(&b.name));
        theirs.sort_by(|a, b| a.name.cmp(&b.name));
        if mine != theirs {
            fields.push("facts");
        }
        if self.note != other.note {
            fields.push("note");
        }
        fields
    }
}

/// A fact as a decision used it, with where and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenFact {
    pub fact: Fact,
    pub source: FactSource,
    pub source_detail: String,
    pub read_us: i64,
}

/// A decision: eligible with an amount, or rejected with every reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub amount: i64,
    pub computed_amount: i64,
    pub policy_version: i32,
    pub rejections: Vec<Rejection>,
    pub months_granted: i32,
    pub months_limit: i32,
    pub frozen_facts: Vec<FrozenFact>,
    pub decided_us: i64,
}

impl Decision {
    /// The place of a decision not made yet (a proposal waiting for its clerk): nothing
    /// granted, no reason, the version that will decide it.
    pub fn pending(policy_version: i32) -> Self {
        Self {
            outcome: Outcome::Rejected,
            amount: 0,
            computed_amount: 0,
            policy_version,
            rejections: Vec::new(),
            months_granted: 0,
            months_limit: 0,
            frozen_facts: Vec::new(),
            decided_us: 0,
        }
    }

    /// Whether the rules have decided (a proposal has not yet).
    pub fn made(&self) -> bool {
        self.decided_us != 0
    }
}

/// One review of a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub subject: String,
    pub verdict: ReviewVerdict,
    pub note: String,
    pub reviewed_us: i64,
}

/// The review bands (parameters): how many approving reviews an amount needs before it may be
/// paid. Zero thresholds turn a band off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewBands {
    /// Above this, one reviewer.
    pub one_reviewer_above_fen: i64,
    /// Above this, two reviewers.
    pub two_reviewers_above_fen: i64,
}

impl ReviewBands {
    pub fn required_reviews(&self, amount: i64) -> i32 {
        if self.two_reviewers_above_fen > 0 && amount > self.two_reviewers_above_fen {
            2
        } else if self.one_reviewer_above_fen > 0 && amount > self.one_reviewer_above_fen {
            1
        } else {
            0
        }
    }
}

/// A source system's name: lower-case letters, digits and hyphens, 1 to 32 characters.
pub fn check_source(source: &ClaimSource) -> Result<(), FieldError> {
    if !super::policy::valid_code(&source.system, 1, 32) {
        return Err(FieldError::new(
            "claim.source.system",
            "must be 1 to 32 lower-case letters, digits and hyphens",
            "来源系统应为1至32位小写字母、数字或连字符",
        ));
    }
    let length = source.reference.chars().count();
    if !(1..=128).contains(&length) {
        return Err(FieldError::new(
            "claim.source.reference",
            "must be 1 to 128 characters",
            "来源编号应为1至128个字符",
        ));
    }
    Ok(())
}

/// A unified social credit code (统一社会信用代码): 18 characters, the last a check character
/// (GB 32100-2015).
pub fn valid_credit_code(code: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return false;
    }
    let mut sum = 0;
    for (c, weight) in chars[..17].iter().zip(WEIGHTS) {
        match ALPHABET.find(*c) {
            Some(value) => sum += value as u32 * weight,
            None => return false,
        }
    }
    let check = (31 - sum % 31) % 31;
    ALPHABET.chars().nth(check as usize) == Some(chars[17])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_ask_for_more_reviewers_as_amounts_grow() {
        let bands = ReviewBands {
            one_reviewer_above_fen: 200_000,
            two_reviewers_above_fen: 500_000,
        };
        assert_eq!(bands.required_reviews(200_000), 0);
        assert_eq!(bands.required_reviews(200_001), 1);
        assert_eq!(bands.required_reviews(500_001), 2);
    }

    #[test]
    fn credit_codes_carry_a_check_character() {
        assert!(valid_credit_code("91350100M000100Y43"));
        assert!(!valid_credit_code("91350100M000100Y44"));
        assert!(!valid_credit_code("91350100M000100Y4"));
    }

    #[test]
    fn a_reused_source_names_what_differs() {
        let payload = ClaimPayload {
            policy_code: "zz-post".into(),
            person_id: "p1".into(),
            payee: Payee::Person("p1".into()),
            period: Period {
                first: time::macros::date!(2025 - 03 - 01),
                last: time::macros::date!(2025 - 03 - 31),
            },
            facts: vec![],
            note: String::new(),
        };
        let mut other = payload.clone();
        other.note = "x".into();
        other.person_id = "p2".into();
        assert_eq!(payload.differences(&other), vec!["person", "note"]);
        assert!(payload.differences(&payload.clone()).is_empty());
    }
}
