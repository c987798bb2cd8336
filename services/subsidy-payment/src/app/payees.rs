//! Payee accounts (收款账户): registered with the holder's citizen ID and name, checked against
//! identity (a name match, nothing unmasked), stored encrypted, listed masked.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::pii::{CitizenId, DataKeys, mask_account_number, mask_name};
use bangfu_platform::write::{self, Begun};
use time::OffsetDateTime;
use tonic::Code;

use super::Subsidy;
use crate::domain::{AccountKind, Payee, Period, VerificationMethod, VerificationState};
use crate::identity::Lookup;
use crate::store::{self, StoredAccount};

/// What RegisterPayeeAccount asks for.
pub struct NewAccount {
    pub owner: Payee,
    pub kind: AccountKind,
    pub account_number: String,
    pub holder_name: String,
    /// Required for a person's account.
    pub holder_citizen_id: Option<String>,
    pub bank_name: String,
    pub bank_code: String,
    /// Required for an organization's account: the registration the clerk checked.
    pub verification_document: String,
}

/// What the checks decided of a new account.
struct Checked {
    region: String,
    owner_display_name: String,
    state: VerificationState,
    method: VerificationMethod,
}

/// Who holds a listed account.
pub enum RowHolder {
    Person { citizen_id: String },
    Organization { credit_code: String },
}

/// One row of an account list, checked for form.
pub struct AccountRow {
    pub holder: RowHolder,
    pub kind: AccountKind,
    pub account_number: String,
    pub holder_name: String,
    pub bank_name: String,
    pub bank_code: String,
}

impl AccountRow {
    fn account(&self, owner: Payee, holder_citizen_id: Option<String>, verification_document: String) -> NewAccount {
        NewAccount {
            owner,
            kind: self.kind,
            account_number: self.account_number.clone(),
            holder_name: self.holder_name.clone(),
            holder_citizen_id,
            bank_name: self.bank_name.clone(),
            bank_code: self.bank_code.clone(),
            verification_document,
        }
    }
}

/// What a whole account list says once, in its first message.
#[derive(Debug, Clone, Default)]
pub struct AccountList {
    /// The bank's or the county's letter, the file's name.
    pub source_document: String,
    /// The registration checked for organizations' rows.
    pub verification_document: String,
    /// The county organizations' rows are registered in.
    pub organization_region: String,
}

/// A row's account: new, or the same one registered before.
pub struct RowRegistered {
    pub account: StoredAccount,
    pub created: bool,
}

/// What ListPayeeAccounts narrows to; `None` and `false` for any.
pub struct AccountQuery<'a> {
    pub owner: Option<&'a Payee>,
    pub verification_state: Option<VerificationState>,
    pub in_use_only: bool,
}

/// A page of accounts.
pub struct AccountListing {
    pub accounts: Vec<StoredAccount>,
    pub more: bool,
}

/// The additional data an encrypted field is bound to: an envelope moved to another account or
/// field does not decrypt.
pub(crate) fn aad(account_id: &str, field: &str) -> Vec<u8> {
    format!("payeeAccounts/{account_id}/{field}").into_bytes()
}

fn account_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("payeeAccounts/{id}"))
}

impl Subsidy {
    pub async fn register_payee_account(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        new: NewAccount,
    ) -> Result<StoredAccount, Problem> {
        let keys = self.data_keys()?;
        let today = self.today();
        let (region, owner_display_name, state, method) = match &new.owner {
            Payee::Person(person_id) => {
                let text = new
                    .holder_citizen_id
                    .as_deref()
                    .ok_or_else(|| Problem::required("payee_account.holder_citizen_id", "持卡人身份证号"))?;
                let citizen_id = CitizenId::parse(text, today).map_err(|e| {
                    Problem::invalid_field(
                        ErrorReason::CitizenIdInvalid,
                        "payee_account.holder_citizen_id",
                        e.to_string(),
                        e.message_zh(),
                    )
                })?;
                let resource = format!("persons/{person_id}");
                let person = self
                    .identity()?
                    .person(
                        call,
                        person_id,
                        &Period {
                            first: today,
                            last: today,
                        },
                    )
                    .await?
                    .ok_or_else(|| {
                        self.refuse(caller, "RegisterPayeeAccount", &resource, Problem::not_found(&resource))
                    })?;
                self.ensure_sees(caller, "RegisterPayeeAccount", &resource, &person.registered_region)?;
                // The check by citizen ID is the service's own (finance clerks may not look
                // persons up by ID); the clerk learns only whether the holder is the payee they
                // can already see.
                let own = CallContext::new(None, call.deadline());
                let (state, method) = match self
                    .identity()?
                    .lookup(&own, citizen_id.as_str(), &new.holder_name)
                    .await
                {
                    Ok(Lookup::Found {
                        person_id: holder,
                        name_matches,
                    }) if holder == *person_id => {
                        if name_matches {
                            (VerificationState::Verified, VerificationMethod::IdentityNameMatch)
                        } else {
                            (VerificationState::NameMismatch, VerificationMethod::IdentityNameMatch)
                        }
                    }
                    // The ID belongs to someone else: the account is not this payee's.
                    Ok(Lookup::Found { .. }) => {
                        (VerificationState::NameMismatch, VerificationMethod::IdentityNameMatch)
                    }
                    Ok(Lookup::NotFound) => (VerificationState::PersonNotFound, VerificationMethod::IdentityNameMatch),
                    Err(problem) if problem.code == Code::Unavailable => {
                        (VerificationState::Pending, VerificationMethod::None)
                    }
                    Err(problem) => return Err(problem),
                };
                (person.registered_region, person.display_name, state, method)
            }
            Payee::Organization(org) => {
                if new.verification_document.is_empty() {
                    return Err(Problem::required(
                        "payee_account.verification_document",
                        "单位登记证明文件",
                    ));
                }
                self.ensure_sees(
                    caller,
                    "RegisterPayeeAccount",
                    &format!("organizations/{}", org.credit_code),
                    &org.region,
                )?;
                (
                    org.region.clone(),
                    org.display_name.clone(),
                    VerificationState::Verified,
                    VerificationMethod::OrganizationRegistration,
                )
            }
        };
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("payeeAccounts/");
                let mut conn = self.db().acquire().await?;
                return store::get_account(&mut conn, id)
                    .await?
                    .ok_or_else(|| account_not_found(id));
            }
            Begun::Fresh(unit) => unit,
        };
        let checked = Checked {
            region,
            owner_display_name,
            state,
            method,
        };
        let now = unit.now();
        let account = self
            .store_account(unit.tx(), caller, "RegisterPayeeAccount", keys, &new, checked, now)
            .await?;
        unit.commit(
            AuditEntry::by(caller, &super::method("RegisterPayeeAccount"), account.name(), now)
                .in_region(&account.region),
        )
        .await?;
        Ok(account)
    }

    /// Encrypts and stores a checked account, superseding the payee's account in use when this
    /// one is verified. Replacing another's account needs sight of that one's region too.
    #[allow(clippy::too_many_arguments)]
    async fn store_account(
        &self,
        tx: &mut sqlx::AnyConnection,
        caller: &Principal,
        method_name: &str,
        keys: &DataKeys,
        new: &NewAccount,
        checked: Checked,
        now: OffsetDateTime,
    ) -> Result<StoredAccount, Problem> {
        if let Some(current) = store::account_in_use(tx, &new.owner).await?
            && !caller.scope.contains(&current.region)
        {
            return Err(self.refuse(
                caller,
                method_name,
                &current.name(),
                Problem::not_found(&current.name()),
            ));
        }
        let id = store::new_id();
        let encrypt = |value: &str, field: &str| {
            keys.encrypt(value.as_bytes(), &aad(&id, field)).map_err(|e| {
                tracing::error!(error = %e, "encrypting a payee account failed");
                Problem::internal()
            })
        };
        let holder_citizen_id_enc = match &new.holder_citizen_id {
            Some(text) => Some(encrypt(text.trim(), "holder_citizen_id")?),
            None => None,
        };
        let holder_name_masked = match new.owner {
            Payee::Person(_) => mask_name(&new.holder_name),
            Payee::Organization(_) => new.holder_name.clone(),
        };
        let account = StoredAccount {
            id: id.clone(),
            owner: new.owner.clone(),
            owner_display_name: checked.owner_display_name,
            region: checked.region,
            kind: new.kind,
            account_enc: encrypt(&new.account_number, "account_number")?,
            account_masked: mask_account_number(&new.account_number),
            holder_name_enc: encrypt(&new.holder_name, "holder_name")?,
            holder_name_masked,
            holder_citizen_id_enc,
            bank_name: new.bank_name.clone(),
            bank_code: new.bank_code.clone(),
            verification_state: checked.state,
            verification_method: checked.method,
            verification_document: new.verification_document.clone(),
            verified: (checked.state == VerificationState::Verified).then_some(now),
            in_use: checked.state == VerificationState::Verified,
            superseded_by: None,
            create_subject: caller.subject.clone(),
            created: now,
        };
        store::insert_account(tx, &account).await?;
        Ok(account)
    }

    /// RegisterPayeeAccounts, one message of a bank's or a county's list: every row's holder is
    /// looked up in identity at once (by citizen ID and name, nothing unmasked), and the rows
    /// are stored in one transaction. A row already registered (same payee, kind and number)
    /// is UNCHANGED, so a list sent again registers nothing twice. Identity unreachable fails
    /// the message: no row is decided on missing facts.
    pub async fn register_payee_accounts(
        &self,
        caller: &Principal,
        call: &CallContext,
        list: &AccountList,
        rows: Vec<Result<AccountRow, Problem>>,
    ) -> Result<Vec<Result<RowRegistered, Problem>>, Problem> {
        if list.source_document.is_empty() {
            return Err(Problem::required("source_document", "账户名单来源"));
        }
        let keys = self.data_keys()?;
        let today = self.today();
        // Form first: a citizen ID that does not parse is the row's error, not identity's.
        let rows: Vec<Result<AccountRow, Problem>> = rows
            .into_iter()
            .map(|row| {
                let row = row?;
                if let RowHolder::Person { citizen_id } = &row.holder {
                    CitizenId::parse(citizen_id, today).map_err(|e| {
                        Problem::invalid_field(
                            ErrorReason::CitizenIdInvalid,
                            "holder_citizen_id",
                            e.to_string(),
                            e.message_zh(),
                        )
                    })?;
                }
                Ok(row)
            })
            .collect();
        let holders: Vec<(String, String)> = rows
            .iter()
            .filter_map(|row| match row {
                Ok(AccountRow {
                    holder: RowHolder::Person { citizen_id },
                    holder_name,
                    ..
                }) => Some((citizen_id.clone(), holder_name.clone())),
                _ => None,
            })
            .collect();
        let identity = self.identity()?;
        // The check by citizen ID is the service's own, as for one account; the clerk sees
        // only the persons their own scope lets identity give them.
        let own = CallContext::new(None, call.deadline());
        let mut lookups = identity.lookup_many(&own, &holders).await?.into_iter();
        let mut owners: Vec<Option<(String, bool)>> = Vec::with_capacity(rows.len());
        for row in &rows {
            owners.push(match row {
                Ok(AccountRow {
                    holder: RowHolder::Person { .. },
                    ..
                }) => match lookups.next() {
                    Some(Lookup::Found {
                        person_id,
                        name_matches,
                    }) => Some((person_id, name_matches)),
                    _ => None,
                },
                _ => None,
            });
        }
        let ids: Vec<String> = owners.iter().flatten().map(|(id, _)| id.clone()).collect();
        let today_period = Period {
            first: today,
            last: today,
        };
        let persons = identity.persons(call, &ids, &today_period).await?;
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut seen = std::collections::HashSet::new();
        let mut results = Vec::with_capacity(rows.len());
        for (row, owner) in rows.into_iter().zip(owners) {
            let registered = async {
                let row = row?;
                let (new, checked) = match &row.holder {
                    RowHolder::Person { citizen_id } => {
                        let not_held = || {
                            Problem::invalid_field(
                                ErrorReason::NotFound,
                                "holder_citizen_id",
                                "no person in your scope holds this citizen ID; register the person in identity first",
                                "您管辖范围内没有持该身份证号的人员，请先在人员库登记",
                            )
                        };
                        let (person_id, name_matches) = owner.ok_or_else(not_held)?;
                        // Identity shows a person to a clerk of their residence too; the
                        // account is the registered county's. Either refusal is audited and
                        // answered as if nobody held the ID.
                        let resource = format!("persons/{person_id}");
                        let person = persons
                            .get(&person_id)
                            .filter(|p| caller.scope.contains(&p.registered_region))
                            .ok_or_else(|| {
                                self.refuse(caller, "RegisterPayeeAccounts", &resource, not_held());
                                not_held()
                            })?;
                        let new = row.account(Payee::Person(person_id), Some(citizen_id.clone()), String::new());
                        let state = if name_matches {
                            VerificationState::Verified
                        } else {
                            VerificationState::NameMismatch
                        };
                        let checked = Checked {
                            region: person.registered_region.clone(),
                            owner_display_name: person.display_name.clone(),
                            state,
                            method: VerificationMethod::IdentityNameMatch,
                        };
                        (new, checked)
                    }
                    RowHolder::Organization { credit_code } => {
                        if list.verification_document.is_empty() {
                            return Err(Problem::required("verification_document", "单位登记证明文件"));
                        }
                        if list.organization_region.is_empty() {
                            return Err(Problem::required("organization_region", "单位所在区县"));
                        }
                        let org = crate::domain::OrganizationPayee {
                            credit_code: credit_code.clone(),
                            display_name: row.holder_name.clone(),
                            region: list.organization_region.clone(),
                        };
                        let resource = format!("organizations/{credit_code}");
                        self.ensure_sees(caller, "RegisterPayeeAccounts", &resource, &org.region)?;
                        let new = row.account(Payee::Organization(org), None, list.verification_document.clone());
                        let checked = Checked {
                            region: list.organization_region.clone(),
                            owner_display_name: row.holder_name.clone(),
                            state: VerificationState::Verified,
                            method: VerificationMethod::OrganizationRegistration,
                        };
                        (new, checked)
                    }
                };
                let (_, owner_key) = store::owner_key(&new.owner);
                if !seen.insert(owner_key) {
                    return Err(Problem::invalid_field(
                        ErrorReason::DuplicateInImport,
                        "holder_citizen_id",
                        "the same payee is on an earlier row of this message; send one account per payee",
                        "同一收款人在本批前面的行中已出现，每个收款人只能登记一个账户",
                    ));
                }
                // The same account, checked the same way and not replaced since, is this row
                // sent again; a corrected name or an account taken back into use is a new
                // registration. Accounts outside the caller's scope are never matched.
                for existing in store::accounts_of(unit.tx(), &new.owner).await? {
                    if existing.kind != new.kind
                        || existing.verification_state != checked.state
                        || existing.superseded_by.is_some()
                        || !caller.scope.contains(&existing.region)
                    {
                        continue;
                    }
                    let number = keys
                        .decrypt(&existing.account_enc, &aad(&existing.id, "account_number"))
                        .map_err(|e| {
                            tracing::error!(account = %existing.id, error = %e, "decrypting a payee account failed");
                            Problem::internal()
                        })?;
                    if number == new.account_number.as_bytes() {
                        return Ok(RowRegistered {
                            account: existing,
                            created: false,
                        });
                    }
                }
                let account = self
                    .store_account(unit.tx(), caller, "RegisterPayeeAccounts", keys, &new, checked, now)
                    .await?;
                unit.audit(
                    AuditEntry::by(caller, &super::method("RegisterPayeeAccounts"), account.name(), now)
                        .in_region(&account.region),
                )
                .await?;
                Ok(RowRegistered { account, created: true })
            }
            .await;
            // A database failure is the message's, not the row's: nothing of it is kept.
            if let Err(problem) = &registered
                && problem.code != Code::InvalidArgument
                && problem.code != Code::NotFound
            {
                return Err(problem.clone());
            }
            results.push(registered);
        }
        unit.commit_audited().await?;
        Ok(results)
    }

    pub async fn get_payee_account(&self, caller: &Principal, id: &str) -> Result<StoredAccount, Problem> {
        let mut conn = self.db().acquire().await?;
        let account = store::get_account(&mut conn, id)
            .await?
            .ok_or_else(|| account_not_found(id))?;
        self.ensure_sees(caller, "GetPayeeAccount", &account.name(), &account.region)?;
        Ok(account)
    }

    pub async fn list_payee_accounts(
        &self,
        caller: &Principal,
        region_prefix: &str,
        query: AccountQuery<'_>,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<AccountListing, Problem> {
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok(AccountListing {
                accounts: Vec::new(),
                more: false,
            });
        };
        let filter = store::AccountFilter {
            owner_key: query.owner.map(|o| store::owner_key(o).1).unwrap_or_default(),
            verification_state: query
                .verification_state
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            in_use_only: query.in_use_only,
        };
        let mut conn = self.db().acquire().await?;
        let mut accounts = store::list_accounts(&mut conn, &prefix, &filter, after, i64::from(limit) + 1).await?;
        let more = accounts.len() > limit as usize;
        accounts.truncate(limit as usize);
        Ok(AccountListing { accounts, more })
    }
}
