//! Organized labor export (有组织劳务输出, 点对点): batches of placed persons an agency sends
//! together. Departure closes a batch and sends each traveller's transport subsidy (to the
//! person) and the agency's service subsidy (to the agency) to subsidy payment as claims of
//! facts, keyed by batch, placement and subsidy so each is claimed once; the outcomes come back
//! on subsidy payment's claim feed.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::parameters::date_text;
use bangfu_platform::peers::CallContext;
use bangfu_platform::subsidy_claims::FactValue;
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use time::Date;
use tonic::Code;

use super::{Jobs, check_etag, invalid, method};
use crate::domain::{ClaimProgress, ExportBatchState, ExportSubsidy, PlacementState, padded_code};
use crate::store::claims::{self as store_claims, NewClaim};
use crate::store::{self, ClaimRecord, ExportBatchData, StoredExportBatch, StoredTraveller};

/// A traveller with where each of their claims stands.
#[derive(Debug, Clone)]
pub struct TravellerView {
    pub traveller: StoredTraveller,
    pub transport: ClaimRecord,
    pub agency: ClaimRecord,
}

/// A batch with its travellers.
#[derive(Debug, Clone)]
pub struct ExportBatchView {
    pub batch: StoredExportBatch,
    pub travellers: Vec<TravellerView>,
}

fn batch_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("exportBatches/{id}"))
}

/// The facts an export claim offers; the policy version in force takes those it declares.
fn offered_facts(traveller: &StoredTraveller, departed: Date) -> Vec<(String, FactValue)> {
    let placement = &traveller.placement.data;
    vec![
        ("transport_fare_fen".into(), FactValue::Money(traveller.fare_fen)),
        ("contract_months".into(), FactValue::Integer(placement.contract_months)),
        (
            "work_region".into(),
            FactValue::Region(padded_code(&placement.work_region)),
        ),
        (
            "social_insurance_enrolled".into(),
            FactValue::Boolean(placement.social_insurance),
        ),
        ("departure_date".into(), FactValue::Date(date_text(departed))),
        ("start_date".into(), FactValue::Date(date_text(placement.start))),
    ]
}

fn not_claimed(detail: &str) -> ClaimRecord {
    ClaimRecord {
        state: ClaimProgress::NotClaimed,
        claim: String::new(),
        amount_fen: 0,
        detail: detail.to_string(),
    }
}

impl Jobs {
    pub(crate) async fn batch_for(
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
    /// persons another registered), each with where its claims stand.
    async fn batch_view(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        batch: StoredExportBatch,
    ) -> Result<ExportBatchView, Problem> {
        let claims = store_claims::claims_of(conn, &batch.name()).await?;
        let travellers = store::travellers_of(conn, &batch.id)
            .await?
            .into_iter()
            .filter(|t| caller.scope.contains(&t.placement.data.home_region))
            .map(|traveller| {
                let record = |subsidy: ExportSubsidy| {
                    let reference = traveller.reference(subsidy);
                    if let Some(claim) = claims.iter().find(|c| c.claim.reference == reference) {
                        return claim.record.clone();
                    }
                    match (batch.policy(subsidy).is_empty(), batch.state) {
                        (true, _) => not_claimed(""),
                        // Claimed when the batch leaves.
                        (false, ExportBatchState::Planned) => ClaimRecord {
                            state: ClaimProgress::Pending,
                            claim: String::new(),
                            amount_fen: 0,
                            detail: String::new(),
                        },
                        (false, ExportBatchState::Departed) => not_claimed("安置已结束，未随批次输出"),
                    }
                };
                TravellerView {
                    transport: record(ExportSubsidy::Transport),
                    agency: record(ExportSubsidy::Agency),
                    traveller,
                }
            })
            .collect();
        Ok(ExportBatchView { batch, travellers })
    }

    /// A batch's policy, when it names one, must be in force on the day it leaves.
    async fn check_policy(&self, call: &CallContext, field: &str, code: &str, day: Date) -> Result<(), Problem> {
        if code.is_empty() {
            return Ok(());
        }
        self.policy_in_force(call, field, code, day).await
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
            if let Err(error) = store::insert_traveller(unit.tx(), id, placement_id, fare).await {
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
        // Each traveller still placed is claimed for, judged on the first day of work
        // (identity then shows the employment the transport subsidy asks for); one whose
        // placement ended before the batch left did not travel to that work.
        let mut due = Vec::new();
        for traveller in store::travellers_of(unit.tx(), id).await? {
            if traveller.placement.state != PlacementState::Active {
                continue;
            }
            let day = traveller.placement.data.start.max(departed);
            for subsidy in ExportSubsidy::ALL.iter().copied() {
                let policy = batch.policy(subsidy);
                if policy.is_empty() {
                    continue;
                }
                due.push(NewClaim {
                    reference: traveller.reference(subsidy),
                    policy: policy.to_string(),
                    person_id: traveller.placement.data.person_id.clone(),
                    payee: match subsidy {
                        ExportSubsidy::Transport => String::new(),
                        ExportSubsidy::Agency => format!("carriers/{}", batch.data.agency_id),
                    },
                    first: day,
                    last: day,
                    facts: offered_facts(&traveller, departed),
                    owner: name.clone(),
                    region: traveller.placement.data.home_region.clone(),
                });
            }
        }
        store_claims::insert_claims(unit.tx(), &due, now).await?;
        unit.commit(AuditEntry::by(caller, &method("DepartExportBatch"), name, now).in_region(&batch.data.origin))
            .await?;
        // The claims go now, acting for the clerk; what cannot go yet goes with the job.
        if let Err(problem) = self
            .send_pending_claims(call, Some(&format!("exportBatches/{id}")))
            .await
        {
            tracing::warn!(batch = %id, reason = ?problem.reason, "the batch's claims wait for the job");
        }
        self.get_export_batch(caller, id).await
    }
}
