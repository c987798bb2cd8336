//! Subsidy while on post (在岗领补): monthly evaluations, and closing a month into claims of
//! facts for subsidy payment, which the post's policy turns into amounts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::db::Backend;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::parameters::{date_text, parse_date_text};
use bangfu_platform::peers::CallContext;
use bangfu_platform::rows::to_json;
use bangfu_platform::write;
use time::Date;
use tonic::Code;

use super::{Posts, invalid, method};
use crate::domain::{
    AssignmentState, MonthOutcome, MonthRecord, month_claimable, month_days, month_text, required_days,
};
use crate::peers::{ClaimLine, FactValue, LineAnswer, month_reference};
use crate::store::{self, MonthLine, Settled, StoredEvaluation};

/// Claims per SubmitClaims call (one message): a second or so of subsidy payment's work, so a
/// call in flight when CloseMonth's budget runs out ends soon after.
const CLAIMS_PER_CALL: usize = 1_000;

/// One chunk's call and settlement, as the sender runs several at once.
type ChunkCall<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, Problem>> + Send + 'a>>;

/// SubmitClaims calls in flight at once: subsidy payment decides several streams in parallel.
const CALLS_AT_ONCE: usize = 4;

/// How long CloseMonth itself sends claims before answering (the call has 30 s); what is left
/// stays pending and the service's job sends it.
const CLOSING_BUDGET: Duration = Duration::from_secs(20);

/// Signings (and lines) read per page while closing and sending a month.
const LINES_PER_PAGE: i64 = 10_000;

/// The lease of the one sender of month lines across replicas (PostgreSQL).
const SENDER_LEASE: &str = "welfare_post:month-line-sender";

/// How often CloseMonth looks again for the sender's place while another holds it.
const SENDER_POLL: Duration = Duration::from_millis(50);

/// The sender's place, held while sending: this process's lock and, across replicas, the lease.
struct Sending<'a> {
    _local: tokio::sync::MutexGuard<'a, ()>,
    lease: bangfu_platform::lease::Lease,
}

/// What RecordEvaluation asks for.
pub struct EvaluationRequest {
    pub assignment_id: String,
    pub year: i32,
    pub month: u8,
    pub days_on_post: i64,
    pub hours_on_post: i64,
    pub score: i64,
    pub remark: String,
    /// The stored month's etag, to correct it; empty to record a new month.
    pub etag: String,
}

/// What CloseMonth did for a region and month.
#[derive(Debug, Clone, Default)]
pub struct ClosedMonth {
    pub holders: usize,
    pub claims: usize,
    pub no_claims: usize,
    pub refused: usize,
    pub pending: usize,
    /// The lines, those without a submitted claim first.
    pub lines: Vec<MonthLine>,
}

/// The facts of a holder's month as stored on its line; sent under the names the policy
/// version in force declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MonthFacts {
    pub policy: String,
    pub person_id: String,
    pub first: String,
    pub last: String,
    pub days_on_post: i64,
    pub days_required: i64,
    pub hours_on_post: i64,
    pub evaluation_passed: bool,
    pub monthly_standard: Option<i64>,
    pub first_hire_date: String,
}

/// The facts posts know of a month, under the names `names` declares (the policy's claim facts).
pub(crate) fn claim_facts(
    names: &[String],
    days_on_post: i64,
    days_required: i64,
    hours_on_post: i64,
    passed: bool,
    standard: Option<i64>,
    first_hire: Date,
) -> Vec<(String, FactValue)> {
    let known = [
        ("days_on_post", Some(FactValue::Integer(days_on_post))),
        ("days_required", Some(FactValue::Integer(days_required))),
        ("hours_on_post", Some(FactValue::Integer(hours_on_post))),
        ("evaluation_passed", Some(FactValue::Boolean(passed))),
        ("post_monthly_standard_fen", standard.map(FactValue::Money)),
        ("first_hire_date", Some(FactValue::Date(date_text(first_hire)))),
    ];
    known
        .into_iter()
        .filter(|(name, _)| names.iter().any(|n| n == name))
        .filter_map(|(name, value)| Some((name.to_string(), value?)))
        .collect()
}

/// A holder's month as its line: pending with the facts to send, or the reason for no claim.
fn month_line(holder: &store::HolderMonth, month_key: &str, (first, last): (Date, Date), month_len: i64) -> MonthLine {
    let a = &holder.assignment;
    let covered = (last.min(a.last_day) - first.max(a.new.start)).whole_days() + 1;
    let required = required_days(holder.days_per_month, covered, month_len);
    let record = holder.evaluation.map(|(days, _, passed)| MonthRecord {
        days_on_post: days,
        passed,
    });
    let (outcome, message) = match month_claimable(record, required) {
        Ok(()) => (MonthOutcome::Pending, String::new()),
        Err(none) => none,
    };
    let facts = MonthFacts {
        policy: holder.subsidy_policy.clone(),
        person_id: a.new.person_id.clone(),
        first: date_text(first),
        last: date_text(last),
        days_on_post: record.map(|r| r.days_on_post).unwrap_or(0),
        days_required: required,
        hours_on_post: holder.evaluation.map_or(0, |(_, hours, _)| hours),
        evaluation_passed: record.is_some_and(|r| r.passed),
        monthly_standard: holder.monthly_standard,
        first_hire_date: date_text(a.new.first_hire_date),
    };
    MonthLine {
        assignment_id: a.id.clone(),
        month: month_key.to_string(),
        village: a.new.village.clone(),
        display_name: a.new.display_name.clone(),
        person_id: a.new.person_id.clone(),
        outcome,
        facts: to_json(&facts),
        claim: String::new(),
        message,
    }
}

impl Posts {
    pub async fn record_evaluation(
        &self,
        caller: &Principal,
        request: EvaluationRequest,
    ) -> Result<StoredEvaluation, Problem> {
        let assignment = self
            .assignment(caller, "RecordEvaluation", &request.assignment_id)
            .await?;
        if !matches!(assignment.state, AssignmentState::Active | AssignmentState::Ended) {
            return Err(Problem::state_conflict(
                &assignment.name(),
                "only a confirmed holder's months are evaluated",
                "只能对已确认聘用的人员录入考核",
            ));
        }
        let Some((first, last)) = month_days(request.year, request.month) else {
            return Err(invalid("evaluation.month", "is not a month", "考核月份无效"));
        };
        if first > self.today() {
            return Err(invalid(
                "evaluation.month",
                "is in the future",
                "不能录入未来月份的考核",
            ));
        }
        if last < assignment.new.start || first > assignment.last_day {
            return Err(invalid(
                "evaluation.month",
                format!(
                    "is outside the contract {} to {}",
                    assignment.new.start, assignment.last_day
                ),
                format!(
                    "考核月份不在聘用期 {} 至 {} 内",
                    assignment.new.start, assignment.last_day
                ),
            ));
        }
        let covered = (last.min(assignment.last_day) - first.max(assignment.new.start)).whole_days() + 1;
        if request.days_on_post > covered {
            return Err(invalid(
                "evaluation.days_on_post",
                format!("the contract covers {covered} days of the month"),
                format!("在岗天数不能超过当月聘用期内的 {covered} 天"),
            ));
        }
        let month = month_text(first);
        let pass = self
            .parameter("welfare_post.pass_score", &assignment.new.village, first)
            .await?;
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        // A month sent (or being sent) as a claim keeps its facts; a month closed without one is
        // closed again from the corrected record when CloseMonth runs again.
        let line = store::get_month_line(unit.tx(), &assignment.id, &month).await?;
        if line.is_some_and(|l| matches!(l.outcome, MonthOutcome::Pending | MonthOutcome::ClaimSubmitted)) {
            return Err(Problem::state_conflict(
                &assignment.name(),
                format!("{month} is closed and its claim sent; a correction goes through subsidy payment"),
                format!("{month} 已结算并报送补贴，更正请通过补贴发放办理"),
            ));
        }
        let existing = store::get_evaluation(unit.tx(), &assignment.id, &month).await?;
        let revision = match (&existing, request.etag.is_empty()) {
            (None, _) => None,
            (Some(stored), false) if stored.etag() == request.etag => Some(stored.revision),
            (Some(stored), true) => {
                return Err(Problem::new(
                    Code::AlreadyExists,
                    ErrorReason::AlreadyExists,
                    format!("{} is recorded; send its etag to correct it", stored.name()),
                    "该月考核已录入，更正时请带上读取时的版本号",
                )
                .with_metadata("resource", stored.name()));
            }
            (Some(stored), false) => return Err(Problem::etag_mismatch(&stored.name())),
        };
        let record = StoredEvaluation {
            assignment_id: assignment.id.clone(),
            month: month.clone(),
            days_on_post: request.days_on_post,
            hours_on_post: request.hours_on_post,
            score: request.score,
            passed: request.score >= pass,
            remark: request.remark,
            updated: now,
            revision: 1,
        };
        if !store::put_evaluation(unit.tx(), &record, revision, &caller.subject).await? {
            return Err(Problem::etag_mismatch(&record.name()));
        }
        let stored = store::get_evaluation(unit.tx(), &assignment.id, &month)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("RecordEvaluation"), stored.name(), now).in_region(&assignment.new.village),
        )
        .await?;
        Ok(stored)
    }

    /// Closes `month` for the posts under `prefix`: every holder's month gets a line (a claim
    /// to send, or the reason for none) in one transaction; then the claims go to subsidy
    /// payment. Lines already there are kept, so a re-run sends nothing twice.
    pub async fn close_month(
        &self,
        caller: &Principal,
        call: &CallContext,
        prefix: &str,
        year: i32,
        month: u8,
        line_limit: usize,
    ) -> Result<ClosedMonth, Problem> {
        let resource = format!("monthClosings/{prefix}/{year:04}-{month:02}");
        self.ensure_sees(caller, "CloseMonth", &resource, prefix)?;
        let Some((first, last)) = month_days(year, month) else {
            return Err(invalid("month", "is not a month", "结算月份无效"));
        };
        if last >= self.today() {
            return Err(invalid(
                "month",
                "a month is closed once it is over",
                "只能结算已经结束的月份",
            ));
        }
        let started = Instant::now();
        let stop_at = started + CLOSING_BUDGET;
        let month_key = month_text(first);
        // On PostgreSQL the lines are written page by page while the pages already committed
        // are sent: the sender follows the writer, so sending does not wait for the whole month
        // to be written. SQLite has one writer: each page would hold the lock the sender's
        // settlements wait for, and a month of many pages could outlast their busy timeout after
        // subsidy payment had taken the claims. There the lines are written first.
        let (progress, written_pages) = tokio::sync::watch::channel(());
        let writing = self.write_month_lines(caller, prefix, &month_key, (first, last), progress);
        let sending = self.send_behind_writer(call, caller, prefix, &month_key, stop_at, written_pages);
        let (written, sent) = match self.db().backend() {
            Backend::Postgres => tokio::join!(writing, sending),
            Backend::Sqlite => {
                let written = writing.await;
                (written, sending.await)
            }
        };
        let elapsed_ms = |at: Instant| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        match sent {
            Ok(sent) => {
                tracing::info!(prefix, month = %month_key, sent, elapsed_ms = elapsed_ms(started), "month claims sent while written")
            }
            Err(problem) => tracing::warn!(prefix, month = %month_key, error = %problem.message, "claims left pending"),
        }
        let written = written?;
        tracing::info!(prefix, month = %month_key, written, elapsed_ms = elapsed_ms(started), "month lines written");
        // What the sender could not take behind the writer goes now, within the budget: a line
        // whose call failed, and on a re-run the lines the writer turned back to pending behind
        // a sender that had jumped to lines left pending by the earlier run. Refused lines are
        // sent once more, as a re-run asks.
        match self
            .send_pending(call, Some(caller), prefix, &month_key, true, Some(stop_at))
            .await
        {
            Ok(sent) => {
                tracing::info!(prefix, month = %month_key, sent, elapsed_ms = elapsed_ms(started), "month claims sent");
            }
            // Subsidy payment down: the lines stay pending and the job sends them when it returns.
            Err(problem) => tracing::warn!(prefix, month = %month_key, error = %problem.message, "claims left pending"),
        }
        let mut conn = self.db().acquire().await?;
        let mut closed = ClosedMonth::default();
        for (outcome, lines) in store::month_counts(&mut conn, prefix, &month_key).await? {
            let lines = usize::try_from(lines).unwrap_or(0);
            closed.holders += lines;
            match outcome {
                MonthOutcome::ClaimSubmitted => closed.claims += lines,
                MonthOutcome::Pending => closed.pending += lines,
                MonthOutcome::ClaimRefused => closed.refused += lines,
                _ => closed.no_claims += lines,
            }
        }
        if closed.pending > 0 {
            // The budget ran out: the job sends the rest now, not at its next round.
            self.sender_job.wake();
        }
        closed.lines =
            store::month_lines_first(&mut conn, prefix, &month_key, i64::try_from(line_limit).unwrap_or(100)).await?;
        Ok(closed)
    }

    /// Writes the month's lines, a page of signings per transaction, and tells `progress` after
    /// each page is committed. A line already there is kept, so a run cut short and run again
    /// writes each line once. Returns how many lines it wrote.
    async fn write_month_lines(
        &self,
        caller: &Principal,
        prefix: &str,
        month_key: &str,
        (first, last): (Date, Date),
        progress: tokio::sync::watch::Sender<()>,
    ) -> Result<usize, Problem> {
        let resource = format!("monthClosings/{prefix}/{month_key}");
        let month_len = (last - first).whole_days() + 1;
        let mut after = (String::new(), String::new());
        let mut written = 0;
        loop {
            let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
            let now = unit.now();
            let holders = store::holders_in_month(
                unit.tx(),
                prefix,
                month_key,
                (first, last),
                (&after.0, &after.1),
                LINES_PER_PAGE,
            )
            .await?;
            let Some(last_holder) = holders.last() else { break };
            after = (
                last_holder.assignment.new.village.clone(),
                last_holder.assignment.id.clone(),
            );
            let lines: Vec<MonthLine> = holders
                .iter()
                .map(|holder| month_line(holder, month_key, (first, last), month_len))
                .collect();
            store::insert_month_lines(unit.tx(), &lines, &caller.subject, now).await?;
            unit.commit(AuditEntry::by(caller, &method("CloseMonth"), resource.clone(), now).in_region(prefix))
                .await?;
            written += lines.len();
            progress.send_replace(());
            if holders.len() < LINES_PER_PAGE as usize {
                break;
            }
        }
        Ok(written)
    }

    /// Sends the month's pending lines as the writer commits them, in the order it writes them
    /// (village, signing), until the writer is done and every line it wrote was taken, or the
    /// budget ends. The writer's pages are whole transactions in that order, so on a first run
    /// no line is committed behind the sender's place; on a re-run the sender may jump ahead to
    /// lines an earlier run left pending, and what the writer turns back to pending behind it
    /// is taken by the sweep after both end.
    async fn send_behind_writer(
        &self,
        call: &CallContext,
        caller: &Principal,
        prefix: &str,
        month: &str,
        stop_at: Instant,
        mut written_pages: tokio::sync::watch::Receiver<()>,
    ) -> Result<usize, Problem> {
        let Some(sending) = self.take_sender(Some(stop_at)).await? else {
            return Ok(0);
        };
        let mut sent = 0;
        let mut after = (String::new(), String::new(), String::new());
        let followed = async {
            loop {
                if Instant::now() >= stop_at {
                    return Ok(sent);
                }
                // Whether the writer was done is read before the page: a page read empty after
                // the writer ended means every line was taken.
                let writer_done = written_pages.has_changed().is_err();
                written_pages.mark_unchanged();
                let lines = self.lines_after(prefix, month, MonthOutcome::Pending, &after).await?;
                if let Some(last) = lines.last() {
                    after = (last.month.clone(), last.village.clone(), last.assignment_id.clone());
                    sent += self.send_lines(call, Some(caller), lines, Some(stop_at)).await?;
                    continue;
                }
                if writer_done {
                    return Ok(sent);
                }
                tokio::select! {
                    // A page committed, or the writer ended (the loop then reads once more).
                    _ = written_pages.changed() => {}
                    () = tokio::time::sleep_until(stop_at.into()) => return Ok(sent),
                }
            }
        };
        let outcome: Result<usize, Problem> = followed.await;
        sending.lease.release().await;
        outcome
    }

    /// Sends a region's pending lines of a month (every month when empty) to subsidy payment,
    /// and with `resend_refused` the ones it refused before (a clerk re-running CloseMonth after
    /// fixing the cause), and records what it answered: the claim, a refusal, or still pending
    /// when it could not be reached or asked for a later retry.
    ///
    /// One sender at a time: with `stop_at` (CloseMonth) it waits for the place until then; without
    /// (the retry job) it sends nothing while another sender holds it, and its next round looks
    /// again.
    pub async fn send_pending(
        &self,
        call: &CallContext,
        caller: Option<&Principal>,
        prefix: &str,
        month: &str,
        resend_refused: bool,
        stop_at: Option<Instant>,
    ) -> Result<usize, Problem> {
        let Some(sending) = self.take_sender(stop_at).await? else {
            return Ok(0);
        };
        let sent = self
            .send_pending_held(call, caller, prefix, month, resend_refused, stop_at)
            .await;
        sending.lease.release().await;
        sent
    }

    /// The sender's place. Two senders of the same pending lines (CloseMonth and the retry job
    /// in one round) made subsidy payment meet every source twice: the later chunk failed on
    /// the source's unique key, and subsidy payment then took its thousand lines one claim at a
    /// time. The lease alone serves PostgreSQL (a session lock, other connections of this
    /// process included); SQLite's lease is always granted, so this process's lock serves it.
    async fn take_sender(&self, wait_until: Option<Instant>) -> Result<Option<Sending<'_>>, Problem> {
        loop {
            if let Ok(local) = self.sender.try_lock()
                && let Some(lease) = bangfu_platform::lease::try_take(self.db(), SENDER_LEASE).await?
            {
                return Ok(Some(Sending { _local: local, lease }));
            }
            match wait_until {
                Some(at) if Instant::now() + SENDER_POLL < at => tokio::time::sleep(SENDER_POLL).await,
                _ => return Ok(None),
            }
        }
    }

    async fn send_pending_held(
        &self,
        call: &CallContext,
        caller: Option<&Principal>,
        prefix: &str,
        month: &str,
        resend_refused: bool,
        stop_at: Option<Instant>,
    ) -> Result<usize, Problem> {
        let mut sent = 0;
        let outcomes: &[MonthOutcome] = if resend_refused {
            &[MonthOutcome::Pending, MonthOutcome::ClaimRefused]
        } else {
            &[MonthOutcome::Pending]
        };
        for outcome in outcomes {
            // Page by page, so a city's month is never all in memory at once.
            let mut after = (String::new(), String::new(), String::new());
            loop {
                if stop_at.is_some_and(|at| Instant::now() >= at) {
                    return Ok(sent);
                }
                let lines = self.lines_after(prefix, month, *outcome, &after).await?;
                let Some(last) = lines.last() else { break };
                after = (last.month.clone(), last.village.clone(), last.assignment_id.clone());
                let full = lines.len() == LINES_PER_PAGE as usize;
                sent += self.send_lines(call, caller, lines, stop_at).await?;
                if !full {
                    break;
                }
            }
        }
        Ok(sent)
    }

    /// A page of a month's lines in `outcome` (every month when empty) after `after`
    /// (month, village, signing), in that order.
    async fn lines_after(
        &self,
        prefix: &str,
        month: &str,
        outcome: MonthOutcome,
        after: &(String, String, String),
    ) -> Result<Vec<MonthLine>, Problem> {
        let mut conn = self.db().acquire().await?;
        Ok(store::month_lines_after(
            &mut conn,
            prefix,
            month,
            outcome,
            (&after.0, &after.1, &after.2),
            LINES_PER_PAGE,
        )
        .await?)
    }

    /// Sends lines to subsidy payment, grouped by policy and month, a few calls at once.
    async fn send_lines(
        &self,
        call: &CallContext,
        caller: Option<&Principal>,
        mut lines: Vec<MonthLine>,
        stop_at: Option<Instant>,
    ) -> Result<usize, Problem> {
        let peers = self.peers()?;
        // One group per policy and month: the version that decides a month is the one covering it.
        let mut by_policy: BTreeMap<(String, String), Vec<(MonthLine, MonthFacts)>> = BTreeMap::new();
        for line in lines.drain(..) {
            let facts: MonthFacts = serde_json::from_str(&line.facts).map_err(|e| {
                tracing::error!(assignment = %line.assignment_id, error = %e, "a month line's facts do not parse");
                Problem::internal()
            })?;
            by_policy
                .entry((facts.policy.clone(), facts.first.clone()))
                .or_default()
                .push((line, facts));
        }
        let mut sent = 0;
        for ((policy, first), group) in by_policy {
            let day = parse_date_text(&first).unwrap_or(Date::MIN);
            let names = peers.claim_fact_names(call, &policy, day).await?;
            // A call per few thousand lines, a few at once, each settled in its own transaction:
            // a month of a whole city keeps what was sent even if subsidy payment goes away
            // half-way. Past the budget no new call starts; the rest stays pending for the job.
            let mut chunks: Vec<ChunkCall<'_>> = Vec::new();
            for chunk in group.chunks(CLAIMS_PER_CALL) {
                chunks.push(Box::pin(self.send_chunk(
                    call,
                    caller,
                    &policy,
                    &first,
                    names.as_deref(),
                    chunk,
                    stop_at,
                )));
            }
            let mut calls = futures_util::stream::iter(chunks).buffer_unordered(CALLS_AT_ONCE);
            while let Some(done) = calls.next().await {
                sent += done?;
            }
        }
        Ok(sent)
    }

    /// Sends one chunk of a policy's month (or refuses it when no version covers the month) and
    /// settles the answers in one transaction; the lines settled. Past `stop_at` it sends nothing.
    #[allow(clippy::too_many_arguments)]
    async fn send_chunk(
        &self,
        call: &CallContext,
        caller: Option<&Principal>,
        policy: &str,
        first: &str,
        names: Option<&[String]>,
        chunk: &[(MonthLine, MonthFacts)],
        stop_at: Option<Instant>,
    ) -> Result<usize, Problem> {
        if stop_at.is_some_and(|at| Instant::now() >= at) {
            return Ok(0);
        }
        let peers = self.peers()?;
        let settled: Vec<Settled> = match names {
            None => chunk
                .iter()
                .map(|(line, _)| Settled {
                    assignment_id: line.assignment_id.clone(),
                    month: line.month.clone(),
                    village: line.village.clone(),
                    facts: line.facts.clone(),
                    outcome: MonthOutcome::ClaimRefused,
                    claim: String::new(),
                    message: format!("POLICY_NOT_IN_FORCE: 补贴政策 {policy} 在 {first} 所在月份无有效版本"),
                })
                .collect(),
            Some(names) => {
                let claims: Vec<ClaimLine> = chunk
                    .iter()
                    .map(|(line, facts)| ClaimLine {
                        line_reference: line.assignment_id.clone(),
                        policy: policy.to_string(),
                        person_id: facts.person_id.clone(),
                        first: parse_date_text(&facts.first).unwrap_or(Date::MIN),
                        last: parse_date_text(&facts.last).unwrap_or(Date::MIN),
                        facts: claim_facts(
                            names,
                            facts.days_on_post,
                            facts.days_required,
                            facts.hours_on_post,
                            facts.evaluation_passed,
                            facts.monthly_standard,
                            parse_date_text(&facts.first_hire_date).unwrap_or(Date::MIN),
                        ),
                        organization: None,
                        reference: month_reference(&line.assignment_id, &line.month),
                    })
                    .collect();
                let answers = peers.submit(call, &claims).await?;
                chunk
                    .iter()
                    .zip(answers)
                    .filter_map(|((line, _), answer)| {
                        let (outcome, claim, message) = match answer {
                            // The decision's message now, as the claim feed would write it later:
                            // the follower then finds the line as it would leave it.
                            LineAnswer::Claim(decided) => (
                                MonthOutcome::ClaimSubmitted,
                                decided.claim.clone(),
                                super::exits::outcome_message(&decided).unwrap_or_default(),
                            ),
                            LineAnswer::Refused { retryable: true, .. } => return None,
                            LineAnswer::Refused { message, .. } => (MonthOutcome::ClaimRefused, String::new(), message),
                        };
                        Some(Settled {
                            assignment_id: line.assignment_id.clone(),
                            month: line.month.clone(),
                            village: line.village.clone(),
                            facts: line.facts.clone(),
                            outcome,
                            claim,
                            message,
                        })
                    })
                    .collect()
            }
        };
        let villages: BTreeSet<&str> = chunk.iter().map(|(line, _)| line.village.as_str()).collect();
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let subject = caller.map_or(crate::SERVICE, |caller| caller.subject.as_str());
        store::settle_month_lines(unit.tx(), &settled, subject, now).await?;
        let audits = villages
            .iter()
            .map(|village| {
                let resource = format!("monthClosings/{village}/{}", first.get(..7).unwrap_or(first));
                match caller {
                    Some(caller) => AuditEntry::by(caller, &method("CloseMonth"), resource, now),
                    None => AuditEntry::by_service(crate::SERVICE, &method("CloseMonth"), resource, now),
                }
                .in_region(village)
            })
            .collect();
        unit.audit_many(audits).await?;
        unit.commit_audited().await?;
        Ok(settled.len())
    }
}
