//! The exchange's SQL, the same on SQLite and PostgreSQL. Every function takes the connection
//! it runs on, so a use case's reads and writes share its transaction. The message log is
//! written whole and chained afterwards by [`seal`], as the platform's audit log is.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use bangfu_platform::db::{Backend, Database, DbError, to_micros};
use bangfu_platform::rows::instant;

type Result<T> = std::result::Result<T, sqlx::Error>;

/// The advisory lock a PostgreSQL sealer of the message log holds for its transaction.
const SEALER_LOCK: i64 = 0x6261_6e67_6675_0060;
/// Rows sealed per transaction.
const SEAL_BATCH: i64 = 500;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outgoing => "out",
            Self::Incoming => "in",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "out" => Some(Self::Outgoing),
            "in" => Some(Self::Incoming),
            _ => None,
        }
    }
}

/// One message as the log keeps it. Bodies are the encrypted encodings; hashes are hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedMessage {
    pub direction: Direction,
    pub partner: String,
    pub message_id: String,
    pub method: String,
    pub send_time: OffsetDateTime,
    pub log_time: OffsetDateTime,
    pub request_sha256: String,
    pub signature: String,
    pub request_body: Vec<u8>,
    pub response_sha256: String,
    pub receipt: String,
    pub response_body: Vec<u8>,
    /// "OK" or the reason code.
    pub result: String,
    pub item_count: i64,
}

/// A logged message with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub id: i64,
    pub message: LoggedMessage,
    pub sequence: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

/// Appends a message to the log; returns its row id.
pub async fn log_message(connection: &mut AnyConnection, message: &LoggedMessage) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO exchange_messages (direction, partner, message_id, method, send_time_us, log_time_us, \
         request_sha256, signature, request_body, response_sha256, receipt, response_body, result, item_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(message.direction.as_str())
    .bind(&message.partner)
    .bind(&message.message_id)
    .bind(&message.method)
    .bind(to_micros(message.send_time))
    .bind(to_micros(message.log_time))
    .bind(&message.request_sha256)
    .bind(&message.signature)
    .bind(&message.request_body)
    .bind(&message.response_sha256)
    .bind(&message.receipt)
    .bind(&message.response_body)
    .bind(&message.result)
    .bind(message.item_count)
    .fetch_one(connection)
    .await
}

const LOG_COLUMNS: &str = "id, direction, partner, message_id, method, send_time_us, log_time_us, request_sha256, \
     signature, request_body, response_sha256, receipt, response_body, result, item_count, sequence, prev_hash, hash";

fn message_of(row: &AnyRow) -> Result<LoggedMessage> {
    let direction: String = row.try_get("direction")?;
    Ok(LoggedMessage {
        direction: bangfu_platform::rows::decode("direction", Direction::parse(&direction))?,
        partner: row.try_get("partner")?,
        message_id: row.try_get("message_id")?,
        method: row.try_get("method")?,
        send_time: instant(row, "send_time_us")?,
        log_time: instant(row, "log_time_us")?,
        request_sha256: row.try_get("request_sha256")?,
        signature: row.try_get("signature")?,
        request_body: row.try_get("request_body")?,
        response_sha256: row.try_get("response_sha256")?,
        receipt: row.try_get("receipt")?,
        response_body: row.try_get("response_body")?,
        result: row.try_get("result")?,
        item_count: row.try_get("item_count")?,
    })
}

fn entry_of(row: &AnyRow) -> Result<LogEntry> {
    Ok(LogEntry {
        id: row.try_get("id")?,
        message: message_of(row)?,
        sequence: row.try_get("sequence")?,
        prev_hash: row.try_get::<Option<String>, _>("prev_hash")?.unwrap_or_default(),
        hash: row.try_get::<Option<String>, _>("hash")?.unwrap_or_default(),
    })
}

/// Which log rows to list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub partner: String,
    pub direction: Option<Direction>,
    /// The method's short name ("VerifyPerson").
    pub method: String,
}

/// Log rows, newest first, before row `before` (0: from the newest).
pub async fn list_messages(
    connection: &mut AnyConnection,
    filter: &MessageFilter,
    before: i64,
    limit: u32,
) -> Result<Vec<LogEntry>> {
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM exchange_messages \
         WHERE ($1 = '' OR partner = $1) AND ($2 = '' OR direction = $2) \
         AND ($3 = '' OR method = $3 OR method LIKE $4) AND ($5 = 0 OR id < $5) \
         ORDER BY id DESC LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&filter.partner)
        .bind(filter.direction.map(Direction::as_str).unwrap_or(""))
        .bind(&filter.method)
        .bind(format!("%/{}", filter.method))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(connection)
        .await?;
    rows.iter().map(entry_of).collect()
}

/// One log row.
pub async fn get_message(connection: &mut AnyConnection, id: i64) -> Result<Option<LogEntry>> {
    let sql = format!("SELECT {LOG_COLUMNS} FROM exchange_messages WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(connection)
        .await?;
    row.as_ref().map(entry_of).transpose()
}

/// The hash that chains a message at `sequence` after `prev_hash`: every field length-prefixed.
/// Bodies are covered through their hashes (they may be re-encrypted when keys rotate).
pub fn chain_hash(prev_hash: &str, sequence: i64, message: &LoggedMessage) -> String {
    let mut hasher = Sha256::new();
    let fields = [
        prev_hash.to_string(),
        sequence.to_string(),
        message.direction.as_str().to_string(),
        message.partner.clone(),
        message.message_id.clone(),
        message.method.clone(),
        to_micros(message.send_time).to_string(),
        to_micros(message.log_time).to_string(),
        message.request_sha256.clone(),
        message.signature.clone(),
        message.response_sha256.clone(),
        message.receipt.clone(),
        message.result.clone(),
        message.item_count.to_string(),
    ];
    for field in &fields {
        hasher.update((field.len() as u32).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    crate::config::hex(&hasher.finalize())
}

/// Chains every committed, unsealed message; returns how many. Only one sealer works at a time.
pub async fn seal(db: &Database) -> std::result::Result<u64, DbError> {
    let mut total = 0;
    loop {
        let sealed = seal_batch(db).await?;
        total += sealed;
        if sealed < SEAL_BATCH as u64 {
            return Ok(total);
        }
    }
}

async fn seal_batch(db: &Database) -> std::result::Result<u64, DbError> {
    let mut tx = db.begin().await?;
    let unsealed = match db.backend() {
        Backend::Postgres => {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(SEALER_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            if !locked {
                return Ok(0);
            }
            // Only below the oldest running transaction: a late commit never lands behind a
            // sealed row.
            format!(
                "SELECT {LOG_COLUMNS} FROM exchange_messages WHERE sequence IS NULL \
                 AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT $1"
            )
        }
        Backend::Sqlite => {
            format!("SELECT {LOG_COLUMNS} FROM exchange_messages WHERE sequence IS NULL ORDER BY id LIMIT $1")
        }
    };
    let head = sqlx::query("SELECT last_sequence, last_hash FROM exchange_message_chain WHERE singleton = 1")
        .fetch_one(&mut *tx)
        .await?;
    let mut sequence: i64 = head.try_get("last_sequence")?;
    let mut prev_hash: String = head.try_get("last_hash")?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(unsealed))
        .bind(SEAL_BATCH)
        .fetch_all(&mut *tx)
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    for row in &rows {
        let entry = entry_of(row)?;
        sequence += 1;
        let hash = chain_hash(&prev_hash, sequence, &entry.message);
        sqlx::query("UPDATE exchange_messages SET sequence = $1, prev_hash = $2, hash = $3 WHERE id = $4")
            .bind(sequence)
            .bind(&prev_hash)
            .bind(&hash)
            .bind(entry.id)
            .execute(&mut *tx)
            .await?;
        prev_hash = hash;
    }
    sqlx::query("UPDATE exchange_message_chain SET last_sequence = $1, last_hash = $2 WHERE singleton = 1")
        .bind(sequence)
        .bind(&prev_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// The first sealed row whose hash does not follow from the one before, if any.
pub async fn verify_chain(db: &Database) -> std::result::Result<Option<i64>, DbError> {
    let mut connection = db.acquire().await?;
    let sql = format!("SELECT {LOG_COLUMNS} FROM exchange_messages WHERE sequence IS NOT NULL ORDER BY sequence");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *connection)
        .await?;
    let mut prev = "genesis".to_string();
    for row in &rows {
        let entry = entry_of(row)?;
        let sequence = entry.sequence.unwrap_or_default();
        if entry.prev_hash != prev || chain_hash(&prev, sequence, &entry.message) != entry.hash {
            return Ok(Some(sequence));
        }
        prev = entry.hash;
    }
    Ok(None)
}

/// Whether a partner's message id was accepted before.
pub async fn seen(connection: &mut AnyConnection, partner: &str, message_id: &str) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM exchange_seen_messages WHERE partner = $1 AND message_id = $2")
            .bind(partner)
            .bind(message_id)
            .fetch_optional(connection)
            .await?;
    Ok(found.is_some())
}

/// Records a partner's message id as accepted; false when it was already (a replay that raced
/// the check).
pub async fn mark_seen(
    connection: &mut AnyConnection,
    partner: &str,
    message_id: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO exchange_seen_messages (partner, message_id, received_us) VALUES ($1, $2, $3) \
         ON CONFLICT (partner, message_id) DO NOTHING",
    )
    .bind(partner)
    .bind(message_id)
    .bind(to_micros(now))
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A partner's state as this side sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerState {
    pub last_contact: Option<OffsetDateTime>,
    pub last_error: String,
    pub postings_cursor: String,
    pub waiting_messages: i64,
}

/// Notes a partner answering (error empty) or not.
pub async fn note_contact(
    connection: &mut AnyConnection,
    partner: &str,
    now: OffsetDateTime,
    error: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO exchange_partner_state (partner, last_contact_us, last_error) VALUES ($1, $2, $3) \
         ON CONFLICT (partner) DO UPDATE SET \
         last_contact_us = CASE WHEN $3 = '' THEN $2 ELSE exchange_partner_state.last_contact_us END, \
         last_error = $3",
    )
    .bind(partner)
    .bind(if error.is_empty() { Some(to_micros(now)) } else { None })
    .bind(error)
    .execute(connection)
    .await?;
    Ok(())
}

/// A partner's state; the default when nothing happened yet.
pub async fn partner_state(connection: &mut AnyConnection, partner: &str) -> Result<PartnerState> {
    let row = sqlx::query(
        "SELECT last_contact_us, last_error, postings_cursor FROM exchange_partner_state WHERE partner = $1",
    )
    .bind(partner)
    .fetch_optional(&mut *connection)
    .await?;
    let waiting: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM exchange_outbox WHERE partner = $1 AND state = 'waiting'")
            .bind(partner)
            .fetch_one(&mut *connection)
            .await?;
    let Some(row) = row else {
        return Ok(PartnerState {
            waiting_messages: waiting,
            ..PartnerState::default()
        });
    };
    let contact: Option<i64> = row.try_get("last_contact_us")?;
    Ok(PartnerState {
        last_contact: contact.and_then(bangfu_platform::db::from_micros),
        last_error: row.try_get("last_error")?,
        postings_cursor: row.try_get("postings_cursor")?,
        waiting_messages: waiting,
    })
}

/// A confirmation received, as listed for a clerk (its body, with the citizen ID, stays sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRow {
    pub partner: String,
    pub confirmation_id: String,
    /// Empty while unmatched or pending.
    pub person_id: String,
    pub outcome: String,
    pub employer: String,
    pub work_region: String,
    pub start_date: String,
    pub received_us: i64,
}

/// Received confirmations with `outcome` ("" for all), newest first, before the (received time,
/// "partner/confirmation id") `before` of a page.
pub async fn received_confirmations(
    connection: &mut AnyConnection,
    outcome: &str,
    before: Option<(i64, String)>,
    limit: u32,
) -> Result<Vec<ReceivedRow>> {
    let (before_us, before_key) = before.unwrap_or((i64::MAX, "\u{10ffff}".to_string()));
    let rows = sqlx::query(
        "SELECT partner, confirmation_id, person_id, outcome, employer, work_region, start_date, received_us \
         FROM exchange_received_confirmations WHERE ($1 = '' OR outcome = $1) \
         AND (received_us < $2 OR (received_us = $2 AND partner || '/' || confirmation_id < $3)) \
         ORDER BY received_us DESC, partner DESC, confirmation_id DESC LIMIT $4",
    )
    .bind(outcome)
    .bind(before_us)
    .bind(before_key)
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ReceivedRow {
                partner: row.try_get("partner")?,
                confirmation_id: row.try_get("confirmation_id")?,
                person_id: row.try_get("person_id")?,
                outcome: row.try_get("outcome")?,
                employer: row.try_get("employer")?,
                work_region: row.try_get("work_region")?,
                start_date: row.try_get("start_date")?,
                received_us: row.try_get("received_us")?,
            })
        })
        .collect()
}
