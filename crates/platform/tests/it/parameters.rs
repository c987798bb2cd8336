//! Rule parameters on both databases: defaults from the documents, the most specific region
//! valid on the date wins, lapsed rows are not used, and changes are checked, versioned and
//! audited.

use std::collections::BTreeSet;
use std::time::Duration;

use bangfu_platform::audit::{self, AuditQuery};
use bangfu_platform::auth::{Department, Principal, RegionScope, Role, permissions};
use bangfu_platform::error::ErrorReason;
use bangfu_platform::parameters::{ParameterChange, ParameterQuery, Parameters};
use bangfu_platform::testing::{TestDatabase, seal_audit};
use time::Date;
use time::macros::{date, datetime};

on_both_backends!(
    each_service_gets_the_defaults_of_its_own_keys,
    the_most_specific_region_valid_on_the_date_wins,
    a_lapsed_rule_has_no_value_and_says_so,
    a_new_rule_version_is_created_audited_and_used,
    a_stale_etag_is_aborted_and_overlaps_are_refused,
    a_change_outside_the_callers_scope_is_refused,
    listing_pages_through_every_row,
);

fn admin(scope: RegionScope) -> Principal {
    Principal {
        subject: "admin-zhang".into(),
        issuer: "test".into(),
        department: Some(Department::Agri),
        roles: vec![Role::Admin],
        scope,
        acting_service: None,
        token_id: "t1".into(),
        permissions: permissions::user_permissions(Some(Department::Agri), &[Role::Admin]),
    }
}

async fn welfare_posts(test: &TestDatabase) -> Parameters {
    Parameters::open(test.db.clone(), "welfare_post", Duration::ZERO)
        .await
        .expect("parameters")
}

fn change(key: &str, region: &str, from: Date, to: Option<Date>, value: i64) -> ParameterChange {
    ParameterChange {
        key: key.into(),
        region_prefix: region.into(),
        valid_from: from,
        valid_to: to,
        value,
        source_document: "鲁人社字〔2026〕1号".into(),
        update_mask: vec![],
        allow_missing: true,
        etag: String::new(),
    }
}

async fn each_service_gets_the_defaults_of_its_own_keys(test: TestDatabase) {
    let identity = Parameters::open(test.db.clone(), "identity", Duration::ZERO)
        .await
        .expect("open");
    let keys: BTreeSet<String> = identity
        .list(&ParameterQuery::default(), None, 1000)
        .await
        .expect("list")
        .into_iter()
        .map(|row| row.key)
        .collect();
    assert!(keys.contains("identity.income_drop_alert_bp"));
    assert!(keys.contains("audit.retention_months"));
    assert!(!keys.iter().any(|k| k.starts_with("jobs.")), "{keys:?}");
    assert_eq!(
        identity
            .lookup("identity.income_drop_alert_bp", "370402001001", date!(2026 - 03 - 01))
            .await
            .expect("lookup"),
        Some(2000)
    );
    // Opening again (a restart, a second replica) keeps what an administrator changed.
    let again = Parameters::open(test.db.clone(), "identity", Duration::ZERO)
        .await
        .expect("reopen");
    assert_eq!(
        again
            .list(&ParameterQuery::default(), None, 1000)
            .await
            .expect("list")
            .len(),
        keys.len()
    );
}

async fn the_most_specific_region_valid_on_the_date_wins(test: TestDatabase) {
    let params = welfare_posts(&test).await;
    let key = "welfare_post.contract_max_months";
    let on = date!(2024 - 05 - 01);
    assert_eq!(
        params.lookup(key, "370402001001", on).await.expect("lookup"),
        Some(12),
        "Zaozhuang: one year"
    );
    assert_eq!(
        params.lookup(key, "211302001001", on).await.expect("lookup"),
        Some(6),
        "Chaoyang: six months"
    );
    assert_eq!(
        params.lookup(key, "500101001001", on).await.expect("lookup"),
        Some(12),
        "Chongqing: one year"
    );
    assert_eq!(
        params.lookup(key, "370102001001", on).await.expect("lookup"),
        None,
        "Jinan has no rule"
    );
    // A province-wide rule applies where no city rule does; the city's own rule still wins.
    let province = change(key, "37", date!(2024 - 01 - 01), None, 9);
    params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &province,
            datetime!(2024-01-01 0:00 UTC),
        )
        .await
        .expect("create");
    assert_eq!(params.lookup(key, "370102001001", on).await.expect("lookup"), Some(9));
    assert_eq!(params.lookup(key, "370402001001", on).await.expect("lookup"), Some(12));
    let effective = params
        .list(
            &ParameterQuery {
                key: None,
                region_code: Some("370402001001".into()),
                effective_date: Some(on),
            },
            None,
            100,
        )
        .await
        .expect("effective rows");
    let contract: Vec<_> = effective.iter().filter(|r| r.key == key).collect();
    assert_eq!(contract.len(), 1);
    assert_eq!(contract[0].region_prefix, "3704");
}

async fn a_lapsed_rule_has_no_value_and_says_so(test: TestDatabase) {
    let params = welfare_posts(&test).await;
    let key = "welfare_post.contract_max_months";
    assert_eq!(
        params
            .lookup(key, "370402001001", date!(2026 - 03 - 01))
            .await
            .expect("lookup"),
        None
    );
    let problem = params
        .require(key, "370402001001", date!(2026 - 03 - 01))
        .await
        .expect_err("lapsed");
    assert_eq!(problem.code, tonic::Code::FailedPrecondition);
    assert!(problem.message.contains(key), "{}", problem.message);
    assert_eq!(
        params
            .require("welfare_post.min_age", "370402001001", date!(2026 - 03 - 01))
            .await
            .expect("national rule"),
        16
    );
}

async fn a_new_rule_version_is_created_audited_and_used(test: TestDatabase) {
    let params = welfare_posts(&test).await;
    let key = "welfare_post.contract_max_months";
    let new = change(key, "3704", date!(2026 - 01 - 01), None, 12);
    let row = params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &new,
            datetime!(2026-01-05 02:00 UTC),
        )
        .await
        .expect("create");
    assert_eq!(
        row.name(),
        "parameters/welfare_post.contract_max_months/regions/3704/versions/20260101"
    );
    assert_eq!(row.etag(), "r1");
    assert_eq!(
        params
            .lookup(key, "370402001001", date!(2026 - 03 - 01))
            .await
            .expect("lookup"),
        Some(12)
    );
    // A retried create answers with what the first stored.
    let again = params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &new,
            datetime!(2026-01-05 02:01 UTC),
        )
        .await
        .expect("retry");
    assert_eq!(again.revision, 1);
    seal_audit(&test.db, 1).await;
    let events = audit::list(
        &test.db,
        &AuditQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].entry.subject, "admin-zhang");
    assert_eq!(events[0].entry.resource, row.name());
}

async fn a_stale_etag_is_aborted_and_overlaps_are_refused(test: TestDatabase) {
    let params = welfare_posts(&test).await;
    let key = "welfare_post.max_placements";
    let mut update = change(key, "*", date!(2021 - 01 - 01), None, 3);
    update.allow_missing = false;
    update.update_mask = vec!["value".into()];
    update.etag = "r1".into();
    let row = params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &update,
            datetime!(2026-01-05 02:00 UTC),
        )
        .await
        .expect("update");
    assert_eq!((row.value, row.etag()), (3, "r2".to_string()));
    let stale = params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &update,
            datetime!(2026-01-05 02:01 UTC),
        )
        .await
        .expect_err("stale etag");
    assert_eq!(
        (stale.code, stale.reason),
        (tonic::Code::Aborted, ErrorReason::EtagMismatch)
    );

    let overlapping = change(key, "*", date!(2026 - 01 - 01), None, 4);
    let err = params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &overlapping,
            datetime!(2026-01-05 02:02 UTC),
        )
        .await
        .expect_err("overlap");
    assert_eq!(err.code, tonic::Code::FailedPrecondition);
    // Ending the old version first makes room for the new one.
    let mut end = change(key, "*", date!(2021 - 01 - 01), Some(date!(2025 - 12 - 31)), 3);
    end.allow_missing = false;
    end.update_mask = vec!["valid_to".into()];
    params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &end,
            datetime!(2026-01-05 02:03 UTC),
        )
        .await
        .expect("end old");
    params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &overlapping,
            datetime!(2026-01-05 02:04 UTC),
        )
        .await
        .expect("new version");
    assert_eq!(
        params
            .lookup(key, "500101001001", date!(2025 - 06 - 01))
            .await
            .expect("lookup"),
        Some(3)
    );
    assert_eq!(
        params
            .lookup(key, "500101001001", date!(2026 - 06 - 01))
            .await
            .expect("lookup"),
        Some(4)
    );

    let unknown = change("welfare_post.no_such_rule", "*", date!(2026 - 01 - 01), None, 1);
    let err = params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &unknown,
            datetime!(2026-01-05 02:05 UTC),
        )
        .await
        .expect_err("unknown");
    assert_eq!(err.reason, ErrorReason::ParameterUnknown);
    let backwards = change(key, "50", date!(2026 - 01 - 01), Some(date!(2025 - 01 - 01)), 1);
    let err = params
        .update(
            &admin(RegionScope::Country),
            "/test/UpdateParameter",
            &backwards,
            datetime!(2026-01-05 02:06 UTC),
        )
        .await
        .expect_err("backwards");
    assert_eq!(err.violations[0].field, "parameter.valid_to");
}

async fn a_change_outside_the_callers_scope_is_refused(test: TestDatabase) {
    let params = welfare_posts(&test).await;
    let city_admin = admin(RegionScope::parse("3704").expect("scope"));
    let province = change(
        "welfare_post.contract_max_months",
        "37",
        date!(2026 - 01 - 01),
        None,
        12,
    );
    let err = params
        .update(
            &city_admin,
            "/test/UpdateParameter",
            &province,
            datetime!(2026-01-05 02:00 UTC),
        )
        .await
        .expect_err("province row");
    assert_eq!(err.code, tonic::Code::PermissionDenied);
    let county = change(
        "welfare_post.contract_max_months",
        "370402",
        date!(2026 - 01 - 01),
        None,
        12,
    );
    params
        .update(
            &city_admin,
            "/test/UpdateParameter",
            &county,
            datetime!(2026-01-05 02:00 UTC),
        )
        .await
        .expect("county row inside the city");
}

async fn listing_pages_through_every_row(test: TestDatabase) {
    let params = welfare_posts(&test).await;
    let all = params.list(&ParameterQuery::default(), None, 1000).await.expect("all");
    assert!(all.len() > 5);
    let mut paged = Vec::new();
    let mut cursor: Option<Vec<String>> = None;
    loop {
        let page = params
            .list(&ParameterQuery::default(), cursor.as_deref(), 2)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        cursor = Some(Parameters::cursor_of(last));
        paged.extend(page);
    }
    assert_eq!(paged, all);
}
