//! Employment and income monitoring: RecordEmployment, RecordIncome, ListAlerts,
//! AcknowledgeAlert and GetMonitoringStats. Alerts are raised in the transaction that records
//! the change, each under a key that makes raising it twice (a retry, two replicas) a no-op.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::NewEvent;
use bangfu_platform::parameters::date_text;
use bangfu_platform::write::{self, Begun};
use bangfu_platform::{paging, wire};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use time::Date;

use super::{Identity, MAX_BATCH, category_to_wire, ids, method, person_id, scoped_prefix};
use crate::domain::categories::{Category, short_text};
use crate::domain::monitoring::{AlertKind, EmploymentStatus, Month, drop_beyond};
use crate::domain::{ChangeKind, IdentityError};
use crate::store::{AlertFilter, IncomeReport, NewAlert, NewEmployment, Store, StoredAlert, StoredEmployment};

pub(super) fn status_from_wire(value: i32, field: &str) -> Result<EmploymentStatus, Problem> {
    use common::EmploymentStatus as W;
    let status = match W::try_from(value) {
        Ok(W::Unemployed) => EmploymentStatus::Unemployed,
        Ok(W::EmployedInCounty) => EmploymentStatus::EmployedInCounty,
        Ok(W::EmployedOutOfCounty) => EmploymentStatus::EmployedOutOfCounty,
        Ok(W::EmployedOutOfProvince) => EmploymentStatus::EmployedOutOfProvince,
        Ok(W::SelfEmployed) => EmploymentStatus::SelfEmployed,
        Ok(W::PublicWelfarePost) => EmploymentStatus::PublicWelfarePost,
        Ok(W::WorkRelief) => EmploymentStatus::WorkRelief,
        Ok(W::InTraining) => EmploymentStatus::InTraining,
        Ok(W::NotInLaborForce) => EmploymentStatus::NotInLaborForce,
        Ok(W::Unspecified) => return Err(Problem::required(field, "就业状态")),
        Err(_) => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                field,
                "is not a known employment status",
                "就业状态无法识别",
            ));
        }
    };
    Ok(status)
}

pub(super) fn status_to_wire(value: Option<EmploymentStatus>) -> common::EmploymentStatus {
    use common::EmploymentStatus as W;
    match value {
        None => W::Unspecified,
        Some(EmploymentStatus::Unemployed) => W::Unemployed,
        Some(EmploymentStatus::EmployedInCounty) => W::EmployedInCounty,
        Some(EmploymentStatus::EmployedOutOfCounty) => W::EmployedOutOfCounty,
        Some(EmploymentStatus::EmployedOutOfProvince) => W::EmployedOutOfProvince,
        Some(EmploymentStatus::SelfEmployed) => W::SelfEmployed,
        Some(EmploymentStatus::PublicWelfarePost) => W::PublicWelfarePost,
        Some(EmploymentStatus::WorkRelief) => W::WorkRelief,
        Some(EmploymentStatus::InTraining) => W::InTraining,
        Some(EmploymentStatus::NotInLaborForce) => W::NotInLaborForce,
    }
}

fn kind_from_wire(value: i32) -> Result<Option<AlertKind>, Problem> {
    use pb::AlertKind as W;
    Ok(match W::try_from(value) {
        Ok(W::Unspecified) => None,
        Ok(W::IncomeDropYearOnYear) => Some(AlertKind::IncomeDropYearOnYear),
        Ok(W::IncomeDropMonthOnMonth) => Some(AlertKind::IncomeDropMonthOnMonth),
        Ok(W::EmploymentLost) => Some(AlertKind::EmploymentLost),
        Ok(W::RegionEmploymentDrop) => Some(AlertKind::RegionEmploymentDrop),
        Err(_) => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "kind",
                "is not a known alert kind",
                "预警类型无法识别",
            ));
        }
    })
}

fn kind_to_wire(value: AlertKind) -> pb::AlertKind {
    match value {
        AlertKind::IncomeDropYearOnYear => pb::AlertKind::IncomeDropYearOnYear,
        AlertKind::IncomeDropMonthOnMonth => pb::AlertKind::IncomeDropMonthOnMonth,
        AlertKind::EmploymentLost => pb::AlertKind::EmploymentLost,
        AlertKind::RegionEmploymentDrop => pb::AlertKind::RegionEmploymentDrop,
    }
}

fn alert_to_wire(alert: &StoredAlert) -> pb::Alert {
    pb::Alert {
        name: alert.resource(),
        kind: kind_to_wire(alert.kind) as i32,
        person: alert
            .person_id
            .as_ref()
            .map(|id| format!("persons/{id}"))
            .unwrap_or_default(),
        region: alert.region.clone(),
        effective_date: Some(wire::date_to_wire(alert.effective_date)),
        drop_basis_points: alert.drop_basis_points,
        create_time: Some(wire::timestamp_to_wire(alert.created)),
        acknowledge_time: alert.acknowledged.map(wire::timestamp_to_wire),
        acknowledge_subject: alert.acknowledge_subject.clone().unwrap_or_default(),
        acknowledge_note: alert.acknowledge_note.clone().unwrap_or_default(),
    }
}

fn employment_to_wire(record: &StoredEmployment) -> pb::EmploymentRecord {
    pb::EmploymentRecord {
        name: record.resource(),
        status: status_to_wire(Some(record.status)) as i32,
        employer: record.employer.clone(),
        work_region: record.work_region.clone(),
        start_date: Some(wire::date_to_wire(record.start_date)),
        end_date: record.end_date.map(wire::date_to_wire),
        reporting_system: record.reporting_system.clone(),
    }
}

fn text_problem(error: crate::domain::categories::CertificationError) -> Problem {
    Problem::invalid_field(
        ErrorReason::FieldRequired,
        error.field(),
        error.to_string(),
        error.message_zh(),
    )
}

impl Identity {
    fn parse_employment(&self, record: &pb::EmploymentRecord) -> Result<NewEmployment, Problem> {
        let status = status_from_wire(record.status, "record.status")?;
        let employer = record.employer.trim();
        if employer.chars().count() > 100 || employer.chars().any(char::is_control) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldTooLong,
                "record.employer",
                "at most 100 characters without control characters",
                "用工单位不超过100个字",
            ));
        }
        let work_region = record.work_region.trim();
        if !work_region.is_empty() && !self.regions.is_known(work_region) {
            return Err(IdentityError::RegionUnknown {
                field: "record.work_region".into(),
                code: work_region.to_string(),
            }
            .into());
        }
        let start_date = wire::date("record.start_date", record.start_date.as_ref())?;
        let end_date = wire::optional_date("record.end_date", record.end_date.as_ref())?;
        if end_date.is_some_and(|end| end < start_date) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "record.end_date",
                "is before the start date",
                "结束日期早于开始日期",
            ));
        }
        if start_date > self.clock.today() {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "record.start_date",
                "is in the future",
                "开始日期晚于今天",
            ));
        }
        let reporting_system = short_text(&record.reporting_system, "record.reporting_system").map_err(text_problem)?;
        Ok(NewEmployment {
            status,
            employer: employer.to_string(),
            work_region: work_region.to_string(),
            start_date,
            end_date,
            reporting_system,
        })
    }

    pub(super) async fn record_employment_inner(
        &self,
        caller: &Principal,
        request: pb::RecordEmploymentRequest,
    ) -> Result<pb::RecordEmploymentResponse, Problem> {
        let method = method("RecordEmployment");
        let key = RequestKey::of_message(&caller.subject, &method, &request.request_id, &request)?;
        let person_id = person_id(&request.person, "person")?;
        let record = self.parse_employment(
            request
                .record
                .as_ref()
                .ok_or_else(|| Problem::required("record", "就业记录"))?,
        )?;
        let person = self.visible_person(caller, person_id).await?;
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
                    self.check_county_employment(unit.tx(), &person.residence_region, record.start_date, now)
                        .await?;
                }
                unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
                id
            }
        };
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
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
        Ok(pb::RecordEmploymentResponse {
            record: Some(employment_to_wire(&stored)),
            current_status: status_to_wire(current) as i32,
        })
    }

    /// A county's employed count on `day` against the end of the month before: a fall beyond
    /// the county's threshold raises one alert for the month.
    async fn check_county_employment(
        &self,
        tx: &mut sqlx::AnyConnection,
        residence: &str,
        day: Date,
        now: time::OffsetDateTime,
    ) -> Result<(), Problem> {
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
            self.store.raise_alert(tx, &alert, now).await?;
        }
        Ok(())
    }

    pub(super) async fn record_income_inner(
        &self,
        caller: &Principal,
        request: pb::RecordIncomeRequest,
    ) -> Result<pb::RecordIncomeResponse, Problem> {
        let method = method("RecordIncome");
        let key = RequestKey::of_message(&caller.subject, &method, &request.request_id, &request)?;
        let person_id = person_id(&request.person, "person")?;
        let month = request
            .month
            .as_ref()
            .ok_or_else(|| Problem::required("month", "月份"))
            .and_then(|m| {
                Month::new(m.year, m.month).ok_or_else(|| {
                    Problem::invalid_field(ErrorReason::FieldInvalid, "month", "is not a month", "月份不正确")
                })
            })?;
        if month > Month::of(self.clock.today()) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "month",
                "is in the future",
                "月份晚于本月",
            ));
        }
        let income = request
            .income
            .as_ref()
            .ok_or_else(|| Problem::required("income", "收入"))?
            .fen;
        if income < 0 {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "income.fen",
                "must be zero or more",
                "收入不能为负数",
            ));
        }
        let reporting_system = short_text(&request.reporting_system, "reporting_system").map_err(text_problem)?;
        let person = self.visible_person(caller, person_id).await?;
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
                let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
                let alerts = self.store.alerts_by_dedupe_keys(&mut connection, &keys).await?;
                return Ok(pb::RecordIncomeResponse {
                    alerts: alerts.iter().map(alert_to_wire).collect(),
                });
            }
            Begun::Fresh(unit) => unit,
        };
        let report = IncomeReport {
            month,
            income_fen: income,
            reporting_system: reporting_system.clone(),
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
        Ok(pb::RecordIncomeResponse {
            alerts: alerts.iter().map(alert_to_wire).collect(),
        })
    }

    pub(super) async fn list_alerts_inner(
        &self,
        caller: &Principal,
        request: pb::ListAlertsRequest,
    ) -> Result<pb::ListAlertsResponse, Problem> {
        let limit = paging::page_size(request.page_size, 100, MAX_BATCH as u32)?;
        let kind = kind_from_wire(request.kind)?;
        let Some(prefix) = scoped_prefix(caller, &request.region_prefix, "region_prefix")? else {
            return Ok(pb::ListAlertsResponse::default());
        };
        let fingerprint = paging::fingerprint(&[
            &prefix,
            kind.map(AlertKind::as_str).unwrap_or(""),
            if request.include_acknowledged { "all" } else { "open" },
        ]);
        let after = match paging::decode_token(&request.page_token, &fingerprint)?.as_deref() {
            Some([created, id]) => Some((created.parse::<i64>().map_err(|_| page_token_invalid())?, id.clone())),
            Some(_) => return Err(page_token_invalid()),
            None => None,
        };
        let filter = AlertFilter {
            region_prefix: prefix,
            kind,
            include_acknowledged: request.include_acknowledged,
        };
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
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
        Ok(pb::ListAlertsResponse {
            alerts: alerts.iter().map(alert_to_wire).collect(),
            next_page_token,
        })
    }

    pub(super) async fn acknowledge_alert_inner(
        &self,
        caller: &Principal,
        request: pb::AcknowledgeAlertRequest,
    ) -> Result<pb::Alert, Problem> {
        let method = method("AcknowledgeAlert");
        let id = ids(&request.name, &["alerts"])
            .and_then(|ids| ids.first().copied())
            .ok_or_else(|| {
                Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "name",
                    "must be alerts/{alert}",
                    "预警编号格式不正确",
                )
            })?;
        let note = request.note.trim();
        if note.is_empty() {
            return Err(Problem::required("note", "处理情况"));
        }
        if note.chars().count() > 500 || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Problem::invalid_field(
                ErrorReason::FieldTooLong,
                "note",
                "at most 500 characters without control characters",
                "处理情况不超过500个字",
            ));
        }
        let now = self.clock.now();
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        let alert = self
            .store
            .alert(unit.tx(), id)
            .await?
            .filter(|a| caller.scope.contains(&a.region))
            .ok_or_else(|| Problem::not_found(&request.name))?;
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
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let alert = self
            .store
            .alert(&mut connection, id)
            .await?
            .ok_or_else(Problem::internal)?;
        Ok(alert_to_wire(&alert))
    }

    pub(super) async fn get_monitoring_stats_inner(
        &self,
        caller: &Principal,
        request: pb::GetMonitoringStatsRequest,
    ) -> Result<pb::GetMonitoringStatsResponse, Problem> {
        if request.region_prefix.trim().is_empty() {
            return Err(Problem::required("region_prefix", "统计地区"));
        }
        let period = wire::period("period", request.period.as_ref(), self.clock.today())?;
        let Some(prefix) = scoped_prefix(caller, &request.region_prefix, "region_prefix")? else {
            return Err(Problem::not_found(&format!("regions/{}", request.region_prefix.trim())));
        };
        let digits = match request.group_by_digits {
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
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let counts = self
            .store
            .monitoring_counts(&mut connection, &prefix, digits, period)
            .await?;
        let mut regions: Vec<_> = counts.into_iter().collect();
        regions.sort_by(|a, b| a.0.cmp(&b.0));
        let category_name = |text: &str| {
            Category::parse(text)
                .map(|c| category_to_wire(c).as_str_name().to_string())
                .unwrap_or_else(|| text.to_string())
        };
        let status_name = |text: &str| status_to_wire(EmploymentStatus::parse(text)).as_str_name().to_string();
        Ok(pb::GetMonitoringStatsResponse {
            regions: regions
                .into_iter()
                .map(|(code, counts)| pb::RegionStats {
                    region: Some(common::RegionCode {
                        display_name: self.regions.name(&code).unwrap_or_default().to_string(),
                        code,
                    }),
                    persons_by_category: counts.by_category.iter().map(|(k, v)| (category_name(k), *v)).collect(),
                    persons_by_employment_status: counts.by_status.iter().map(|(k, v)| (status_name(k), *v)).collect(),
                    target_persons: counts.target_persons,
                })
                .collect(),
        })
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
