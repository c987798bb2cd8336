//! A person's statement (个人补贴明细): everything granted, paid and asked to return, over every
//! policy and department, as far as the caller's scope reaches.

use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;

use super::Subsidy;
use super::batches::PolicyTitles;
use crate::domain::Period;
use crate::store::{self, StoredClaim};

/// One line of a statement.
pub struct StatementLine {
    pub claim: StoredClaim,
    pub policy_title: String,
    pub paid: Option<(i64, Option<time::Date>)>,
}

/// A page of a person's statement with the totals of the whole statement.
pub struct Statement {
    pub person_id: String,
    pub display_name: String,
    pub lines: Vec<StatementLine>,
    pub total_granted: i64,
    pub total_paid: i64,
    pub more: bool,
}

impl Subsidy {
    pub async fn person_statement(
        &self,
        caller: &Principal,
        person_id: &str,
        period: Option<Period>,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<Statement, Problem> {
        // Only claims in the caller's scope, and the same empty answer whether the person has
        // claims elsewhere or none: a statement does not tell who is paid outside the scope.
        let Some(prefix) = caller.scope.narrowed("") else {
            return Ok(Statement {
                person_id: person_id.to_string(),
                display_name: String::new(),
                lines: Vec::new(),
                total_granted: 0,
                total_paid: 0,
                more: false,
            });
        };
        let mut conn = self.db().acquire().await?;
        let period_text = period.map(|p| (crate::domain::day_text(p.first), crate::domain::day_text(p.last)));
        let mut claims =
            store::claims_of_person(&mut conn, person_id, &prefix, period_text, after, i64::from(limit) + 1).await?;
        let (total_granted, total_paid) = store::person_totals(&mut conn, person_id, &prefix).await?;
        let more = claims.len() > limit as usize;
        claims.truncate(limit as usize);
        let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
        let mut paid_lines = store::paid_lines(&mut conn, &ids).await?;
        let mut titles = PolicyTitles::default();
        let mut lines = Vec::with_capacity(claims.len());
        let display_name = claims
            .first()
            .map(|c| c.person_display_name.clone())
            .unwrap_or_default();
        for claim in claims {
            let policy_title = titles.title(&mut conn, &claim.payload.policy_code).await?;
            let paid = paid_lines.remove(&claim.id);
            lines.push(StatementLine {
                claim,
                policy_title,
                paid,
            });
        }
        Ok(Statement {
            person_id: person_id.to_string(),
            display_name,
            lines,
            total_granted,
            total_paid,
            more,
        })
    }
}
