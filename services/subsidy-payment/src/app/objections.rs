//! Objections during a batch's public notice (公示异议): recorded with the day they came in;
//! one upheld cancels the batch — its claims go back among the approved and the contested one
//! to review — one dismissed only closes it. A batch with an objection open is not approved.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::pii::mask_name;
use bangfu_platform::write;
use time::Date;
use tonic::Code;

use super::Subsidy;
use super::batches::{effective_state, state, wrong_state};
use super::funds::account;
use crate::domain::{ClaimState, ReviewCause};
use crate::store::{self, LedgerEntry, StoredBatch, StoredObjection};

/// What RaiseObjection asks for.
pub struct NewObjection {
    pub line_number: i64,
    pub channel: String,
    pub content: String,
    pub objector_contact: String,
    pub received_date: Date,
}

/// How an objection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Upheld,
    Dismissed,
}

fn contact_aad(batch_id: &str) -> Vec<u8> {
    format!("paymentBatches/{batch_id}/objections/objector_contact").into_bytes()
}

impl Subsidy {
    pub async fn raise_objection(
        &self,
        caller: &Principal,
        batch_id: &str,
        new: NewObjection,
    ) -> Result<StoredObjection, Problem> {
        let today = self.today();
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let batch = self
            .batch_to_change(unit.tx(), caller, "RaiseObjection", batch_id)
            .await?;
        if effective_state(&batch, today) != state::NOTICE {
            return Err(wrong_state(
                &batch,
                today,
                "in its notice period",
                "只能在公示期内受理异议",
            ));
        }
        let (first, last) = batch.notice.ok_or_else(Problem::internal)?;
        if new.received_date < first || new.received_date > last.min(today) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "objection.received_date",
                "must lie in the notice period and not after today",
                "受理日期应在公示期内，且不晚于今天",
            ));
        }
        let claim_id = if new.line_number == 0 {
            None
        } else {
            let line = store::get_line(unit.tx(), batch_id, new.line_number)
                .await?
                .ok_or_else(|| {
                    Problem::invalid_field(
                        ErrorReason::FieldInvalid,
                        "objection.line_number",
                        format!("{} has no line {}", batch.name(), new.line_number),
                        format!("公示名单中没有第{}号", new.line_number),
                    )
                })?;
            Some(line.claim_id)
        };
        if !store::count_objection(unit.tx(), batch_id, 1).await? {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        let objector_contact_enc = if new.objector_contact.is_empty() {
            None
        } else {
            Some(
                self.data_keys()?
                    .encrypt(new.objector_contact.as_bytes(), &contact_aad(batch_id))
                    .map_err(|e| {
                        tracing::error!(error = %e, "encrypting an objector's contact failed");
                        Problem::internal()
                    })?,
            )
        };
        let mut objection = StoredObjection {
            batch_id: batch_id.to_string(),
            seq: 0,
            line_number: new.line_number,
            claim_id,
            channel: new.channel,
            content: new.content,
            objector_contact_masked: mask_name(&new.objector_contact),
            objector_contact_enc,
            received_date: new.received_date,
            state: "open".into(),
            resolution: String::new(),
            record_subject: caller.subject.clone(),
            resolve_subject: None,
            created: now,
            resolved: None,
        };
        objection.seq = store::insert_objection(unit.tx(), &objection).await?;
        let region = batch.selection.region_prefix.clone();
        unit.commit(AuditEntry::by(caller, &super::method("RaiseObjection"), objection.name(), now).in_region(&region))
            .await?;
        Ok(objection)
    }

    pub async fn list_objections(
        &self,
        caller: &Principal,
        batch_id: &str,
        objection_state: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredObjection>, Problem> {
        let mut conn = self.db().acquire().await?;
        self.batch_for(&mut conn, caller, "ListObjections", batch_id).await?;
        Ok(store::list_objections(&mut conn, batch_id, objection_state, after, i64::from(limit)).await?)
    }

    /// ResolveObjection, by a subject other than the one who recorded it, at the batch's etag.
    pub async fn resolve_objection(
        &self,
        caller: &Principal,
        batch_id: &str,
        seq: i64,
        resolution: Resolution,
        finding: &str,
        etag: &str,
    ) -> Result<(StoredObjection, StoredBatch), Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut batch = self
            .batch_to_change(unit.tx(), caller, "ResolveObjection", batch_id)
            .await?;
        let name = format!("{}/objections/{seq}", batch.name());
        if batch.etag() != etag {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        let objection = store::get_objection(unit.tx(), batch_id, seq)
            .await?
            .ok_or_else(|| Problem::not_found(&name))?;
        if objection.state != "open" {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!("{name} is {}", objection.state),
                "该异议已处理",
            ));
        }
        if let Err(refusal) = caller.ensure_not_maker(&objection.record_subject) {
            return Err(self.refuse(caller, "ResolveObjection", &name, refusal));
        }
        let stored_state = match resolution {
            Resolution::Upheld => "upheld",
            Resolution::Dismissed => "dismissed",
        };
        if !store::resolve_objection(unit.tx(), batch_id, seq, stored_state, finding, &caller.subject, now).await?
            || !store::count_objection(unit.tx(), batch_id, -1).await?
        {
            return Err(Problem::etag_mismatch(&name));
        }
        batch.open_objections -= 1;
        batch.revision += 1;
        if resolution == Resolution::Upheld {
            let reason = format!("异议成立：{finding}");
            self.cancel_in(unit.tx(), &mut batch, &reason, &caller.subject, now)
                .await?;
            if let Some(claim_id) = &objection.claim_id {
                self.send_back_to_review(unit.tx(), claim_id, &caller.subject, &reason, now)
                    .await?;
            }
        }
        let objection = store::get_objection(unit.tx(), batch_id, seq)
            .await?
            .ok_or_else(Problem::internal)?;
        let region = batch.selection.region_prefix.clone();
        unit.commit(AuditEntry::by(caller, &super::method("ResolveObjection"), name, now).in_region(&region))
            .await?;
        Ok((objection, batch))
    }

    /// The contested claim of an upheld objection goes back to review: its reservation is
    /// released (a review's last approval reserves again) and a new round of review begins.
    async fn send_back_to_review(
        &self,
        tx: &mut sqlx::AnyConnection,
        claim_id: &str,
        subject: &str,
        reason: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), Problem> {
        let mut claim = store::get_claim(tx, claim_id).await?.ok_or_else(Problem::internal)?;
        if claim.state != ClaimState::Approved {
            return Ok(());
        }
        let fund_id = claim.fund_id.clone().ok_or_else(Problem::internal)?;
        if !store::release(tx, &fund_id, claim.amount).await? {
            return Err(Problem::internal());
        }
        store::append_entry(
            tx,
            &LedgerEntry {
                fund_id,
                seq: 0,
                kind: "release".into(),
                debit: account::AVAILABLE.into(),
                credit: account::RESERVED.into(),
                amount: claim.amount,
                claim_id: Some(claim.id.clone()),
                batch_id: None,
                document: reason.to_string(),
                entry_date: self.today(),
                subject: subject.to_string(),
                recorded: now,
            },
        )
        .await?;
        let read = claim.revision;
        claim.state = ClaimState::PendingReview;
        claim.review_cause = Some(ReviewCause::ObjectionUpheld);
        claim.required_reviews = claim.required_reviews.max(1);
        claim.reviews.clear();
        claim.updated = now;
        if !store::update_claim(tx, &claim, ClaimState::Approved, read, None).await? {
            return Err(Problem::new(
                Code::Aborted,
                ErrorReason::StateConflict,
                "the contested claim changed meanwhile; resolve the objection again",
                "被异议的申请已发生变化，请重新处理该异议",
            ));
        }
        Ok(())
    }
}
