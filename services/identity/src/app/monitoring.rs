//! Employment and income monitoring: RecordEmployment, RecordIncome, ListAlerts,
//! AcknowledgeAlert and GetMonitoringStats. Alerts are raised in the transaction that records
//! the change, each under a key that makes raising it twice (a retry, two replicas) a no-op.

use std::collections::HashMap;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::{Principal, RegionScope};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::NewEvent;
use bangfu_platform::paging;
use bangfu_platform::parameters::date_text;
use bangfu_platform::write::{self, Begun};
use time::Date;

use super::{Identity, method, visible_prefix};
use crate::domain::ChangeKind;
use crate::domain::monitoring::{AlertKind, EmploymentStatus, Month, drop_beyond};
use crate::store::{
    AlertFilter, IncomeReport, NewAlert, NewEmployment, RegionCounts, Store, StoredAlert, StoredEmployment,
};

/// A recorded employment and the person's status today, which it may or may not have changed.
pub struct RecordedEmployment {
    pub record: StoredEmployment,
    pub current_status: Option<EmploymentStatus>,
}

impl Identity {
    /// A person's employment periods, latest start first, one page after `after` (start date
    /// and id of the page's last period).
    pub async fn employment_records_of(
        &self,
        caller: &Principal,
        person_id: &str,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<Vec<StoredEmployment>, Problem> {
        let person = self
            .visible_person(caller, &method("ListEmploymentRecords"), person_id)
            .await?;
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        self.store
            .employment_records(&mut connection, &person.id, after, limit)
            .await
    }

    pub async fn record_employment(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        person_id: &str,
        record: NewEmployment,
    ) -> Result<RecordedEmployment, Problem> {
        let method = method("RecordEmployment");
        let person = self.visible_person(caller, &method, person_id).await?;
        let now = self.clock.now();
        let today = self.clock.today();
        let record_id = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { resource } => resource.rsplit('/').next().unwrap_or_default().to_string(),
            Begun::Fresh(mut unit) => {
                let day_before = record.start_date.previous_day().unwrap_or(record.start_date);
                let before = self
                    .store
                    .employment_on(unit.tx(), &[person.id.as_str()], day_before)
                    .await?
                    .remove(&person.id)
                    .map(|r| r.status);
                let id = Store::new_person_id();
                self.store
                    .insert_employment(unit.tx(), &id, &person.id, &record, &caller.subject, now)
                    .await?;
                let resource = format!("{}/employmentRecords/{id}", person.resource());
                let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
                let detail = serde_json::json!({ "status": record.status.as_str() }).to_string();
                unit.publish(&NewEvent {
                    kind: ChangeKind::EmploymentChanged.as_str(),
                    resource: &person.resource(),
                    regions: &regions,
                    effective_date: Some(record.start_date),
                    detail: &detail,
                })
                .await?;
                // 就业转失业: employed the day before, unemployed from the start date.
                if before.is_some_and(EmploymentStatus::is_employed) && record.status == EmploymentStatus::Unemployed {
                    let alert = NewAlert {
                        kind: AlertKind::EmploymentLost,
                        person_id: Some(person.id.clone()),
                        region: person.residence_region.clone(),
                        effective_date: record.start_date,
                        drop_basis_points: 0,
                        dedupe_key: format!("employment_lost:{}:{}", person.id, date_text(record.start_date)),
                    };
                    self.store.raise_alert(unit.tx(), &alert, now).await?;
                    // The county's figures place the person where they lived that day, so its
                    // drop is checked there, not where they live now.
                    let residence = self
                        .store
                        .get_as_of(unit.tx(), &person.id, (record.start_date, record.start_date), false)
                        .await?
                        .map(|(_, facts)| facts.residence_region)
                        .unwrap_or_else(|| person.residence_region.clone());
                    self.check_county_employment(unit.tx(), &residence, record.start_date, now)
                        .await?;
                }
                unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
                id
            }
        };
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let stored = self
            .store
            .employment(&mut connection, &person.id, &record_id)
            .await?
            .ok_or_else(Problem::internal)?;
        let current = self
            .store
            .employment_on(&mut connection, &[person.id.as_str()], today)
            .await?
            .remove(&person.id)
            .map(|r| r.status);
        Ok(RecordedEmployment {
            record: stored,
            current_status: current,
        })
    }

    /// A county's employed count on `day` against the end of the month before: a fall beyond
    /// the county's threshold raises one alert for the month. Answers the alert, and whether
    /// this check raised it (an earlier one may have).
    pub(super) async fn check_county_employment(
        &self,
        tx: &mut sqlx::AnyConnection,
        residence: &str,
        day: Date,
        now: time::OffsetDateTime,
    ) -> Result<Option<(StoredAlert, bool)>, Problem> {
        let county = residence.get(..6).unwrap_or(residence);
        let month = Month::of(day);
        let before = self
            .store
            .employed_count(tx, county, month.previous().last_day())
            .await?;
        let after = self.store.employed_count(tx, county, day).await?;
        let threshold = self
            .parameters
            .require("identity.employed_count_drop_alert_bp", residence, day)
            .await?;
        if let Some(drop) = drop_beyond(before, after, threshold) {
            let alert = NewAlert {
                kind: AlertKind::RegionEmploymentDrop,
                person_id: None,
                region: county.to_string(),
                effective_date: month.first_day(),
                drop_basis_points: drop,
                dedupe_key: format!("region_employment_drop:{county}:{}", month.text()),
            };
            return Ok(Some(self.store.raise_alert_once(tx, &alert, now).await?));
        }
        Ok(None)
    }

    /// Records a month's income and answers with the alerts it raised.
    pub async fn record_income(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        person_id: &str,
        report: IncomeReport,
    ) -> Result<Vec<StoredAlert>, Problem> {
        let method = method("RecordIncome");
        let month = report.month;
        let income = report.income_fen;
        let person = self.visible_person(caller, &method, person_id).await?;
        let now = self.clock.now();
        let resource = format!("{}/incomeRecords/{}", person.resource(), month.text());
        let kinds = [
            (AlertKind::IncomeDropMonthOnMonth, month.previous()),
            (AlertKind::IncomeDropYearOnYear, month.a_year_before()),
        ];
        let dedupe_key = |kind: AlertKind| format!("{}:{}:{}", kind.as_str(), person.id, month.text());
        let mut unit = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { .. } => {
                // The first report raised these alerts, under keys the retry computes alike.
                let keys: Vec<String> = kinds.iter().map(|(kind, _)| dedupe_key(*kind)).collect();
                let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
                return self.store.alerts_by_dedupe_keys(&mut connection, &keys).await;
            }
            Begun::Fresh(unit) => unit,
        };
        self.store
            .upsert_income(unit.tx(), &person.id, &report, &caller.subject, now)
            .await?;
        let threshold = self
            .parameters
            .require_on(
                unit.tx(),
                "identity.income_drop_alert_bp",
                &person.residence_region,
                month.last_day(),
            )
            .await?;
        let mut alerts = Vec::new();
        for (kind, earlier) in kinds {
            let Some(before) = self.store.income(unit.tx(), &person.id, earlier).await? else {
                continue;
            };
            if let Some(drop) = drop_beyond(before, income, threshold) {
                let alert = NewAlert {
                    kind,
                    person_id: Some(person.id.clone()),
                    region: person.residence_region.clone(),
                    effective_date: month.first_day(),
                    drop_basis_points: drop,
                    dedupe_key: dedupe_key(kind),
                };
                alerts.push(self.store.raise_alert(unit.tx(), &alert, now).await?);
            }
        }
        unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
        Ok(alerts)
    }

    /// A page (`limit` long) of the alerts in `region` of `kind` (any when None), and the next
    /// page's token.
    pub async fn list_alerts(
        &self,
        caller: &Principal,
        region: &RegionScope,
        kind: Option<AlertKind>,
        include_acknowledged: bool,
        (limit, page_token): (u32, &str),
    ) -> Result<(Vec<StoredAlert>, String), Problem> {
        let Some(prefix) = visible_prefix(caller, region) else {
            return Ok((Vec::new(), String::new()));
        };
        let fingerprint = paging::fingerprint(&[
            &prefix,
            kind.map(AlertKind::as_str).unwrap_or(""),
            if include_acknowledged { "all" } else { "open" },
        ]);
        let after = match paging::decode_token(page_token, &fingerprint)?.as_deref() {
            Some([created, id]) => Some((created.parse::<i64>().map_err(|_| page_token_invalid())?, id.clone())),
            Some(_) => return Err(page_token_invalid()),
            None => None,
        };
        let filter = AlertFilter {
            region_prefix: prefix,
            kind,
            include_acknowledged,
        };
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let mut alerts = self
            .store
            .list_alerts(&mut connection, &filter, after, limit + 1)
            .await?;
        let next_page_token = if alerts.len() > limit as usize {
            alerts.truncate(limit as usize);
            alerts
                .last()
                .map(|last| {
                    let created = bangfu_platform::db::to_micros(last.created).to_string();
                    paging::encode_token(&fingerprint, &[created, last.id.clone()])
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((alerts, next_page_token))
    }

    /// Marks the alert `id` handled, with the caller's `note` on what was done.
    pub async fn acknowledge_alert(&self, caller: &Principal, id: &str, note: &str) -> Result<StoredAlert, Problem> {
        let method = method("AcknowledgeAlert");
        let now = self.clock.now();
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        let alert = self
            .store
            .alert(unit.tx(), id)
            .await?
            .filter(|a| caller.scope.contains(&a.region))
            .ok_or_else(|| Problem::not_found(&format!("alerts/{id}")))?;
        if !self
            .store
            .acknowledge_alert(unit.tx(), &alert.id, &caller.subject, note, now)
            .await?
        {
            return Err(Problem::new(
                tonic::Code::FailedPrecondition,
                ErrorReason::StateConflict,
                "the alert is already acknowledged",
                "该预警已处理",
            ));
        }
        unit.commit(AuditEntry::by(caller, &method, alert.resource(), now))
            .await?;
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        self.store
            .alert(&mut connection, id)
            .await?
            .ok_or_else(Problem::internal)
    }

    /// Counts for `region` (`requested` as the request wrote it) grouped by the first
    /// `group_by_digits` digits, sorted by region code; NOT_FOUND when the region lies outside
    /// the caller's scope.
    pub async fn monitoring_stats(
        &self,
        caller: &Principal,
        (region, requested): (&RegionScope, &str),
        group_by_digits: i32,
        period: (Date, Date),
    ) -> Result<Vec<(String, RegionCounts)>, Problem> {
        let Some(prefix) = visible_prefix(caller, region) else {
            return Err(Problem::not_found(&format!("regions/{}", requested.trim())));
        };
        let digits = match group_by_digits {
            0 => 6,
            d @ (2 | 4 | 6 | 9 | 12) => d as usize,
            _ => {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "group_by_digits",
                    "must be 2, 4, 6, 9 or 12",
                    "分组位数应为2、4、6、9或12",
                ));
            }
        }
        .max(prefix.len());
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let counts: HashMap<String, RegionCounts> = self
            .store
            .monitoring_counts(&mut connection, &prefix, digits, period)
            .await?;
        let mut regions: Vec<_> = counts.into_iter().collect();
        regions.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(regions)
    }
}

fn page_token_invalid() -> Problem {
    Problem::invalid_field(
        ErrorReason::PageTokenInvalid,
        "page_token",
        "is not valid",
        "翻页标记无效",
    )
}
