//! Funds (资金): a source's budget for a region and year, and its journal.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::write::{self, Begun};
use tonic::Code;

use super::{Subsidy, method};
use crate::domain::FundSource;
use crate::store::{self, LedgerEntry, NewFund, StoredFund};

/// What CreateFund asks for.
pub struct NewFundRequest {
    pub display_name: String,
    pub fund_source: FundSource,
    pub region_prefix: String,
    pub year: i32,
    pub budget_document: String,
    pub budget: i64,
}

/// A page of funds.
pub struct FundListing {
    pub funds: Vec<StoredFund>,
    pub more: bool,
}

/// The ledger's accounts, as stored and as the contract names them.
pub mod account {
    pub const TREASURY: &str = "treasury";
    pub const AVAILABLE: &str = "available";
    pub const RESERVED: &str = "reserved";
    pub const PAYABLE: &str = "payable";
    pub const PAID: &str = "paid";
    pub const RECOVERABLE: &str = "recoverable";
}

fn fund_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("funds/{id}"))
}

impl Subsidy {
    pub async fn create_fund(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        new: NewFundRequest,
    ) -> Result<StoredFund, Problem> {
        let resource = format!("funds of {}", new.region_prefix);
        self.ensure_sees(caller, "CreateFund", &resource, &new.region_prefix)?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("funds/");
                let mut conn = self.db().acquire().await?;
                return store::get_fund(&mut conn, id).await?.ok_or_else(|| fund_not_found(id));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let Some(id) = store::insert_fund(
            unit.tx(),
            &NewFund {
                display_name: &new.display_name,
                fund_source: new.fund_source,
                region_prefix: &new.region_prefix,
                year: new.year,
                budget_document: &new.budget_document,
                budget: new.budget,
            },
            &caller.subject,
            now,
        )
        .await?
        else {
            return Err(Problem::new(
                Code::AlreadyExists,
                ErrorReason::AlreadyExists,
                format!(
                    "a fund of {} for {} in {} exists; adjust its budget instead",
                    new.fund_source.as_str(),
                    new.region_prefix,
                    new.year
                ),
                "该资金来源、地区和年度的资金已存在，请调整其预算",
            ));
        };
        store::append_entry(
            unit.tx(),
            &LedgerEntry {
                fund_id: id.clone(),
                seq: 0,
                kind: "budget".into(),
                debit: account::AVAILABLE.into(),
                credit: account::TREASURY.into(),
                amount: new.budget,
                claim_id: None,
                batch_id: None,
                document: new.budget_document.clone(),
                entry_date: self.today(),
                subject: caller.subject.clone(),
                recorded: now,
            },
        )
        .await?;
        let fund = store::get_fund(unit.tx(), &id).await?.ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("CreateFund"), fund.name(), now).in_region(&fund.region_prefix))
            .await?;
        Ok(fund)
    }

    pub async fn get_fund(&self, caller: &Principal, id: &str) -> Result<StoredFund, Problem> {
        let mut conn = self.db().acquire().await?;
        let fund = store::get_fund(&mut conn, id)
            .await?
            .ok_or_else(|| fund_not_found(id))?;
        self.ensure_fund_visible(caller, "GetFund", &fund)?;
        Ok(fund)
    }

    /// A fund is visible to a caller whose scope covers, or lies under, its region: a county
    /// sees the city's fund its claims draw on.
    fn ensure_fund_visible(&self, caller: &Principal, method_name: &str, fund: &StoredFund) -> Result<(), Problem> {
        if caller.scope.narrowed(&fund.region_prefix).is_some() {
            Ok(())
        } else {
            Err(self.refuse(caller, method_name, &fund.name(), Problem::not_found(&fund.name())))
        }
    }

    pub async fn list_funds(
        &self,
        caller: &Principal,
        source: Option<FundSource>,
        region_prefix: &str,
        year: i32,
        after: Option<(i32, String, String, String)>,
        limit: u32,
    ) -> Result<FundListing, Problem> {
        let mut conn = self.db().acquire().await?;
        let mut funds = Vec::new();
        let mut cursor = after;
        loop {
            let chunk = store::list_funds(&mut conn, source, year, cursor.clone(), 500).await?;
            let exhausted = chunk.len() < 500;
            for fund in chunk {
                cursor = Some((
                    fund.year,
                    fund.fund_source.as_str().to_string(),
                    fund.region_prefix.clone(),
                    fund.id.clone(),
                ));
                let in_scope = caller.scope.narrowed(&fund.region_prefix).is_some();
                let asked = region_prefix.is_empty()
                    || fund.region_prefix.starts_with(region_prefix)
                    || region_prefix.starts_with(&fund.region_prefix);
                if in_scope && asked {
                    if funds.len() as u32 == limit {
                        return Ok(FundListing { funds, more: true });
                    }
                    funds.push(fund);
                }
            }
            if exhausted {
                return Ok(FundListing { funds, more: false });
            }
        }
    }

    /// AdjustFundBudget: a raise or a cut at the read etag; a cut never goes below what is
    /// committed.
    pub async fn adjust_fund_budget(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        id: &str,
        delta: i64,
        document: &str,
        etag: &str,
    ) -> Result<(StoredFund, LedgerEntry), Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { .. } => {
                let mut conn = self.db().acquire().await?;
                let fund = store::get_fund(&mut conn, id)
                    .await?
                    .ok_or_else(|| fund_not_found(id))?;
                let entry = store::list_entries(
                    &mut conn,
                    id,
                    &store::EntryFilter {
                        kind: "budget".into(),
                        ..Default::default()
                    },
                    0,
                    i64::MAX,
                )
                .await?
                .pop()
                .ok_or_else(Problem::internal)?;
                return Ok((fund, entry));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let fund = store::get_fund(unit.tx(), id)
            .await?
            .ok_or_else(|| fund_not_found(id))?;
        // Changing a budget needs the whole fund in scope (a county only reads the city's fund).
        self.ensure_sees(caller, "AdjustFundBudget", &fund.name(), &fund.region_prefix)?;
        if fund.etag() != etag {
            return Err(Problem::etag_mismatch(&fund.name()));
        }
        if !store::adjust_budget(unit.tx(), id, delta, fund.revision).await? {
            let read_again = store::get_fund(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
            if read_again.revision != fund.revision {
                return Err(Problem::etag_mismatch(&fund.name()));
            }
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::BudgetExhausted,
                format!(
                    "the cut of {} fen would leave less than the {} fen committed",
                    -delta,
                    fund.reserved + fund.payable + fund.consumed
                ),
                "调减后的预算少于已占用的金额，无法调减",
            ));
        }
        let (debit, credit) = if delta > 0 {
            (account::AVAILABLE, account::TREASURY)
        } else {
            (account::TREASURY, account::AVAILABLE)
        };
        let mut entry = LedgerEntry {
            fund_id: id.to_string(),
            seq: 0,
            kind: "budget".into(),
            debit: debit.into(),
            credit: credit.into(),
            amount: delta.abs(),
            claim_id: None,
            batch_id: None,
            document: document.to_string(),
            entry_date: self.today(),
            subject: caller.subject.clone(),
            recorded: now,
        };
        entry.seq = store::append_entry(unit.tx(), &entry).await?;
        let fund = store::get_fund(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("AdjustFundBudget"), fund.name(), now).in_region(&fund.region_prefix),
        )
        .await?;
        Ok((fund, entry))
    }

    pub async fn list_ledger_entries(
        &self,
        caller: &Principal,
        id: &str,
        filter: &store::EntryFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, Problem> {
        let mut conn = self.db().acquire().await?;
        let fund = store::get_fund(&mut conn, id)
            .await?
            .ok_or_else(|| fund_not_found(id))?;
        self.ensure_fund_visible(caller, "ListLedgerEntries", &fund)?;
        Ok(store::list_entries(&mut conn, id, filter, after, i64::from(limit)).await?)
    }
}
