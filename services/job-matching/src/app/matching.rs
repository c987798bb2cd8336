//! Ranked matching with reasons: open postings for a seeker, active seekers for a posting. The
//! database scores every candidate in one statement and keeps the best; the persons kept are
//! read again from identity (their priority as of today), scored in Rust with every reason, and
//! ordered by that score.

use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::peers::CallContext;
use tonic::Code;

use super::Jobs;
use crate::domain::{self, PostingState, Scored};
use crate::peers;
use crate::store::{self, Ranked, StoredPosting, StoredSeeker};

/// A posting recommended to a seeker.
#[derive(Debug, Clone)]
pub struct PostingMatch {
    pub posting: StoredPosting,
    pub scored: Scored,
}

/// A seeker recommended for a posting.
#[derive(Debug, Clone)]
pub struct SeekerMatch {
    pub seeker: StoredSeeker,
    pub scored: Scored,
}

/// FAILED_PRECONDITION, POSTING_CLOSED.
pub(crate) fn posting_closed(posting: &StoredPosting, state: PostingState) -> Problem {
    let (message, message_zh) = match state {
        PostingState::Expired => ("the posting is past its last day", "岗位已过有效期"),
        _ => ("the posting is closed", "岗位已关闭"),
    };
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::PostingClosed,
        message,
        message_zh,
    )
    .with_metadata("resource", posting.name())
}

/// A score the store's SQL and the domain's Rust disagree on is a bug in one of them: said
/// loudly, and the Rust one (with its reasons) is what the clerk sees.
fn check_agrees(kind: &str, id: &str, sql: i64, rust: i64) {
    if sql != rust {
        tracing::error!(kind, id, sql, rust, "ranking SQL and domain score disagree");
    }
    // Tests run debug builds: there a disagreement fails the call, and the test with it.
    debug_assert_eq!(sql, rust, "ranking SQL and domain score disagree on {kind} {id}");
}

impl Jobs {
    pub async fn recommend_seekers(
        &self,
        caller: &Principal,
        call: &CallContext,
        posting_id: &str,
        region_prefix: &str,
        limit: u32,
    ) -> Result<Vec<SeekerMatch>, Problem> {
        let today = self.today();
        let mut conn = self.db().acquire().await?;
        let posting = self
            .posting_for(&mut conn, caller, "RecommendSeekers", posting_id, false)
            .await?;
        let state = posting.state_on(today);
        if state != PostingState::Open {
            return Err(posting_closed(&posting, state));
        }
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok(Vec::new());
        };
        let weights = self.weights(&posting.data.work_region).await?;
        let ranked = store::rank_seekers(&mut conn, &posting.data, &weights, &prefix, today, i64::from(limit)).await?;
        drop(conn);
        let profile = posting.data.profile();
        let mut seekers = Vec::with_capacity(ranked.len());
        for Ranked { row: seeker, score } in ranked {
            let rust = domain::score(&weights, &seeker.profile(), &profile).score;
            check_agrees("seeker", &seeker.id, score, rust);
            seekers.push(seeker);
        }
        self.refresh_persons(call, &mut seekers).await?;
        let mut matches: Vec<SeekerMatch> = seekers
            .into_iter()
            .map(|seeker| SeekerMatch {
                scored: domain::score(&weights, &seeker.profile(), &profile),
                seeker,
            })
            .collect();
        matches.sort_by(|a, b| {
            b.scored
                .score
                .cmp(&a.scored.score)
                .then_with(|| a.seeker.id.cmp(&b.seeker.id))
        });
        Ok(matches)
    }

    pub async fn recommend_postings(
        &self,
        caller: &Principal,
        call: &CallContext,
        seeker_id: &str,
        limit: u32,
    ) -> Result<Vec<PostingMatch>, Problem> {
        let today = self.today();
        let seeker = {
            let mut conn = self.db().acquire().await?;
            self.seeker_for(&mut conn, caller, "RecommendPostings", seeker_id)
                .await?
        };
        let mut one = vec![seeker];
        self.refresh_persons(call, &mut one).await?;
        let Some(seeker) = one.pop() else {
            return Err(Problem::state_conflict(
                &format!("seekers/{seeker_id}"),
                "identity no longer shows this person as someone who can take work here (moved away, died, or outside your scope)",
                "身份信息显示此人已迁出、死亡或不在您的管辖范围内，不再推荐岗位",
            ));
        };
        // Postings in the caller's scope, and those shared across regions.
        let Some(prefix) = caller.scope.narrowed("") else {
            return Ok(Vec::new());
        };
        let weights = self.weights(&seeker.person.registered_region).await?;
        let profile = seeker.profile();
        let age = domain::age_on(&seeker.person.birth_month, today);
        let mut conn = self.db().acquire().await?;
        let ranked = store::rank_postings(&mut conn, &profile, age, &weights, &prefix, today, i64::from(limit)).await?;
        let mut matches = Vec::with_capacity(ranked.len());
        for Ranked { row: posting, score } in ranked {
            let scored = domain::score(&weights, &profile, &posting.data.profile());
            check_agrees("posting", &posting.id, score, scored.score);
            matches.push(PostingMatch { posting, scored });
        }
        matches.sort_by(|a, b| {
            b.scored
                .score
                .cmp(&a.scored.score)
                .then_with(|| a.posting.id.cmp(&b.posting.id))
        });
        Ok(matches)
    }

    /// Reads the seekers' persons from identity as of today and keeps what changed (a
    /// certification granted or lapsed, a move), so the answer ranks on today's facts.
    async fn refresh_persons(&self, call: &CallContext, seekers: &mut Vec<StoredSeeker>) -> Result<(), Problem> {
        if seekers.is_empty() {
            return Ok(());
        }
        let today = self.today();
        let ids: Vec<String> = seekers.iter().map(|s| s.data.person_id.clone()).collect();
        let facts = self.peers()?.identity.persons(call, &ids, (today, today)).await?;
        let now = self.now();
        let mut conn = self.db().acquire().await?;
        let mut kept = Vec::with_capacity(seekers.len());
        for mut seeker in std::mem::take(seekers) {
            // Identity no longer shows the person to this caller (moved out of its scope), or
            // they died or moved away: not someone to recommend.
            let Some(facts) = facts.get(&seeker.data.person_id) else {
                continue;
            };
            if facts.death_date.is_some_and(|d| d <= today) || facts.moved_away_date.is_some_and(|d| d <= today) {
                continue;
            }
            let snapshot = peers::snapshot(facts, today);
            if snapshot != seeker.person {
                store::refresh_person(&mut conn, &seeker.id, &snapshot, now).await?;
                seeker.person = snapshot;
            }
            kept.push(seeker);
        }
        *seekers = kept;
        Ok(())
    }
}
