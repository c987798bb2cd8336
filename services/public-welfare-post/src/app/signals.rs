//! Fraud signals (风险线索) and the posts' statistics for the quarterly form (附件1).

use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use time::{Date, Month, Time};

use super::{Posts, invalid};
use crate::store::{self, RawSignal};

/// The kinds of signal, as the contract names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    TwoPosts,
    CadreRelative,
    Rotation,
    OverNeed,
    UnevenPay,
    PaidWithoutEvaluation,
}

impl SignalKind {
    pub const ALL: [SignalKind; 6] = [
        Self::TwoPosts,
        Self::CadreRelative,
        Self::Rotation,
        Self::OverNeed,
        Self::UnevenPay,
        Self::PaidWithoutEvaluation,
    ];
}

/// One signal with the records it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub kind: SignalKind,
    pub region: String,
    pub message: String,
    pub resources: Vec<String>,
}

/// Posts and holders of one type and funding source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    pub post_type: String,
    pub funding_source: String,
    pub posts: i64,
    pub holders: i64,
}

/// GetPostStats' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostStats {
    pub as_of: Date,
    pub rows: Vec<StatsRow>,
    pub persons_placed: i64,
    pub persons_on_post: i64,
}

impl Posts {
    pub async fn fraud_signals(
        &self,
        caller: &Principal,
        prefix: &str,
        only: Option<SignalKind>,
        as_of: Option<Date>,
    ) -> Result<Vec<Signal>, Problem> {
        let resource = format!("fraudSignals/{prefix}");
        self.ensure_sees(caller, "ListFraudSignals", &resource, prefix)?;
        let day = as_of.unwrap_or_else(|| self.today());
        let mut conn = self.db().acquire().await?;
        let mut signals = Vec::new();
        let mut add = |kind: SignalKind, raw: Vec<RawSignal>| {
            signals.extend(raw.into_iter().map(|r| Signal {
                kind,
                region: r.region,
                message: r.detail,
                resources: r.resources,
            }));
        };
        for kind in SignalKind::ALL.into_iter().filter(|k| only.is_none_or(|o| o == *k)) {
            match kind {
                SignalKind::TwoPosts => add(kind, store::two_posts(&mut conn, prefix).await?),
                SignalKind::CadreRelative => add(kind, store::cadre_relatives(&mut conn, prefix, day).await?),
                SignalKind::Rotation => add(kind, store::rotations(&mut conn, prefix).await?),
                SignalKind::UnevenPay => add(kind, store::uneven_pay(&mut conn, prefix).await?),
                SignalKind::PaidWithoutEvaluation => {
                    add(kind, store::paid_without_evaluation(&mut conn, prefix).await?)
                }
                SignalKind::OverNeed => {
                    let mut raw = Vec::new();
                    for (village, count, posts) in store::open_posts_by_village(&mut conn, prefix).await? {
                        let need = self
                            .parameters()
                            .lookup("welfare_post.village_post_need", &village, day)
                            .await?;
                        if let Some(need) = need.filter(|need| count > *need) {
                            raw.push(RawSignal {
                                region: village,
                                detail: format!("本村设岗 {count} 个，超过核定需求 {need} 个（一村多岗）"),
                                resources: posts,
                            });
                        }
                    }
                    add(kind, raw);
                }
            }
        }
        Ok(signals)
    }

    pub async fn post_stats(
        &self,
        caller: &Principal,
        prefix: &str,
        year: i32,
        as_of: Option<Date>,
    ) -> Result<PostStats, Problem> {
        let resource = format!("postStats/{prefix}");
        self.ensure_sees(caller, "GetPostStats", &resource, prefix)?;
        let first = Date::from_calendar_date(year, Month::January, 1)
            .map_err(|_| invalid("year", "is not a year", "统计年度无效"))?;
        let last = match as_of {
            Some(day) => day,
            None => Date::from_calendar_date(year, Month::December, 31)
                .map_err(|_| invalid("year", "is not a year", "统计年度无效"))?,
        };
        if last < first || last.year() != year {
            return Err(invalid(
                "as_of",
                "must lie in the year counted",
                "统计截止日期应在统计年度内",
            ));
        }
        // The day ends at midnight China time: posts created that day count.
        let day_end = last.with_time(Time::MIDNIGHT).assume_offset(time::macros::offset!(+8)) + time::Duration::days(1);
        let mut conn = self.db().acquire().await?;
        let rows = store::counts_on(&mut conn, prefix, last, bangfu_platform::db::to_micros(day_end) - 1)
            .await?
            .into_iter()
            .map(|(post_type, funding_source, posts, holders)| StatsRow {
                post_type,
                funding_source,
                posts,
                holders,
            })
            .collect();
        let (persons_placed, persons_on_post) = store::persons_in(&mut conn, prefix, first, last).await?;
        Ok(PostStats {
            as_of: last,
            rows,
            persons_placed,
            persons_on_post,
        })
    }
}
