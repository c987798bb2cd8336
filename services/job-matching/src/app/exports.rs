//! Organized labor export (有组织劳务输出, 点对点): batches of placed persons an agency sends
//! together. Departure closes a batch and sends each traveller's transport subsidy (to the
//! person) and the agency's service subsidy (to the agency) to subsidy payment as claims of
//! facts, keyed by batch, placement and subsidy so each is claimed once; the outcomes come back
//! on subsidy payment's claim feed.

use bangfu_platform::audit::{self, AuditEntry};
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::parameters::date_text;
use bangfu_platform::peers::CallContext;
use bangfu_platform::subsidy_claims::{
    ClaimLine, ClaimOutcome, ClaimOutcomeKind, FactValue, LineAnswer, OrganizationPayee,
};
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use time::{Date, OffsetDateTime};
use tonic::Code;

use super::{Jobs, check_etag, invalid, method};
use crate::domain::{ClaimProgress, ExportBatchState, ExportSubsidy, PlacementState, padded_code};
use crate::store::{self, ClaimRecord, ExportBatchData, StoredExportBatch, StoredTraveller};

/// Travellers claimed for per round of the job.
const CLAIMS_PER_ROUND: i64 = 500;

/// The method name outcome audit rows carry (the feed, not a caller).
const CLAIM_FEED: &str = "subsidy-claim-feed";

/// A batch with its travellers.
#[derive(Debug, Clone)]
pub struct ExportBatchView {
    pub batch: StoredExportBatch,
    pub travellers: Vec<StoredTraveller>,
}

fn batch_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("exportBatches/{id}"))
}

/// A fact a policy version may take from an export claim, by name: only the names the version
/// declares are sent.
fn fact(name: &str, traveller: &StoredTraveller, departed: Date) -> Option<FactValue> {
    let placement = &traveller.placement.data;
    match name {
        "transport_fare_fen" => Some(FactValue::Money(traveller.fare_fen)),
        "contract_months" => Some(FactValue::Integer(placement.contract_months)),
        "work_region" => Some(FactValue::Region(padded_code(&placement.work_region))),
        "social_insurance_enrolled" => Some(FactValue::Boolean(placement.social_insurance)),
        "departure_date" => Some(FactValue::Date(date_text(departed))),
        "start_date" => Some(FactValue::Date(date_text(placement.start))),
        _ => None,
    }
}

impl Jobs {
    async fn batch_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredExportBatch, Problem> {
        let batch = store::get_export_batch(conn, id)
            .await?
            .ok_or_else(|| batch_not_found(id))?;
        self.ensure_sees(caller, method_name, &batch.name(), &batch.data.origin)?;
        Ok(batch)
    }

    /// The batch with the travellers the caller may see (a batch leaving one county may carry
    /// persons another registered).
    async fn batch_view(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        batch: StoredExportBatch,
    ) -> Result<ExportBatchView, Problem> {
        let travellers = store::travellers_of(conn, &batch.id)
            .await?
            .into_iter()
            .filter(|t| caller.scope.contains(&t.placement.data.home_region))
            .collect();
        Ok(ExportBatchView { batch, travellers })
    }

    /// The policy must be one subsidy payment has in force on the day: a claim under any other
    /// could never be paid.
    async fn check_policy(&self, call: &CallContext, field: &str, code: &str, day: Date) -> Result<(), Problem> {
        if code.is_empty() {
            return Ok(());
        }
        if self.peers()?.subsidy.claim_fact_names(call, code, day).await?.is_none() {
            return Err(invalid(
                field,
                format!("{code} is not a policy in force in subsidy payment's catalog on {day}"),
                format!("补贴政策 {code} 不在补贴发放政策目录中或不在有效期内"),
            ));
        }
        Ok(())
    }

    pub async fn create_export_batch(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        batch: ExportBatchData,
    ) -> Result<ExportBatchView, Problem> {
        if batch.departure < self.today() {
            return Err(invalid(
                "export_batch.departure_date",
                "a batch cannot be planned to leave before today",
                "计划出发日期不能早于今天",
            ));
        }
        self.ensure_sees(
            caller,
            "CreateExportBatch",
            &format!("exportBatches from {}", batch.origin),
            &batch.origin,
        )?;
        self.check_policy(
            call,
            "export_batch.transport_policy",
            &batch.transport_policy,
            batch.departure,
        )
        .await?;
        self.check_policy(
            call,
            "export_batch.agency_policy",
            &batch.agency_policy,
            batch.departure,
        )
        .await?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self
                    .get_export_batch(caller, resource.trim_start_matches("exportBatches/"))
                    .await;
            }
            Begun::Fresh(unit) => unit,
        };
        let agency = self
            .carrier_for(unit.tx(), caller, "CreateExportBatch", &batch.agency_id)
            .await
            .map_err(|_| {
                invalid(
                    "export_batch.agency",
                    format!("carriers/{} is not a carrier you may see", batch.agency_id),
                    "组织机构未登记或不在您的管辖范围内",
                )
            })?;
        if !agency.data.kind.organizes_export() {
            return Err(invalid(
                "export_batch.agency",
                format!("a {} does not organize labor export", agency.data.kind.as_str()),
                "组织输出的应为人力资源服务机构、劳务合作社、劳务工作站或劳务协作联盟",
            ));
        }
        let now = unit.now();
        let id = store::new_id();
        store::insert_export_batch(unit.tx(), &id, &batch, &caller.subject, now).await?;
        let stored = store::get_export_batch(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("CreateExportBatch"), stored.name(), now).in_region(&batch.origin))
            .await?;
        Ok(ExportBatchView {
            batch: stored,
            travellers: Vec::new(),
        })
    }

    pub async fn get_export_batch(&self, caller: &Principal, id: &str) -> Result<ExportBatchView, Problem> {
        let mut conn = self.db().acquire().await?;
        let batch = self.batch_for(&mut conn, caller, "GetExportBatch", id).await?;
        self.batch_view(&mut conn, caller, batch).await
    }

    pub async fn list_export_batches(
        &self,
        caller: &Principal,
        region_prefix: &str,
        state: Option<ExportBatchState>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ExportBatchView>, Problem> {
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok(Vec::new());
        };
        let mut conn = self.db().acquire().await?;
        let batches = store::list_export_batches(&mut conn, &prefix, state, after, i64::from(limit) + 1).await?;
        let mut views = Vec::with_capacity(batches.len());
        for batch in batches {
            views.push(self.batch_view(&mut conn, caller, batch).await?);
        }
        Ok(views)
    }

    /// Adds travellers: active placements the caller sees, each with the fare paid for them.
    pub async fn add_travellers(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        travellers: Vec<(String, Option<i64>)>,
    ) -> Result<ExportBatchView, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let batch = self.batch_for(unit.tx(), caller, "AddTravellers", id).await?;
        let name = batch.name();
        check_etag(&name, etag, &batch.etag())?;
        if batch.state != ExportBatchState::Planned {
            return Err(Problem::state_conflict(
                &name,
                "the batch has left",
                "该批次已出发，不能再添加人员",
            ));
        }
        let claim_state = |policy: &str| {
            if policy.is_empty() {
                ClaimProgress::NotClaimed
            } else {
                ClaimProgress::Pending
            }
        };
        for (i, (placement_id, fare)) in travellers.iter().enumerate() {
            let field = format!("travellers[{i}]");
            let placement = store::get_placement(unit.tx(), placement_id).await?.ok_or_else(|| {
                invalid(
                    &format!("{field}.placement"),
                    format!("placements/{placement_id} is not a placement you may see"),
                    "安置记录不存在或不在您的管辖范围内",
                )
            })?;
            self.ensure_sees(caller, "AddTravellers", &placement.name(), &placement.data.home_region)?;
            if placement.state != PlacementState::Active {
                return Err(invalid(
                    &format!("{field}.placement"),
                    "the placement has ended",
                    "该安置记录已结束，不能随批次输出",
                ));
            }
            let fare = match (fare, batch.data.transport_policy.is_empty()) {
                (Some(fare), _) => *fare,
                (None, true) => 0,
                (None, false) => return Err(Problem::required(format!("{field}.fare"), "交通费用")),
            };
            if let Err(error) = store::insert_traveller(
                unit.tx(),
                id,
                placement_id,
                fare,
                claim_state(&batch.data.transport_policy),
                claim_state(&batch.data.agency_policy),
            )
            .await
            {
                if store::is_duplicate(&error) {
                    return Err(Problem::new(
                        Code::AlreadyExists,
                        ErrorReason::AlreadyExists,
                        "the placement travels with a batch already",
                        "该人员已在输出批次中",
                    )
                    .with_violation(format!("{field}.placement"), "already in a batch"));
                }
                return Err(error.into());
            }
        }
        let now = unit.now();
        if !store::touch_export_batch(unit.tx(), id, batch.revision, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let stored = store::get_export_batch(unit.tx(), id)
            .await?
            .ok_or_else(Problem::internal)?;
        let view = self.batch_view(unit.tx(), caller, stored).await?;
        unit.commit(AuditEntry::by(caller, &method("AddTravellers"), name, now).in_region(&batch.data.origin))
            .await?;
        Ok(view)
    }

    pub async fn depart_export_batch(
        &self,
        caller: &Principal,
        call: &CallContext,
        id: &str,
        etag: &str,
        departed: Date,
    ) -> Result<ExportBatchView, Problem> {
        if departed > self.today() {
            return Err(invalid(
                "departed_date",
                "cannot be in the future",
                "出发日期不能晚于今天",
            ));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let batch = self.batch_for(unit.tx(), caller, "DepartExportBatch", id).await?;
        let name = batch.name();
        check_etag(&name, etag, &batch.etag())?;
        if batch.state != ExportBatchState::Planned {
            return Err(Problem::state_conflict(
                &name,
                "the batch has left already",
                "该批次已出发",
            ));
        }
        if store::travellers_of(unit.tx(), id).await?.is_empty() {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::ExportBatchEmpty,
                "nobody travels with the batch",
                "该批次没有输出人员，不能出发",
            )
            .with_metadata("resource", name));
        }
        let now = unit.now();
        if !store::depart_export_batch(unit.tx(), id, batch.revision, departed, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        store::unclaim_ended(unit.tx(), id).await?;
        unit.commit(AuditEntry::by(caller, &method("DepartExportBatch"), name, now).in_region(&batch.data.origin))
            .await?;
        // The claims go now, acting for the clerk; what cannot go yet goes with the job.
        if let Err(problem) = self.send_pending_claims(call, Some(id)).await {
            tracing::warn!(batch = %id, reason = ?problem.reason, "the batch's claims wait for the job");
        }
        self.get_export_batch(caller, id).await
    }

    /// Sends the claims of departed batches still to send whose day has come (all batches, or
    /// one); returns how many subsidy payment took. A claim that cannot go now — no policy
    /// version in force on its day, subsidy payment refusing it for the time being — stays
    /// pending with the reason shown, and is tried again after the others.
    pub async fn send_pending_claims(&self, call: &CallContext, batch_id: Option<&str>) -> Result<usize, Problem> {
        let today = self.today();
        let travellers = {
            let mut conn = self.db().acquire().await?;
            store::pending_travellers(&mut conn, batch_id, today, CLAIMS_PER_ROUND).await?
        };
        if travellers.is_empty() {
            return Ok(0);
        }
        let peers = self.peers()?;
        let mut lines = Vec::new();
        let mut sent: Vec<(&StoredTraveller, ExportSubsidy)> = Vec::new();
        let mut waiting: Vec<(&StoredTraveller, ExportSubsidy, String)> = Vec::new();
        for traveller in &travellers {
            let batch = {
                let mut conn = self.db().acquire().await?;
                store::get_export_batch(&mut conn, &traveller.batch_id)
                    .await?
                    .ok_or_else(Problem::internal)?
            };
            let departed = batch.departed.unwrap_or(today);
            // Judged on the first day of work: identity then shows the employment the
            // transport subsidy asks for.
            let day = traveller.placement.data.start.max(departed);
            for subsidy in ExportSubsidy::ALL.iter().copied() {
                if traveller.claim(subsidy).state != ClaimProgress::Pending {
                    continue;
                }
                let policy = batch.policy(subsidy).to_string();
                let declared = match peers.subsidy.claim_fact_names(call, &policy, day).await {
                    Ok(Some(declared)) => declared,
                    Ok(None) => {
                        waiting.push((
                            traveller,
                            subsidy,
                            format!("{policy} 在 {day} 无有效政策版本，发布新版本后将重新申报"),
                        ));
                        continue;
                    }
                    Err(problem) => {
                        waiting.push((traveller, subsidy, format!("补贴发放服务暂不可用：{}", problem.message)));
                        continue;
                    }
                };
                let organization = match subsidy {
                    ExportSubsidy::Transport => None,
                    ExportSubsidy::Agency => {
                        let mut conn = self.db().acquire().await?;
                        let agency = store::get_carrier(&mut conn, &batch.data.agency_id)
                            .await?
                            .ok_or_else(Problem::internal)?;
                        Some(OrganizationPayee {
                            credit_code: agency.data.credit_code,
                            display_name: agency.data.display_name,
                            region: padded_code(&agency.data.region),
                        })
                    }
                };
                lines.push(ClaimLine {
                    // Echoed in subsidy payment's answer and logs (64 characters at most).
                    line_reference: format!("{}:{}", traveller.placement.id, subsidy.as_str()),
                    policy,
                    person_id: traveller.placement.data.person_id.clone(),
                    first: day,
                    last: day,
                    facts: declared
                        .iter()
                        .filter_map(|name| fact(name, traveller, departed).map(|value| (name.clone(), value)))
                        .collect(),
                    organization,
                    reference: traveller.reference(subsidy),
                });
                sent.push((traveller, subsidy));
            }
        }
        let now = self.now();
        let mut conn = self.db().acquire().await?;
        for traveller in &travellers {
            store::claims_attempted(&mut conn, &traveller.batch_id, &traveller.placement.id, now).await?;
        }
        let answers = if lines.is_empty() {
            Vec::new()
        } else {
            match peers.subsidy.submit(call, &lines).await {
                Ok(answers) => answers,
                Err(problem) => {
                    // Nothing recorded as sent: the same lines go again next round, and their
                    // source keys make subsidy payment take each once.
                    tracing::warn!(reason = ?problem.reason, "subsidy payment did not take the export claims; the job retries");
                    Vec::new()
                }
            }
        };
        let mut taken = 0;
        for ((traveller, subsidy), answer) in sent.iter().zip(answers) {
            let record = match answer {
                LineAnswer::Claim(claim) => {
                    taken += 1;
                    ClaimRecord {
                        state: ClaimProgress::Submitted,
                        claim,
                        amount_fen: 0,
                        detail: String::new(),
                    }
                }
                // The same line may pass later unchanged: it stays pending, with the reason.
                LineAnswer::Refused {
                    message,
                    retryable: true,
                } => ClaimRecord {
                    state: ClaimProgress::Pending,
                    claim: String::new(),
                    amount_fen: 0,
                    detail: message,
                },
                LineAnswer::Refused { message, .. } => ClaimRecord {
                    state: ClaimProgress::Refused,
                    claim: String::new(),
                    amount_fen: 0,
                    detail: message,
                },
            };
            store::set_claim(
                &mut conn,
                &traveller.batch_id,
                &traveller.placement.id,
                *subsidy,
                &record,
                Some(ClaimProgress::Pending),
            )
            .await?;
        }
        for (traveller, subsidy, detail) in waiting {
            let record = ClaimRecord {
                state: ClaimProgress::Pending,
                claim: String::new(),
                amount_fen: 0,
                detail,
            };
            store::set_claim(
                &mut conn,
                &traveller.batch_id,
                &traveller.placement.id,
                subsidy,
                &record,
                Some(ClaimProgress::Pending),
            )
            .await?;
        }
        Ok(taken)
    }
}

/// A claim's outcome from subsidy payment's feed, on the traveller it was sent for.
pub async fn apply_claim_outcome(
    tx: &mut AnyConnection,
    outcome: &ClaimOutcome,
    now: OffsetDateTime,
) -> Result<(), Problem> {
    let Some((batch_id, placement_id, subsidy)) = store::parse_reference(&outcome.reference) else {
        return Ok(());
    };
    let (state, detail) = match outcome.kind {
        ClaimOutcomeKind::Granted => (ClaimProgress::Granted, String::new()),
        ClaimOutcomeKind::Rejected => (ClaimProgress::Refused, outcome.rejection_reasons.join(", ")),
        ClaimOutcomeKind::Paid => (ClaimProgress::Paid, String::new()),
        ClaimOutcomeKind::PaymentFailed => (ClaimProgress::PaymentFailed, "银行发放失败".to_string()),
        ClaimOutcomeKind::Other => return Ok(()),
    };
    let record = ClaimRecord {
        state,
        claim: outcome.claim.clone(),
        amount_fen: outcome.amount_fen,
        detail,
    };
    if store::set_claim(tx, &batch_id, &placement_id, subsidy, &record, None).await? {
        let entry = AuditEntry::by_service(
            crate::SERVICE,
            CLAIM_FEED,
            format!(
                "exportBatches/{batch_id}/travellers/{placement_id}/{}",
                subsidy.as_str()
            ),
            now,
        );
        audit::append(tx, &entry).await?;
    }
    Ok(())
}
