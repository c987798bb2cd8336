//! Carriers (就业载体): employers, workshops, labor bases, brands, cooperatives, agencies,
//! alliances and stations, their certification, and the target persons they absorb.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use tonic::Code;

use super::{Jobs, check_etag, invalid, method};
use crate::store::{self, CarrierData, CarrierFilter, Certification, StoredCarrier};

/// A carrier with what is counted about it today.
#[derive(Debug, Clone)]
pub struct CarrierView {
    pub carrier: StoredCarrier,
    pub certified: bool,
    pub absorbed_target_persons: i64,
    pub active_placements: i64,
}

/// What UpdateCarrier changes: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct CarrierChange {
    pub display_name: Option<String>,
    pub region: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub relocation_site: Option<bool>,
}

pub(crate) fn carrier_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("carriers/{id}"))
}

impl Jobs {
    pub(crate) async fn carrier_view(
        &self,
        conn: &mut AnyConnection,
        carrier: StoredCarrier,
    ) -> Result<CarrierView, Problem> {
        let (active, absorbed) = store::carrier_counts(conn, &carrier.id).await?;
        let today = self.today();
        let certified = carrier
            .certification
            .as_ref()
            .is_some_and(|c| c.date <= today && c.valid_until.is_none_or(|until| today <= until));
        Ok(CarrierView {
            carrier,
            certified,
            absorbed_target_persons: absorbed,
            active_placements: active,
        })
    }

    /// The carrier, if the caller's scope holds its region (NOT_FOUND, audited, otherwise).
    pub(crate) async fn carrier_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredCarrier, Problem> {
        let carrier = store::get_carrier(conn, id)
            .await?
            .ok_or_else(|| carrier_not_found(id))?;
        self.ensure_sees(caller, method_name, &carrier.name(), &carrier.data.region)?;
        Ok(carrier)
    }

    pub async fn create_carrier(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        carrier: CarrierData,
    ) -> Result<CarrierView, Problem> {
        self.ensure_sees(
            caller,
            "CreateCarrier",
            &format!("carriers in {}", carrier.region),
            &carrier.region,
        )?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self.get_carrier(caller, resource.trim_start_matches("carriers/")).await;
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let id = store::new_id();
        if let Err(error) = store::insert_carrier(unit.tx(), &id, &carrier, &caller.subject, now).await {
            if store::is_duplicate(&error) {
                return Err(Problem::new(
                    Code::AlreadyExists,
                    ErrorReason::AlreadyExists,
                    format!("a carrier with credit code {} is recorded", carrier.credit_code),
                    format!("统一社会信用代码 {} 已登记", carrier.credit_code),
                )
                .with_violation("carrier.credit_code", "already recorded"));
            }
            return Err(error.into());
        }
        let stored = store::get_carrier(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        let view = self.carrier_view(unit.tx(), stored).await?;
        unit.commit(
            AuditEntry::by(caller, &method("CreateCarrier"), view.carrier.name(), now).in_region(&carrier.region),
        )
        .await?;
        Ok(view)
    }

    pub async fn get_carrier(&self, caller: &Principal, id: &str) -> Result<CarrierView, Problem> {
        let mut conn = self.db().acquire().await?;
        let carrier = self.carrier_for(&mut conn, caller, "GetCarrier", id).await?;
        self.carrier_view(&mut conn, carrier).await
    }

    pub async fn list_carriers(
        &self,
        caller: &Principal,
        mut filter: CarrierFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<CarrierView>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        let carriers = store::list_carriers(&mut conn, &filter, after, i64::from(limit) + 1).await?;
        let mut views = Vec::with_capacity(carriers.len());
        for carrier in carriers {
            views.push(self.carrier_view(&mut conn, carrier).await?);
        }
        Ok(views)
    }

    pub async fn update_carrier(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        change: CarrierChange,
    ) -> Result<CarrierView, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let mut carrier = self.carrier_for(unit.tx(), caller, "UpdateCarrier", id).await?;
        let name = carrier.name();
        check_etag(&name, etag, &carrier.etag())?;
        if let Some(region) = &change.region {
            // Moving a carrier out of one's own scope would hand it to nobody who may see it.
            self.ensure_sees(caller, "UpdateCarrier", &name, region)?;
        }
        let data = &mut carrier.data;
        let CarrierChange {
            display_name,
            region,
            contact_name,
            contact_phone,
            relocation_site,
        } = change;
        data.display_name = display_name.unwrap_or(data.display_name.clone());
        data.region = region.unwrap_or(data.region.clone());
        data.contact_name = contact_name.unwrap_or(data.contact_name.clone());
        data.contact_phone = contact_phone.unwrap_or(data.contact_phone.clone());
        data.relocation_site = relocation_site.unwrap_or(data.relocation_site);
        let now = unit.now();
        if !store::update_carrier(unit.tx(), &carrier, carrier.revision, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let region = carrier.data.region.clone();
        let stored = store::get_carrier(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        let view = self.carrier_view(unit.tx(), stored).await?;
        unit.commit(AuditEntry::by(caller, &method("UpdateCarrier"), name, now).in_region(&region))
            .await?;
        Ok(view)
    }

    pub async fn certify_carrier(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        certification: Certification,
    ) -> Result<CarrierView, Problem> {
        let (date, valid_until) = (certification.date, certification.valid_until);
        if date > self.today() {
            return Err(invalid(
                "certification.certify_date",
                "a certification cannot be dated in the future",
                "认定日期不能晚于今天",
            ));
        }
        if valid_until.is_some_and(|until| until < date) {
            return Err(invalid(
                "certification.valid_until",
                "the certification cannot lapse before it was made",
                "认定有效期不能早于认定日期",
            ));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let mut carrier = self.carrier_for(unit.tx(), caller, "CertifyCarrier", id).await?;
        let name = carrier.name();
        check_etag(&name, etag, &carrier.etag())?;
        carrier.certification = Some(Certification {
            subject: caller.subject.clone(),
            ..certification
        });
        let now = unit.now();
        if !store::update_carrier(unit.tx(), &carrier, carrier.revision, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let region = carrier.data.region.clone();
        let stored = store::get_carrier(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        let view = self.carrier_view(unit.tx(), stored).await?;
        unit.commit(AuditEntry::by(caller, &method("CertifyCarrier"), name, now).in_region(&region))
            .await?;
        Ok(view)
    }
}
