//! Applications, placements (就业安置) recorded in identity as the person's employment, and
//! follow-ups (回访) whose income identity's monitoring reads. Identity is told after the local
//! commit; what it could not take is sent again by the service's job, under the same request id.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::db::to_micros;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use time::Date;
use tonic::Code;

use super::matching::posting_closed;
use super::{Jobs, check_etag, invalid, method};
use crate::domain::{self, ApplicationState, EndReason, PlacementState, PostingState, SeekerState};
use crate::peers::REPORTING_SYSTEM;
use crate::store::{
    self, ApplicationFilter, FollowUpData, PlacementData, PlacementFilter, StoredApplication, StoredFollowUp,
    StoredPlacement,
};

/// What a clerk records for a placement.
#[derive(Debug, Clone)]
pub struct NewPlacement {
    pub posting_id: String,
    pub seeker_id: String,
    pub application_id: String,
    pub start: Date,
    pub contract_months: i64,
    pub monthly_wage_fen: i64,
    pub social_insurance: bool,
}

/// How a placement ends: its last day, why, and what happened.
#[derive(Debug, Clone)]
pub struct Ending {
    pub end: Date,
    pub reason: EndReason,
    pub note: String,
}

/// A placement with its latest follow-up.
#[derive(Debug, Clone)]
pub struct PlacementView {
    pub placement: StoredPlacement,
    pub last_follow_up: Option<StoredFollowUp>,
}

fn application_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("applications/{id}"))
}

fn placement_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("placements/{id}"))
}

fn placement_ended(placement: &StoredPlacement) -> Problem {
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::PlacementEnded,
        "the placement has ended",
        "该安置记录已结束",
    )
    .with_metadata("resource", placement.name())
}

impl Jobs {
    async fn application_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredApplication, Problem> {
        let application = store::get_application(conn, id)
            .await?
            .ok_or_else(|| application_not_found(id))?;
        self.ensure_sees(caller, method_name, &application.name(), &application.home_region)?;
        Ok(application)
    }

    pub(crate) async fn placement_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredPlacement, Problem> {
        let placement = store::get_placement(conn, id)
            .await?
            .ok_or_else(|| placement_not_found(id))?;
        self.ensure_sees(caller, method_name, &placement.name(), &placement.data.home_region)?;
        Ok(placement)
    }

    pub async fn submit_application(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        posting_id: &str,
        seeker_id: &str,
    ) -> Result<StoredApplication, Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let mut conn = self.db().acquire().await?;
                let id = resource.trim_start_matches("applications/");
                return self.application_for(&mut conn, caller, "SubmitApplication", id).await;
            }
            Begun::Fresh(unit) => unit,
        };
        let seeker = self
            .seeker_for(unit.tx(), caller, "SubmitApplication", seeker_id)
            .await?;
        if seeker.state != SeekerState::Active {
            return Err(Problem::state_conflict(
                &seeker.name(),
                format!("the seeker is {}, not looking", seeker.state.as_str()),
                "求职人员已安置或已退出求职，不能申请",
            ));
        }
        let posting = self
            .posting_for(unit.tx(), caller, "SubmitApplication", posting_id, false)
            .await?;
        let state = posting.state_on(self.today());
        if state != PostingState::Open {
            return Err(posting_closed(&posting, state));
        }
        let now = unit.now();
        let id = store::new_id();
        if let Err(error) = store::insert_application(unit.tx(), &id, posting_id, seeker_id, &caller.subject, now).await
        {
            if store::is_duplicate(&error) {
                return Err(Problem::new(
                    Code::AlreadyExists,
                    ErrorReason::AlreadyExists,
                    "the seeker has applied to this posting already",
                    "该人员已申请此岗位",
                )
                .with_violation("application.posting", "already applied"));
            }
            return Err(error.into());
        }
        let stored = store::get_application(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("SubmitApplication"), stored.name(), now)
                .in_region(&seeker.person.registered_region),
        )
        .await?;
        Ok(stored)
    }

    pub async fn list_applications(
        &self,
        caller: &Principal,
        mut filter: ApplicationFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredApplication>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        Ok(store::list_applications(&mut conn, &filter, after, i64::from(limit) + 1).await?)
    }

    pub async fn decide_application(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        decision: ApplicationState,
        note: &str,
    ) -> Result<StoredApplication, Problem> {
        if decision == ApplicationState::Submitted {
            return Err(invalid(
                "decision",
                "must be ACCEPTED or REJECTED",
                "决定应为录用或不录用",
            ));
        }
        if decision == ApplicationState::Rejected && note.trim().is_empty() {
            return Err(Problem::required("note", "不录用的原因"));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let application = self.application_for(unit.tx(), caller, "DecideApplication", id).await?;
        let name = application.name();
        check_etag(&name, etag, &application.etag())?;
        if application.state != ApplicationState::Submitted {
            return Err(Problem::state_conflict(
                &name,
                format!("the application is {} already", application.state.as_str()),
                "该申请已有决定",
            ));
        }
        let now = unit.now();
        if !store::decide_application(
            unit.tx(),
            id,
            application.revision,
            decision,
            note,
            &caller.subject,
            now,
        )
        .await?
        {
            return Err(Problem::etag_mismatch(&name));
        }
        let stored = store::get_application(unit.tx(), id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("DecideApplication"), name, now).in_region(&application.home_region),
        )
        .await?;
        Ok(stored)
    }

    pub async fn record_placement(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        new: NewPlacement,
    ) -> Result<PlacementView, Problem> {
        // Today's facts of the person: where they are registered decides the employment place,
        // their categories whether the carrier absorbs a target person.
        let seeker = {
            let mut conn = self.db().acquire().await?;
            self.seeker_for(&mut conn, caller, "RecordPlacement", &new.seeker_id)
                .await?
        };
        let person = self
            .person_snapshot(call, "placement.seeker", &seeker.data.person_id)
            .await?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self
                    .get_placement(caller, resource.trim_start_matches("placements/"))
                    .await;
            }
            Begun::Fresh(unit) => unit,
        };
        let today = self.today();
        let now = unit.now();
        let posting = self
            .posting_for(unit.tx(), caller, "RecordPlacement", &new.posting_id, false)
            .await?;
        if new.start < posting.open_date {
            return Err(invalid(
                "placement.start_date",
                format!(
                    "the posting opened on {}; a placement cannot start before",
                    posting.open_date
                ),
                format!("岗位于 {} 发布，安置开始日期不能早于此日", posting.open_date),
            ));
        }
        if !new.application_id.is_empty() {
            let application = self
                .application_for(unit.tx(), caller, "RecordPlacement", &new.application_id)
                .await?;
            if application.posting_id != new.posting_id || application.seeker_id != new.seeker_id {
                return Err(invalid(
                    "placement.application",
                    "the application is for another posting or seeker",
                    "所附申请与岗位或求职人员不符",
                ));
            }
            if application.state != ApplicationState::Accepted {
                return Err(Problem::state_conflict(
                    &application.name(),
                    "only an accepted application leads to a placement",
                    "申请尚未录用，不能安置",
                ));
            }
        }
        let state = posting.state_on(today);
        if state != PostingState::Open {
            return Err(posting_closed(&posting, state));
        }
        if !store::take_place(unit.tx(), &posting.id, today, now).await? {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::PostingFilled,
                format!("all {} places of the posting are filled", posting.data.headcount),
                format!("岗位 {} 个名额已满", posting.data.headcount),
            )
            .with_metadata("headcount", posting.data.headcount.to_string())
            .with_metadata("resource", posting.name()));
        }
        if !store::set_seeker_state(unit.tx(), &seeker.id, SeekerState::Active, SeekerState::Placed, now).await? {
            return Err(Problem::state_conflict(
                &seeker.name(),
                "the seeker is placed already or no longer looking",
                "该人员已安置或已退出求职",
            ));
        }
        let carrier = store::get_carrier(unit.tx(), &posting.data.carrier_id)
            .await?
            .ok_or_else(Problem::internal)?;
        let data = PlacementData {
            posting_id: posting.id.clone(),
            seeker_id: seeker.id.clone(),
            application_id: new.application_id.clone(),
            person_id: seeker.data.person_id.clone(),
            display_name: person.display_name.clone(),
            carrier_id: carrier.id.clone(),
            work_region: posting.data.work_region.clone(),
            home_region: person.registered_region.clone(),
            start: new.start,
            contract_months: new.contract_months,
            monthly_wage_fen: new.monthly_wage_fen,
            social_insurance: new.social_insurance,
            place: domain::employment_place(&person.registered_region, &posting.data.work_region),
            priority: person.priority,
        };
        let id = store::new_id();
        store::insert_placement(unit.tx(), &id, &data, &caller.subject, now).await?;
        store::refresh_person(unit.tx(), &seeker.id, &person, now).await?;
        let placement = store::get_placement(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("RecordPlacement"), placement.name(), now)
                .in_region(&person.registered_region),
        )
        .await?;
        let placement = self.tell_identity(call, placement, &carrier.data.display_name).await;
        Ok(PlacementView {
            placement,
            last_follow_up: None,
        })
    }

    /// Records the placement's latest fact in identity and marks it recorded; on failure, or
    /// before the placement starts, the job sends it later.
    async fn tell_identity(
        &self,
        call: &CallContext,
        mut placement: StoredPlacement,
        employer: &str,
    ) -> StoredPlacement {
        let Ok(peers) = self.peers() else {
            return placement;
        };
        // Identity's timeline holds no future: a placement starting later is told on its day.
        if placement.data.start > self.today() {
            return placement;
        }
        match peers.record_placement(call, &placement, employer).await {
            Ok(()) => match self.db().acquire().await {
                Ok(mut conn) => {
                    match store::mark_placement_recorded(&mut conn, &placement.id, placement.revision).await {
                        Ok(()) => placement.identity_recorded = true,
                        Err(error) => {
                            tracing::warn!(placement = %placement.id, %error, "could not mark the placement recorded")
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(placement = %placement.id, %error, "could not mark the placement recorded")
                }
            },
            Err(problem) => {
                tracing::warn!(placement = %placement.id, reason = ?problem.reason, "identity did not take the placement; the job retries");
            }
        }
        placement
    }

    pub async fn get_placement(&self, caller: &Principal, id: &str) -> Result<PlacementView, Problem> {
        let mut conn = self.db().acquire().await?;
        let placement = self.placement_for(&mut conn, caller, "GetPlacement", id).await?;
        let last_follow_up = store::latest_follow_up(&mut conn, id).await?;
        Ok(PlacementView {
            placement,
            last_follow_up,
        })
    }

    pub async fn list_placements(
        &self,
        caller: &Principal,
        mut filter: PlacementFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<PlacementView>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        let placements = store::list_placements(&mut conn, &filter, after, i64::from(limit) + 1).await?;
        let mut views = Vec::with_capacity(placements.len());
        for placement in placements {
            let last_follow_up = store::latest_follow_up(&mut conn, &placement.id).await?;
            views.push(PlacementView {
                placement,
                last_follow_up,
            });
        }
        Ok(views)
    }

    pub async fn record_follow_up(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        placement_id: &str,
        follow_up: FollowUpData,
    ) -> Result<StoredFollowUp, Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let mut conn = self.db().acquire().await?;
                let id = resource.rsplit('/').next().unwrap_or_default();
                return store::get_follow_up(&mut conn, id)
                    .await?
                    .ok_or_else(|| Problem::not_found(&resource));
            }
            Begun::Fresh(unit) => unit,
        };
        let placement = self
            .placement_for(unit.tx(), caller, "RecordFollowUp", placement_id)
            .await?;
        if placement.state == PlacementState::Ended {
            return Err(placement_ended(&placement));
        }
        let today = self.today();
        let month = follow_up.month;
        let start = (placement.data.start.year(), u8::from(placement.data.start.month()));
        if month < start || month > (today.year(), u8::from(today.month())) {
            return Err(invalid(
                "follow_up.month",
                "must be a month from the placement's start to the current one",
                "回访月份应在安置开始月份至本月之间",
            ));
        }
        let now = unit.now();
        let stored = store::upsert_follow_up(
            unit.tx(),
            &store::new_id(),
            placement_id,
            &follow_up,
            &caller.subject,
            now,
        )
        .await?;
        unit.commit(
            AuditEntry::by(caller, &method("RecordFollowUp"), stored.name(), now)
                .in_region(&placement.data.home_region),
        )
        .await?;
        Ok(self.tell_income(call, stored, &placement.data.person_id).await)
    }

    /// Records a follow-up's income in identity and marks it recorded; on failure the job sends
    /// it again.
    async fn tell_income(&self, call: &CallContext, mut follow_up: StoredFollowUp, person_id: &str) -> StoredFollowUp {
        let Ok(peers) = self.peers() else {
            return follow_up;
        };
        let request_id = format!("jobs-follow-up-{}-{}", follow_up.id, to_micros(follow_up.created));
        let sent = peers
            .identity
            .record_income(
                call,
                person_id,
                follow_up.data.month,
                follow_up.data.income_fen,
                REPORTING_SYSTEM,
                &request_id,
            )
            .await;
        match sent {
            Ok(()) => {
                if let Ok(mut conn) = self.db().acquire().await
                    && store::mark_follow_up_recorded(&mut conn, &follow_up.id, follow_up.created)
                        .await
                        .is_ok()
                {
                    follow_up.identity_recorded = true;
                }
            }
            Err(problem) => {
                tracing::warn!(follow_up = %follow_up.id, reason = ?problem.reason, "identity did not take the income; the job retries");
            }
        }
        follow_up
    }

    pub async fn end_placement(
        &self,
        caller: &Principal,
        call: &CallContext,
        id: &str,
        etag: &str,
        ending: Ending,
    ) -> Result<PlacementView, Problem> {
        let Ending { end, reason, note } = ending;
        let note = note.as_str();
        if reason == EndReason::Other && note.trim().is_empty() {
            return Err(Problem::required("note", "结束原因说明"));
        }
        if end > self.today() {
            return Err(invalid("end_date", "cannot be in the future", "结束日期不能晚于今天"));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let placement = self.placement_for(unit.tx(), caller, "EndPlacement", id).await?;
        let name = placement.name();
        check_etag(&name, etag, &placement.etag())?;
        if placement.state == PlacementState::Ended {
            return Err(placement_ended(&placement));
        }
        // A placement whose first day has not come is called off (the person did not turn up):
        // the place goes back to the posting and identity, never told of it, hears nothing.
        let never_started = placement.data.start > self.today();
        if end < placement.data.start && !never_started {
            return Err(invalid(
                "end_date",
                "a placement cannot end before it starts",
                "结束日期不能早于安置开始日期",
            ));
        }
        let now = unit.now();
        if !store::end_placement(unit.tx(), id, placement.revision, end, reason, note, never_started, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        if never_started {
            store::release_place(unit.tx(), &placement.data.posting_id, now).await?;
        }
        store::set_seeker_state(
            unit.tx(),
            &placement.data.seeker_id,
            SeekerState::Placed,
            SeekerState::Active,
            now,
        )
        .await?;
        let stored = store::get_placement(unit.tx(), id)
            .await?
            .ok_or_else(Problem::internal)?;
        let last_follow_up = store::latest_follow_up(unit.tx(), id).await?;
        // The start is sent again with the end, as first sent: the employer's name with it.
        let employer = store::get_carrier(unit.tx(), &placement.data.carrier_id)
            .await?
            .map(|c| c.data.display_name)
            .unwrap_or_default();
        unit.commit(AuditEntry::by(caller, &method("EndPlacement"), name, now).in_region(&placement.data.home_region))
            .await?;
        let placement = if never_started {
            stored
        } else {
            self.tell_identity(call, stored, &employer).await
        };
        Ok(PlacementView {
            placement,
            last_follow_up,
        })
    }

    /// Sends identity the placements, incomes and training periods it has not taken yet (it was
    /// away, or their day had not come), on the service's own account; returns how many it took.
    pub async fn record_missing_in_identity(&self) -> Result<usize, Problem> {
        let (placements, follow_ups) = {
            let mut conn = self.db().acquire().await?;
            (
                store::unrecorded_placements(&mut conn, self.today(), 200).await?,
                store::unrecorded_follow_ups(&mut conn, 200).await?,
            )
        };
        let call = CallContext::own();
        let mut recorded = 0;
        for placement in placements {
            let employer = {
                let mut conn = self.db().acquire().await?;
                store::get_carrier(&mut conn, &placement.data.carrier_id)
                    .await?
                    .map(|c| c.data.display_name)
                    .unwrap_or_default()
            };
            if self.tell_identity(&call, placement, &employer).await.identity_recorded {
                recorded += 1;
            }
        }
        for (follow_up, person_id) in follow_ups {
            if self.tell_income(&call, follow_up, &person_id).await.identity_recorded {
                recorded += 1;
            }
        }
        Ok(recorded + self.record_missing_training().await?)
    }
}
