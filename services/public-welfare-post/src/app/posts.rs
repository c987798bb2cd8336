//! Posts (设岗), their announcements (招聘公告) and village cadres (村干部).

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write::{self, Begun};
use time::Date;
use tonic::Code;

use super::{Posts, invalid, method};
use crate::domain::{PostState, WorkTime};
use crate::store::{self, NewAnnouncement, NewPost, PostFilter, StoredAnnouncement, StoredCadre, StoredPost};

/// What UpdatePost changes: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct PostChange {
    pub title: Option<String>,
    pub monthly_standard: Option<Option<i64>>,
    pub hours_per_month: Option<i64>,
    pub days_per_month: Option<i64>,
    pub work_time: Option<WorkTime>,
    pub places: Option<i64>,
    pub state: Option<PostState>,
}

/// What PublishAnnouncement asks for; the edge has checked every field is present.
pub struct AnnouncementRequest {
    pub post_id: String,
    pub announcement: NewAnnouncement,
}

/// What RegisterVillageCadre asks for.
pub struct CadreRequest {
    pub village: String,
    pub person_id: String,
    pub office: String,
    pub term_start: Date,
    pub term_end: Option<Date>,
}

fn post_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("posts/{id}"))
}

impl Posts {
    pub async fn create_post(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        post: NewPost,
    ) -> Result<StoredPost, Problem> {
        self.ensure_sees(
            caller,
            "CreatePost",
            &format!("posts in {}", post.village),
            &post.village,
        )?;
        // The policy is subsidy payment's: a post under a code it does not know could never be paid.
        if self
            .peers()?
            .claim_fact_names(call, &post.subsidy_policy, self.today())
            .await?
            .is_none()
        {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "post.subsidy_policy",
                format!(
                    "{} is not a policy in force in subsidy payment's catalog",
                    post.subsidy_policy
                ),
                format!(
                    "补贴政策 {} 不在补贴发放政策目录中或当前不在有效期内",
                    post.subsidy_policy
                ),
            ));
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("posts/");
                let mut conn = self.db().acquire().await?;
                return store::get_post(&mut conn, id).await?.ok_or_else(|| post_not_found(id));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let id = store::new_id();
        store::insert_post(unit.tx(), &id, &post, &caller.subject, now).await?;
        let stored = store::get_post(unit.tx(), &id).await?.ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("CreatePost"), stored.name(), now).in_region(&post.village))
            .await?;
        Ok(stored)
    }

    pub async fn get_post(&self, caller: &Principal, id: &str) -> Result<StoredPost, Problem> {
        let mut conn = self.db().acquire().await?;
        let post = store::get_post(&mut conn, id)
            .await?
            .ok_or_else(|| post_not_found(id))?;
        self.ensure_sees(caller, "GetPost", &post.name(), &post.post.village)?;
        Ok(post)
    }

    /// The village's configured need for posts today (0 when none is configured).
    pub async fn village_need(&self, village: &str) -> Result<i64, Problem> {
        Ok(self
            .parameters()
            .lookup("welfare_post.village_post_need", village, self.today())
            .await?
            .unwrap_or(0))
    }

    pub async fn list_posts(
        &self,
        caller: &Principal,
        mut filter: PostFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredPost>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        Ok(store::list_posts(&mut conn, &filter, after, i64::from(limit) + 1).await?)
    }

    pub async fn update_post(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        change: PostChange,
    ) -> Result<StoredPost, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let mut post = store::get_post(unit.tx(), id)
            .await?
            .ok_or_else(|| post_not_found(id))?;
        self.ensure_sees(caller, "UpdatePost", &post.name(), &post.post.village)?;
        if !etag.is_empty() && etag != post.etag() {
            return Err(Problem::etag_mismatch(&post.name()));
        }
        let revision = post.revision;
        if let Some(title) = change.title {
            post.post.title = title;
        }
        if let Some(standard) = change.monthly_standard {
            post.post.monthly_standard = standard;
        }
        if let Some(hours) = change.hours_per_month {
            post.post.hours_per_month = hours;
        }
        if let Some(days) = change.days_per_month {
            post.post.days_per_month = days;
        }
        if let Some(work_time) = change.work_time {
            post.post.work_time = work_time;
        }
        if let Some(places) = change.places {
            if places < post.places_taken {
                return Err(invalid(
                    "post.places",
                    format!(
                        "{} places are held or proposed; places cannot be fewer",
                        post.places_taken
                    ),
                    format!("该岗位已有 {} 人在岗或拟聘，岗位数不能少于此数", post.places_taken),
                ));
            }
            post.post.places = places;
        }
        if let Some(state) = change.state {
            post.state = state;
        }
        let now = unit.now();
        if !store::update_post(unit.tx(), &post, revision, now).await? {
            return Err(Problem::etag_mismatch(&post.name()));
        }
        let stored = store::get_post(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("UpdatePost"), stored.name(), now).in_region(&stored.post.village))
            .await?;
        Ok(stored)
    }

    pub async fn publish_announcement(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        request: AnnouncementRequest,
    ) -> Result<StoredAnnouncement, Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("announcements/").to_string();
                return self.get_announcement(caller, "PublishAnnouncement", &id).await;
            }
            Begun::Fresh(unit) => unit,
        };
        let post = store::get_post(unit.tx(), &request.post_id)
            .await?
            .ok_or_else(|| post_not_found(&request.post_id))?;
        self.ensure_sees(caller, "PublishAnnouncement", &post.name(), &post.post.village)?;
        if post.state == PostState::Closed {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!("{} is closed; open it again before announcing it", post.name()),
                "该岗位已撤销，不能发布招聘公告",
            )
            .with_metadata("resource", post.name()));
        }
        if request.announcement.last_day < self.today() {
            return Err(invalid(
                "announcement.application_period.last_day",
                "the application period has already ended",
                "报名截止日期已过",
            ));
        }
        let now = unit.now();
        let id = store::new_id();
        store::insert_announcement(unit.tx(), &id, &request.announcement, &caller.subject, now).await?;
        let stored = store::get_announcement(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("PublishAnnouncement"), stored.name(), now).in_region(&post.post.village),
        )
        .await?;
        Ok(stored)
    }

    pub(crate) async fn get_announcement(
        &self,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredAnnouncement, Problem> {
        let mut conn = self.db().acquire().await?;
        let announcement = store::get_announcement(&mut conn, id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("announcements/{id}")))?;
        self.ensure_sees(caller, method_name, &announcement.name(), &announcement.village)?;
        Ok(announcement)
    }

    pub async fn register_cadre(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        request: CadreRequest,
    ) -> Result<StoredCadre, Problem> {
        let resource = format!("villageCadres in {}", request.village);
        self.ensure_sees(caller, "RegisterVillageCadre", &resource, &request.village)?;
        // The household is identity's: read it now so a cadre's relatives are known at hiring.
        let today = self.today();
        let person = self
            .peers()?
            .identity
            .person(call, &request.person_id, (today, today))
            .await?
            .ok_or_else(|| {
                self.refuse(
                    caller,
                    "RegisterVillageCadre",
                    &format!("persons/{}", request.person_id),
                    Problem::not_found(&format!("persons/{}", request.person_id)),
                )
            })?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("villageCadres/");
                let mut conn = self.db().acquire().await?;
                return store::get_cadre(&mut conn, id)
                    .await?
                    .ok_or_else(|| Problem::not_found(&resource));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let id = store::new_id();
        store::insert_cadre(
            unit.tx(),
            &id,
            &request.village,
            &request.person_id,
            &person.household,
            &request.office,
            (request.term_start, request.term_end),
            &caller.subject,
            now,
        )
        .await?;
        let stored = store::get_cadre(unit.tx(), &id).await?.ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(
                caller,
                &method("RegisterVillageCadre"),
                format!("villageCadres/{id}"),
                now,
            )
            .in_region(&request.village),
        )
        .await?;
        Ok(stored)
    }
}
