//! Shared job postings across the province line. Ours: job matching's posting feed (shared
//! postings created, changed, closed) is followed; a job reads each noted posting and its
//! employer and appends what the partner may see to the shared feed, which the partner reads by
//! cursor. The partner's: pulled by cursor into our copy, then created in our job matching as a
//! posting of the employer (created once, by request ids derived from the partner's ids),
//! changed when the partner changes it, closed when it is withdrawn; local matching offers it
//! like any other.

use std::pin::Pin;

use bangfu_platform::db::to_micros;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::follow::{Apply, Feed, FeedStream, Followed};
use bangfu_platform::peers::{CallContext, Peer, Retry};
use bangfu_proto::common::v1 as common;
use bangfu_proto::exchange::v1 as pb;
use bangfu_proto::jobs::v1 as jobs;
use bangfu_proto::jobs::v1::job_matching_service_client::JobMatchingServiceClient;
use prost::Message;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use tokio_stream::{Stream, StreamExt};

use crate::app::Exchange;
use crate::config::{Ability, Partner};

/// Job matching's shared-posting feed, read on the exchange's own account.
pub struct PostingChanges {
    peer: Peer,
}

impl PostingChanges {
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }
}

impl Feed for PostingChanges {
    type Event = jobs::PostingChange;

    async fn open(&self, after: String) -> Result<FeedStream<Self::Event>, Problem> {
        use jobs::watch_posting_changes_response::Item;
        let service = self.peer.service().to_string();
        let stream = self
            .peer
            .open_stream(|channel| async move {
                JobMatchingServiceClient::new(channel)
                    .watch_posting_changes(jobs::WatchPostingChangesRequest {
                        after_cursor: after,
                        start_at_head: false,
                    })
                    .await
            })
            .await?;
        let items = stream.map(
            move |answer: Result<jobs::WatchPostingChangesResponse, tonic::Status>| {
                let refused = |status| {
                    Problem::from(bangfu_platform::peers::PeerError::Refused {
                        service: service.clone(),
                        status,
                    })
                };
                match answer.map(|response| response.item) {
                    Ok(Some(Item::Change(change))) => Ok(Followed::Event {
                        cursor: change.cursor.clone(),
                        behind: 0,
                        recorded: change
                            .change_time
                            .as_ref()
                            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok()),
                        event: change,
                    }),
                    Ok(Some(Item::Heartbeat(beat))) => Ok(Followed::Heartbeat { cursor: beat.cursor }),
                    Ok(None) => Err(refused(tonic::Status::unknown(
                        "a feed item with neither a change nor a heartbeat",
                    ))),
                    Err(status) => Err(refused(status)),
                }
            },
        );
        let items: Pin<Box<dyn Stream<Item = _> + Send>> = Box::pin(items);
        Ok(items)
    }
}

/// The follower's effect: the posting is noted for the job that shares it.
pub struct PostingFollower {
    pub clock: bangfu_platform::clock::Clock,
}

impl Apply<jobs::PostingChange> for PostingFollower {
    async fn apply(&self, tx: &mut AnyConnection, change: &jobs::PostingChange) -> Result<(), Problem> {
        sqlx::query(
            "INSERT INTO exchange_noted_postings (posting_id, noted_us) VALUES ($1, $2) \
             ON CONFLICT (posting_id) DO UPDATE SET noted_us = excluded.noted_us",
        )
        .bind(change.posting.trim_start_matches("postings/"))
        .bind(to_micros(self.clock.now()))
        .execute(tx)
        .await?;
        Ok(())
    }
}

/// A shared posting as a partner sees it, from job matching's posting and its employer.
fn shared_of(posting: &jobs::Posting, carrier: &jobs::Carrier) -> pb::SharedPosting {
    let occupation = posting.occupation.clone().unwrap_or_default();
    pb::SharedPosting {
        posting_id: posting.name.trim_start_matches("postings/").to_string(),
        title: posting.title.clone(),
        employer: carrier.display_name.clone(),
        employer_credit_code: carrier.credit_code.clone(),
        employer_region: carrier.region.as_ref().map(|r| r.code.clone()).unwrap_or_default(),
        contact: carrier.contact_name.clone(),
        contact_phone: carrier.contact_phone.clone(),
        occupation_code: occupation.code,
        occupation_name: occupation.display_name,
        work_region: posting.work_region.as_ref().map(|r| r.code.clone()).unwrap_or_default(),
        wage_min: posting.wage_min,
        wage_max: posting.wage_max,
        headcount: posting.headcount,
        contract_months: posting.contract_months,
        weekly_hours: posting.weekly_hours,
        accommodation: posting.accommodation,
        meals: posting.meals,
        skills: posting.skills.clone(),
        min_age: posting.min_age,
        max_age: posting.max_age,
        valid_until: posting.valid_until,
    }
}

/// What a partner's change does to our copy of its posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    Upsert,
    Withdraw,
}

impl Exchange {
    fn jobs(&self) -> Result<&Peer, Problem> {
        self.jobs.as_ref().ok_or_else(|| {
            Problem::new(
                tonic::Code::Unavailable,
                ErrorReason::PeerUnavailable,
                "job matching is not configured for the exchange",
                "暂时无法连接就业帮扶服务，请稍后重试",
            )
        })
    }

    /// Appends each noted posting to the shared feed as it now is (or withdrawn, when it is
    /// closed, expired or no longer shared), dropping the note in the same transaction.
    pub async fn share_noted_postings(&self) -> Result<usize, Problem> {
        let noted: Vec<(String, i64)> = {
            let mut connection = self.db.acquire().await?;
            sqlx::query_as("SELECT posting_id, noted_us FROM exchange_noted_postings ORDER BY noted_us LIMIT 200")
                .fetch_all(&mut *connection)
                .await?
        };
        if noted.is_empty() {
            return Ok(0);
        }
        let peer = self.jobs()?.clone();
        let call = CallContext::own();
        let mut shared = 0;
        for (posting_id, noted_us) in noted {
            let name = format!("postings/{posting_id}");
            // A partner's posting copied here goes back to nobody.
            let copy: Option<i64> = {
                let mut connection = self.db.acquire().await?;
                sqlx::query_scalar("SELECT 1 FROM exchange_partner_postings WHERE local_posting = $1")
                    .bind(&name)
                    .fetch_optional(&mut *connection)
                    .await?
            };
            if copy.is_some() {
                sqlx::query("DELETE FROM exchange_noted_postings WHERE posting_id = $1 AND noted_us = $2")
                    .bind(&posting_id)
                    .bind(noted_us)
                    .execute(&mut *self.db.acquire().await?)
                    .await?;
                continue;
            }
            let posting = get_posting(&peer, &call, &name).await?;
            let open = posting
                .as_ref()
                .filter(|p| p.shared_across_regions && p.state() == jobs::PostingState::Open);
            let entry = match open {
                None => pb::SharedPosting {
                    posting_id: posting_id.clone(),
                    ..Default::default()
                },
                Some(posting) => {
                    let carrier_name = posting.carrier.clone();
                    let carrier = peer
                        .call(&call, Retry::Safe, |channel| {
                            let name = carrier_name.clone();
                            async move {
                                JobMatchingServiceClient::new(channel)
                                    .get_carrier(jobs::GetCarrierRequest { name })
                                    .await
                            }
                        })
                        .await?
                        .carrier
                        .unwrap_or_default();
                    shared_of(posting, &carrier)
                }
            };
            let mut tx = self.db.begin().await?;
            sqlx::query(
                "INSERT INTO exchange_shared_feed (posting_id, withdrawn, body, created_us) VALUES ($1, $2, $3, $4)",
            )
            .bind(&posting_id)
            .bind(i64::from(open.is_none()))
            .bind(entry.encode_to_vec())
            .bind(to_micros(self.now()))
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM exchange_noted_postings WHERE posting_id = $1 AND noted_us = $2")
                .bind(&posting_id)
                .bind(noted_us)
                .execute(&mut *tx)
                .await?;
            tx.commit().await.map_err(bangfu_platform::db::DbError::from)?;
            shared += 1;
        }
        Ok(shared)
    }

    /// The shared feed after `after` (a cursor this feed gave, or empty), at most `max`.
    pub async fn shared_changes(
        &self,
        after: &str,
        max: u32,
    ) -> Result<(Vec<pb::SharedPostingChange>, String), Problem> {
        let after_id: i64 = if after.is_empty() {
            0
        } else {
            after.parse().map_err(|_| {
                Problem::invalid_field(
                    ErrorReason::CursorUnknown,
                    "after_cursor",
                    "not a cursor this feed gave",
                    "游标无效，请从头读取",
                )
            })?
        };
        let rows: Vec<(i64, i64, Vec<u8>)> = {
            let mut connection = self.db.acquire().await?;
            sqlx::query_as("SELECT id, withdrawn, body FROM exchange_shared_feed WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after_id)
                .bind(i64::from(max))
                .fetch_all(&mut *connection)
                .await?
        };
        let mut next = after.to_string();
        let mut changes = Vec::with_capacity(rows.len());
        for (id, withdrawn, body) in rows {
            let posting = pb::SharedPosting::decode(body.as_slice()).map_err(|_| Problem::internal())?;
            next = id.to_string();
            changes.push(pb::SharedPostingChange {
                cursor: next.clone(),
                kind: if withdrawn != 0 {
                    pb::SharedPostingChangeKind::Withdrawn
                } else {
                    pb::SharedPostingChangeKind::Upserted
                } as i32,
                posting: Some(posting),
            });
        }
        Ok((changes, next))
    }

    /// Pulls every partner's new shared-posting changes into our copies (the cursor moves in
    /// the transaction that keeps them), then brings our job matching in line with the copies.
    pub async fn pull_partner_postings(&self) -> Result<usize, Problem> {
        let Some(config) = self.config.clone() else {
            return Ok(0);
        };
        let mut pulled = 0;
        for partner in &config.partners {
            if !partner.may(Ability::SharedPostings) {
                continue;
            }
            pulled += self.pull_from(partner).await?;
        }
        self.sync_partner_postings().await?;
        Ok(pulled)
    }

    async fn pull_from(&self, partner: &Partner) -> Result<usize, Problem> {
        let mut total = 0;
        loop {
            let cursor = {
                let mut connection = self.db.acquire().await?;
                crate::store::partner_state(&mut connection, &partner.id)
                    .await?
                    .postings_cursor
            };
            let asked = pb::ListSharedPostingsRequest {
                header: None,
                after_cursor: cursor.clone(),
                max_changes: 500,
            };
            let (answer, _) = match self
                .send(
                    partner,
                    "ListSharedPostings",
                    asked,
                    |m| &mut m.header,
                    0,
                    |mut client, request| async move { client.list_shared_postings(request).await },
                )
                .await
            {
                Ok(answer) => answer,
                Err(problem) if problem.reason == ErrorReason::PartnerUnavailable => return Ok(total),
                Err(problem) => return Err(problem),
            };
            if answer.changes.is_empty() {
                return Ok(total);
            }
            let now = to_micros(self.now());
            let mut tx = self.db.begin().await?;
            for change in &answer.changes {
                let Some(posting) = &change.posting else {
                    continue;
                };
                let withdrawn = change.kind() == pb::SharedPostingChangeKind::Withdrawn;
                sqlx::query(
                    "INSERT INTO exchange_partner_postings (partner, posting_id, body, withdrawn, synced, received_us) \
                     VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (partner, posting_id) DO UPDATE SET \
                     body = CASE WHEN $4 = 1 THEN exchange_partner_postings.body ELSE excluded.body END, \
                     withdrawn = $4, synced = 0, received_us = $5",
                )
                .bind(&partner.id)
                .bind(&posting.posting_id)
                .bind(posting.encode_to_vec())
                .bind(i64::from(withdrawn))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO exchange_partner_state (partner, postings_cursor) VALUES ($1, $2) \
                 ON CONFLICT (partner) DO UPDATE SET postings_cursor = $2",
            )
            .bind(&partner.id)
            .bind(&answer.next_cursor)
            .execute(&mut *tx)
            .await?;
            tx.commit().await.map_err(bangfu_platform::db::DbError::from)?;
            total += answer.changes.len();
        }
    }

    /// Brings job matching in line with the partner postings changed since: creates the
    /// employer and the posting once, changes the posting's terms, closes a withdrawn one. A
    /// failure is kept on the copy (`last_error`) and tried again next round.
    pub async fn sync_partner_postings(&self) -> Result<usize, Problem> {
        let rows: Vec<(String, String, Vec<u8>, i64, String)> = {
            let mut connection = self.db.acquire().await?;
            sqlx::query_as(
                "SELECT partner, posting_id, body, withdrawn, local_posting FROM exchange_partner_postings \
                 WHERE synced = 0 ORDER BY received_us LIMIT 200",
            )
            .fetch_all(&mut *connection)
            .await?
        };
        let mut synced = 0;
        for (partner, posting_id, body, withdrawn, local) in rows {
            let shared = pb::SharedPosting::decode(body.as_slice()).map_err(|_| Problem::internal())?;
            let action = if withdrawn != 0 { Sync::Withdraw } else { Sync::Upsert };
            let outcome = self.sync_one(&partner, &shared, action, &local).await;
            let mut connection = self.db.acquire().await?;
            match outcome {
                Ok(local_posting) => {
                    sqlx::query(
                        "UPDATE exchange_partner_postings SET synced = 1, local_posting = $1, last_error = '' \
                         WHERE partner = $2 AND posting_id = $3 AND body = $4 AND withdrawn = $5",
                    )
                    .bind(local_posting)
                    .bind(&partner)
                    .bind(&posting_id)
                    .bind(&body)
                    .bind(withdrawn)
                    .execute(&mut *connection)
                    .await?;
                    synced += 1;
                }
                Err(problem) => {
                    tracing::warn!(%partner, posting = %posting_id, reason = problem.reason_code(), error = %problem.message, "a partner posting could not be brought into job matching");
                    sqlx::query(
                        "UPDATE exchange_partner_postings SET last_error = $1 WHERE partner = $2 AND posting_id = $3",
                    )
                    .bind(format!("{}: {}", problem.reason_code(), problem.message))
                    .bind(&partner)
                    .bind(&posting_id)
                    .execute(&mut *connection)
                    .await?;
                }
            }
        }
        Ok(synced)
    }

    /// One partner posting into job matching; returns the local posting's name ("" when none).
    async fn sync_one(
        &self,
        partner: &str,
        shared: &pb::SharedPosting,
        action: Sync,
        local: &str,
    ) -> Result<String, Problem> {
        let peer = self.jobs()?.clone();
        let call = CallContext::own();
        if action == Sync::Withdraw {
            if local.is_empty() {
                return Ok(String::new());
            }
            let posting = get_posting(&peer, &call, local).await?;
            if let Some(posting) = posting.filter(|p| p.state() == jobs::PostingState::Open) {
                let request = jobs::ClosePostingRequest {
                    name: local.to_string(),
                    reason: "协作省份已撤回该岗位".into(),
                    etag: posting.etag,
                };
                peer.call(&call, Retry::Safe, |channel| {
                    let request = request.clone();
                    async move { JobMatchingServiceClient::new(channel).close_posting(request).await }
                })
                .await?;
            }
            return Ok(local.to_string());
        }
        let posting = jobs::Posting {
            title: shared.title.clone(),
            occupation: Some(jobs::Occupation {
                code: shared.occupation_code.clone(),
                display_name: shared.occupation_name.clone(),
            }),
            work_region: Some(common::RegionCode {
                code: shared.work_region.clone(),
                display_name: String::new(),
            }),
            wage_min: shared.wage_min,
            wage_max: shared.wage_max,
            headcount: shared.headcount,
            contract_months: shared.contract_months,
            weekly_hours: shared.weekly_hours,
            min_age: shared.min_age,
            max_age: shared.max_age,
            skills: shared.skills.clone(),
            accommodation: shared.accommodation,
            meals: shared.meals,
            valid_until: shared.valid_until,
            // Offered to seekers of every county here (recommendations take shared postings
            // beyond the caller's scope); the exchange never shares it back (see
            // `share_noted_postings`).
            shared_across_regions: true,
            ..Default::default()
        };
        if !local.is_empty()
            && let Some(current) = get_posting(&peer, &call, local).await?
        {
            let mut changed = posting;
            changed.name = local.to_string();
            changed.etag = current.etag;
            let request = jobs::UpdatePostingRequest {
                posting: Some(changed),
                update_mask: Some(prost_types::FieldMask {
                    paths: [
                        "title",
                        "occupation",
                        "wage_min",
                        "wage_max",
                        "headcount",
                        "contract_months",
                        "weekly_hours",
                        "min_age",
                        "max_age",
                        "skills",
                        "accommodation",
                        "meals",
                        "valid_until",
                    ]
                    .map(String::from)
                    .to_vec(),
                }),
            };
            peer.call(&call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { JobMatchingServiceClient::new(channel).update_posting(request).await }
            })
            .await?;
            return Ok(local.to_string());
        }
        let carrier = jobs::CreateCarrierRequest {
            carrier: Some(jobs::Carrier {
                display_name: shared.employer.clone(),
                kind: jobs::CarrierKind::Employer as i32,
                credit_code: shared.employer_credit_code.clone(),
                region: Some(common::RegionCode {
                    code: shared.employer_region.clone(),
                    display_name: String::new(),
                }),
                contact_name: shared.contact.clone(),
                contact_phone: shared.contact_phone.clone(),
                ..Default::default()
            }),
            request_id: format!("exchange-{partner}-carrier-{}", shared.employer_credit_code),
        };
        let carrier = peer
            .call(&call, Retry::Safe, |channel| {
                let request = carrier.clone();
                async move { JobMatchingServiceClient::new(channel).create_carrier(request).await }
            })
            .await?
            .carrier
            .ok_or_else(Problem::internal)?;
        let request = jobs::CreatePostingRequest {
            posting: Some(jobs::Posting {
                carrier: carrier.name,
                ..posting
            }),
            request_id: format!("exchange-{partner}-posting-{}", shared.posting_id),
        };
        let created = peer
            .call(&call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { JobMatchingServiceClient::new(channel).create_posting(request).await }
            })
            .await?
            .posting
            .ok_or_else(Problem::internal)?;
        Ok(created.name)
    }

    /// Our copies of the partners' postings, by partner and posting id, after `after`.
    pub async fn partner_postings(
        &self,
        partner: &str,
        show_withdrawn: bool,
        after: (String, String),
        limit: u32,
    ) -> Result<Vec<pb::PartnerPosting>, Problem> {
        let rows = {
            let mut connection = self.db.acquire().await?;
            sqlx::query(
                "SELECT partner, body, withdrawn, local_posting, last_error, received_us \
                 FROM exchange_partner_postings WHERE ($1 = '' OR partner = $1) AND ($2 = 1 OR withdrawn = 0) \
                 AND (partner > $3 OR (partner = $3 AND posting_id > $4)) ORDER BY partner, posting_id LIMIT $5",
            )
            .bind(partner)
            .bind(i64::from(show_withdrawn))
            .bind(&after.0)
            .bind(&after.1)
            .bind(i64::from(limit))
            .fetch_all(&mut *connection)
            .await?
        };
        rows.iter()
            .map(|row| {
                let partner: String = row.try_get("partner")?;
                let body: Vec<u8> = row.try_get("body")?;
                let withdrawn: i64 = row.try_get("withdrawn")?;
                let received: i64 = row.try_get("received_us")?;
                Ok(pb::PartnerPosting {
                    partner: format!("partners/{partner}"),
                    posting: Some(pb::SharedPosting::decode(body.as_slice()).map_err(|_| Problem::internal())?),
                    withdrawn: withdrawn != 0,
                    local_posting: row.try_get("local_posting")?,
                    last_error: row.try_get("last_error")?,
                    receive_time: bangfu_platform::db::from_micros(received)
                        .map(bangfu_platform::wire::timestamp_to_wire),
                })
            })
            .collect()
    }
}

async fn get_posting(peer: &Peer, call: &CallContext, name: &str) -> Result<Option<jobs::Posting>, Problem> {
    let found = peer
        .call(call, Retry::Safe, |channel| {
            let name = name.to_string();
            async move {
                JobMatchingServiceClient::new(channel)
                    .get_posting(jobs::GetPostingRequest { name })
                    .await
            }
        })
        .await;
    match found {
        Ok(answer) => Ok(answer.posting),
        Err(bangfu_platform::peers::PeerError::Refused { status, .. }) if status.code() == tonic::Code::NotFound => {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}
