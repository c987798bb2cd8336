//! Payee accounts (收款账户): registered with the holder's citizen ID and name, checked against
//! identity (a name match, nothing unmasked), stored encrypted, listed masked.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::pii::{CitizenId, mask_account_number, mask_name};
use bangfu_platform::write::{self, Begun};
use tonic::Code;

use super::{Subsidy, narrowed};
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
        let now = unit.now();
        // A new account replaces the payee's account in use: only a caller who sees that one may.
        if let Some(current) = store::account_in_use(unit.tx(), &new.owner).await?
            && !caller.scope.contains(&current.region)
        {
            return Err(self.refuse(
                caller,
                "RegisterPayeeAccount",
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
            owner_display_name,
            region: region.clone(),
            kind: new.kind,
            account_enc: encrypt(&new.account_number, "account_number")?,
            account_masked: mask_account_number(&new.account_number),
            holder_name_enc: encrypt(&new.holder_name, "holder_name")?,
            holder_name_masked,
            holder_citizen_id_enc,
            bank_name: new.bank_name.clone(),
            bank_code: new.bank_code.clone(),
            verification_state: state,
            verification_method: method,
            verification_document: new.verification_document.clone(),
            verified: (state == VerificationState::Verified).then_some(now),
            in_use: state == VerificationState::Verified,
            superseded_by: None,
            create_subject: caller.subject.clone(),
            created: now,
        };
        store::insert_account(unit.tx(), &account).await?;
        unit.commit(
            AuditEntry::by(caller, &super::method("RegisterPayeeAccount"), account.name(), now).in_region(&region),
        )
        .await?;
        Ok(account)
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
        owner: Option<&Payee>,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<AccountListing, Problem> {
        let Some(prefix) = narrowed(&caller.scope, region_prefix) else {
            return Ok(AccountListing {
                accounts: Vec::new(),
                more: false,
            });
        };
        let owner_key = owner.map(|o| store::owner_key(o).1).unwrap_or_default();
        let mut conn = self.db().acquire().await?;
        let mut accounts = store::list_accounts(&mut conn, &prefix, &owner_key, after, i64::from(limit) + 1).await?;
        let more = accounts.len() > limit as usize;
        accounts.truncate(limit as usize);
        Ok(AccountListing { accounts, more })
    }
}
