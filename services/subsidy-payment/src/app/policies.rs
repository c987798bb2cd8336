//! The policy catalog's use cases: create a policy with its first version, add versions,
//! publish by a second subject, read and list; and the policy files shipped with the service.

use std::sync::Arc;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::write::{self, Begun};
use time::Date;
use tonic::Code;

use super::{Subsidy, invalid, method};
use crate::domain::{
    CompiledRules, ExampleResult, Policy, PolicyVersion, StoredVersion, VersionState, check_policy, check_version,
    policy_name, version_name,
};
use crate::store::{self, StoredPolicy};

/// A version as created: stored (unless validate-only) and its examples' results.
pub struct CreatedVersion {
    pub policy: Option<StoredPolicy>,
    pub version: Option<StoredVersion>,
    pub examples: Vec<ExampleResult>,
}

/// The filters of ListPolicies.
#[derive(Debug, Clone, Default)]
pub struct PolicyQuery {
    pub region_prefix: String,
    pub fund_source: Option<crate::domain::FundSource>,
    pub policy_group: String,
    pub in_force_on: Option<Date>,
}

/// A page of policies with their version in force today.
pub struct PolicyListing {
    pub policies: Vec<(StoredPolicy, Option<StoredVersion>, Option<StoredVersion>)>,
    pub next_after: Option<String>,
}

fn rule_invalid(error: crate::domain::FieldError) -> Problem {
    Problem::invalid_field(
        ErrorReason::PolicyRuleInvalid,
        error.field,
        error.message,
        error.message_zh,
    )
}

/// Compiles the rules and evaluates every example; a failing one refuses the version.
fn checked_rules(policy: &Policy, version: &PolicyVersion, first: bool) -> Result<Vec<ExampleResult>, Problem> {
    check_version(policy, version, first).map_err(invalid)?;
    let rules = CompiledRules::compile(Arc::new(version.clone())).map_err(rule_invalid)?;
    let (results, passed) = rules.check_examples();
    if !passed {
        let failed: Vec<String> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| format!("{}：{}", r.title, r.message))
            .collect();
        let index = results.iter().position(|r| !r.passed).unwrap_or(0);
        return Err(Problem::invalid_field(
            ErrorReason::PolicyExampleFailed,
            format!("version.examples[{index}]"),
            format!("{} example case(s) fail: {}", failed.len(), failed.join("; ")),
            format!("测算样例未通过：{}", failed.join("；")),
        ));
    }
    Ok(results)
}

fn policy_not_found(code: &str) -> Problem {
    Problem::not_found(&policy_name(code))
}

impl Subsidy {
    /// CreatePolicy: the policy and its first version (a draft), examples evaluated.
    pub async fn create_policy(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        policy: Policy,
        version: PolicyVersion,
        validate_only: bool,
    ) -> Result<CreatedVersion, Problem> {
        check_policy(&policy).map_err(invalid)?;
        self.ensure_issues_for(caller, "CreatePolicy", &policy.code, &version)?;
        let examples = checked_rules(&policy, &version, true)?;
        if validate_only {
            return Ok(CreatedVersion {
                policy: None,
                version: None,
                examples,
            });
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { .. } => {
                let mut conn = self.db().acquire().await?;
                let stored = store::get_policy(&mut conn, &policy.code).await?;
                let version = store::get_version(&mut conn, &policy.code, 1).await?;
                return Ok(CreatedVersion {
                    policy: stored,
                    version,
                    examples,
                });
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        // A group's claims hold periods under one key per subject and unit: a policy that cut
        // them by days beside one by months, or keyed them by organizations beside persons,
        // would never meet the group's other claims, and the group would pay twice.
        if let Some((period_kind, subject)) = store::group_shape(unit.tx(), &policy.policy_group).await?
            && (period_kind, subject) != (policy.period_kind, policy.claim_subject)
        {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "policy.policy_group",
                format!(
                    "the group {} holds {} claims about a {}; a policy in it must be the same",
                    policy.policy_group,
                    period_kind.as_str(),
                    subject.as_str()
                ),
                "同一补贴项目组的政策，发放周期和补贴对象应一致",
            ));
        }
        if !store::insert_policy(unit.tx(), &policy, &caller.subject, now).await? {
            return Err(Problem::new(
                Code::AlreadyExists,
                ErrorReason::AlreadyExists,
                format!("the policy {} exists; add a version to change its rules", policy.code),
                "该政策编码已存在，如需修改规则请新增版本",
            )
            .with_metadata("resource", policy_name(&policy.code)));
        }
        let number = store::insert_version(unit.tx(), &policy.code, &version, &caller.subject, now).await?;
        let stored = store::get_policy(unit.tx(), &policy.code).await?;
        let version = store::get_version(unit.tx(), &policy.code, number).await?;
        unit.commit(AuditEntry::by(
            caller,
            &method("CreatePolicy"),
            version_name(&policy.code, number),
            now,
        ))
        .await?;
        Ok(CreatedVersion {
            policy: stored,
            version,
            examples,
        })
    }

    /// CreatePolicyVersion: a new draft of an existing policy's rules.
    pub async fn create_policy_version(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        code: &str,
        version: PolicyVersion,
        validate_only: bool,
    ) -> Result<CreatedVersion, Problem> {
        let policy = {
            let mut conn = self.db().acquire().await?;
            store::get_policy(&mut conn, code)
                .await?
                .ok_or_else(|| policy_not_found(code))?
        };
        self.ensure_issues_for(caller, "CreatePolicyVersion", code, &version)?;
        let examples = checked_rules(&policy.policy, &version, false)?;
        if validate_only {
            return Ok(CreatedVersion {
                policy: Some(policy),
                version: None,
                examples,
            });
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let number = resource.rsplit('/').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let mut conn = self.db().acquire().await?;
                let version = store::get_version(&mut conn, code, number).await?;
                return Ok(CreatedVersion {
                    policy: Some(policy),
                    version,
                    examples,
                });
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let number = store::insert_version(unit.tx(), code, &version, &caller.subject, now).await?;
        let version = store::get_version(unit.tx(), code, number).await?;
        unit.commit(AuditEntry::by(
            caller,
            &method("CreatePolicyVersion"),
            version_name(code, number),
            now,
        ))
        .await?;
        Ok(CreatedVersion {
            policy: Some(policy),
            version,
            examples,
        })
    }

    /// PublishPolicyVersion: a draft becomes the rules for the periods it covers, by a subject
    /// other than its creator. Checked and made in one guarded UPDATE.
    pub async fn publish_policy_version(
        &self,
        caller: &Principal,
        code: &str,
        number: i32,
        note: &str,
    ) -> Result<StoredVersion, Problem> {
        let name = version_name(code, number);
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let current = store::get_version(unit.tx(), code, number)
            .await?
            .ok_or_else(|| Problem::not_found(&name))?;
        if current.state == VersionState::Published {
            if current.publish_subject.as_deref() == Some(caller.subject.as_str()) {
                // A retry of this publisher's own call: the version as published.
                return Ok(current);
            }
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!("{name} is already published"),
                "该版本已发布",
            ));
        }
        if let Err(refusal) = caller.ensure_not_maker(&current.create_subject) {
            return Err(self.refuse(caller, "PublishPolicyVersion", &name, refusal));
        }
        if !store::publish_version(unit.tx(), code, number, &caller.subject, note, now).await? {
            return Err(Problem::new(
                Code::Aborted,
                ErrorReason::StateConflict,
                format!("{name} changed meanwhile; read it again"),
                "该版本已被他人处理，请刷新后查看",
            ));
        }
        let published = store::get_version(unit.tx(), code, number)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("PublishPolicyVersion"), name, now))
            .await?;
        Ok(published)
    }

    /// A policy's rules are made for the region the caller governs: its scope holds the
    /// version's issuing region ("*" needs the whole country).
    fn ensure_issues_for(
        &self,
        caller: &Principal,
        method_name: &str,
        code: &str,
        version: &PolicyVersion,
    ) -> Result<(), Problem> {
        if caller.scope.contains(&version.issuing_region_prefix) {
            return Ok(());
        }
        let refusal = Problem::new(
            Code::PermissionDenied,
            ErrorReason::PermissionMissing,
            format!(
                "the issuing region {} lies outside the caller's scope {}",
                version.issuing_region_prefix, caller.scope
            ),
            "政策适用地区超出了您的管辖范围",
        );
        Err(self.refuse(caller, method_name, &policy_name(code), refusal))
    }

    pub async fn get_policy(
        &self,
        code: &str,
    ) -> Result<(StoredPolicy, Option<StoredVersion>, Option<StoredVersion>), Problem> {
        let mut conn = self.db().acquire().await?;
        let policy = store::get_policy(&mut conn, code)
            .await?
            .ok_or_else(|| policy_not_found(code))?;
        let latest = store::list_versions(&mut conn, code, 0, 1).await?.into_iter().next();
        let in_force = store::version_in_force(&mut conn, code, self.today()).await?;
        Ok((policy, latest, in_force))
    }

    pub async fn get_policy_version(&self, code: &str, number: i32) -> Result<StoredVersion, Problem> {
        let mut conn = self.db().acquire().await?;
        store::get_version(&mut conn, code, number)
            .await?
            .ok_or_else(|| Problem::not_found(&version_name(code, number)))
    }

    /// Versions newest first, below `before` (0: from the newest).
    pub async fn list_policy_versions(
        &self,
        code: &str,
        before: i32,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, Problem> {
        let mut conn = self.db().acquire().await?;
        store::get_policy(&mut conn, code)
            .await?
            .ok_or_else(|| policy_not_found(code))?;
        Ok(store::list_versions(&mut conn, code, before, i64::from(limit)).await?)
    }

    /// Policies by code after `after`, filtered on their versions.
    pub async fn list_policies(&self, query: &PolicyQuery, after: &str, limit: u32) -> Result<PolicyListing, Problem> {
        let mut conn = self.db().acquire().await?;
        let mut policies = Vec::new();
        let mut cursor = after.to_string();
        let today = self.today();
        // Filters on versions are applied here; read on in chunks until the page is full.
        loop {
            let chunk = store::list_policies(
                &mut conn,
                Some(query.policy_group.as_str()).filter(|g| !g.is_empty()),
                &cursor,
                200,
            )
            .await?;
            let exhausted = chunk.len() < 200;
            for policy in chunk {
                cursor = policy.policy.code.clone();
                let versions = store::list_versions(&mut conn, &policy.policy.code, 0, 1000).await?;
                let matches = versions.iter().any(|v| {
                    let rules = &v.rules;
                    let region_ok = query.region_prefix.is_empty()
                        || rules.issuing_region_prefix == "*"
                        || rules.issuing_region_prefix.starts_with(&query.region_prefix)
                        || query.region_prefix.starts_with(&rules.issuing_region_prefix);
                    let source_ok = query.fund_source.is_none_or(|s| s == rules.fund_source);
                    let in_force_ok = query
                        .in_force_on
                        .is_none_or(|day| v.state == VersionState::Published && rules.covers(day));
                    region_ok && source_ok && in_force_ok
                });
                if matches {
                    let latest = versions.first().cloned();
                    let in_force = versions
                        .iter()
                        .find(|v| v.state == VersionState::Published && v.rules.covers(today))
                        .cloned();
                    policies.push((policy, latest, in_force));
                    if policies.len() as u32 == limit {
                        return Ok(PolicyListing {
                            policies,
                            next_after: Some(cursor),
                        });
                    }
                }
            }
            if exhausted {
                return Ok(PolicyListing {
                    policies,
                    next_after: None,
                });
            }
        }
    }
}

/// The subject the shipped policy files are created by, and the one that publishes them: the
/// files are the documents' own rules, reviewed with the code that ships them.
pub const POLICY_FILES_CREATOR: &str = "system";
pub const POLICY_FILES_PUBLISHER: &str = "system:policy-files";

/// Loads the shipped policies that the catalog does not hold yet, each created and published
/// in one transaction; a policy that exists is left as the catalog has it (a clerk's later
/// versions win). Returns the codes loaded.
pub async fn load_policy_files(
    db: &bangfu_platform::db::Database,
    files: &[(Policy, PolicyVersion)],
    now: time::OffsetDateTime,
) -> Result<Vec<String>, Problem> {
    let mut loaded = Vec::new();
    for (policy, version) in files {
        check_policy(policy).map_err(invalid)?;
        checked_rules(policy, version, true)?;
        let mut unit = write::begin_unkeyed(db, now).await?;
        if !store::insert_policy(unit.tx(), policy, POLICY_FILES_CREATOR, now).await? {
            continue;
        }
        let number = store::insert_version(unit.tx(), &policy.code, version, POLICY_FILES_CREATOR, now).await?;
        store::publish_version(
            unit.tx(),
            &policy.code,
            number,
            POLICY_FILES_PUBLISHER,
            "随系统发布的政策文件（policies/）",
            now,
        )
        .await?;
        unit.commit(AuditEntry::by_service(
            crate::SERVICE,
            &method("CreatePolicy"),
            version_name(&policy.code, number),
            now,
        ))
        .await?;
        loaded.push(policy.code.clone());
    }
    Ok(loaded)
}
