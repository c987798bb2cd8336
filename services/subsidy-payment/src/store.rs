//! Subsidy payment's SQL, the same on SQLite and PostgreSQL (through sqlx's Any driver). Every
//! function takes the connection it runs on, so a use case's reads and writes share its
//! transaction. Rules, payloads and decisions are stored as JSON of the domain values.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use bangfu_platform::db::{from_micros, to_micros};

use crate::domain::{
    ClaimPayload, ClaimState, ClaimSubject, Decision, FundSource, PayeeKind, PeriodKind, Policy, PolicyVersion, Review,
    ReviewCause, StoredVersion, VersionState, day_text, parse_day,
};

type Result<T> = std::result::Result<T, sqlx::Error>;

use bangfu_platform::rows::{decode, instant, json};
pub use bangfu_platform::rows::{new_id, to_json};

// ---------------------------------------------------------------------------------------------
// Policies and versions

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub policy: Policy,
    pub create_subject: String,
    pub created: OffsetDateTime,
}

fn policy_from(row: &AnyRow) -> Result<StoredPolicy> {
    let payee: String = row.try_get("payee_kind")?;
    let period: String = row.try_get("period_kind")?;
    let subject: String = row.try_get("claim_subject")?;
    Ok(StoredPolicy {
        policy: Policy {
            code: row.try_get("code")?,
            title: row.try_get("title")?,
            policy_group: row.try_get("policy_group")?,
            payee_kind: decode("payee_kind", PayeeKind::parse(&payee))?,
            period_kind: decode("period_kind", PeriodKind::parse(&period))?,
            claim_subject: decode("claim_subject", ClaimSubject::parse(&subject))?,
        },
        create_subject: row.try_get("create_subject")?,
        created: instant(row, "created_us")?,
    })
}

/// How an existing policy of `group` cuts and keys its claims (period kind, subject); None for a
/// new group.
pub async fn group_shape(conn: &mut AnyConnection, group: &str) -> Result<Option<(PeriodKind, ClaimSubject)>> {
    let row = sqlx::query("SELECT period_kind, claim_subject FROM policies WHERE policy_group = $1 LIMIT 1")
        .bind(group)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| {
        let period: String = row.try_get("period_kind")?;
        let subject: String = row.try_get("claim_subject")?;
        Ok((
            decode("period_kind", PeriodKind::parse(&period))?,
            decode("claim_subject", ClaimSubject::parse(&subject))?,
        ))
    })
    .transpose()
}

/// Inserts a policy; false when the code exists.
pub async fn insert_policy(
    tx: &mut AnyConnection,
    policy: &Policy,
    subject: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO policies (code, title, policy_group, payee_kind, period_kind, create_subject, created_us, \
         claim_subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&policy.code)
    .bind(&policy.title)
    .bind(&policy.policy_group)
    .bind(policy.payee_kind.as_str())
    .bind(policy.period_kind.as_str())
    .bind(subject)
    .bind(to_micros(now))
    .bind(policy.claim_subject.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn get_policy(conn: &mut AnyConnection, code: &str) -> Result<Option<StoredPolicy>> {
    let row = sqlx::query("SELECT * FROM policies WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(policy_from).transpose()
}

/// Policies by code after `after`, filtered by group; the caller filters by version facts.
pub async fn list_policies(
    conn: &mut AnyConnection,
    group: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredPolicy>> {
    let rows =
        sqlx::query("SELECT * FROM policies WHERE code > $1 AND ($2 = '' OR policy_group = $2) ORDER BY code LIMIT $3")
            .bind(after)
            .bind(group.unwrap_or(""))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(policy_from).collect()
}

fn version_from(row: &AnyRow) -> Result<StoredVersion> {
    let state: String = row.try_get("state")?;
    let published: Option<i64> = row.try_get("published_us")?;
    Ok(StoredVersion {
        policy_code: row.try_get("policy_code")?,
        version: i32::try_from(row.try_get::<i64, _>("version")?).unwrap_or_default(),
        state: decode("state", VersionState::parse(&state))?,
        rules: json(row, "rules")?,
        create_subject: row.try_get("create_subject")?,
        created: instant(row, "created_us")?,
        publish_subject: row.try_get("publish_subject")?,
        published: published.and_then(from_micros),
    })
}

/// Adds the next version of a policy as a draft; its number.
pub async fn insert_version(
    tx: &mut AnyConnection,
    code: &str,
    rules: &PolicyVersion,
    subject: &str,
    now: OffsetDateTime,
) -> Result<i32> {
    let next: i64 =
        sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM policy_versions WHERE policy_code = $1")
            .bind(code)
            .fetch_one(&mut *tx)
            .await?
            .try_get("next")?;
    sqlx::query(
        "INSERT INTO policy_versions (policy_code, version, state, valid_from, valid_to, region_prefix, fund_source, \
         rules, create_subject, created_us) VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(code)
    .bind(next)
    .bind(day_text(rules.valid_from))
    .bind(rules.valid_to.map(day_text))
    .bind(&rules.issuing_region_prefix)
    .bind(rules.fund_source.as_str())
    .bind(to_json(rules))
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(i32::try_from(next).unwrap_or(i32::MAX))
}

/// Publishes a draft, by a subject other than its creator; false when it was not a draft of
/// someone else (the caller reads again to say which).
pub async fn publish_version(
    tx: &mut AnyConnection,
    code: &str,
    version: i32,
    subject: &str,
    note: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE policy_versions SET state = 'published', publish_subject = $3, publish_note = $4, published_us = $5 \
         WHERE policy_code = $1 AND version = $2 AND state = 'draft' AND create_subject <> $3",
    )
    .bind(code)
    .bind(i64::from(version))
    .bind(subject)
    .bind(note)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

pub async fn get_version(conn: &mut AnyConnection, code: &str, version: i32) -> Result<Option<StoredVersion>> {
    let row = sqlx::query("SELECT * FROM policy_versions WHERE policy_code = $1 AND version = $2")
        .bind(code)
        .bind(i64::from(version))
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(version_from).transpose()
}

/// Whether every open line of a batch is a claim a service submitted (a clerk's counter claim
/// was noticed by nobody) decided under a version whose submitter noticed it already (false
/// for a batch without lines).
pub async fn batch_noticed_by_submitter(conn: &mut AnyConnection, batch_id: &str) -> Result<bool> {
    let by_clerk: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM payment_lines l JOIN claims c ON c.id = l.claim_id \
         WHERE l.batch_id = $1 AND l.state <> 'cancelled' AND c.acting_service = ''",
    )
    .bind(batch_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if by_clerk > 0 {
        return Ok(false);
    }
    let rows = sqlx::query(
        "SELECT DISTINCT c.policy_code, c.policy_version FROM payment_lines l JOIN claims c ON c.id = l.claim_id \
         WHERE l.batch_id = $1 AND l.state <> 'cancelled'",
    )
    .bind(batch_id)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(false);
    }
    for row in &rows {
        let code: String = row.try_get("policy_code")?;
        let version: Option<i64> = row.try_get("policy_version")?;
        let Some(version) = version.and_then(|v| i32::try_from(v).ok()) else {
            return Ok(false);
        };
        match get_version(conn, &code, version).await? {
            Some(stored) if stored.rules.noticed_by_submitter => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Versions of a policy, newest first, below `before` (0: from the newest).
pub async fn list_versions(
    conn: &mut AnyConnection,
    code: &str,
    before: i32,
    limit: i64,
) -> Result<Vec<StoredVersion>> {
    let rows = sqlx::query(
        "SELECT * FROM policy_versions WHERE policy_code = $1 AND ($2 = 0 OR version < $2) ORDER BY version DESC LIMIT $3",
    )
    .bind(code)
    .bind(i64::from(before))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(version_from).collect()
}

/// The published version deciding a period that starts on `day`: among those covering it, the
/// latest version (a later version wins from its valid_from on).
pub async fn version_in_force(conn: &mut AnyConnection, code: &str, day: time::Date) -> Result<Option<StoredVersion>> {
    let day = day_text(day);
    let row = sqlx::query(
        "SELECT * FROM policy_versions WHERE policy_code = $1 AND state = 'published' AND valid_from <= $2 \
         AND (valid_to IS NULL OR valid_to >= $2) ORDER BY version DESC LIMIT 1",
    )
    .bind(code)
    .bind(&day)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(version_from).transpose()
}

/// The versions deciding a period that starts on `day`, one per policy (the latest covering it).
pub async fn versions_in_force_on(conn: &mut AnyConnection, day: time::Date) -> Result<Vec<StoredVersion>> {
    let rows = sqlx::query(
        "SELECT * FROM policy_versions WHERE state = 'published' AND valid_from <= $1 \
         AND (valid_to IS NULL OR valid_to >= $1) ORDER BY policy_code, version DESC",
    )
    .bind(day_text(day))
    .fetch_all(&mut *conn)
    .await?;
    let mut versions: Vec<StoredVersion> = Vec::new();
    for row in &rows {
        let version = version_from(row)?;
        if versions.last().is_none_or(|v| v.policy_code != version.policy_code) {
            versions.push(version);
        }
    }
    Ok(versions)
}

// ---------------------------------------------------------------------------------------------
// Funds and the ledger

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFund {
    pub id: String,
    pub display_name: String,
    pub fund_source: FundSource,
    pub region_prefix: String,
    pub year: i32,
    pub budget_document: String,
    pub budget: i64,
    pub reserved: i64,
    pub payable: i64,
    pub consumed: i64,
    pub recoverable: i64,
    pub released: i64,
    pub create_subject: String,
    pub created: OffsetDateTime,
    pub revision: i64,
}

impl StoredFund {
    pub fn name(&self) -> String {
        format!("funds/{}", self.id)
    }

    pub fn available(&self) -> i64 {
        self.budget - self.reserved - self.payable - self.consumed
    }

    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }
}

/// A fund with its balances, as `fund_from` reads it: the fund's row is never updated (the
/// references to it stay cheap to check), its balances' row is.
const FUND_ROWS: &str = "SELECT funds.*, b.budget_fen, b.reserved_fen, b.payable_fen, b.consumed_fen, \
     b.recoverable_fen, b.released_fen, b.revision FROM funds JOIN fund_balances b ON b.fund_id = funds.id";

fn fund_from(row: &AnyRow) -> Result<StoredFund> {
    let source: String = row.try_get("fund_source")?;
    Ok(StoredFund {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        fund_source: decode("fund_source", FundSource::parse(&source))?,
        region_prefix: row.try_get("region_prefix")?,
        year: i32::try_from(row.try_get::<i64, _>("year")?).unwrap_or_default(),
        budget_document: row.try_get("budget_document")?,
        budget: row.try_get("budget_fen")?,
        reserved: row.try_get("reserved_fen")?,
        payable: row.try_get("payable_fen")?,
        consumed: row.try_get("consumed_fen")?,
        recoverable: row.try_get("recoverable_fen")?,
        released: row.try_get("released_fen")?,
        create_subject: row.try_get("create_subject")?,
        created: instant(row, "created_us")?,
        revision: row.try_get("revision")?,
    })
}

pub struct NewFund<'a> {
    pub display_name: &'a str,
    pub fund_source: FundSource,
    pub region_prefix: &'a str,
    pub year: i32,
    pub budget_document: &'a str,
    pub budget: i64,
}

/// Inserts a fund with its budget; None when the source, region and year have one.
pub async fn insert_fund(
    tx: &mut AnyConnection,
    fund: &NewFund<'_>,
    subject: &str,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    let id = new_id();
    let inserted = sqlx::query(
        "INSERT INTO funds (id, display_name, fund_source, region_prefix, year, budget_document, \
         create_subject, created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (fund_source, region_prefix, year) DO NOTHING",
    )
    .bind(&id)
    .bind(fund.display_name)
    .bind(fund.fund_source.as_str())
    .bind(fund.region_prefix)
    .bind(i64::from(fund.year))
    .bind(fund.budget_document)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted != 1 {
        return Ok(None);
    }
    sqlx::query("INSERT INTO fund_balances (fund_id, budget_fen) VALUES ($1, $2)")
        .bind(&id)
        .bind(fund.budget)
        .execute(&mut *tx)
        .await?;
    Ok(Some(id))
}

pub async fn get_fund(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredFund>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{FUND_ROWS} WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(fund_from).transpose()
}

/// Funds by (year, source, region, id) after the cursor.
pub async fn list_funds(
    conn: &mut AnyConnection,
    source: Option<FundSource>,
    year: i32,
    after: Option<(i32, String, String, String)>,
    limit: i64,
) -> Result<Vec<StoredFund>> {
    let (a_year, a_source, a_region, a_id) = after.unwrap_or((0, String::new(), String::new(), String::new()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{FUND_ROWS} WHERE ($1 = '' OR fund_source = $1) AND ($2 = 0 OR year = $2) \
         AND (year > $3 OR (year = $3 AND (fund_source > $4 OR (fund_source = $4 AND (region_prefix > $5 \
         OR (region_prefix = $5 AND id > $6)))))) ORDER BY year, fund_source, region_prefix, id LIMIT $7"
    )))
    .bind(source.map(|s| s.as_str()).unwrap_or(""))
    .bind(i64::from(year))
    .bind(i64::from(a_year))
    .bind(a_source)
    .bind(a_region)
    .bind(a_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(fund_from).collect()
}

/// The fund a claim draws on: its source and year, the longest region prefix covering `region`.
pub async fn fund_for(
    conn: &mut AnyConnection,
    source: FundSource,
    region: &str,
    year: i32,
) -> Result<Option<StoredFund>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{FUND_ROWS} WHERE fund_source = $1 AND year = $2"
    )))
    .bind(source.as_str())
    .bind(i64::from(year))
    .fetch_all(&mut *conn)
    .await?;
    let funds = rows.iter().map(fund_from).collect::<Result<Vec<_>>>()?;
    Ok(funds
        .into_iter()
        .filter(|f| region.starts_with(&f.region_prefix))
        .max_by_key(|f| f.region_prefix.len()))
}

/// Moves `amount` from available to reserved, only when the fund has it; false otherwise. The
/// guard and the CHECK on `fund_balances` make concurrent reservations unable to overdraw.
pub async fn reserve(tx: &mut AnyConnection, fund_id: &str, amount: i64) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE fund_balances SET reserved_fen = reserved_fen + $2, revision = revision + 1 \
         WHERE fund_id = $1 AND budget_fen - reserved_fen - payable_fen - consumed_fen >= $2",
    )
    .bind(fund_id)
    .bind(amount)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Moves `amount` from reserved back to available.
pub async fn release(tx: &mut AnyConnection, fund_id: &str, amount: i64) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE fund_balances SET reserved_fen = reserved_fen - $2, released_fen = released_fen + $2, revision = revision + 1 \
         WHERE fund_id = $1 AND reserved_fen >= $2",
    )
    .bind(fund_id)
    .bind(amount)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Changes the budget by `delta` at the read revision; false when the revision moved or a cut
/// would leave less than what is committed.
pub async fn adjust_budget(tx: &mut AnyConnection, fund_id: &str, delta: i64, revision: i64) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE fund_balances SET budget_fen = budget_fen + $2, revision = revision + 1 \
         WHERE fund_id = $1 AND revision = $3 AND budget_fen + $2 - reserved_fen - payable_fen - consumed_fen >= 0",
    )
    .bind(fund_id)
    .bind(delta)
    .bind(revision)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub fund_id: String,
    pub seq: i64,
    pub kind: String,
    pub debit: String,
    pub credit: String,
    pub amount: i64,
    pub claim_id: Option<String>,
    pub batch_id: Option<String>,
    pub document: String,
    pub entry_date: time::Date,
    pub subject: String,
    pub recorded: OffsetDateTime,
}

/// Appends a journal entry. Call it after the UPDATE of the fund's balances row in the same
/// transaction: that row lock orders concurrent appends, so the sequence has no gaps or twins.
pub async fn append_entry(tx: &mut AnyConnection, entry: &LedgerEntry) -> Result<i64> {
    append_entries(tx, &entry.fund_id, std::slice::from_ref(entry)).await
}

/// Appends journal entries of one fund, numbered on from the fund's last; returns the last
/// number given. Call it after the UPDATE of the fund's balances row in the same transaction, as for
/// `append_entry`.
pub async fn append_entries(tx: &mut AnyConnection, fund_id: &str, entries: &[LedgerEntry]) -> Result<i64> {
    const COLUMNS: usize = 12;
    let mut seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM ledger_entries WHERE fund_id = $1")
        .bind(fund_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("seq")?;
    for batch in entries.chunks(500) {
        let sql = format!(
            "INSERT INTO ledger_entries (fund_id, seq, kind, debit_account, credit_account, amount_fen, claim_id, \
             batch_id, document, entry_date, subject, recorded_us) VALUES {}",
            bangfu_platform::db::values_groups(tx, batch.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for entry in batch {
            seq += 1;
            query = query
                .bind(fund_id.to_string())
                .bind(seq)
                .bind(entry.kind.clone())
                .bind(entry.debit.clone())
                .bind(entry.credit.clone())
                .bind(entry.amount)
                .bind(entry.claim_id.clone())
                .bind(entry.batch_id.clone())
                .bind(entry.document.clone())
                .bind(day_text(entry.entry_date))
                .bind(entry.subject.clone())
                .bind(to_micros(entry.recorded));
        }
        query.execute(&mut *tx).await?;
    }
    Ok(seq)
}

fn entry_from(row: &AnyRow) -> Result<LedgerEntry> {
    let date: String = row.try_get("entry_date")?;
    Ok(LedgerEntry {
        fund_id: row.try_get("fund_id")?,
        seq: row.try_get("seq")?,
        kind: row.try_get("kind")?,
        debit: row.try_get("debit_account")?,
        credit: row.try_get("credit_account")?,
        amount: row.try_get("amount_fen")?,
        claim_id: row.try_get("claim_id")?,
        batch_id: row.try_get("batch_id")?,
        document: row.try_get("document")?,
        entry_date: decode("entry_date", parse_day(&date))?,
        subject: row.try_get("subject")?,
        recorded: instant(row, "recorded_us")?,
    })
}

/// The filters of ListLedgerEntries; "" for any.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub kind: String,
    pub batch_id: String,
    /// Entry dates from and to, both inclusive (`YYYY-MM-DD`).
    pub period: Option<(String, String)>,
}

pub async fn list_entries(
    conn: &mut AnyConnection,
    fund_id: &str,
    filter: &EntryFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<LedgerEntry>> {
    let (first, last) = filter.period.clone().unwrap_or_default();
    let rows = sqlx::query(
        "SELECT * FROM ledger_entries WHERE fund_id = $1 AND ($2 = '' OR kind = $2) AND seq > $3 \
         AND ($5 = '' OR batch_id = $5) AND ($6 = '' OR (entry_date >= $6 AND entry_date <= $7)) ORDER BY seq LIMIT $4",
    )
    .bind(fund_id)
    .bind(&filter.kind)
    .bind(after)
    .bind(limit)
    .bind(&filter.batch_id)
    .bind(first)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(entry_from).collect()
}

/// Sums of the fund's journal per account (debits minus credits), for the balance check.
pub async fn account_balances(conn: &mut AnyConnection, fund_id: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT account, CAST(SUM(amount) AS BIGINT) AS balance FROM ( \
           SELECT debit_account AS account, amount_fen AS amount FROM ledger_entries WHERE fund_id = $1 \
           UNION ALL SELECT credit_account AS account, -amount_fen AS amount FROM ledger_entries WHERE fund_id = $1 \
         ) moves GROUP BY account ORDER BY account",
    )
    .bind(fund_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("account")?, row.try_get::<i64, _>("balance")?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Claims

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClaim {
    pub id: String,
    pub policy_group: String,
    pub source_system: String,
    pub source_reference: String,
    pub payload: ClaimPayload,
    pub state: ClaimState,
    pub region: String,
    pub person_display_name: String,
    pub amount: i64,
    pub fund_id: Option<String>,
    /// The open or last batch it is a line of.
    pub payment_batch_id: Option<String>,
    pub decision: Decision,
    pub earlier_decisions: Vec<Decision>,
    pub review_cause: Option<ReviewCause>,
    pub required_reviews: i32,
    pub reviews: Vec<Review>,
    pub submit_subject: String,
    pub acting_service: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub revision: i64,
}

impl StoredClaim {
    pub fn name(&self) -> String {
        format!("claims/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }
}

fn claim_from(row: &AnyRow) -> Result<StoredClaim> {
    let state: String = row.try_get("state")?;
    let cause: String = row.try_get("review_cause")?;
    Ok(StoredClaim {
        id: row.try_get("id")?,
        policy_group: row.try_get("policy_group")?,
        source_system: row.try_get("source_system")?,
        source_reference: row.try_get("source_reference")?,
        payload: json(row, "payload")?,
        state: decode("state", ClaimState::parse(&state))?,
        region: row.try_get("region")?,
        person_display_name: row.try_get("person_display_name")?,
        amount: row.try_get("amount_fen")?,
        fund_id: row.try_get("fund_id")?,
        payment_batch_id: row.try_get("payment_batch_id")?,
        decision: json(row, "decision")?,
        earlier_decisions: json(row, "earlier_decisions")?,
        review_cause: ReviewCause::parse(&cause),
        required_reviews: i32::try_from(row.try_get::<i64, _>("required_reviews")?).unwrap_or_default(),
        reviews: json(row, "reviews")?,
        submit_subject: row.try_get("submit_subject")?,
        acting_service: row.try_get("acting_service")?,
        created: instant(row, "created_us")?,
        updated: instant(row, "updated_us")?,
        revision: row.try_get("revision")?,
    })
}

pub async fn insert_claim(tx: &mut AnyConnection, claim: &StoredClaim, approved_month: Option<&str>) -> Result<()> {
    insert_claims(tx, &[(claim, approved_month)]).await
}

/// Inserts many claims in a few statements (a payroll's chunk): the same rows `insert_claim`
/// writes, with each claim's month of approval.
pub async fn insert_claims(tx: &mut AnyConnection, claims: &[(&StoredClaim, Option<&str>)]) -> Result<()> {
    const COLUMNS: usize = 28;
    for batch in claims.chunks(200) {
        let sql = format!(
            "INSERT INTO claims (id, policy_code, policy_group, subject_key, period_first, period_last, source_system, \
             source_reference, payload, state, region, person_display_name, policy_version, amount_fen, fund_id, decision, \
             earlier_decisions, review_cause, required_reviews, reviews, approved_month, submit_subject, acting_service, \
             created_us, updated_us, revision, payee_kind, payee_key) VALUES {}",
            bangfu_platform::db::values_groups(tx, batch.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (claim, approved_month) in batch {
            let (payee_kind, payee_key) = owner_key(&claim.payload.payee);
            query = query
                .bind(claim.id.clone())
                .bind(claim.payload.policy_code.clone())
                .bind(claim.policy_group.clone())
                .bind(claim.payload.subject_key())
                .bind(day_text(claim.payload.period.first))
                .bind(day_text(claim.payload.period.last))
                .bind(claim.source_system.clone())
                .bind(claim.source_reference.clone())
                .bind(to_json(&claim.payload))
                .bind(claim.state.as_str())
                .bind(claim.region.clone())
                .bind(claim.person_display_name.clone())
                .bind(i64::from(claim.decision.policy_version))
                .bind(claim.amount)
                .bind(claim.fund_id.clone())
                .bind(to_json(&claim.decision))
                .bind(to_json(&claim.earlier_decisions))
                .bind(claim.review_cause.map(|c| c.as_str()).unwrap_or(""))
                .bind(i64::from(claim.required_reviews))
                .bind(to_json(&claim.reviews))
                .bind(approved_month.map(str::to_string))
                .bind(claim.submit_subject.clone())
                .bind(claim.acting_service.clone())
                .bind(to_micros(claim.created))
                .bind(to_micros(claim.updated))
                .bind(claim.revision)
                .bind(payee_kind)
                .bind(payee_key);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// The claims made before under any of `sources` (system, reference), by source.
pub async fn claims_by_sources(
    conn: &mut AnyConnection,
    sources: &[(String, String)],
) -> Result<std::collections::HashMap<(String, String), StoredClaim>> {
    let mut found = std::collections::HashMap::new();
    for batch in sources.chunks(500) {
        let sql = format!(
            "SELECT * FROM claims WHERE (source_system, source_reference) IN (VALUES {})",
            bangfu_platform::db::values_groups(conn, batch.len(), 2)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (system, reference) in batch {
            query = query.bind(system.clone()).bind(reference.clone());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let claim = claim_from(&row)?;
            found.insert((claim.source_system.clone(), claim.source_reference.clone()), claim);
        }
    }
    Ok(found)
}

pub async fn get_claim(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredClaim>> {
    let row = sqlx::query("SELECT * FROM claims WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(claim_from).transpose()
}

pub async fn claim_by_source(conn: &mut AnyConnection, system: &str, reference: &str) -> Result<Option<StoredClaim>> {
    let row = sqlx::query("SELECT * FROM claims WHERE source_system = $1 AND source_reference = $2")
        .bind(system)
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(claim_from).transpose()
}

/// The filters of ListClaims.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    pub policy_code: String,
    pub person_id: String,
    pub state: String,
    pub source_system: String,
    /// Already narrowed to the caller's scope ("" for the whole country).
    pub region_prefix: String,
    pub fund_id: String,
    pub period: Option<(String, String)>,
    /// The batch the claims are in now ("" for any).
    pub payment_batch_id: String,
}

/// Claims by (region, id) after the cursor.
pub async fn list_claims(
    conn: &mut AnyConnection,
    filter: &ClaimFilter,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<StoredClaim>> {
    let (after_region, after_id) = after.unwrap_or_default();
    let upper = bangfu_platform::regions::prefix_upper_bound(&filter.region_prefix);
    let (first, last) = filter.period.clone().unwrap_or_default();
    let rows = sqlx::query(
        "SELECT * FROM claims WHERE region >= $1 AND ($2 = '' OR region < $2) \
         AND ($3 = '' OR policy_code = $3) AND ($4 = '' OR subject_key = $4) AND ($5 = '' OR state = $5) \
         AND ($6 = '' OR source_system = $6) AND ($7 = '' OR fund_id = $7) \
         AND ($8 = '' OR (period_first <= $9 AND period_last >= $8)) \
         AND ($13 = '' OR payment_batch_id = $13) \
         AND (region > $10 OR (region = $10 AND id > $11)) ORDER BY region, id LIMIT $12",
    )
    .bind(&filter.region_prefix)
    .bind(upper)
    .bind(&filter.policy_code)
    .bind(&filter.person_id)
    .bind(&filter.state)
    .bind(&filter.source_system)
    .bind(&filter.fund_id)
    .bind(first)
    .bind(last)
    .bind(after_region)
    .bind(after_id)
    .bind(limit)
    .bind(&filter.payment_batch_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(claim_from).collect()
}

/// What the group granted a subject (a person, or an organization) before a claim: months, amount, claims, and the month of
/// the first approval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub months_granted: i64,
    pub amount_granted: i64,
    pub claims_granted: i64,
    pub first_approval_month: Option<String>,
}

const GRANTED_STATES: &str =
    "('pending_review', 'approved', 'batched', 'paid', 'payment_failed', 'recovery_open', 'recovered')";

pub async fn history(conn: &mut AnyConnection, subject: &str, group: &str, monthly: bool) -> Result<History> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS claims, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount, MIN(approved_month) AS first_month \
         FROM claims WHERE subject_key = $1 AND policy_group = $2 AND state IN {GRANTED_STATES}"
    ));
    let row = sqlx::query(sql).bind(subject).bind(group).fetch_one(&mut *conn).await?;
    let claims: i64 = row.try_get("claims")?;
    Ok(History {
        months_granted: if monthly { claims } else { 0 },
        amount_granted: row.try_get("amount")?,
        claims_granted: claims,
        first_approval_month: row.try_get("first_month")?,
    })
}

/// Claims of the subject granted under policies of an exclusivity group (other policies than
/// `policy_code`), with their periods: the application tests them against the scope.
pub async fn exclusive_claims(
    conn: &mut AnyConnection,
    subject: &str,
    policy_codes: &[String],
) -> Result<Vec<(String, String, String, String)>> {
    let mut found = Vec::new();
    for code in policy_codes {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, policy_code, period_first, period_last FROM claims WHERE subject_key = $1 AND policy_code = $2 \
             AND state IN {GRANTED_STATES}"
        ));
        let rows = sqlx::query(sql).bind(subject).bind(code).fetch_all(&mut *conn).await?;
        for row in rows {
            found.push((
                row.try_get("id")?,
                row.try_get("policy_code")?,
                row.try_get("period_first")?,
                row.try_get("period_last")?,
            ));
        }
    }
    Ok(found)
}

/// Policy codes whose latest version lists the exclusivity group `key`. Versions keep their
/// rules as JSON, so the match is on the stored text and confirmed by the caller.
pub async fn policies_in_exclusivity_group(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Vec<(String, PolicyVersion)>> {
    let pattern = format!("%\"key\":\"{key}\"%");
    let rows = sqlx::query("SELECT policy_code, rules FROM policy_versions WHERE rules LIKE $1")
        .bind(pattern)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("policy_code")?, json(row, "rules")?)))
        .collect()
}

/// The periods one claim wants, as `occupy` takes them.
pub struct WantedPeriods<'a> {
    pub claim_id: &'a str,
    /// The claim's subject key (`ClaimPayload::subject_key`).
    pub subject: String,
    /// (group key, unit) pairs.
    pub keys: Vec<(String, String)>,
}

/// Takes the periods of granted claims of distinct subjects, one statement per 500 rows: every
/// key no other claim holds is taken, and the keys taken come back as (subject, group, unit). A
/// claim with a key missing from the answer met a holder; the caller gives its keys back.
pub async fn occupy(
    tx: &mut AnyConnection,
    claims: &[WantedPeriods<'_>],
) -> Result<std::collections::HashSet<(String, String, String)>> {
    let rows: Vec<(&str, &str, &str, &str)> = claims
        .iter()
        .flat_map(|wanted| {
            wanted
                .keys
                .iter()
                .map(move |(group, unit)| (wanted.subject.as_str(), group.as_str(), unit.as_str(), wanted.claim_id))
        })
        .collect();
    let mut taken = std::collections::HashSet::with_capacity(rows.len());
    for batch in rows.chunks(500) {
        let sql = format!(
            "INSERT INTO claim_periods (subject_key, group_key, unit, claim_id) VALUES {} \
             ON CONFLICT (subject_key, group_key, unit) DO NOTHING RETURNING subject_key, group_key, unit",
            bangfu_platform::db::values_groups(tx, batch.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (subject, group, unit, claim_id) in batch {
            query = query
                .bind(subject.to_string())
                .bind(group.to_string())
                .bind(unit.to_string())
                .bind(claim_id.to_string());
        }
        for row in query.fetch_all(&mut *tx).await? {
            taken.insert((
                row.try_get("subject_key")?,
                row.try_get("group_key")?,
                row.try_get("unit")?,
            ));
        }
    }
    Ok(taken)
}

/// The claim that holds any of `keys`, without taking them (a dry run).
pub async fn holder_of(conn: &mut AnyConnection, subject: &str, keys: &[(String, String)]) -> Result<Option<String>> {
    for (group_key, unit) in keys {
        let row =
            sqlx::query("SELECT claim_id FROM claim_periods WHERE subject_key = $1 AND group_key = $2 AND unit = $3")
                .bind(subject)
                .bind(group_key)
                .bind(unit)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(row) = row {
            return Ok(Some(row.try_get("claim_id")?));
        }
    }
    Ok(None)
}

/// Gives up the periods of a claim that no longer counts.
pub async fn vacate(tx: &mut AnyConnection, claim_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM claim_periods WHERE claim_id = $1")
        .bind(claim_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Writes a claim's changed state, decision and reviews at the read revision and state; false
/// when either moved (someone else changed it meanwhile).
pub async fn update_claim(
    tx: &mut AnyConnection,
    claim: &StoredClaim,
    from: ClaimState,
    read_revision: i64,
    approved_month: Option<&str>,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE claims SET state = $1, amount_fen = $2, fund_id = $3, decision = $4, earlier_decisions = $5, \
         review_cause = $6, required_reviews = $7, reviews = $8, updated_us = $9, revision = revision + 1, \
         approved_month = COALESCE(approved_month, $10), region = $14, policy_version = $15 \
         WHERE id = $11 AND state = $12 AND revision = $13",
    )
    .bind(claim.state.as_str())
    .bind(claim.amount)
    .bind(&claim.fund_id)
    .bind(to_json(&claim.decision))
    .bind(to_json(&claim.earlier_decisions))
    .bind(claim.review_cause.map(|c| c.as_str()).unwrap_or(""))
    .bind(i64::from(claim.required_reviews))
    .bind(to_json(&claim.reviews))
    .bind(to_micros(claim.updated))
    .bind(approved_month)
    .bind(&claim.id)
    .bind(from.as_str())
    .bind(read_revision)
    .bind(&claim.region)
    .bind(i64::from(claim.decision.policy_version))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// A proposal confirmed: the clerk's facts and note become the claim's, and the clerk its
/// submitter (so they cannot also review it).
pub async fn confirm_claim(
    tx: &mut AnyConnection,
    id: &str,
    payload: &crate::domain::ClaimPayload,
    subject: &str,
    revision: i64,
) -> Result<bool> {
    // Guarded on the revision the confirmation just wrote: the row is the one it decided.
    let updated = sqlx::query("UPDATE claims SET payload = $1, submit_subject = $2 WHERE id = $3 AND revision = $4")
        .bind(to_json(payload))
        .bind(subject)
        .bind(id)
        .bind(revision)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(updated == 1)
}

// ---------------------------------------------------------------------------------------------
// Payee accounts

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    pub id: String,
    pub owner: crate::domain::Payee,
    pub owner_display_name: String,
    pub region: String,
    pub kind: crate::domain::AccountKind,
    pub account_enc: Vec<u8>,
    pub account_masked: String,
    pub holder_name_enc: Vec<u8>,
    pub holder_name_masked: String,
    pub holder_citizen_id_enc: Option<Vec<u8>>,
    pub bank_name: String,
    pub bank_code: String,
    pub verification_state: crate::domain::VerificationState,
    pub verification_method: crate::domain::VerificationMethod,
    pub verification_document: String,
    pub verified: Option<OffsetDateTime>,
    pub in_use: bool,
    pub superseded_by: Option<String>,
    pub create_subject: String,
    pub created: OffsetDateTime,
}

impl StoredAccount {
    pub fn name(&self) -> String {
        format!("payeeAccounts/{}", self.id)
    }
}

/// The owner as the table keys it: ("person", id) or ("organization", credit code).
pub fn owner_key(owner: &crate::domain::Payee) -> (&'static str, String) {
    match owner {
        crate::domain::Payee::Person(id) => ("person", id.clone()),
        crate::domain::Payee::Organization(org) => ("organization", org.credit_code.clone()),
    }
}

fn account_from(row: &AnyRow) -> Result<StoredAccount> {
    let owner_kind: String = row.try_get("owner_kind")?;
    let owner_key: String = row.try_get("owner_key")?;
    let region: String = row.try_get("region")?;
    let owner_display_name: String = row.try_get("owner_display_name")?;
    let owner = if owner_kind == "person" {
        crate::domain::Payee::Person(owner_key)
    } else {
        crate::domain::Payee::Organization(crate::domain::OrganizationPayee {
            credit_code: owner_key,
            display_name: owner_display_name.clone(),
            region: region.clone(),
        })
    };
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("verification_state")?;
    let method: String = row.try_get("verification_method")?;
    let verified: Option<i64> = row.try_get("verified_us")?;
    Ok(StoredAccount {
        id: row.try_get("id")?,
        owner,
        owner_display_name,
        region,
        kind: decode("kind", crate::domain::AccountKind::parse(&kind))?,
        account_enc: row.try_get("account_enc")?,
        account_masked: row.try_get("account_masked")?,
        holder_name_enc: row.try_get("holder_name_enc")?,
        holder_name_masked: row.try_get("holder_name_masked")?,
        holder_citizen_id_enc: row.try_get("holder_citizen_id_enc")?,
        bank_name: row.try_get("bank_name")?,
        bank_code: row.try_get("bank_code")?,
        verification_state: decode("verification_state", crate::domain::VerificationState::parse(&state))?,
        verification_method: decode("verification_method", crate::domain::VerificationMethod::parse(&method))?,
        verification_document: row.try_get("verification_document")?,
        verified: verified.and_then(from_micros),
        in_use: row.try_get::<i64, _>("in_use")? == 1,
        superseded_by: row.try_get("superseded_by")?,
        create_subject: row.try_get("create_subject")?,
        created: instant(row, "created_us")?,
    })
}

/// Inserts an account; a verified one takes the owner's account in use over (the older is kept,
/// superseded). Call in one transaction.
pub async fn insert_account(tx: &mut AnyConnection, account: &StoredAccount) -> Result<()> {
    let (owner_kind, owner_key) = owner_key(&account.owner);
    if account.in_use {
        sqlx::query(
            "UPDATE payee_accounts SET in_use = 0, superseded_by = $1 WHERE owner_kind = $2 AND owner_key = $3 AND in_use = 1",
        )
        .bind(&account.id)
        .bind(owner_kind)
        .bind(&owner_key)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO payee_accounts (id, owner_kind, owner_key, owner_display_name, region, kind, account_enc, \
         account_masked, holder_name_enc, holder_name_masked, holder_citizen_id_enc, bank_name, bank_code, \
         verification_state, verification_method, verification_document, verified_us, in_use, superseded_by, \
         create_subject, created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, NULL, $19, $20)",
    )
    .bind(&account.id)
    .bind(owner_kind)
    .bind(&owner_key)
    .bind(&account.owner_display_name)
    .bind(&account.region)
    .bind(account.kind.as_str())
    .bind(&account.account_enc)
    .bind(&account.account_masked)
    .bind(&account.holder_name_enc)
    .bind(&account.holder_name_masked)
    .bind(&account.holder_citizen_id_enc)
    .bind(&account.bank_name)
    .bind(&account.bank_code)
    .bind(account.verification_state.as_str())
    .bind(account.verification_method.as_str())
    .bind(&account.verification_document)
    .bind(account.verified.map(to_micros))
    .bind(i64::from(account.in_use))
    .bind(&account.create_subject)
    .bind(to_micros(account.created))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_account(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredAccount>> {
    let row = sqlx::query("SELECT * FROM payee_accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(account_from).transpose()
}

/// The account in use of a payee, if any.
pub async fn account_in_use(conn: &mut AnyConnection, owner: &crate::domain::Payee) -> Result<Option<StoredAccount>> {
    let (owner_kind, owner_key) = owner_key(owner);
    let row = sqlx::query("SELECT * FROM payee_accounts WHERE owner_kind = $1 AND owner_key = $2 AND in_use = 1")
        .bind(owner_kind)
        .bind(owner_key)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(account_from).transpose()
}

/// Every account a payee ever registered, in use or not.
pub async fn accounts_of(conn: &mut AnyConnection, owner: &crate::domain::Payee) -> Result<Vec<StoredAccount>> {
    let (owner_kind, owner_key) = owner_key(owner);
    let rows = sqlx::query("SELECT * FROM payee_accounts WHERE owner_kind = $1 AND owner_key = $2 ORDER BY created_us")
        .bind(owner_kind)
        .bind(owner_key)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(account_from).collect()
}

/// Accounts by (region, id) after the cursor, under a region prefix ("" for all), of one owner
/// ("" for all).
/// The filters of ListPayeeAccounts; "" for any.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub owner_key: String,
    pub verification_state: String,
    pub in_use_only: bool,
}

pub async fn list_accounts(
    conn: &mut AnyConnection,
    region_prefix: &str,
    filter: &AccountFilter,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<StoredAccount>> {
    let (after_region, after_id) = after.unwrap_or_default();
    let upper = bangfu_platform::regions::prefix_upper_bound(region_prefix);
    let rows = sqlx::query(
        "SELECT * FROM payee_accounts WHERE region >= $1 AND ($2 = '' OR region < $2) AND ($3 = '' OR owner_key = $3) \
         AND ($7 = '' OR verification_state = $7) AND ($8 = 0 OR in_use = 1) \
         AND (region > $4 OR (region = $4 AND id > $5)) ORDER BY region, id LIMIT $6",
    )
    .bind(region_prefix)
    .bind(upper)
    .bind(&filter.owner_key)
    .bind(after_region)
    .bind(after_id)
    .bind(limit)
    .bind(&filter.verification_state)
    .bind(i64::from(filter.in_use_only))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(account_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Payment batches

/// Which claims a batch takes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    pub fund_id: String,
    pub region_prefix: String,
    pub policies: Vec<String>,
    #[serde(with = "crate::domain::optional_day_serde", default)]
    pub period_last_day_on_or_before: Option<time::Date>,
    pub include_failed_payments: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    pub id: String,
    pub display_name: String,
    pub selection: Selection,
    pub state: String,
    pub control_count: i64,
    pub control_amount: i64,
    pub skipped_without_account: i64,
    pub notice_days: i64,
    pub notice: Option<(time::Date, time::Date)>,
    pub objection_contact: String,
    /// The office that issued the notice.
    pub notice_issuer: String,
    pub open_objections: i64,
    pub paid_count: i64,
    pub paid_amount: i64,
    pub failed_count: i64,
    pub failed_amount: i64,
    pub reconciliation: Option<String>,
    pub create_subject: String,
    pub created: OffsetDateTime,
    pub approve_subject: Option<String>,
    pub approved: Option<OffsetDateTime>,
    pub export_count: i64,
    pub first_export: Option<OffsetDateTime>,
    pub cancel_reason: String,
    pub cancelled: Option<OffsetDateTime>,
    pub revision: i64,
}

impl StoredBatch {
    pub fn name(&self) -> String {
        format!("paymentBatches/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }
}

fn batch_from(row: &AnyRow) -> Result<StoredBatch> {
    let first: Option<String> = row.try_get("notice_first")?;
    let last: Option<String> = row.try_get("notice_last")?;
    let notice = match (
        first.as_deref().and_then(parse_day),
        last.as_deref().and_then(parse_day),
    ) {
        (Some(first), Some(last)) => Some((first, last)),
        _ => None,
    };
    let optional_instant = |column: &str| -> Result<Option<OffsetDateTime>> {
        Ok(row.try_get::<Option<i64>, _>(column)?.and_then(from_micros))
    };
    Ok(StoredBatch {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        selection: json(row, "selection")?,
        state: row.try_get("state")?,
        control_count: row.try_get("control_count")?,
        control_amount: row.try_get("control_amount_fen")?,
        skipped_without_account: row.try_get("skipped_without_account")?,
        notice_days: row.try_get("notice_days")?,
        notice,
        objection_contact: row.try_get("objection_contact")?,
        notice_issuer: row.try_get("notice_issuer")?,
        open_objections: row.try_get("open_objections")?,
        paid_count: row.try_get("paid_count")?,
        paid_amount: row.try_get("paid_fen")?,
        failed_count: row.try_get("failed_count")?,
        failed_amount: row.try_get("failed_fen")?,
        reconciliation: row.try_get("reconciliation")?,
        create_subject: row.try_get("create_subject")?,
        created: instant(row, "created_us")?,
        approve_subject: row.try_get("approve_subject")?,
        approved: optional_instant("approved_us")?,
        export_count: row.try_get("export_count")?,
        first_export: optional_instant("first_export_us")?,
        cancel_reason: row.try_get("cancel_reason")?,
        cancelled: optional_instant("cancelled_us")?,
        revision: row.try_get("revision")?,
    })
}

pub async fn get_batch(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredBatch>> {
    let row = sqlx::query("SELECT * FROM payment_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(batch_from).transpose()
}

/// Batches newest first, after the cursor (created_us, id), optionally of one fund and state.
pub async fn list_batches(
    conn: &mut AnyConnection,
    fund_id: &str,
    state: &str,
    region_prefix: &str,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<StoredBatch>> {
    let (before_us, before_id) = before.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(
        "SELECT * FROM payment_batches WHERE ($1 = '' OR fund_id = $1) AND ($2 = '' OR state = $2) \
         AND region_prefix LIKE $3 AND (created_us < $4 OR (created_us = $4 AND id < $5)) \
         ORDER BY created_us DESC, id DESC LIMIT $6",
    )
    .bind(fund_id)
    .bind(state)
    .bind(format!("{region_prefix}%"))
    .bind(before_us)
    .bind(if before_id.is_empty() {
        "~".to_string()
    } else {
        before_id
    })
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(batch_from).collect()
}

const BATCHABLE: &str = "('approved')";
const BATCHABLE_WITH_FAILED: &str = "('approved', 'payment_failed')";

/// The claims a selection takes, as lines of a new batch, in one INSERT … SELECT: each claim
/// with its payee's verified account in use, numbered by region and claim. Claims whose payee
/// has no such account are left out and counted. Returns (lines, amount, skipped).
pub async fn insert_batch_lines(
    tx: &mut AnyConnection,
    batch_id: &str,
    selection: &Selection,
) -> Result<(i64, i64, i64)> {
    let states = if selection.include_failed_payments {
        BATCHABLE_WITH_FAILED
    } else {
        BATCHABLE
    };
    let upper = bangfu_platform::regions::prefix_upper_bound(&selection.region_prefix);
    let last_day = selection.period_last_day_on_or_before.map(day_text).unwrap_or_default();
    let policies = to_json(&selection.policies);
    // The policy filter is a JSON list matched by text, so one statement serves any number of
    // policies on both databases.
    let filter = format!(
        "c.fund_id = $2 AND c.state IN {states} AND c.region >= $3 AND ($4 = '' OR c.region < $4) \
         AND ($5 = '' OR c.period_last <= $5) AND ($6 = '[]' OR $6 LIKE '%\"' || c.policy_code || '\"%')"
    );
    let insert = sqlx::AssertSqlSafe(format!(
        "INSERT INTO payment_lines (batch_id, line_number, claim_id, open_claim_id, account_id, payee_display_name, \
         masked_account, amount_fen, region, state) \
         SELECT $1, ROW_NUMBER() OVER (ORDER BY c.region, c.id), c.id, c.id, a.id, c.person_display_name, \
         a.account_masked, c.amount_fen, c.region, 'pending' \
         FROM claims c JOIN payee_accounts a ON a.owner_kind = c.payee_kind AND a.owner_key = c.payee_key AND a.in_use = 1 \
         WHERE {filter}"
    ));
    sqlx::query(insert)
        .bind(batch_id)
        .bind(&selection.fund_id)
        .bind(&selection.region_prefix)
        .bind(&upper)
        .bind(&last_day)
        .bind(&policies)
        .execute(&mut *tx)
        .await?;
    let totals = sqlx::query(
        "SELECT COUNT(*) AS lines, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount FROM payment_lines WHERE batch_id = $1",
    )
    .bind(batch_id)
    .fetch_one(&mut *tx)
    .await?;
    let skipped_sql = sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS skipped FROM claims c WHERE {filter} AND NOT EXISTS (SELECT 1 FROM payee_accounts a \
         WHERE a.owner_kind = c.payee_kind AND a.owner_key = c.payee_key AND a.in_use = 1) AND $1 = $1"
    ));
    let skipped: i64 = sqlx::query(skipped_sql)
        .bind(batch_id)
        .bind(&selection.fund_id)
        .bind(&selection.region_prefix)
        .bind(&upper)
        .bind(&last_day)
        .bind(&policies)
        .fetch_one(&mut *tx)
        .await?
        .try_get("skipped")?;
    Ok((totals.try_get("lines")?, totals.try_get("amount")?, skipped))
}

pub async fn insert_batch(tx: &mut AnyConnection, batch: &StoredBatch) -> Result<()> {
    sqlx::query(
        "INSERT INTO payment_batches (id, display_name, fund_id, region_prefix, selection, state, control_count, \
         control_amount_fen, skipped_without_account, create_subject, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&batch.id)
    .bind(&batch.display_name)
    .bind(&batch.selection.fund_id)
    .bind(&batch.selection.region_prefix)
    .bind(to_json(&batch.selection))
    .bind(&batch.state)
    .bind(batch.control_count)
    .bind(batch.control_amount)
    .bind(batch.skipped_without_account)
    .bind(&batch.create_subject)
    .bind(to_micros(batch.created))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Marks the batch's claims as its lines; the number of claims moved (every line's, unless a
/// claim changed meanwhile).
pub async fn batch_claims(tx: &mut AnyConnection, batch_id: &str, now: OffsetDateTime) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE claims SET state = 'batched', payment_batch_id = $1, updated_us = $2, revision = revision + 1 \
         WHERE id IN (SELECT claim_id FROM payment_lines WHERE batch_id = $1 AND state = 'pending') \
         AND state IN ('approved', 'payment_failed')",
    )
    .bind(batch_id)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Moves a batch from one state to another at the read revision, with the columns the step
/// sets; false when the batch moved meanwhile.
pub async fn move_batch(tx: &mut AnyConnection, batch: &StoredBatch, from: &str, read_revision: i64) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE payment_batches SET state = $1, notice_days = $2, notice_first = $3, notice_last = $4, \
         objection_contact = $5, open_objections = $6, approve_subject = $7, approved_us = $8, export_count = $9, \
         first_export_us = $10, cancel_reason = $11, cancelled_us = $12, paid_count = $13, paid_fen = $14, \
         failed_count = $15, failed_fen = $16, reconciliation = $17, notice_issuer = $21, revision = revision + 1 \
         WHERE id = $18 AND state = $19 AND revision = $20",
    )
    .bind(&batch.state)
    .bind(batch.notice_days)
    .bind(batch.notice.map(|n| day_text(n.0)))
    .bind(batch.notice.map(|n| day_text(n.1)))
    .bind(&batch.objection_contact)
    .bind(batch.open_objections)
    .bind(&batch.approve_subject)
    .bind(batch.approved.map(to_micros))
    .bind(batch.export_count)
    .bind(batch.first_export.map(to_micros))
    .bind(&batch.cancel_reason)
    .bind(batch.cancelled.map(to_micros))
    .bind(batch.paid_count)
    .bind(batch.paid_amount)
    .bind(batch.failed_count)
    .bind(batch.failed_amount)
    .bind(&batch.reconciliation)
    .bind(&batch.id)
    .bind(from)
    .bind(read_revision)
    .bind(&batch.notice_issuer)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Closes every open line of a cancelled batch and puts its claims back among the approved.
pub async fn cancel_lines(tx: &mut AnyConnection, batch_id: &str, now: OffsetDateTime) -> Result<()> {
    sqlx::query(
        "UPDATE claims SET state = 'approved', payment_batch_id = NULL, updated_us = $2, revision = revision + 1 \
         WHERE id IN (SELECT claim_id FROM payment_lines WHERE batch_id = $1 AND state = 'pending') AND state = 'batched'",
    )
    .bind(batch_id)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE payment_lines SET state = 'cancelled', open_claim_id = NULL WHERE batch_id = $1 AND state = 'pending'",
    )
    .bind(batch_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    pub batch_id: String,
    pub line_number: i64,
    pub claim_id: String,
    pub account_id: String,
    pub payee_display_name: String,
    pub masked_account: String,
    pub amount: i64,
    pub region: String,
    pub state: String,
    pub paid_date: Option<time::Date>,
    pub bank_reference: String,
    pub failure_reason: String,
}

impl StoredLine {
    pub fn name(&self) -> String {
        format!("paymentBatches/{}/lines/{}", self.batch_id, self.line_number)
    }
}

fn line_from(row: &AnyRow) -> Result<StoredLine> {
    let paid: Option<String> = row.try_get("paid_date")?;
    Ok(StoredLine {
        batch_id: row.try_get("batch_id")?,
        line_number: row.try_get("line_number")?,
        claim_id: row.try_get("claim_id")?,
        account_id: row.try_get("account_id")?,
        payee_display_name: row.try_get("payee_display_name")?,
        masked_account: row.try_get("masked_account")?,
        amount: row.try_get("amount_fen")?,
        region: row.try_get("region")?,
        state: row.try_get("state")?,
        paid_date: paid.as_deref().and_then(parse_day),
        bank_reference: row.try_get("bank_reference")?,
        failure_reason: row.try_get("failure_reason")?,
    })
}

/// Lines by number after `after`, optionally in one state and under a region prefix.
pub async fn list_lines(
    conn: &mut AnyConnection,
    batch_id: &str,
    state: &str,
    region_prefix: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredLine>> {
    let rows = sqlx::query(
        "SELECT * FROM payment_lines WHERE batch_id = $1 AND ($2 = '' OR state = $2) AND region LIKE $3 \
         AND line_number > $4 ORDER BY line_number LIMIT $5",
    )
    .bind(batch_id)
    .bind(state)
    .bind(format!("{region_prefix}%"))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(line_from).collect()
}

/// Count and sum of a batch's lines under a region prefix.
pub async fn line_totals(conn: &mut AnyConnection, batch_id: &str, region_prefix: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS lines, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount FROM payment_lines \
         WHERE batch_id = $1 AND region LIKE $2 AND state <> 'cancelled'",
    )
    .bind(batch_id)
    .bind(format!("{region_prefix}%"))
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("lines")?, row.try_get("amount")?))
}

/// Moves money between a fund's columns for a batch step (never below zero: the CHECKs hold).
pub async fn move_fund(
    tx: &mut AnyConnection,
    fund_id: &str,
    reserved: i64,
    payable: i64,
    consumed: i64,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE fund_balances SET reserved_fen = reserved_fen + $2, payable_fen = payable_fen + $3, \
         consumed_fen = consumed_fen + $4, revision = revision + 1 WHERE fund_id = $1 \
         AND reserved_fen + $2 >= 0 AND payable_fen + $3 >= 0 AND consumed_fen + $4 >= 0",
    )
    .bind(fund_id)
    .bind(reserved)
    .bind(payable)
    .bind(consumed)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Records the bank's result for a pending line and its claim: paid, or failed (the claim
/// keeps its reservation for a new batch). False when the line was not pending.
pub async fn settle_line(
    tx: &mut AnyConnection,
    line: &StoredLine,
    outcome: &crate::domain::files::BankOutcome,
    paid_date: Option<time::Date>,
    bank_reference: &str,
    failure_reason: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let (line_state, claim_state) = match outcome {
        crate::domain::files::BankOutcome::Paid => ("paid", "paid"),
        crate::domain::files::BankOutcome::Failed => ("failed", "payment_failed"),
    };
    let updated = sqlx::query(
        "UPDATE payment_lines SET state = $1, open_claim_id = NULL, paid_date = $2, bank_reference = $3, \
         failure_reason = $4 WHERE batch_id = $5 AND line_number = $6 AND state = 'pending'",
    )
    .bind(line_state)
    .bind(paid_date.map(day_text))
    .bind(bank_reference)
    .bind(failure_reason)
    .bind(&line.batch_id)
    .bind(line.line_number)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != 1 {
        return Ok(false);
    }
    let claims = sqlx::query(
        "UPDATE claims SET state = $1, updated_us = $2, revision = revision + 1 WHERE id = $3 AND state = 'batched'",
    )
    .bind(claim_state)
    .bind(to_micros(now))
    .bind(&line.claim_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(claims == 1)
}

pub async fn result_file_report(
    conn: &mut AnyConnection,
    batch_id: &str,
    sha256: &str,
) -> Result<Option<crate::app::Reconciliation>> {
    let row = sqlx::query("SELECT report FROM bank_result_files WHERE batch_id = $1 AND sha256 = $2")
        .bind(batch_id)
        .bind(sha256)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(|row| json(row, "report")).transpose()
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_result_file(
    tx: &mut AnyConnection,
    batch_id: &str,
    sha256: &str,
    file_name: &str,
    bank_name: &str,
    report: &str,
    subject: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO bank_result_files (batch_id, sha256, file_name, bank_name, report, subject, imported_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(batch_id)
    .bind(sha256)
    .bind(file_name)
    .bind(bank_name)
    .bind(report)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Objections

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObjection {
    pub batch_id: String,
    pub seq: i64,
    pub line_number: i64,
    pub claim_id: Option<String>,
    pub channel: String,
    pub content: String,
    pub objector_contact_enc: Option<Vec<u8>>,
    pub objector_contact_masked: String,
    pub received_date: time::Date,
    pub state: String,
    pub resolution: String,
    pub record_subject: String,
    pub resolve_subject: Option<String>,
    pub created: OffsetDateTime,
    pub resolved: Option<OffsetDateTime>,
}

impl StoredObjection {
    pub fn name(&self) -> String {
        format!("paymentBatches/{}/objections/{}", self.batch_id, self.seq)
    }
}

fn objection_from(row: &AnyRow) -> Result<StoredObjection> {
    let received: String = row.try_get("received_date")?;
    let resolved: Option<i64> = row.try_get("resolved_us")?;
    Ok(StoredObjection {
        batch_id: row.try_get("batch_id")?,
        seq: row.try_get("seq")?,
        line_number: row.try_get("line_number")?,
        claim_id: row.try_get("claim_id")?,
        channel: row.try_get("channel")?,
        content: row.try_get("content")?,
        objector_contact_enc: row.try_get("objector_contact_enc")?,
        objector_contact_masked: row.try_get("objector_contact_masked")?,
        received_date: decode("received_date", parse_day(&received))?,
        state: row.try_get("state")?,
        resolution: row.try_get("resolution")?,
        record_subject: row.try_get("record_subject")?,
        resolve_subject: row.try_get("resolve_subject")?,
        created: instant(row, "created_us")?,
        resolved: resolved.and_then(from_micros),
    })
}

/// Counts an objection on a batch in notice; false when the batch is not in notice.
pub async fn count_objection(tx: &mut AnyConnection, batch_id: &str, delta: i64) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE payment_batches SET open_objections = open_objections + $2, revision = revision + 1 \
         WHERE id = $1 AND state = 'notice' AND open_objections + $2 >= 0",
    )
    .bind(batch_id)
    .bind(delta)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Inserts an objection with the next number of its batch (call after `count_objection`, whose
/// row lock orders concurrent ones); its number.
pub async fn insert_objection(tx: &mut AnyConnection, objection: &StoredObjection) -> Result<i64> {
    let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM objections WHERE batch_id = $1")
        .bind(&objection.batch_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("seq")?;
    sqlx::query(
        "INSERT INTO objections (batch_id, seq, line_number, claim_id, channel, content, objector_contact_enc, \
         objector_contact_masked, received_date, state, record_subject, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11)",
    )
    .bind(&objection.batch_id)
    .bind(seq)
    .bind(objection.line_number)
    .bind(&objection.claim_id)
    .bind(&objection.channel)
    .bind(&objection.content)
    .bind(&objection.objector_contact_enc)
    .bind(&objection.objector_contact_masked)
    .bind(day_text(objection.received_date))
    .bind(&objection.record_subject)
    .bind(to_micros(objection.created))
    .execute(&mut *tx)
    .await?;
    Ok(seq)
}

pub async fn get_objection(conn: &mut AnyConnection, batch_id: &str, seq: i64) -> Result<Option<StoredObjection>> {
    let row = sqlx::query("SELECT * FROM objections WHERE batch_id = $1 AND seq = $2")
        .bind(batch_id)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(objection_from).transpose()
}

pub async fn list_objections(
    conn: &mut AnyConnection,
    batch_id: &str,
    state: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredObjection>> {
    let rows = sqlx::query(
        "SELECT * FROM objections WHERE batch_id = $1 AND ($2 = '' OR state = $2) AND seq > $3 ORDER BY seq LIMIT $4",
    )
    .bind(batch_id)
    .bind(state)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(objection_from).collect()
}

/// Resolves an open objection; false when it was no longer open.
pub async fn resolve_objection(
    tx: &mut AnyConnection,
    batch_id: &str,
    seq: i64,
    state: &str,
    resolution: &str,
    subject: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE objections SET state = $3, resolution = $4, resolve_subject = $5, resolved_us = $6 \
         WHERE batch_id = $1 AND seq = $2 AND state = 'open'",
    )
    .bind(batch_id)
    .bind(seq)
    .bind(state)
    .bind(resolution)
    .bind(subject)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// The line of a batch by its number.
pub async fn get_line(conn: &mut AnyConnection, batch_id: &str, line_number: i64) -> Result<Option<StoredLine>> {
    let row = sqlx::query("SELECT * FROM payment_lines WHERE batch_id = $1 AND line_number = $2")
        .bind(batch_id)
        .bind(line_number)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(line_from).transpose()
}

/// The claims whose ids are given (for their feed events), in no particular order.
pub async fn claims_by_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<StoredClaim>> {
    let mut claims = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT * FROM claims WHERE id IN ({})",
            bangfu_platform::db::numbered_parameters(1, chunk.len())
        ));
        let mut query = sqlx::query(sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            claims.push(claim_from(&row)?);
        }
    }
    Ok(claims)
}

/// The ids of the claims on a batch's lines in one state.
pub async fn line_claim_ids(conn: &mut AnyConnection, batch_id: &str, state: &str) -> Result<Vec<String>> {
    let rows =
        sqlx::query("SELECT claim_id FROM payment_lines WHERE batch_id = $1 AND state = $2 ORDER BY line_number")
            .bind(batch_id)
            .bind(state)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(|row| row.try_get("claim_id")).collect()
}

/// A person's claims by (period, id) after the cursor, inside a region prefix, overlapping
/// `period` when given.
pub async fn claims_of_person(
    conn: &mut AnyConnection,
    person_id: &str,
    region_prefix: &str,
    period: Option<(String, String)>,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<StoredClaim>> {
    let (first, last) = period.unwrap_or_default();
    let (after_first, after_id) = after.unwrap_or_default();
    let rows = sqlx::query(
        "SELECT * FROM claims WHERE subject_key = $1 AND region LIKE $2 \
         AND ($3 = '' OR (period_first <= $4 AND period_last >= $3)) \
         AND (period_first > $5 OR (period_first = $5 AND id > $6)) ORDER BY period_first, id LIMIT $7",
    )
    .bind(person_id)
    .bind(format!("{region_prefix}%"))
    .bind(first)
    .bind(last)
    .bind(after_first)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(claim_from).collect()
}

/// What was paid on a claim: the amount and day of its paid line, if any.
pub async fn paid_line(conn: &mut AnyConnection, claim_id: &str) -> Result<Option<(i64, Option<time::Date>)>> {
    Ok(paid_lines(conn, &[claim_id.to_string()]).await?.remove(claim_id))
}

/// The paid line of each of `claim_ids` that has one: amount and paid date, by claim.
pub async fn paid_lines(
    conn: &mut AnyConnection,
    claim_ids: &[String],
) -> Result<std::collections::HashMap<String, (i64, Option<time::Date>)>> {
    let mut found = std::collections::HashMap::new();
    for batch in claim_ids.chunks(500) {
        let sql = format!(
            "SELECT claim_id, amount_fen, paid_date FROM payment_lines WHERE state = 'paid' AND claim_id IN (VALUES {})",
            bangfu_platform::db::values_groups(conn, batch.len(), 1)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in batch {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let date: Option<String> = row.try_get("paid_date")?;
            found.insert(
                row.try_get::<String, _>("claim_id")?,
                (row.try_get("amount_fen")?, date.as_deref().and_then(parse_day)),
            );
        }
    }
    Ok(found)
}

/// Totals over a person's claims inside a region prefix: granted and paid.
pub async fn person_totals(conn: &mut AnyConnection, person_id: &str, region_prefix: &str) -> Result<(i64, i64)> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN c.state IN {GRANTED_STATES} THEN c.amount_fen ELSE 0 END), 0) AS BIGINT) \
         AS granted, CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) AS paid FROM claims c \
         LEFT JOIN payment_lines l ON l.claim_id = c.id AND l.state = 'paid' WHERE c.subject_key = $1 AND c.region LIKE $2"
    ));
    let row = sqlx::query(sql)
        .bind(person_id)
        .bind(format!("{region_prefix}%"))
        .fetch_one(&mut *conn)
        .await?;
    Ok((row.try_get("granted")?, row.try_get("paid")?))
}

// ---------------------------------------------------------------------------------------------
// Recoveries

/// Notes a change to check, once per feed event.
pub async fn note_recovery_check(
    tx: &mut AnyConnection,
    cursor: &str,
    person_id: &str,
    change_kind: &str,
    effective_date: Option<time::Date>,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO recovery_checks (event_cursor, person_id, change_kind, effective_date, noted_us) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_cursor) DO NOTHING",
    )
    .bind(cursor)
    .bind(person_id)
    .bind(change_kind)
    .bind(effective_date.map(day_text))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether the person has any claim paid (the only ones a change can undo).
pub async fn has_paid_claims(conn: &mut AnyConnection, person_id: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM claims WHERE subject_key = $1 AND state = 'paid' LIMIT 1")
            .bind(person_id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// A noted change waiting to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCheck {
    pub cursor: String,
    pub person_id: String,
    pub change_kind: String,
    pub effective_date: Option<time::Date>,
}

pub async fn pending_recovery_checks(conn: &mut AnyConnection, limit: i64) -> Result<Vec<RecoveryCheck>> {
    let rows = sqlx::query("SELECT * FROM recovery_checks ORDER BY noted_us, event_cursor LIMIT $1")
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let date: Option<String> = row.try_get("effective_date")?;
            Ok(RecoveryCheck {
                cursor: row.try_get("event_cursor")?,
                person_id: row.try_get("person_id")?,
                change_kind: row.try_get("change_kind")?,
                effective_date: date.as_deref().and_then(parse_day),
            })
        })
        .collect()
}

pub async fn finish_recovery_check(tx: &mut AnyConnection, cursor: &str) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM recovery_checks WHERE event_cursor = $1")
        .bind(cursor)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1)
}

/// A person's paid claims whose period ends on or after `from` (every paid claim without it).
pub async fn paid_claims_from(
    conn: &mut AnyConnection,
    person_id: &str,
    from: Option<time::Date>,
) -> Result<Vec<StoredClaim>> {
    let rows = sqlx::query(
        "SELECT * FROM claims WHERE subject_key = $1 AND state = 'paid' AND ($2 = '' OR period_last >= $2) ORDER BY period_first, id",
    )
    .bind(person_id)
    .bind(from.map(day_text).unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(claim_from).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecovery {
    pub id: String,
    pub claim_id: String,
    /// The claim's policy, whose version the re-evaluation names.
    pub policy_code: String,
    pub person_id: String,
    pub person_display_name: String,
    pub fund_id: String,
    pub region: String,
    pub reason: String,
    pub trigger_cursor: String,
    pub amount: i64,
    pub returned: i64,
    pub reevaluation: Decision,
    pub message: String,
    pub state: String,
    pub created: OffsetDateTime,
    pub closed: Option<OffsetDateTime>,
    pub revision: i64,
}

impl StoredRecovery {
    pub fn name(&self) -> String {
        format!("recoveries/{}", self.id)
    }

    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }
}

fn recovery_from(row: &AnyRow) -> Result<StoredRecovery> {
    let closed: Option<i64> = row.try_get("closed_us")?;
    Ok(StoredRecovery {
        id: row.try_get("id")?,
        claim_id: row.try_get("claim_id")?,
        policy_code: row.try_get("policy_code")?,
        person_id: row.try_get("person_id")?,
        person_display_name: row.try_get("person_display_name")?,
        fund_id: row.try_get("fund_id")?,
        region: row.try_get("region")?,
        reason: row.try_get("reason")?,
        trigger_cursor: row.try_get("trigger_cursor")?,
        amount: row.try_get("amount_fen")?,
        returned: row.try_get("returned_fen")?,
        reevaluation: json(row, "reevaluation")?,
        message: row.try_get("message")?,
        state: row.try_get("state")?,
        created: instant(row, "created_us")?,
        closed: closed.and_then(from_micros),
        revision: row.try_get("revision")?,
    })
}

/// Opens a recovery; false when this claim already has one for this change.
pub async fn insert_recovery(tx: &mut AnyConnection, recovery: &StoredRecovery) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO recoveries (id, claim_id, person_id, person_display_name, fund_id, region, reason, trigger_cursor, \
         amount_fen, reevaluation, message, state, created_us, policy_code) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, 'open', $12, $13) ON CONFLICT (claim_id, trigger_cursor) DO NOTHING",
    )
    .bind(&recovery.id)
    .bind(&recovery.claim_id)
    .bind(&recovery.person_id)
    .bind(&recovery.person_display_name)
    .bind(&recovery.fund_id)
    .bind(&recovery.region)
    .bind(&recovery.reason)
    .bind(&recovery.trigger_cursor)
    .bind(recovery.amount)
    .bind(to_json(&recovery.reevaluation))
    .bind(&recovery.message)
    .bind(to_micros(recovery.created))
    .bind(&recovery.policy_code)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

pub async fn get_recovery(conn: &mut AnyConnection, id: &str) -> Result<Option<StoredRecovery>> {
    let row = sqlx::query("SELECT * FROM recoveries WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(recovery_from).transpose()
}

/// Recoveries by (region, id) after the cursor, with optional filters.
/// The filters of ListRecoveries; "" for any.
#[derive(Debug, Clone, Default)]
pub struct RecoveryFilter {
    pub person_id: String,
    pub claim_id: String,
    pub state: String,
    pub reason: String,
    pub fund_id: String,
}

pub async fn list_recoveries(
    conn: &mut AnyConnection,
    region_prefix: &str,
    filter: &RecoveryFilter,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<StoredRecovery>> {
    let (after_region, after_id) = after.unwrap_or_default();
    let rows = sqlx::query(
        "SELECT * FROM recoveries WHERE region LIKE $1 AND ($2 = '' OR person_id = $2) AND ($3 = '' OR claim_id = $3) \
         AND ($4 = '' OR state = $4) AND ($8 = '' OR reason = $8) AND ($9 = '' OR fund_id = $9) \
         AND (region > $5 OR (region = $5 AND id > $6)) ORDER BY region, id LIMIT $7",
    )
    .bind(format!("{region_prefix}%"))
    .bind(&filter.person_id)
    .bind(&filter.claim_id)
    .bind(&filter.state)
    .bind(after_region)
    .bind(after_id)
    .bind(limit)
    .bind(&filter.reason)
    .bind(&filter.fund_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(recovery_from).collect()
}

/// Moves a paid claim to recovery open; false when it was not paid.
pub async fn open_claim_recovery(tx: &mut AnyConnection, claim_id: &str, now: OffsetDateTime) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE claims SET state = 'recovery_open', updated_us = $2, revision = revision + 1 WHERE id = $1 AND state = 'paid'",
    )
    .bind(claim_id)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// Moves `amount` of a fund's consumed money into recoverable (still counted as consumed).
pub async fn mark_recoverable(tx: &mut AnyConnection, fund_id: &str, amount: i64) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE fund_balances SET recoverable_fen = recoverable_fen + $2, revision = revision + 1 \
         WHERE fund_id = $1 AND consumed_fen >= recoverable_fen + $2",
    )
    .bind(fund_id)
    .bind(amount)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// Records a settlement of an open recovery at its read revision: money returned (the state
/// stays open until all of it is), or the rest written off or cancelled. False when it moved.
pub async fn settle_recovery(
    tx: &mut AnyConnection,
    id: &str,
    returned: i64,
    state: &str,
    read_revision: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE recoveries SET returned_fen = returned_fen + $2, state = $3, \
         closed_us = CASE WHEN $3 = 'open' THEN NULL ELSE $4 END, revision = revision + 1 \
         WHERE id = $1 AND state = 'open' AND revision = $5 AND returned_fen + $2 <= amount_fen",
    )
    .bind(id)
    .bind(returned)
    .bind(state)
    .bind(to_micros(now))
    .bind(read_revision)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// A fund's recoverable money settled: `returned` goes back to available (out of consumed),
/// `closed` (written off or cancelled) stays consumed.
pub async fn settle_recoverable(tx: &mut AnyConnection, fund_id: &str, returned: i64, closed: i64) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE fund_balances SET recoverable_fen = recoverable_fen - $2 - $3, consumed_fen = consumed_fen - $2, \
         released_fen = released_fen + $2, revision = revision + 1 \
         WHERE fund_id = $1 AND recoverable_fen >= $2 + $3 AND consumed_fen >= $2",
    )
    .bind(fund_id)
    .bind(returned)
    .bind(closed)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// Moves a claim under recovery to its settled state.
pub async fn close_claim_recovery(
    tx: &mut AnyConnection,
    claim_id: &str,
    state: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE claims SET state = $2, updated_us = $3, revision = revision + 1 WHERE id = $1 AND state = 'recovery_open'",
    )
    .bind(claim_id)
    .bind(state)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// The advisory-lock key of a subject's claims: FNV-1a over the subject key, a 64-bit hash that
/// stays the same across builds and replicas (a rolling deploy runs two builds at once), so
/// every writer locks the same key, and sorting by it is sorting by what is locked. The prefix
/// keeps its first name ("person") for that reason: a person's key must not change.
pub fn subject_lock_key(subject: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "bangfu.subsidy.person:".bytes().chain(subject.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Serializes the writes of one subject's claims on PostgreSQL (a transaction-scoped advisory
/// lock): the caps and ever-exclusivity read the subject's other claims, and two submissions at
/// once must not both pass on what neither has written yet. SQLite's single writer already
/// serializes them.
pub async fn lock_subject(tx: &mut AnyConnection, backend: bangfu_platform::db::Backend, subject: &str) -> Result<()> {
    lock_subjects(tx, backend, &[subject.to_string()]).await
}

/// `lock_subject` for many subjects at once, in ascending order of their lock keys: two chunks
/// that share subjects take their locks in the same order, so they wait for each other instead
/// of deadlocking. The keys go in sorted and the VALUES list is read in its order.
pub async fn lock_subjects(
    tx: &mut AnyConnection,
    backend: bangfu_platform::db::Backend,
    subjects: &[String],
) -> Result<()> {
    if backend != bangfu_platform::db::Backend::Postgres || subjects.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<i64> = subjects.iter().map(|s| subject_lock_key(s)).collect();
    keys.sort_unstable();
    keys.dedup();
    for batch in keys.chunks(1000) {
        let sql = format!(
            "SELECT COUNT(*) AS locked FROM (SELECT pg_advisory_xact_lock(k) FROM (VALUES {}) AS v (k)) AS taken",
            bangfu_platform::db::values_groups(tx, batch.len(), 1)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for key in batch {
            query = query.bind(*key);
        }
        query.fetch_one(&mut *tx).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Proactive claims

/// A noted identity change a policy may be triggered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalCheck {
    pub cursor: String,
    pub person_id: String,
    pub change_kind: String,
    /// The category, for a category change ("" otherwise).
    pub category: String,
    pub effective_date: Option<time::Date>,
}

/// Notes a change to match against the policies' triggers, once per feed event.
pub async fn note_proposal_check(tx: &mut AnyConnection, check: &ProposalCheck, now: OffsetDateTime) -> Result<()> {
    sqlx::query(
        "INSERT INTO proposal_checks (event_cursor, person_id, change_kind, category, effective_date, noted_us) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_cursor) DO NOTHING",
    )
    .bind(&check.cursor)
    .bind(&check.person_id)
    .bind(&check.change_kind)
    .bind(&check.category)
    .bind(check.effective_date.map(day_text))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn pending_proposal_checks(conn: &mut AnyConnection, limit: i64) -> Result<Vec<ProposalCheck>> {
    let rows = sqlx::query("SELECT * FROM proposal_checks ORDER BY noted_us, event_cursor LIMIT $1")
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let date: Option<String> = row.try_get("effective_date")?;
            Ok(ProposalCheck {
                cursor: row.try_get("event_cursor")?,
                person_id: row.try_get("person_id")?,
                change_kind: row.try_get("change_kind")?,
                category: row.try_get("category")?,
                effective_date: date.as_deref().and_then(parse_day),
            })
        })
        .collect()
}

/// Removes the noted changes of `cursors` (at most a page of them), matched.
pub async fn finish_proposal_checks(tx: &mut AnyConnection, cursors: &[&str]) -> Result<()> {
    if cursors.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM proposal_checks WHERE event_cursor IN ({})",
        bangfu_platform::db::numbered_parameters(1, cursors.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for cursor in cursors {
        query = query.bind(*cursor);
    }
    query.execute(&mut *tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persons_lock_key_is_the_same_in_every_build() {
        // FNV-1a 64 of "bangfu.subsidy.person:p1", computed independently: replicas of two
        // builds during a rolling deploy must lock the same key for the same person.
        assert_eq!(subject_lock_key("p1"), 7_205_079_172_819_522_637);
        assert_ne!(subject_lock_key("p1"), subject_lock_key("p2"));
    }
}
