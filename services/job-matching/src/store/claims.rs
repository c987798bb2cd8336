//! The subsidy claims job matching sends to subsidy payment — a traveller's transport and
//! agency subsidies, a workshop's on-the-job training months (以工代训), an agency's subsidy after
//! a year of follow-up, a trainee's training subsidy and living allowance — one row each, keyed by the claim source reference that makes subsidy
//! payment take it once. A row is written when the claim falls due, with the facts this service
//! offers; the sender gives each policy version the ones it declares, and the claim feed moves
//! the row on.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use bangfu_platform::db::to_micros;
use bangfu_platform::parameters::date_text;
use bangfu_platform::rows::{day, instant, json, parsed, to_json};
use bangfu_platform::subsidy_claims::FactValue;

use super::{ClaimRecord, Result};
use crate::domain::ClaimProgress;

/// A claim as it falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClaim {
    /// The claim source reference, e.g. "exportBatches/{b}/travellers/{p}/transport".
    pub reference: String,
    /// The policy's code in subsidy payment's catalog.
    pub policy: String,
    pub person_id: String,
    /// Who is paid, as a resource name: "carriers/{c}" (the carrier), "trainingCourses/{c}" (the
    /// course's provider), or empty when the person is paid.
    pub payee: String,
    /// The period the claim is judged on.
    pub first: Date,
    pub last: Date,
    /// Every fact this service offers; the version in force takes the ones it declares.
    pub facts: Vec<(String, FactValue)>,
    /// The resource it shows on, e.g. "exportBatches/{b}", "carriers/{c}", "placements/{p}".
    pub owner: String,
    /// The person's registered region: who may see the claim.
    pub region: String,
}

#[derive(Debug, Clone)]
pub struct StoredClaim {
    pub claim: NewClaim,
    pub record: ClaimRecord,
    pub created: OffsetDateTime,
}

fn claim_from(row: &AnyRow) -> Result<StoredClaim> {
    Ok(StoredClaim {
        claim: NewClaim {
            reference: row.try_get("reference")?,
            policy: row.try_get("policy")?,
            person_id: row.try_get("person_id")?,
            payee: row.try_get("payee")?,
            first: day(row, "first_day")?,
            last: day(row, "last_day")?,
            facts: json(row, "facts")?,
            owner: row.try_get("owner")?,
            region: row.try_get("region")?,
        },
        record: ClaimRecord {
            state: parsed(row, "state", ClaimProgress::parse)?,
            claim: row.try_get("claim")?,
            amount_fen: row.try_get("amount_fen")?,
            detail: row.try_get("detail")?,
        },
        created: instant(row, "created_us")?,
    })
}

/// Writes claims falling due, pending; one already written (a retried call) is left as it is.
pub async fn insert_claims(tx: &mut AnyConnection, claims: &[NewClaim], now: OffsetDateTime) -> Result<()> {
    for claim in claims {
        sqlx::query(
            "INSERT INTO jobs_claims (reference, policy, person_id, payee, first_day, last_day, facts, \
             owner, region, state, claim, amount_fen, detail, attempted_us, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', '', 0, '', 0, $10) \
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&claim.reference)
        .bind(&claim.policy)
        .bind(&claim.person_id)
        .bind(&claim.payee)
        .bind(date_text(claim.first))
        .bind(date_text(claim.last))
        .bind(to_json(&claim.facts))
        .bind(&claim.owner)
        .bind(&claim.region)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The claims shown on `owner`, oldest first.
pub async fn claims_of(conn: &mut AnyConnection, owner: &str) -> Result<Vec<StoredClaim>> {
    let rows = sqlx::query("SELECT * FROM jobs_claims WHERE owner = $1 ORDER BY created_us, reference")
        .bind(owner)
        .fetch_all(conn)
        .await?;
    rows.iter().map(claim_from).collect()
}

/// Claims still to send whose day has come (all, or one owner's), least recently tried first.
pub async fn pending_claims(
    conn: &mut AnyConnection,
    owner: Option<&str>,
    today: Date,
    limit: i64,
) -> Result<Vec<StoredClaim>> {
    let rows = sqlx::query(
        "SELECT * FROM jobs_claims WHERE state = 'pending' AND first_day <= $1 AND ($2 = '' OR owner = $2) \
         ORDER BY attempted_us, created_us, reference LIMIT $3",
    )
    .bind(date_text(today))
    .bind(owner.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(claim_from).collect()
}

/// Records where a claim stands. `only_from` guards the move (an answer to a submission does
/// not overwrite an outcome the feed brought first), and a paid claim stays paid whatever comes
/// late; false when it did not apply.
pub async fn set_claim(
    conn: &mut AnyConnection,
    reference: &str,
    record: &ClaimRecord,
    only_from: Option<ClaimProgress>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs_claims SET state = $1, claim = $2, amount_fen = $3, detail = $4 \
         WHERE reference = $5 AND ($6 = '' OR state = $6) AND state <> 'paid'",
    )
    .bind(record.state.as_str())
    .bind(&record.claim)
    .bind(record.amount_fen)
    .bind(&record.detail)
    .bind(reference)
    .bind(only_from.map(ClaimProgress::as_str).unwrap_or(""))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that claims were tried now.
pub async fn claims_attempted(conn: &mut AnyConnection, references: &[String], now: OffsetDateTime) -> Result<()> {
    for reference in references {
        sqlx::query("UPDATE jobs_claims SET attempted_us = $1 WHERE reference = $2")
            .bind(to_micros(now))
            .bind(reference)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The claim written under `reference`, if any.
pub async fn get_claim(conn: &mut AnyConnection, reference: &str) -> Result<Option<StoredClaim>> {
    sqlx::query("SELECT * FROM jobs_claims WHERE reference = $1")
        .bind(reference)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(claim_from)
        .transpose()
}
