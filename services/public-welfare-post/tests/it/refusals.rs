//! Bad input: each a clear reason code and field, nothing half-written.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::with_token;
use bangfu_proto::welfare_post::v1 as pb;

use crate::on_both_backends;
use crate::support::{Backend, Suite, announcement_draft, date, fields, post_draft, reason, uuid};

async fn create(suite: &Suite, post: pb::Post) -> Result<pb::Post, tonic::Status> {
    suite
        .posts()
        .await
        .create_post(with_token(
            pb::CreatePostRequest {
                post: Some(post),
                request_id: uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .map(|r| r.into_inner().post.expect("post"))
}

async fn posts_listed(suite: &Suite) -> usize {
    suite
        .posts()
        .await
        .list_posts(with_token(pb::ListPostsRequest::default(), &suite.clerk()))
        .await
        .expect("listed")
        .into_inner()
        .posts
        .len()
}

async fn bad_posts_and_announcements_are_refused_naming_the_field(backend: Backend) {
    let suite = Suite::start(backend).await;
    let zero = create(
        &suite,
        pb::Post {
            places: 0,
            ..post_draft(1)
        },
    )
    .await
    .expect_err("zero places");
    assert_eq!(
        (reason(&zero), fields(&zero)),
        ("FIELD_INVALID".into(), vec!["post.places".to_string()])
    );
    let negative = create(
        &suite,
        pb::Post {
            monthly_standard: Some(bangfu_proto::common::v1::Money { fen: -1 }),
            ..post_draft(1)
        },
    )
    .await
    .expect_err("negative standard");
    assert_eq!(fields(&negative), vec!["post.monthly_standard".to_string()]);
    let unknown = create(
        &suite,
        pb::Post {
            subsidy_policy: "no-such-policy".into(),
            ..post_draft(1)
        },
    )
    .await
    .expect_err("unknown policy");
    assert_eq!(fields(&unknown), vec!["post.subsidy_policy".to_string()]);
    let elsewhere = create(
        &suite,
        pb::Post {
            village: Some(bangfu_proto::common::v1::RegionCode {
                code: "370403001001".into(),
                display_name: String::new(),
            }),
            ..post_draft(1)
        },
    )
    .await
    .expect_err("outside the clerk's county");
    assert_eq!(reason(&elsewhere), "NOT_FOUND");
    assert_eq!(posts_listed(&suite).await, 0, "nothing was written");

    // Subsidy payment down: the policy cannot be checked, nothing is written.
    suite.subsidy_link.cut();
    let down = create(&suite, post_draft(1)).await.expect_err("peer down");
    assert_eq!(
        (down.code(), reason(&down)),
        (tonic::Code::Unavailable, "PEER_UNAVAILABLE".into())
    );
    suite.subsidy_link.restore();
    assert_eq!(posts_listed(&suite).await, 0);

    let post = suite.post(1).await;
    let incomplete = suite
        .posts()
        .await
        .publish_announcement(with_token(
            pb::PublishAnnouncementRequest {
                announcement: Some(pb::Announcement {
                    duties: String::new(),
                    pay: " ".into(),
                    application_period: None,
                    ..announcement_draft(&post.name)
                }),
                request_id: uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect_err("incomplete");
    assert_eq!(reason(&incomplete), "ANNOUNCEMENT_INCOMPLETE");
    assert_eq!(
        fields(&incomplete),
        vec![
            "announcement.duties".to_string(),
            "announcement.pay".to_string(),
            "announcement.application_period".to_string()
        ]
    );
}

async fn applications_and_contracts_outside_the_rules_are_refused(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund().await;
    let post = suite.post(2).await;
    let announcement = suite.announce(&post.name).await;
    let person = suite.target_person("张三", "101").await;

    let unknown = suite
        .posts()
        .await
        .submit_application(with_token(
            pb::SubmitApplicationRequest {
                application: Some(pb::Application {
                    announcement: announcement.name.clone(),
                    person: "persons/00000000000000000000".into(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect_err("unknown person");
    assert_eq!(reason(&unknown), "NOT_FOUND");

    let application = suite.apply(&announcement.name, &person).await;
    // Zaozhuang signs for at most 12 months at a time.
    let long = suite
        .propose(
            &announcement.name,
            &application.name,
            date(2025, 3, 10),
            date(2026, 3, 10),
        )
        .await
        .expect_err("too long");
    assert_eq!(reason(&long), "CONTRACT_TOO_LONG");
    assert_eq!(fields(&long), vec!["hires[0].contract_term".to_string()]);
    // A contract starting during the notice is refused.
    let early = suite
        .propose(
            &announcement.name,
            &application.name,
            date(2025, 3, 5),
            date(2025, 12, 31),
        )
        .await
        .expect_err("starts in the notice");
    assert_eq!(fields(&early), vec!["hires[0].contract_term.first_day".to_string()]);

    // After the announcement's last day, no application is taken.
    suite.set_day(2025, 3, 11);
    let late = suite
        .person("李四", "102", 1970, bangfu_proto::common::v1::LaborCapacity::Full)
        .await;
    let closed = suite
        .posts()
        .await
        .submit_application(with_token(
            pb::SubmitApplicationRequest {
                application: Some(pb::Application {
                    announcement: announcement.name.clone(),
                    person: late,
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect_err("closed");
    assert_eq!(reason(&closed), "ANNOUNCEMENT_CLOSED");

    // A future month cannot be closed; a clerk of another county sees none of this.
    let future = suite
        .posts()
        .await
        .close_month(with_token(
            pb::CloseMonthRequest {
                region_prefix: "370402".into(),
                month: Some(bangfu_proto::common::v1::YearMonth { year: 2025, month: 6 }),
                line_limit: 0,
            },
            &suite.clerk(),
        ))
        .await
        .expect_err("future month");
    assert_eq!(fields(&future), vec!["month".to_string()]);
    let other = suite.token("clerk-other", Department::Agri, Role::Clerk, "370403");
    let hidden = suite
        .posts()
        .await
        .get_post(with_token(
            pb::GetPostRequest {
                name: post.name.clone(),
            },
            &other,
        ))
        .await
        .expect_err("out of scope");
    assert_eq!(reason(&hidden), "NOT_FOUND");
}

on_both_backends!(
    bad_posts_and_announcements_are_refused_naming_the_field,
    applications_and_contracts_outside_the_rules_are_refused
);
