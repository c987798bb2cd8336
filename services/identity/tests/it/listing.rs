//! Listing persons: the caller's scope and the asked region together, keyset pages that
//! neither repeat nor skip, masked rows, and the category filter as of today.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;

use crate::on_both_backends;
use crate::support::{
    Backend, Identity, SHIZHONG_OTHER_VILLAGE, SHIZHONG_VILLAGE, XUECHENG_VILLAGE, YUZHONG_VILLAGE, citizen_id, request,
};

on_both_backends!(
    pages_walk_every_person_in_scope_once_in_region_order,
    the_category_filter_and_scope_narrow_the_list,
    the_employment_status_filter_keeps_todays_status_across_pages_and_with_a_category,
);

async fn register(identity: &Identity, token: &str, sequence: usize, village: &str) -> String {
    let mut client = identity.client().await;
    let county = &village[..6];
    let person = pb::Person {
        display_name: format!("人员{sequence}"),
        citizen_id: citizen_id(county, "19800101", &format!("{:03}", sequence * 2 + 1)),
        registered_region: Some(common::RegionCode {
            code: village.into(),
            display_name: String::new(),
        }),
        ..Default::default()
    };
    client
        .create_person(request(
            pb::CreatePersonRequest {
                person: Some(person),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("created")
        .into_inner()
        .person
        .expect("person")
        .name
}

async fn seed(identity: &Identity) -> Vec<String> {
    let city = identity.token("admin-city", Department::Hr, Role::Admin, "*");
    let mut names = Vec::new();
    for (i, village) in [
        SHIZHONG_VILLAGE,
        SHIZHONG_OTHER_VILLAGE,
        SHIZHONG_VILLAGE,
        XUECHENG_VILLAGE,
        SHIZHONG_VILLAGE,
        XUECHENG_VILLAGE,
        YUZHONG_VILLAGE,
    ]
    .iter()
    .enumerate()
    {
        names.push(register(identity, &city, i, village).await);
    }
    names
}

/// Every page of a listing; `filter` is (category, employment status), 0 for none.
async fn list_all(
    identity: &Identity,
    token: &str,
    prefix: &str,
    (category, employment_status): (i32, i32),
    page_size: i32,
) -> Vec<pb::Person> {
    let mut client = identity.client().await;
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_persons(request(
                pb::ListPersonsRequest {
                    region_prefix: prefix.into(),
                    category,
                    employment_status,
                    page_size,
                    page_token: page_token.clone(),
                },
                token,
            ))
            .await
            .expect("page")
            .into_inner();
        all.extend(page.persons);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Certifies a person poverty-alleviated (脱贫人口) from 2026-01-01, as Zaozhuang's bureau.
async fn certify_alleviated(identity: &Identity, name: &str) {
    let reviewer = identity.token("reviewer-agri", Department::Agri, Role::Reviewer, "3704");
    let mut client = identity.client().await;
    client
        .certify_category(request(
            pb::CertifyCategoryRequest {
                person: name.into(),
                certification: Some(common::CategoryCertification {
                    category: common::PersonCategory::PovertyAlleviated as i32,
                    household_type: 0,
                    certifying_body: "枣庄市乡村振兴局".into(),
                    document_reference: "枣振发〔2026〕1号".into(),
                    valid_from: date(2026, 1, 1),
                    valid_to: None,
                    annulled: false,
                }),
                request_id: String::new(),
            },
            &reviewer,
        ))
        .await
        .expect("certified");
}

fn date(year: i32, month: i32, day: i32) -> Option<common::Date> {
    Some(common::Date { year, month, day })
}

/// Records a period of `status` from `start`, open-ended.
async fn record(identity: &Identity, name: &str, status: common::EmploymentStatus, start: Option<common::Date>) {
    let clerk = identity.token("clerk-city", Department::Hr, Role::Clerk, "*");
    let mut client = identity.client().await;
    client
        .record_employment(request(
            pb::RecordEmploymentRequest {
                person: name.into(),
                record: Some(pb::EmploymentRecord {
                    status: status as i32,
                    start_date: start,
                    reporting_system: "就业信息平台".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &clerk,
        ))
        .await
        .expect("recorded");
}

async fn pages_walk_every_person_in_scope_once_in_region_order(backend: Backend) {
    let identity = Identity::start(backend).await;
    let names = seed(&identity).await;
    let zaozhuang = identity.token("admin-zaozhuang", Department::Hr, Role::Admin, "3704");
    let listed = list_all(&identity, &zaozhuang, "", (0, 0), 2).await;
    assert_eq!(listed.len(), 6, "every Zaozhuang person, none of Chongqing");
    let regions: Vec<String> = listed
        .iter()
        .map(|p| p.registered_region.clone().expect("region").code)
        .collect();
    let mut sorted = regions.clone();
    sorted.sort();
    assert_eq!(regions, sorted, "in region order");
    let mut seen: Vec<&String> = listed.iter().map(|p| &p.name).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "no person twice");
    assert!(!listed.iter().any(|p| p.name == names[6]));
    assert!(
        listed.iter().all(|p| p.citizen_id.contains("*************")),
        "rows are masked"
    );
    assert_eq!(list_all(&identity, &zaozhuang, "370402", (0, 0), 100).await.len(), 4);
    // The whole country: no prefix at all, on a database whose collation is not C.
    let country = identity.token("admin-country", Department::Hr, Role::Admin, "*");
    assert_eq!(
        list_all(&identity, &country, "", (0, 0), 3).await.len(),
        7,
        "every person"
    );
}

async fn the_category_filter_and_scope_narrow_the_list(backend: Backend) {
    let identity = Identity::start(backend).await;
    let names = seed(&identity).await;
    let clerk = identity.shizhong_clerk();
    // A clerk of one county asking for the whole city gets the county.
    assert_eq!(list_all(&identity, &clerk, "3704", (0, 0), 100).await.len(), 4);
    assert!(
        list_all(&identity, &clerk, "50", (0, 0), 100).await.is_empty(),
        "no overlap, nothing"
    );
    let reviewer = identity.token("reviewer-agri", Department::Agri, Role::Reviewer, "3704");
    let mut client = identity.client().await;
    for name in [&names[0], &names[3]] {
        certify_alleviated(&identity, name).await;
    }
    let alleviated = list_all(
        &identity,
        &reviewer,
        "",
        (common::PersonCategory::PovertyAlleviated as i32, 0),
        100,
    )
    .await;
    let mut listed: Vec<String> = alleviated.into_iter().map(|p| p.name).collect();
    listed.sort();
    let mut expected = vec![names[0].clone(), names[3].clone()];
    expected.sort();
    assert_eq!(listed, expected);

    let first = client
        .list_persons(request(
            pb::ListPersonsRequest {
                page_size: 1,
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("page")
        .into_inner();
    let misused = client
        .list_persons(request(
            pb::ListPersonsRequest {
                category: common::PersonCategory::PovertyAlleviated as i32,
                page_size: 1,
                page_token: first.next_page_token,
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect_err("a token from another query");
    assert_eq!(reason_of(&misused).as_deref(), Some("PAGE_TOKEN_INVALID"));
}

async fn the_employment_status_filter_keeps_todays_status_across_pages_and_with_a_category(backend: Backend) {
    use common::EmploymentStatus as S;
    let identity = Identity::start(backend).await;
    let names = seed(&identity).await;
    // Today (2026-03-02): 0, 2, 3 and 6 (Chongqing) unemployed; 5 lost work in February;
    // 4 was unemployed in January and works since February; 1 works.
    for i in [0, 2, 3, 6] {
        record(&identity, &names[i], S::Unemployed, date(2026, 1, 10)).await;
    }
    record(&identity, &names[5], S::EmployedInCounty, date(2026, 1, 1)).await;
    record(&identity, &names[5], S::Unemployed, date(2026, 2, 15)).await;
    record(&identity, &names[4], S::Unemployed, date(2026, 1, 1)).await;
    record(&identity, &names[4], S::EmployedOutOfCounty, date(2026, 2, 1)).await;
    record(&identity, &names[1], S::EmployedInCounty, date(2026, 1, 1)).await;

    let zaozhuang = identity.token("admin-zaozhuang", Department::Hr, Role::Admin, "3704");
    let sorted = |persons: Vec<pb::Person>| {
        let mut names: Vec<String> = persons.into_iter().map(|p| p.name).collect();
        names.sort();
        names
    };
    let expected = |indexes: &[usize]| {
        let mut expected: Vec<String> = indexes.iter().map(|&i| names[i].clone()).collect();
        expected.sort();
        expected
    };
    // One per page: every page walks on past persons of other statuses, none repeats.
    let unemployed = list_all(&identity, &zaozhuang, "", (0, S::Unemployed as i32), 1).await;
    assert!(
        unemployed.iter().all(|p| p.employment_status == S::Unemployed as i32),
        "each row shows the status it was kept for"
    );
    assert_eq!(sorted(unemployed), expected(&[0, 2, 3, 5]));
    assert_eq!(
        sorted(list_all(&identity, &zaozhuang, "370402", (0, S::Unemployed as i32), 2).await),
        expected(&[0, 2]),
        "with the region prefix"
    );
    assert_eq!(
        sorted(list_all(&identity, &zaozhuang, "", (0, S::EmployedOutOfCounty as i32), 1).await),
        expected(&[4])
    );
    assert!(
        list_all(&identity, &zaozhuang, "", (0, S::InTraining as i32), 10)
            .await
            .is_empty()
    );

    for i in [0, 1, 4] {
        certify_alleviated(&identity, &names[i]).await;
    }
    assert_eq!(
        sorted(
            list_all(
                &identity,
                &zaozhuang,
                "",
                (common::PersonCategory::PovertyAlleviated as i32, S::Unemployed as i32),
                1
            )
            .await
        ),
        expected(&[0]),
        "both filters hold"
    );

    // A token is bound to its query's status: neither an unfiltered token nor one of another
    // status continues this listing.
    let mut client = identity.client().await;
    let page = |employment_status: S, page_token: String| pb::ListPersonsRequest {
        employment_status: employment_status as i32,
        page_size: 1,
        page_token,
        ..Default::default()
    };
    for (issued_for, used_for) in [(S::Unspecified, S::Unemployed), (S::Unemployed, S::EmployedInCounty)] {
        let first = client
            .list_persons(request(page(issued_for, String::new()), &zaozhuang))
            .await
            .expect("page")
            .into_inner();
        assert!(!first.next_page_token.is_empty());
        let refused = client
            .list_persons(request(page(used_for, first.next_page_token), &zaozhuang))
            .await
            .expect_err("a token of another query");
        assert_eq!(reason_of(&refused).as_deref(), Some("PAGE_TOKEN_INVALID"));
    }
}
