//! Postings (岗位信息) and the feed of shared ones (`WatchPostingChanges`) the exchange follows
//! to share postings with the partner province.

use std::sync::Arc;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::{self, FeedEvent, FeedItem, NewEvent, Start};
use bangfu_platform::write::{self, Begun, Unit};
use sqlx::AnyConnection;
use time::Date;
use tokio_stream::Stream;

use super::{Jobs, check_etag, invalid, method};
use crate::domain::{LaborCapacity, PostingState};
use crate::store::{self, PostingData, PostingFilter, StoredPosting};

/// What UpdatePosting changes: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct PostingChange {
    pub title: Option<String>,
    pub occupation: Option<(String, String)>,
    pub wage_min_fen: Option<i64>,
    pub wage_max_fen: Option<i64>,
    pub headcount: Option<i64>,
    pub contract_months: Option<i64>,
    pub weekly_hours: Option<i64>,
    pub accepted: Option<Vec<LaborCapacity>>,
    pub min_age: Option<i64>,
    pub max_age: Option<i64>,
    pub skills: Option<Vec<String>>,
    pub accommodation: Option<bool>,
    pub meals: Option<bool>,
    pub valid_until: Option<Date>,
    pub shared: Option<bool>,
}

/// The feed's kinds of change, as events name them.
pub const POSTING_CREATED: &str = "posting_created";
pub const POSTING_UPDATED: &str = "posting_updated";
pub const POSTING_CLOSED: &str = "posting_closed";

pub(crate) fn posting_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("postings/{id}"))
}

/// The terms hold together: a wage range the right way up, an age range the right way up.
pub(crate) fn check_terms(posting: &PostingData) -> Result<(), Problem> {
    if posting.wage_max_fen < posting.wage_min_fen {
        return Err(invalid(
            "posting.wage_max",
            "the highest wage is below the lowest",
            "最高月薪不能低于最低月薪",
        ));
    }
    if posting.max_age < posting.min_age {
        return Err(invalid(
            "posting.max_age",
            "the oldest age accepted is below the youngest",
            "年龄上限不能低于年龄下限",
        ));
    }
    Ok(())
}

/// Writes the feed event of a change to a posting that is, or was, shared.
async fn publish(unit: &mut Unit, kind: &str, posting: &StoredPosting) -> Result<(), Problem> {
    let name = posting.name();
    let regions = [posting.data.work_region.as_str()];
    unit.publish(&NewEvent {
        kind,
        resource: &name,
        regions: &regions,
        effective_date: None,
        detail: "{}",
    })
    .await
}

impl Jobs {
    /// The posting, if the caller's scope holds its work region or it is shared across regions
    /// (NOT_FOUND, audited, otherwise). Writes need the work region in scope.
    pub(crate) async fn posting_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
        writing: bool,
    ) -> Result<StoredPosting, Problem> {
        let posting = store::get_posting(conn, id)
            .await?
            .ok_or_else(|| posting_not_found(id))?;
        if writing || !posting.data.shared {
            self.ensure_sees(caller, method_name, &posting.name(), &posting.data.work_region)?;
        }
        Ok(posting)
    }

    pub async fn create_posting(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        posting: PostingData,
    ) -> Result<StoredPosting, Problem> {
        check_terms(&posting)?;
        let today = self.today();
        if posting.valid_until < today {
            return Err(invalid(
                "posting.valid_until",
                "a posting cannot end before today",
                "岗位有效期不能早于今天",
            ));
        }
        self.ensure_sees(
            caller,
            "CreatePosting",
            &format!("postings in {}", posting.work_region),
            &posting.work_region,
        )?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self.get_posting(caller, resource.trim_start_matches("postings/")).await;
            }
            Begun::Fresh(unit) => unit,
        };
        // The employer must be a carrier the caller may see.
        let carrier = self
            .carrier_for(unit.tx(), caller, "CreatePosting", &posting.carrier_id)
            .await
            .map_err(|_| {
                invalid(
                    "posting.carrier",
                    format!("carriers/{} is not a carrier you may see", posting.carrier_id),
                    "用人单位未登记或不在您的管辖范围内",
                )
            })?;
        let now = unit.now();
        let id = store::new_id();
        store::insert_posting(unit.tx(), &id, &posting, &caller.subject, now, today).await?;
        let stored = store::get_posting(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        if stored.data.shared {
            publish(&mut unit, POSTING_CREATED, &stored).await?;
        }
        unit.commit(
            AuditEntry::by(caller, &method("CreatePosting"), stored.name(), now).in_region(&carrier.data.region),
        )
        .await?;
        Ok(stored)
    }

    pub async fn get_posting(&self, caller: &Principal, id: &str) -> Result<StoredPosting, Problem> {
        let mut conn = self.db().acquire().await?;
        self.posting_for(&mut conn, caller, "GetPosting", id, false).await
    }

    pub async fn list_postings(
        &self,
        caller: &Principal,
        mut filter: PostingFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredPosting>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        Ok(store::list_postings(&mut conn, &filter, self.today(), after, i64::from(limit) + 1).await?)
    }

    pub async fn update_posting(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        change: PostingChange,
    ) -> Result<StoredPosting, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let mut posting = self.posting_for(unit.tx(), caller, "UpdatePosting", id, true).await?;
        let name = posting.name();
        check_etag(&name, etag, &posting.etag())?;
        let today = self.today();
        if posting.state_on(today) != PostingState::Open {
            return Err(Problem::state_conflict(
                &name,
                "only an open posting can be changed",
                "岗位已关闭或已过期，不能修改",
            ));
        }
        let was_shared = posting.data.shared;
        let data = &mut posting.data;
        macro_rules! apply {
            ($($field:ident),*) => {
                $(if let Some(value) = change.$field { data.$field = value; })*
            };
        }
        apply!(
            title,
            wage_min_fen,
            wage_max_fen,
            headcount,
            contract_months,
            weekly_hours,
            accepted,
            min_age,
            max_age,
            skills,
            accommodation,
            meals,
            valid_until,
            shared
        );
        if let Some((code, occupation)) = change.occupation {
            data.occupation_code = code;
            data.occupation_name = occupation;
        }
        check_terms(data)?;
        if data.valid_until < today {
            return Err(invalid(
                "posting.valid_until",
                "a posting cannot end before today",
                "岗位有效期不能早于今天",
            ));
        }
        if data.headcount < posting.placed {
            return Err(invalid(
                "posting.headcount",
                format!("{} people are placed on it already", posting.placed),
                format!("已安置 {} 人，招聘人数不能少于此数", posting.placed),
            ));
        }
        let now = unit.now();
        if !store::update_posting(unit.tx(), &posting, posting.revision, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let stored = store::get_posting(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        match (was_shared, stored.data.shared) {
            (false, true) => publish(&mut unit, POSTING_CREATED, &stored).await?,
            (true, true) => publish(&mut unit, POSTING_UPDATED, &stored).await?,
            // No longer shared: partners take it down.
            (true, false) => publish(&mut unit, POSTING_CLOSED, &stored).await?,
            (false, false) => {}
        }
        let region = stored.data.work_region.clone();
        unit.commit(AuditEntry::by(caller, &method("UpdatePosting"), name, now).in_region(&region))
            .await?;
        Ok(stored)
    }

    pub async fn close_posting(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        reason: &str,
    ) -> Result<StoredPosting, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let posting = self.posting_for(unit.tx(), caller, "ClosePosting", id, true).await?;
        let name = posting.name();
        check_etag(&name, etag, &posting.etag())?;
        if posting.state == PostingState::Closed {
            return Err(Problem::state_conflict(
                &name,
                "the posting is closed already",
                "岗位已关闭",
            ));
        }
        let now = unit.now();
        if !store::close_posting(unit.tx(), id, posting.revision, reason, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let stored = store::get_posting(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        if stored.data.shared {
            publish(&mut unit, POSTING_CLOSED, &stored).await?;
        }
        let region = stored.data.work_region.clone();
        unit.commit(AuditEntry::by(caller, &method("ClosePosting"), name, now).in_region(&region))
            .await?;
        Ok(stored)
    }

    /// The feed of shared postings the caller's scope holds, from `start`.
    pub async fn watch_posting_changes(
        &self,
        caller: &Principal,
        start: Start,
    ) -> Result<impl Stream<Item = Result<FeedItem, Problem>> + use<>, Problem> {
        let scope = caller.scope.clone();
        let visible: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync> =
            Arc::new(move |event: &FeedEvent| event.regions.iter().any(|region| scope.contains(region)));
        outbox::watch(self.db().clone(), start, visible, self.feed, self.shutdown.clone()).await
    }
}
