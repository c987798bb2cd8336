//! Payment batches (发放批次): approved claims of one fund and region, with control totals fixed
//! at creation; public notice (公示) for the notice days; approval by a subject other than the
//! maker once the notice has ended with no objection open; cancellation before export. Each
//! step is one guarded UPDATE at the read etag, with its ledger entry and audit row.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::write::{self, Begun};
use time::Date;
use tonic::Code;

use super::Subsidy;
use super::feed::{ClaimChangeKind, publish_claims};
use super::funds::account;
use crate::store::{self, LedgerEntry, Selection, StoredBatch, StoredLine};

/// The states a batch is stored in; AWAITING_APPROVAL is NOTICE after its last day.
pub mod state {
    pub const DRAFT: &str = "draft";
    pub const NOTICE: &str = "notice";
    pub const AWAITING_APPROVAL: &str = "awaiting_approval";
    pub const APPROVED: &str = "approved";
    pub const EXPORTED: &str = "exported";
    pub const RECONCILED: &str = "reconciled";
    pub const CANCELLED: &str = "cancelled";
}

/// The state a batch is in on `today`: a notice whose last day has passed awaits approval.
pub fn effective_state(batch: &StoredBatch, today: Date) -> &str {
    match (batch.state.as_str(), batch.notice) {
        (state::NOTICE, Some((_, last))) if today > last => state::AWAITING_APPROVAL,
        (stored, _) => stored,
    }
}

/// A page of batches.
pub struct BatchListing {
    pub batches: Vec<StoredBatch>,
    pub more: bool,
}

fn batch_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("paymentBatches/{id}"))
}

pub(crate) fn wrong_state(batch: &StoredBatch, today: Date, wanted: &str, message_zh: &str) -> Problem {
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::StateConflict,
        format!(
            "{} is {}; this needs it {wanted}",
            batch.name(),
            effective_state(batch, today)
        ),
        message_zh,
    )
}

impl Subsidy {
    /// Reads a batch inside the caller's scope.
    /// Reads a batch the caller may see: its scope overlaps the batch's region (a county sees
    /// the city batch its villages are in, and only its own lines).
    pub(crate) async fn batch_for(
        &self,
        conn: &mut sqlx::AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredBatch, Problem> {
        let batch = store::get_batch(conn, id).await?.ok_or_else(|| batch_not_found(id))?;
        if caller.scope.narrowed(&batch.selection.region_prefix).is_none() {
            return Err(self.refuse(caller, method_name, &batch.name(), batch_not_found(id)));
        }
        Ok(batch)
    }

    /// Reads a batch the caller may act on: its scope holds the whole batch. A county may not
    /// approve, cancel, export or settle a city's batch.
    pub(crate) async fn batch_to_change(
        &self,
        conn: &mut sqlx::AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredBatch, Problem> {
        let batch = store::get_batch(conn, id).await?.ok_or_else(|| batch_not_found(id))?;
        if !caller.scope.contains(&batch.selection.region_prefix) {
            return Err(self.refuse(caller, method_name, &batch.name(), batch_not_found(id)));
        }
        Ok(batch)
    }

    /// CreatePaymentBatch: the claims the selection takes, as lines, in one INSERT … SELECT.
    pub async fn create_payment_batch(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        display_name: String,
        selection: Selection,
    ) -> Result<StoredBatch, Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("paymentBatches/");
                let mut conn = self.db().acquire().await?;
                return store::get_batch(&mut conn, id)
                    .await?
                    .ok_or_else(|| batch_not_found(id));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let fund = store::get_fund(unit.tx(), &selection.fund_id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("funds/{}", selection.fund_id)))?;
        let resource = format!("funds/{}", fund.id);
        // The caller's scope holds the whole batch, and may see the fund, before anything about
        // the fund is told.
        if !caller.scope.contains(&selection.region_prefix) || caller.scope.narrowed(&fund.region_prefix).is_none() {
            return Err(self.refuse(caller, "CreatePaymentBatch", &resource, Problem::not_found(&resource)));
        }
        if !selection.region_prefix.starts_with(&fund.region_prefix) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "payment_batch.selection.region_prefix",
                format!("must lie inside the fund's region {}", fund.region_prefix),
                format!("批次地区应在资金地区 {} 范围内", fund.region_prefix),
            ));
        }
        let id = store::new_id();
        let (lines, amount, skipped) = store::insert_batch_lines(unit.tx(), &id, &selection).await?;
        if lines == 0 {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!(
                    "no approved claim with a verified account matches the selection ({skipped} without an account)"
                ),
                format!("没有符合条件且收款账户已核验的待发放申请（{skipped} 笔缺少收款账户）"),
            ));
        }
        let batch = StoredBatch {
            id: id.clone(),
            display_name,
            selection,
            state: state::DRAFT.into(),
            control_count: lines,
            control_amount: amount,
            skipped_without_account: skipped,
            notice_days: 0,
            notice: None,
            objection_contact: String::new(),
            notice_issuer: String::new(),
            open_objections: 0,
            paid_count: 0,
            paid_amount: 0,
            failed_count: 0,
            failed_amount: 0,
            reconciliation: None,
            create_subject: caller.subject.clone(),
            created: now,
            approve_subject: None,
            approved: None,
            export_count: 0,
            first_export: None,
            cancel_reason: String::new(),
            cancelled: None,
            revision: 1,
        };
        store::insert_batch(unit.tx(), &batch).await?;
        let moved = store::batch_claims(unit.tx(), &id, now).await?;
        if moved != lines as u64 {
            // A claim changed between the selection and the update (withdrawn, batched by a
            // concurrent batch): nothing is kept, and the retry selects again.
            return Err(Problem::new(
                Code::Aborted,
                ErrorReason::StateConflict,
                "claims changed while the batch was made; make it again",
                "生成批次时有申请发生变化，请重新生成",
            ));
        }
        let ids = store::line_claim_ids(unit.tx(), &id, "pending").await?;
        let claims = store::claims_by_ids(unit.tx(), &ids).await?;
        publish_claims(unit.tx(), ClaimChangeKind::Batched, &claims, now).await?;
        let region = batch.selection.region_prefix.clone();
        unit.commit(AuditEntry::by(caller, &super::method("CreatePaymentBatch"), batch.name(), now).in_region(&region))
            .await?;
        Ok(batch)
    }

    pub async fn get_payment_batch(&self, caller: &Principal, id: &str) -> Result<StoredBatch, Problem> {
        let mut conn = self.db().acquire().await?;
        self.batch_for(&mut conn, caller, "GetPaymentBatch", id).await
    }

    pub async fn list_payment_batches(
        &self,
        caller: &Principal,
        fund_id: &str,
        batch_state: &str,
        region_prefix: &str,
        before: Option<(i64, String)>,
        limit: u32,
    ) -> Result<BatchListing, Problem> {
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok(BatchListing {
                batches: Vec::new(),
                more: false,
            });
        };
        let mut conn = self.db().acquire().await?;
        let mut batches =
            store::list_batches(&mut conn, fund_id, batch_state, &prefix, before, i64::from(limit) + 1).await?;
        let more = batches.len() > limit as usize;
        batches.truncate(limit as usize);
        Ok(BatchListing { batches, more })
    }

    pub async fn list_payment_lines(
        &self,
        caller: &Principal,
        id: &str,
        line_state: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredLine>, Problem> {
        let mut conn = self.db().acquire().await?;
        let batch = self.batch_for(&mut conn, caller, "ListPaymentLines", id).await?;
        let prefix = caller
            .scope
            .narrowed(&batch.selection.region_prefix)
            .unwrap_or_default();
        Ok(store::list_lines(&mut conn, id, line_state, &prefix, after, i64::from(limit)).await?)
    }

    /// PublishBatchNotice: DRAFT → NOTICE for the notice days (parameter) from `first_day`.
    pub async fn publish_batch_notice(
        &self,
        caller: &Principal,
        id: &str,
        first_day: Date,
        notice: NoticeIssue<'_>,
        etag: &str,
    ) -> Result<StoredBatch, Problem> {
        let NoticeIssue {
            issuer,
            objection_contact,
        } = notice;
        let today = self.today();
        if first_day < today {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "first_day",
                "the notice cannot start in the past",
                "公示开始日期不能早于今天",
            ));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut batch = self
            .batch_to_change(unit.tx(), caller, "PublishBatchNotice", id)
            .await?;
        if batch.etag() != etag {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        if batch.state != state::DRAFT {
            return Err(wrong_state(&batch, today, "DRAFT", "只有草稿状态的批次可以公示"));
        }
        // Claims the submitter noticed already (a work-relief payroll) are not noticed twice.
        let days = if store::batch_noticed_by_submitter(unit.tx(), &batch.id).await? {
            0
        } else {
            self.parameters()
                .require_on(
                    unit.tx(),
                    "subsidy.notice_days",
                    &batch.selection.region_prefix,
                    first_day,
                )
                .await?
        };
        let last_day = if days > 0 {
            first_day + time::Duration::days(days - 1)
        } else {
            // No notice: it ends the day before it starts, so the batch awaits approval at once.
            first_day - time::Duration::days(1)
        };
        let read = batch.revision;
        batch.state = state::NOTICE.into();
        batch.notice_days = days;
        batch.notice = Some((first_day, last_day));
        batch.objection_contact = objection_contact.to_string();
        batch.notice_issuer = issuer.to_string();
        if !store::move_batch(unit.tx(), &batch, state::DRAFT, read).await? {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        batch.revision += 1;
        let region = batch.selection.region_prefix.clone();
        unit.commit(AuditEntry::by(caller, &super::method("PublishBatchNotice"), batch.name(), now).in_region(&region))
            .await?;
        Ok(batch)
    }

    /// ApprovePaymentBatch: once the notice has ended with no objection open, by a subject
    /// other than the batch's maker; the reservations become payable (one ledger entry).
    pub async fn approve_payment_batch(
        &self,
        caller: &Principal,
        id: &str,
        note: &str,
        etag: &str,
    ) -> Result<StoredBatch, Problem> {
        let today = self.today();
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut batch = self
            .batch_to_change(unit.tx(), caller, "ApprovePaymentBatch", id)
            .await?;
        let name = batch.name();
        if batch.etag() != etag {
            return Err(Problem::etag_mismatch(&name));
        }
        match effective_state(&batch, today) {
            state::AWAITING_APPROVAL => {}
            state::NOTICE => {
                return Err(Problem::new(
                    Code::FailedPrecondition,
                    ErrorReason::NoticeNotEnded,
                    format!(
                        "{name}'s notice runs until {}",
                        batch.notice.map(|n| crate::domain::day_text(n.1)).unwrap_or_default()
                    ),
                    "公示期未满，不能审批",
                ));
            }
            _ => {
                return Err(wrong_state(
                    &batch,
                    today,
                    "AWAITING_APPROVAL",
                    "只有公示期满的批次可以审批",
                ));
            }
        }
        if batch.open_objections > 0 {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::ObjectionOpen,
                format!("{name} has {} open objection(s)", batch.open_objections),
                "批次尚有未处理的异议，请先处理",
            ));
        }
        if let Err(refusal) = caller.ensure_not_maker(&batch.create_subject) {
            return Err(self.refuse(caller, "ApprovePaymentBatch", &name, refusal));
        }
        let read = batch.revision;
        let from = batch.state.clone();
        batch.state = state::APPROVED.into();
        batch.approve_subject = Some(caller.subject.clone());
        batch.approved = Some(now);
        if !store::move_batch(unit.tx(), &batch, &from, read).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        batch.revision += 1;
        self.batch_entry(
            unit.tx(),
            &batch,
            "batch_approved",
            (account::PAYABLE, account::RESERVED),
            batch.control_amount,
            (-batch.control_amount, batch.control_amount, 0),
            note,
            &caller.subject,
        )
        .await?;
        let region = batch.selection.region_prefix.clone();
        unit.commit(AuditEntry::by(caller, &super::method("ApprovePaymentBatch"), name, now).in_region(&region))
            .await?;
        Ok(batch)
    }

    /// CancelPaymentBatch: before export; its claims go back among the approved (their
    /// reservations stay for the next batch), an approved batch's payable goes back to reserved.
    pub async fn cancel_payment_batch(
        &self,
        caller: &Principal,
        id: &str,
        reason: &str,
        etag: &str,
    ) -> Result<StoredBatch, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut batch = self
            .batch_to_change(unit.tx(), caller, "CancelPaymentBatch", id)
            .await?;
        if batch.etag() != etag {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        let batch = self
            .cancel_in(unit.tx(), &mut batch, reason, &caller.subject, now)
            .await
            .map(|()| batch)?;
        let region = batch.selection.region_prefix.clone();
        unit.commit(AuditEntry::by(caller, &super::method("CancelPaymentBatch"), batch.name(), now).in_region(&region))
            .await?;
        Ok(batch)
    }

    /// Cancels a batch inside the caller's transaction (also an upheld objection's step).
    pub(crate) async fn cancel_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        batch: &mut StoredBatch,
        reason: &str,
        subject: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), Problem> {
        let today = self.today();
        let from = batch.state.clone();
        if ![state::DRAFT, state::NOTICE, state::APPROVED].contains(&from.as_str()) {
            return Err(wrong_state(
                batch,
                today,
                "not yet exported",
                "已导出或已结束的批次不能撤销",
            ));
        }
        let read = batch.revision;
        batch.state = state::CANCELLED.into();
        batch.cancel_reason = reason.to_string();
        batch.cancelled = Some(now);
        if !store::move_batch(tx, batch, &from, read).await? {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        batch.revision += 1;
        let ids = store::line_claim_ids(tx, &batch.id, "pending").await?;
        store::cancel_lines(tx, &batch.id, now).await?;
        let claims = store::claims_by_ids(tx, &ids).await?;
        publish_claims(tx, ClaimChangeKind::Unbatched, &claims, now).await?;
        if from == state::APPROVED {
            self.batch_entry(
                tx,
                batch,
                "batch_cancelled",
                (account::RESERVED, account::PAYABLE),
                batch.control_amount,
                (batch.control_amount, -batch.control_amount, 0),
                reason,
                subject,
            )
            .await?;
        }
        Ok(())
    }

    /// A batch's journal entry and the fund's columns it moves (reserved, payable, consumed).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn batch_entry(
        &self,
        tx: &mut sqlx::AnyConnection,
        batch: &StoredBatch,
        kind: &str,
        (debit, credit): (&str, &str),
        amount: i64,
        (reserved, payable, consumed): (i64, i64, i64),
        document: &str,
        subject: &str,
    ) -> Result<(), Problem> {
        if amount == 0 {
            return Ok(());
        }
        let fund_id = &batch.selection.fund_id;
        if !store::move_fund(tx, fund_id, reserved, payable, consumed).await? {
            tracing::error!(batch = %batch.name(), kind, "a batch step would leave a fund column below zero");
            return Err(Problem::internal());
        }
        store::append_entry(
            tx,
            &LedgerEntry {
                fund_id: fund_id.clone(),
                seq: 0,
                kind: kind.into(),
                debit: debit.into(),
                credit: credit.into(),
                amount,
                claim_id: None,
                batch_id: Some(batch.id.clone()),
                document: document.to_string(),
                entry_date: self.today(),
                subject: subject.to_string(),
                recorded: self.now(),
            },
        )
        .await?;
        Ok(())
    }
}

/// One line of a public notice: a masked name, the subsidy, the period and the amount; never an
/// ID, phone or account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeLine {
    pub line_number: i64,
    pub masked_name: String,
    pub subsidy_item: String,
    pub period_label: String,
    pub amount: i64,
}

/// A page of a batch's public notice (公示), with the totals of the notice (or region).
/// What a published notice prints besides its lines: who issues it and where objections go.
pub struct NoticeIssue<'a> {
    pub issuer: &'a str,
    pub objection_contact: &'a str,
}

pub struct PublicNotice {
    pub batch: StoredBatch,
    pub lines: Vec<NoticeLine>,
    pub total_count: i64,
    pub total_amount: i64,
    pub more: bool,
}

impl Subsidy {
    /// GetPublicNotice: a batch in notice or later, for printing or posting in a village.
    pub async fn public_notice(
        &self,
        caller: &Principal,
        id: &str,
        region_prefix: &str,
        after: i64,
        limit: u32,
    ) -> Result<PublicNotice, Problem> {
        let today = self.today();
        let mut conn = self.db().acquire().await?;
        let batch = self.batch_for(&mut conn, caller, "GetPublicNotice", id).await?;
        if batch.notice.is_none() || batch.state == state::DRAFT {
            return Err(wrong_state(&batch, today, "in notice or later", "批次尚未公示"));
        }
        let asked = if region_prefix.is_empty() {
            batch.selection.region_prefix.as_str()
        } else {
            region_prefix
        };
        // Only the lines in the caller's scope: a county prints its own villages' part.
        let Some(prefix) = caller.scope.narrowed(asked) else {
            return Err(self.refuse(caller, "GetPublicNotice", &batch.name(), batch_not_found(id)));
        };
        let lines = store::list_lines(&mut conn, id, "", &prefix, after, i64::from(limit) + 1).await?;
        let more = lines.len() > limit as usize;
        let mut titles = PolicyTitles::default();
        let mut notice_lines = Vec::new();
        for line in lines.iter().take(limit as usize).filter(|l| l.state != "cancelled") {
            let claim = store::get_claim(&mut conn, &line.claim_id)
                .await?
                .ok_or_else(Problem::internal)?;
            let subsidy_item = titles.title(&mut conn, &claim.payload.policy_code).await?;
            notice_lines.push(NoticeLine {
                line_number: line.line_number,
                masked_name: line.payee_display_name.clone(),
                subsidy_item,
                period_label: period_label(&claim.payload.period),
                amount: line.amount,
            });
        }
        let (total_count, total_amount) = store::line_totals(&mut conn, id, &prefix).await?;
        Ok(PublicNotice {
            batch,
            lines: notice_lines,
            total_count,
            total_amount,
            more,
        })
    }
}

/// Policy titles by code, read once per listing.
#[derive(Default)]
pub(crate) struct PolicyTitles(std::collections::HashMap<String, String>);

impl PolicyTitles {
    pub(crate) async fn title(&mut self, conn: &mut sqlx::AnyConnection, code: &str) -> Result<String, Problem> {
        if let Some(title) = self.0.get(code) {
            return Ok(title.clone());
        }
        let title = store::get_policy(conn, code)
            .await?
            .map(|p| p.policy.title)
            .unwrap_or_else(|| code.to_string());
        self.0.insert(code.to_string(), title.clone());
        Ok(title)
    }
}

/// A claim's period as a notice or a file prints it: "2025-03" for a month, else first至last.
pub(crate) fn period_label(period: &crate::domain::Period) -> String {
    if period.is_calendar_month() {
        crate::domain::month_text(period.first)
    } else {
        format!(
            "{}至{}",
            crate::domain::day_text(period.first),
            crate::domain::day_text(period.last)
        )
    }
}
