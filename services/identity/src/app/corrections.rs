//! Citizen-ID corrections (身份证号码更正): a clerk proposes the new ID, another person with the
//! PII permission reviews it, and an approval changes the ID with everything derived from it.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::{Permission, Principal};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::NewEvent;
use bangfu_platform::pii::CitizenId;
use bangfu_platform::write::{self, Begun};

use super::{Identity, method};
use crate::domain::{ChangeKind, resolve_track, retirement_month};
use crate::store::{Store, StoredCorrection};

impl Identity {
    /// Proposes `new_id` for the person `person_id`, for `reason`.
    pub async fn correct_citizen_id(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        person_id: &str,
        new_id: CitizenId,
        reason: String,
    ) -> Result<StoredCorrection, Problem> {
        let method = method("CorrectCitizenId");
        let person = self.visible_person(caller, &method, person_id).await?;
        let now = self.clock.now();
        let mut unit = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { resource } => {
                let correction_id = resource.rsplit('/').next().unwrap_or_default();
                return self.correction(&person.id, correction_id).await;
            }
            Begun::Fresh(unit) => unit,
        };
        self.ensure_id_free(unit.tx(), &new_id, &person.id).await?;
        let correction_id = Store::new_person_id();
        self.store
            .insert_correction(
                unit.tx(),
                &correction_id,
                &person.id,
                &new_id,
                &reason,
                &caller.subject,
                now,
            )
            .await?;
        let resource = format!("{}/citizenIdCorrections/{correction_id}", person.resource());
        unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
        self.correction(&person.id, &correction_id).await
    }

    /// FAILED_PRECONDITION when another person already holds `citizen_id`.
    async fn ensure_id_free(
        &self,
        connection: &mut sqlx::AnyConnection,
        citizen_id: &CitizenId,
        person_id: &str,
    ) -> Result<(), Problem> {
        match self.store.holder(connection, citizen_id).await? {
            Some(holder) if holder.id == person_id => Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "correction.new_citizen_id",
                "is the ID the person already holds",
                "新身份证号码与现有号码相同",
            )),
            Some(_) => Err(Problem::new(
                tonic::Code::FailedPrecondition,
                ErrorReason::StateConflict,
                "another person holds this citizen ID",
                "该身份证号码已被其他档案使用，请先核实",
            )),
            None => Ok(()),
        }
    }

    /// PERMISSION_DENIED unless the caller may read the proposed ID in clear, as a reviewer must.
    pub fn ensure_correction_reviewer(&self, caller: &Principal) -> Result<(), Problem> {
        if caller.has(Permission::IdentityPiiRead) {
            return Ok(());
        }
        Err(Problem::new(
            tonic::Code::PermissionDenied,
            ErrorReason::PermissionMissing,
            "approving a citizen-ID correction needs identity.pii.read",
            "审核身份证号码更正须具有查看完整个人信息的权限",
        )
        .with_metadata("permission", Permission::IdentityPiiRead.as_str()))
    }

    /// Approves or rejects the correction `correction_id` of the person `person_id`.
    pub async fn review_correction(
        &self,
        caller: &Principal,
        (person_id, correction_id): (&str, &str),
        approve: bool,
        reason: String,
    ) -> Result<StoredCorrection, Problem> {
        let method = method("ApproveCitizenIdCorrection");
        // The reviewer reads the proposed ID in clear to check it: the PII permission is required.
        self.ensure_correction_reviewer(caller)?;
        let name = format!("persons/{person_id}/citizenIdCorrections/{correction_id}");
        let person = self.visible_person(caller, &method, person_id).await?;
        let today = self.clock.today();
        let now = self.clock.now();
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        let correction = self
            .store
            .correction(unit.tx(), &person.id, correction_id)
            .await?
            .ok_or_else(|| Problem::not_found(&name))?;
        if let Err(refusal) = caller.ensure_not_maker(&correction.propose_subject) {
            drop(unit);
            return Err(self.refuse(caller, &method, &name, refusal));
        }
        // The review is one guarded change of state (`proposed` → `applied` or `rejected`) in the
        // transaction that applies it: of an approval and a rejection racing, the second finds
        // the correction reviewed and changes nothing, the person's ID included.
        let state = if approve { "applied" } else { "rejected" };
        if !self
            .store
            .review_correction(unit.tx(), &correction.id, state, &caller.subject, &reason, now)
            .await?
        {
            drop(unit);
            let current = self.correction(&person.id, &correction.id).await?;
            return Err(correction_reviewed(&current.state));
        }
        if approve {
            let new_id = CitizenId::parse(&self.store.reveal_correction(&correction)?, today)
                .map_err(|_| Problem::internal())?;
            self.ensure_id_free(unit.tx(), &new_id, &person.id).await?;
            let default_female_age = self
                .parameters
                .lookup_on(
                    unit.tx(),
                    "identity.default_female_retirement_age",
                    &person.registered_region,
                    today,
                )
                .await?
                .unwrap_or(55);
            // A corrected sex may change the track; a corrected birth date always moves the month.
            let track = if new_id.sex() == person.sex {
                Some(person.retirement_track)
            } else {
                None
            };
            let track = resolve_track(track, new_id.sex(), default_female_age);
            let retirement = retirement_month(new_id.birth_date(), track);
            if !self
                .store
                .apply_correction(unit.tx(), &person, &correction, &new_id, track, retirement, now)
                .await?
            {
                return Err(Problem::new(
                    tonic::Code::Aborted,
                    ErrorReason::EtagMismatch,
                    "the person changed during the review; review again",
                    "审核期间人员信息已变化，请重新审核",
                ));
            }
            let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
            unit.publish(&NewEvent {
                kind: ChangeKind::CitizenIdCorrected.as_str(),
                resource: &person.resource(),
                regions: &regions,
                effective_date: Some(today),
                detail: "{}",
            })
            .await?;
        }
        let entry = AuditEntry::by(caller, &method, correction.resource(), now).with_purpose("DATA_CORRECTION", state);
        unit.commit(entry).await?;
        self.correction(&person.id, &correction.id).await
    }

    async fn correction(&self, person_id: &str, id: &str) -> Result<StoredCorrection, Problem> {
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        self.store
            .correction(&mut connection, person_id, id)
            .await?
            .ok_or_else(Problem::internal)
    }
}

/// FAILED_PRECONDITION: the correction was reviewed already (by someone else, just now).
fn correction_reviewed(state: &str) -> Problem {
    let state = match state {
        "applied" | "rejected" => state,
        _ => "reviewed",
    };
    Problem::new(
        tonic::Code::FailedPrecondition,
        ErrorReason::StateConflict,
        format!("the correction is already {state}"),
        "该更正申请已审核完毕",
    )
    .with_metadata("state", state)
}
