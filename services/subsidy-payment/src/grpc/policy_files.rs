//! The policy files shipped with the service (`policies/*.json`): each one CreatePolicy
//! request in the protobuf JSON mapping, the same body a client would send, so a province's
//! own policy is one more file written against the documented contract.

use std::sync::LazyLock;

use bangfu_proto::subsidy::v1 as pb;
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::domain::{Policy, PolicyVersion};

/// Every shipped file, by name.
pub const FILES: &[(&str, &str)] = &[
    (
        "cq-assistance-base-award-2021.json",
        include_str!("../../policies/cq-assistance-base-award-2021.json"),
    ),
    (
        "cq-transport-cross-province.json",
        include_str!("../../policies/cq-transport-cross-province.json"),
    ),
    (
        "cq-welfare-post-2021.json",
        include_str!("../../policies/cq-welfare-post-2021.json"),
    ),
    (
        "cy-agency-2021.json",
        include_str!("../../policies/cy-agency-2021.json"),
    ),
    (
        "cy-welfare-post-2021.json",
        include_str!("../../policies/cy-welfare-post-2021.json"),
    ),
    (
        "cy-training-living-2021.json",
        include_str!("../../policies/cy-training-living-2021.json"),
    ),
    (
        "cy-training-subsidy-2021.json",
        include_str!("../../policies/cy-training-subsidy-2021.json"),
    ),
    (
        "sd-work-relief-remuneration-2023.json",
        include_str!("../../policies/sd-work-relief-remuneration-2023.json"),
    ),
    (
        "zz-agency-2021.json",
        include_str!("../../policies/zz-agency-2021.json"),
    ),
    (
        "zz-labor-base-award-2021.json",
        include_str!("../../policies/zz-labor-base-award-2021.json"),
    ),
    (
        "zz-welfare-post-2021.json",
        include_str!("../../policies/zz-welfare-post-2021.json"),
    ),
    ("zz-ygdx-2021.json", include_str!("../../policies/zz-ygdx-2021.json")),
];

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(bangfu_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()));

/// Parses one file into the request it holds.
pub fn parse(name: &str, text: &str) -> Result<pb::CreatePolicyRequest, String> {
    let pool = POOL.as_ref().map_err(|e| format!("the contract's descriptors: {e}"))?;
    let descriptor = pool
        .get_message_by_name("bangfu.subsidy.v1.CreatePolicyRequest")
        .ok_or_else(|| "the contract has no CreatePolicyRequest".to_string())?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let message = DynamicMessage::deserialize(descriptor, &mut deserializer).map_err(|e| format!("{name}: {e}"))?;
    deserializer.end().map_err(|e| format!("{name}: {e}"))?;
    message
        .transcode_to::<pb::CreatePolicyRequest>()
        .map_err(|e| format!("{name}: {e}"))
}

/// Every shipped policy as domain values; an error names the file and field.
pub fn shipped() -> Result<Vec<(Policy, PolicyVersion)>, String> {
    FILES
        .iter()
        .map(|(name, text)| {
            let request = parse(name, text)?;
            let policy = super::wire::policy(request.policy.as_ref()).map_err(|e| format!("{name}: {}", e.message))?;
            let version =
                super::wire::policy_version(request.version.as_ref()).map_err(|e| format!("{name}: {}", e.message))?;
            Ok((policy, version))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::domain::{CompiledRules, check_policy, check_version};

    #[test]
    fn every_shipped_policy_checks_and_passes_its_examples() {
        let files = super::shipped().expect("the files parse");
        assert_eq!(files.len(), super::FILES.len());
        for (policy, version) in files {
            check_policy(&policy).unwrap_or_else(|e| panic!("{}: {e:?}", policy.code));
            check_version(&policy, &version, true).unwrap_or_else(|e| panic!("{}: {e:?}", policy.code));
            let rules =
                CompiledRules::compile(Arc::new(version.clone())).unwrap_or_else(|e| panic!("{}: {e:?}", policy.code));
            let (results, passed) = rules.check_examples();
            let failed: Vec<_> = results
                .iter()
                .filter(|r| !r.passed)
                .map(|r| format!("{}: {}", r.title, r.message))
                .collect();
            assert!(passed, "{}: {failed:?}", policy.code);
            assert!(
                version
                    .valid_to
                    .is_some_and(|to| to <= time::macros::date!(2025 - 12 - 31)),
                "{}: the seed documents expired on 2025-12-31",
                policy.code
            );
        }
    }
}
