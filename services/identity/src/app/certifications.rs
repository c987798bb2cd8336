//! Certified categories (类别认定): certifying and revoking one, and the review of the
//! certifications an import proposes (ListPendingCertifications, ConfirmCertifications). Only
//! the department the certifying-department table names for a category certifies it.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::{Department, Principal, RegionScope};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::NewEvent;
use bangfu_platform::paging;
use bangfu_platform::write::{self, Begun};
use time::Date;

use super::{Identity, method, visible_prefix};
use crate::domain::ChangeKind;
use crate::domain::categories::{Category, NewCertification};
use crate::store::{Store, StoredCertification, StoredPending};

/// How a certification ends: revoked from a day on, or annulled as if never made.
pub struct Revocation {
    pub annul: bool,
    /// The last day it holds; required unless annulled.
    pub valid_to: Option<Date>,
    pub document: String,
}

impl Identity {
    /// The caller's department may certify `category`, or PERMISSION_DENIED naming both.
    async fn ensure_may_certify(
        &self,
        connection: &mut sqlx::AnyConnection,
        caller: &Principal,
        category: Category,
    ) -> Result<(), Problem> {
        let department = caller.department.map(|d| d.as_str()).unwrap_or("");
        if self.store.may_certify(connection, category, department).await? {
            return Ok(());
        }
        // Say whom to ask: the clerk holding the wrong token needs the certifying department's.
        let certifiers = self.store.certifiers(connection, category).await?.join(", ");
        Err(Problem::new(
            tonic::Code::PermissionDenied,
            ErrorReason::PermissionMissing,
            format!(
                "department {department:?} does not certify {}: it is certified by {certifiers}; use a token of that department",
                category.as_str()
            ),
            format!("您所在部门不负责认定该类人员，应由 {certifiers} 部门认定"),
        )
        .with_metadata("category", category.as_str())
        .with_metadata("certified_by", &certifiers))
    }

    pub async fn certify_category(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        person_id: &str,
        certification: NewCertification,
    ) -> Result<StoredCertification, Problem> {
        let method = method("CertifyCategory");
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let may = self
            .ensure_may_certify(&mut connection, caller, certification.category)
            .await;
        drop(connection);
        if let Err(refusal) = may {
            let person = format!("persons/{person_id}");
            return Err(self.refuse(caller, &method, &person, refusal));
        }
        let person = self.visible_person(caller, &method, person_id).await?;
        let now = self.clock.now();
        let id = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { resource } => resource.rsplit('/').next().unwrap_or_default().to_string(),
            Begun::Fresh(mut unit) => {
                let id = Store::new_person_id();
                self.store
                    .insert_certification(unit.tx(), &id, &person.id, &certification, &caller.subject, now)
                    .await?;
                let resource = format!("persons/{}/certifications/{id}", person.id);
                let detail = serde_json::json!({ "category": certification.category.as_str() }).to_string();
                let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
                unit.publish(&NewEvent {
                    kind: ChangeKind::CategoryCertified.as_str(),
                    resource: &person.resource(),
                    regions: &regions,
                    effective_date: Some(certification.valid_from),
                    detail: &detail,
                })
                .await?;
                unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
                id
            }
        };
        self.certification_of(&person.id, &id).await
    }

    /// Revokes or annuls the certification `certification_id` of the person `person_id`.
    pub async fn revoke_category(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        (person_id, certification_id): (&str, &str),
        revocation: Revocation,
    ) -> Result<StoredCertification, Problem> {
        let method = method("RevokeCategory");
        let name = format!("persons/{person_id}/certifications/{certification_id}");
        let person = self.visible_person(caller, &method, person_id).await?;
        let now = self.clock.now();
        // The request id first: a retried revocation answers with the first one's result
        // instead of finding the certification already ended.
        let mut unit = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { .. } => return self.certification_of(&person.id, certification_id).await,
            Begun::Fresh(unit) => unit,
        };
        let current = self
            .store
            .certification(unit.tx(), &person.id, certification_id)
            .await?
            .ok_or_else(|| Problem::not_found(&name))?;
        if let Err(refusal) = self.ensure_may_certify(unit.tx(), caller, current.category).await {
            drop(unit);
            return Err(self.refuse(caller, &method, &name, refusal));
        }
        if current.annulled {
            return Err(certification_annulled());
        }
        if let Some(to) = revocation.valid_to
            && to < current.valid_from
        {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "valid_to",
                "is before the certification's valid_from; annul it instead",
                "失效日期早于生效日期；如认定有误，请选择撤销认定",
            ));
        }
        let document = &revocation.document;
        // Each change is guarded on the certification not being annulled in the meantime: of a
        // revocation and an annulment racing, the one that commits second finds no row to change.
        let (changed, kind, effective) = if revocation.annul {
            let changed = self
                .store
                .annul_certification(unit.tx(), &current.id, document, &caller.subject, now)
                .await?;
            (changed, ChangeKind::CategoryAnnulled, current.valid_from)
        } else {
            let to = revocation.valid_to.unwrap_or(current.valid_from);
            let changed = self
                .store
                .revoke_certification(unit.tx(), &current.id, to, document, &caller.subject, now)
                .await?;
            (changed, ChangeKind::CategoryRevoked, to)
        };
        if !changed {
            return Err(certification_annulled());
        }
        let detail = serde_json::json!({ "category": current.category.as_str() }).to_string();
        let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
        unit.publish(&NewEvent {
            kind: kind.as_str(),
            resource: &person.resource(),
            regions: &regions,
            effective_date: Some(effective),
            detail: &detail,
        })
        .await?;
        unit.commit(AuditEntry::by(caller, &method, current.resource(), now))
            .await?;
        self.certification_of(&person.id, &current.id).await
    }

    async fn certification_of(&self, person_id: &str, id: &str) -> Result<StoredCertification, Problem> {
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        self.store
            .certification(&mut connection, person_id, id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("persons/{person_id}/certifications/{id}")))
    }

    /// The categories the certifying-department table gives the caller's department.
    pub(super) async fn certifiable_by(&self, caller: &Principal) -> Result<Vec<Category>, Problem> {
        let department = caller.department.map(|d| d.as_str()).unwrap_or("");
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let mut certifiable = Vec::new();
        for category in Category::ALL {
            if self.store.may_certify(&mut connection, category, department).await? {
                certifiable.push(category);
            }
        }
        Ok(certifiable)
    }

    /// A page (`limit` long) of the proposals in `region` the caller's department may confirm,
    /// and the next page's token.
    pub async fn list_pending(
        &self,
        caller: &Principal,
        region: &RegionScope,
        limit: u32,
        page_token: &str,
    ) -> Result<(Vec<StoredPending>, String), Problem> {
        let prefix = visible_prefix(caller, region);
        let department = caller.department.map(|d| d.as_str()).unwrap_or("");
        let categories = self.certifiable_by(caller).await?;
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let Some(prefix) = prefix else {
            return Ok((Vec::new(), String::new()));
        };
        let fingerprint = paging::fingerprint(&[&prefix, department]);
        let after = paging::decode_token(page_token, &fingerprint)?.and_then(|cursor| match cursor.as_slice() {
            [region, id] => Some((region.clone(), id.clone())),
            _ => None,
        });
        let mut found = self
            .store
            .list_pending(&mut connection, &prefix, &categories, after, limit + 1)
            .await?;
        let next_page_token = if found.len() > limit as usize {
            found.truncate(limit as usize);
            found
                .last()
                .map(|last| paging::encode_token(&fingerprint, &[last.region.clone(), last.id.clone()]))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((found, next_page_token))
    }

    /// Confirms the proposals `names` (`pendingCertifications/{id}`): the certifications made,
    /// and the names not confirmed (unknown, outside the scope, the caller's own, or not its
    /// department's to certify).
    pub async fn confirm_certifications(
        &self,
        caller: &Principal,
        names: &[String],
    ) -> Result<(Vec<StoredCertification>, Vec<String>), Problem> {
        let method = method("ConfirmCertifications");
        // Which categories the reviewer's department certifies: asked once, not per name.
        let certifiable = self.certifiable_by(caller).await?;
        let body = certifying_body(caller.department);
        let now = self.clock.now();
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        let mut confirmed = Vec::new();
        let mut not_confirmed = Vec::new();
        for name in names {
            let Some(id) = name
                .strip_prefix("pendingCertifications/")
                .filter(|id| !id.is_empty() && !id.contains('/'))
            else {
                not_confirmed.push(name.clone());
                continue;
            };
            let Some(pending) = self.store.pending(unit.tx(), id).await? else {
                not_confirmed.push(name.clone());
                continue;
            };
            // Maker ≠ checker: whoever imported the proposal does not confirm it.
            let may = !pending.confirmed
                && caller.scope.contains(&pending.region)
                && pending.import_subject != caller.subject
                && certifiable.contains(&pending.category);
            if !may {
                not_confirmed.push(name.clone());
                continue;
            }
            let Some(person) = self.store.get(unit.tx(), &pending.person_id).await? else {
                not_confirmed.push(name.clone());
                continue;
            };
            let certification = NewCertification {
                category: pending.category,
                household_type: pending.household_type,
                certifying_body: body.to_string(),
                document_reference: pending.document_reference.clone(),
                valid_from: pending.valid_from,
                valid_to: None,
            };
            let certification_id = Store::new_person_id();
            if !self
                .store
                .confirm_pending(unit.tx(), &pending.id, &certification_id, &caller.subject, now)
                .await?
            {
                not_confirmed.push(name.clone());
                continue;
            }
            self.store
                .insert_certification(
                    unit.tx(),
                    &certification_id,
                    &person.id,
                    &certification,
                    &caller.subject,
                    now,
                )
                .await?;
            let detail = serde_json::json!({ "category": pending.category.as_str() }).to_string();
            let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
            let event = NewEvent {
                kind: ChangeKind::CategoryCertified.as_str(),
                resource: &person.resource(),
                regions: &regions,
                effective_date: Some(pending.valid_from),
                detail: &detail,
            };
            unit.publish(&event).await?;
            let resource = format!("persons/{}/certifications/{certification_id}", person.id);
            unit.audit(AuditEntry::by(caller, &method, resource, now)).await?;
            confirmed.push((person.id.clone(), certification_id));
        }
        unit.commit_audited().await?;
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let mut certifications = Vec::with_capacity(confirmed.len());
        for (person_id, id) in confirmed {
            let stored = self
                .store
                .certification(&mut connection, &person_id, &id)
                .await?
                .ok_or_else(Problem::internal)?;
            certifications.push(stored);
        }
        Ok((certifications, not_confirmed))
    }
}

/// FAILED_PRECONDITION: an annulled certification is final.
fn certification_annulled() -> Problem {
    Problem::new(
        tonic::Code::FailedPrecondition,
        ErrorReason::StateConflict,
        "the certification is annulled",
        "该认定已被撤销，不能再修改",
    )
}

/// The certifying body a certification names when an import or a confirmation makes it: the
/// caller's department.
pub(super) fn certifying_body(department: Option<Department>) -> &'static str {
    match department {
        Some(Department::Agri) => "农业农村（乡村振兴）部门",
        Some(Department::Hr) => "人力资源社会保障部门",
        Some(Department::Ndrc) => "发展改革部门",
        Some(Department::Finance) => "财政部门",
        None => "导入",
    }
}
