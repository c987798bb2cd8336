//! Every way a token can be wrong is refused with UNAUTHENTICATED and its reason; a valid
//! token without the permission is PERMISSION_DENIED; scopes and permissions combine as they
//! should when a service acts for a user.

use bangfu_platform::auth::keys::generate_key_pair;
use bangfu_platform::auth::token::{Claims, TokenSigner, UserIdentity, unix_now};
use bangfu_platform::auth::{Access, CallKind, Department, MethodRule, Permission, Role};
use bangfu_platform::error::reason_of;
use bangfu_platform::testing::{TestServer, server_config, with_token};
use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use bangfu_proto::diagnostics::v1::{GetServerInfoRequest, WhoAmIRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Code;

async fn who_am_i(
    server: &TestServer,
    request: tonic::Request<WhoAmIRequest>,
) -> Result<bangfu_proto::diagnostics::v1::WhoAmIResponse, tonic::Status> {
    let mut client = DiagnosticsServiceClient::new(server.channel().await);
    client.who_am_i(request).await.map(|r| r.into_inner())
}

async fn refused_with(server: &TestServer, token: &str) -> (Code, String) {
    let status = who_am_i(server, with_token(WhoAmIRequest {}, token))
        .await
        .expect_err("must be refused");
    (status.code(), reason_of(&status).unwrap_or_default())
}

fn hr_clerk(server: &TestServer) -> Claims {
    server.keys.user_claims(Department::Hr, &[Role::Clerk], "370402")
}

#[tokio::test]
async fn a_valid_token_is_accepted_and_its_claims_shown() {
    let server = TestServer::start().await;
    let token = server.keys.user_token(Department::Hr, &[Role::Clerk], "370402");
    let me = who_am_i(&server, with_token(WhoAmIRequest {}, &token))
        .await
        .expect("accepted");
    assert_eq!(me.subject, "test-user");
    assert_eq!(me.department, "hr");
    assert_eq!(me.roles, vec!["clerk"]);
    assert_eq!(me.region_scope, "370402");
    assert!(me.permissions.contains(&"identity.persons.write".to_string()));
    assert!(!me.permissions.contains(&"identity.pii.read".to_string()));
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let server = TestServer::start().await;
    let status = who_am_i(&server, tonic::Request::new(WhoAmIRequest {}))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason_of(&status).as_deref(), Some("TOKEN_MISSING"));
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let server = TestServer::start().await;
    let mut claims = hr_clerk(&server);
    claims.exp = unix_now() - 3600;
    claims.nbf = unix_now() - 7200;
    let token = server.keys.department_signer().sign(&claims).expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_EXPIRED".into())
    );
}

#[tokio::test]
async fn a_token_not_yet_valid_is_unauthenticated() {
    let server = TestServer::start().await;
    let mut claims = hr_clerk(&server);
    claims.nbf = unix_now() + 3600;
    claims.exp = unix_now() + 7200;
    let token = server.keys.department_signer().sign(&claims).expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_NOT_YET_VALID".into())
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_unauthenticated() {
    let server = TestServer::start().await;
    let mut claims = hr_clerk(&server);
    claims.aud = "another-system".into();
    let token = server.keys.department_signer().sign(&claims).expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_WRONG_AUDIENCE".into())
    );
}

#[tokio::test]
async fn a_token_whose_issuer_is_not_its_keys_is_unauthenticated() {
    let server = TestServer::start().await;
    let mut claims = hr_clerk(&server);
    claims.iss = "someone-else".into();
    let token = server.keys.department_signer().sign(&claims).expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_WRONG_ISSUER".into())
    );
}

#[tokio::test]
async fn a_token_signed_by_a_stranger_under_a_trusted_kid_is_unauthenticated() {
    let server = TestServer::start().await;
    let (stranger, _) = generate_key_pair("dev-departments", "bangfu-development", true).expect("key");
    let token = TokenSigner::from_file(&stranger)
        .expect("signer")
        .sign(&hr_clerk(&server))
        .expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_SIGNATURE_INVALID".into())
    );
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_unauthenticated() {
    let server = TestServer::start().await;
    let (stranger, _) = generate_key_pair("not-trusted-here", "bangfu-development", true).expect("key");
    let token = TokenSigner::from_file(&stranger)
        .expect("signer")
        .sign(&hr_clerk(&server))
        .expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_UNKNOWN_KEY".into())
    );
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_unauthenticated() {
    let server = TestServer::start().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"dev-departments"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&hr_clerk(&server)).expect("json"));
    let token = format!("{header}.{payload}.");
    let (code, _) = refused_with(&server, &token).await;
    assert_eq!(code, Code::Unauthenticated);
}

#[tokio::test]
async fn an_hmac_token_keyed_with_the_public_key_is_unauthenticated() {
    let server = TestServer::start().await;
    let public = std::fs::read(server.keys.keys_dir().join("dev-departments.pub.pem")).expect("public key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("dev-departments".into());
    let token = jsonwebtoken::encode(
        &header,
        &hr_clerk(&server),
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_SIGNATURE_INVALID".into())
    );
}

#[tokio::test]
async fn a_token_without_a_region_scope_is_unauthenticated() {
    let server = TestServer::start().await;
    let mut claims = hr_clerk(&server);
    claims.scope = None;
    let token = server.keys.department_signer().sign(&claims).expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_CLAIM_INVALID".into())
    );
}

#[tokio::test]
async fn a_token_in_the_wrong_header_is_named_as_misplaced() {
    let server = TestServer::start().await;
    let token = server.keys.user_token(Department::Hr, &[Role::Clerk], "37");
    let mut request = tonic::Request::new(WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("x-access-token", token.parse().expect("ascii"));
    let status = who_am_i(&server, request).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason_of(&status).as_deref(), Some("TOKEN_IN_WRONG_HEADER"));

    let mut request = tonic::Request::new(WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("authorization", token.parse().expect("ascii"));
    let status = who_am_i(&server, request).await.expect_err("no Bearer scheme");
    assert_eq!(reason_of(&status).as_deref(), Some("TOKEN_MALFORMED"));
}

#[tokio::test]
async fn a_revoked_token_and_a_revoked_subject_are_refused() {
    let server = TestServer::start().await;
    let claims = hr_clerk(&server);
    let token = server.keys.department_signer().sign(&claims).expect("sign");
    who_am_i(&server, with_token(WhoAmIRequest {}, &token))
        .await
        .expect("valid before revocation");
    server.keys.revoke(&[&claims.jti], &[]);
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_REVOKED".into())
    );

    let other = server
        .keys
        .user_token_for("left-the-office", Department::Hr, &[Role::Clerk], "37");
    server.keys.revoke(&[], &["left-the-office"]);
    assert_eq!(
        refused_with(&server, &other).await,
        (Code::Unauthenticated, "TOKEN_REVOKED".into())
    );
}

#[tokio::test]
async fn a_valid_token_without_the_permission_is_denied_with_the_permission_named() {
    let server = TestServer::start().await;
    let token = server.keys.user_token(Department::Finance, &[Role::Clerk], "3704");
    let mut client = DiagnosticsServiceClient::new(server.channel().await);
    let status = client
        .get_server_info(with_token(GetServerInfoRequest {}, &token))
        .await
        .expect_err("clerks may not read server info");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&status).as_deref(), Some("PERMISSION_MISSING"));
    assert!(
        status.message().contains("diagnostics.server_info"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_method_this_server_does_not_serve_is_unimplemented_not_a_permission_problem() {
    let only_health = [MethodRule {
        path: "/grpc.health.v1.Health/Check",
        access: Access::Public,
        kind: CallKind::Unary,
    }];
    let server = TestServer::start_with(server_config(), &only_health, |host| {
        let diagnostics = bangfu_platform::diagnostics::Diagnostics::new(host.config(), &[]).into_server(host.config());
        host.add_service(diagnostics);
    })
    .await;
    let token = server.keys.user_token(Department::Hr, &[Role::Admin], "*");
    let status = who_am_i(&server, with_token(WhoAmIRequest {}, &token))
        .await
        .expect_err("not in the table");
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(reason_of(&status).as_deref(), Some("METHOD_NOT_SERVED"));
}

#[tokio::test]
async fn an_oversized_token_is_refused_on_its_own_stream_and_the_connection_carries_on() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let token = server.keys.user_token(Department::Hr, &[Role::Admin], "*");
    for size in [9 * 1024, 20 * 1024, 100 * 1024] {
        let huge = format!("{}.{}.{}", "a".repeat(size), "b", "c");
        let status = DiagnosticsServiceClient::new(channel.clone())
            .who_am_i(with_token(WhoAmIRequest {}, &huge))
            .await
            .expect_err("too large");
        assert_eq!(status.code(), Code::Unauthenticated, "{size} bytes: {status:?}");
        assert_eq!(reason_of(&status).as_deref(), Some("TOKEN_TOO_LARGE"), "{size} bytes");
        // The same connection still serves a good call.
        DiagnosticsServiceClient::new(channel.clone())
            .who_am_i(with_token(WhoAmIRequest {}, &token))
            .await
            .unwrap_or_else(|e| panic!("after a {size}-byte token the connection was dropped: {e:?}"));
    }
}

#[tokio::test]
async fn a_service_key_cannot_sign_an_administrator() {
    let server = TestServer::start().await;
    let signer = server.keys.service_signer("jobs");
    let admin = UserIdentity {
        subject: "jobs".into(),
        department: Department::Hr,
        roles: vec![Role::Admin],
        scope: bangfu_platform::auth::RegionScope::Country,
    };
    let mut claims = signer.user_claims(&admin, "bangfu", unix_now(), std::time::Duration::from_secs(600));
    assert_eq!(
        refused_with(&server, &signer.sign(&claims).expect("sign")).await,
        (Code::Unauthenticated, "TOKEN_KEY_NOT_ALLOWED".into())
    );
    // Nor may it speak for another service.
    claims.sub = "subsidy".into();
    claims.dept = None;
    claims.roles = vec!["service".into()];
    assert_eq!(
        refused_with(&server, &signer.sign(&claims).expect("sign")).await,
        (Code::Unauthenticated, "TOKEN_KEY_NOT_ALLOWED".into())
    );
}

#[tokio::test]
async fn a_department_key_cannot_sign_a_service_token() {
    let server = TestServer::start().await;
    let mut claims = hr_clerk(&server);
    claims.sub = "subsidy".into();
    claims.roles = vec!["service".into()];
    let token = server.keys.department_signer().sign(&claims).expect("sign");
    assert_eq!(
        refused_with(&server, &token).await,
        (Code::Unauthenticated, "TOKEN_KEY_NOT_ALLOWED".into())
    );
}

#[tokio::test]
async fn a_service_acting_for_a_user_gets_the_users_scope_and_only_what_both_hold() {
    let server = TestServer::start().await;
    let service = server.keys.service_token("subsidy", "37");
    let user = server
        .keys
        .user_token_for("clerk-li", Department::Hr, &[Role::Clerk], "370402");
    let mut request = with_token(WhoAmIRequest {}, &service);
    request
        .metadata_mut()
        .insert("x-bangfu-on-behalf-of", user.parse().expect("ascii"));
    let me = who_am_i(&server, request).await.expect("accepted");
    assert_eq!(me.subject, "clerk-li");
    assert_eq!(me.acting_service, "subsidy");
    assert_eq!(me.region_scope, "370402");
    // The subsidy service may read IDs in clear, the HR clerk may not: together they may not.
    assert!(
        !me.permissions
            .contains(&Permission::IdentityPiiRead.as_str().to_string())
    );
    // The clerk may write persons, the subsidy service may not: together they may not.
    assert!(
        !me.permissions
            .contains(&Permission::IdentityPersonsWrite.as_str().to_string())
    );
    // Both may read persons.
    assert!(
        me.permissions
            .contains(&Permission::IdentityPersonsRead.as_str().to_string())
    );
}

#[tokio::test]
async fn scopes_that_do_not_overlap_leave_nothing_visible() {
    let server = TestServer::start().await;
    let service = server.keys.service_token("subsidy", "50");
    let user = server.keys.user_token(Department::Hr, &[Role::Clerk], "370402");
    let mut request = with_token(WhoAmIRequest {}, &service);
    request
        .metadata_mut()
        .insert("x-bangfu-on-behalf-of", user.parse().expect("ascii"));
    let me = who_am_i(&server, request).await.expect("accepted");
    assert_eq!(me.region_scope, "(none)");
}

#[tokio::test]
async fn on_behalf_of_is_refused_beside_a_user_token_or_alone() {
    let server = TestServer::start().await;
    let user = server.keys.user_token(Department::Hr, &[Role::Clerk], "370402");
    let admin = server.keys.user_token(Department::Hr, &[Role::Admin], "*");
    let mut request = with_token(WhoAmIRequest {}, &user);
    request
        .metadata_mut()
        .insert("x-bangfu-on-behalf-of", admin.parse().expect("ascii"));
    let status = who_am_i(&server, request)
        .await
        .expect_err("a user cannot act for a user");
    assert_eq!(reason_of(&status).as_deref(), Some("ON_BEHALF_OF_REQUIRES_SERVICE"));

    let mut request = tonic::Request::new(WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("x-bangfu-on-behalf-of", user.parse().expect("ascii"));
    let status = who_am_i(&server, request).await.expect_err("no service token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason_of(&status).as_deref(), Some("ON_BEHALF_OF_REQUIRES_SERVICE"));
}

#[tokio::test]
async fn a_service_on_its_own_has_its_configured_scope_and_grants() {
    let server = TestServer::start().await;
    let token = server.keys.service_token("welfare_post", "3704");
    let me = who_am_i(&server, with_token(WhoAmIRequest {}, &token))
        .await
        .expect("accepted");
    assert_eq!(me.subject, "welfare_post");
    assert_eq!(me.acting_service, "welfare_post");
    assert_eq!(me.region_scope, "3704");
    assert!(me.permissions.contains(&"identity.feed.watch".to_string()));
    assert!(!me.permissions.contains(&"identity.pii.read".to_string()));
}

#[tokio::test]
async fn refused_calls_are_audited_in_the_services_database() {
    let store = bangfu_platform::testing::TestDatabase::sqlite(&bangfu_platform::db::Migrations::NONE).await;
    let db = store.db.clone();
    let server = TestServer::start_with(
        server_config(),
        bangfu_platform::auth::permissions::PLATFORM_METHODS,
        |host| {
            let diagnostics =
                bangfu_platform::diagnostics::Diagnostics::new(host.config(), &[]).into_server(host.config());
            host.add_service(diagnostics);
            host.audit_denials("/bangfu.diagnostics.v1.", db);
        },
    )
    .await;
    let clerk = server
        .keys
        .user_token_for("clerk-li", Department::Finance, &[Role::Clerk], "3704");
    let mut client = DiagnosticsServiceClient::new(server.channel().await);
    client
        .get_server_info(with_token(GetServerInfoRequest {}, &clerk))
        .await
        .expect_err("a clerk may not read server info");
    client
        .get_server_info(tonic::Request::new(GetServerInfoRequest {}))
        .await
        .expect_err("no token");
    // An allowed call is not a denial and leaves no row here.
    client
        .who_am_i(with_token(WhoAmIRequest {}, &clerk))
        .await
        .expect("allowed");

    bangfu_platform::testing::seal_audit(&store.db, 2).await;
    let events = bangfu_platform::audit::list(
        &store.db,
        &bangfu_platform::audit::AuditQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .expect("list");
    let mut seen: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e.entry.subject.clone(),
                e.entry.outcome.as_str().to_string(),
                e.entry.reason.clone(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (String::new(), "denied".to_string(), "TOKEN_MISSING".to_string()),
            (
                "clerk-li".to_string(),
                "denied".to_string(),
                "PERMISSION_MISSING".to_string()
            ),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.entry.method == "/bangfu.diagnostics.v1.DiagnosticsService/GetServerInfo")
    );
}

#[tokio::test]
async fn a_service_signs_its_own_calls_and_passes_the_users_token_along() {
    use bangfu_platform::auth::client::ServiceCredentials;
    use bangfu_platform::auth::token::ServiceTokens;
    use std::sync::Arc;

    let server = TestServer::start().await;
    let tokens = Arc::new(ServiceTokens::new(
        server.keys.service_signer("welfare_post"),
        "welfare_post",
        bangfu_platform::auth::RegionScope::parse("3704").expect("scope"),
        "bangfu",
        std::time::Duration::from_secs(300),
    ));
    let mut own =
        DiagnosticsServiceClient::with_interceptor(server.channel().await, ServiceCredentials::own(tokens.clone()));
    let me = own.who_am_i(WhoAmIRequest {}).await.expect("service call").into_inner();
    assert_eq!(
        (
            me.subject.as_str(),
            me.acting_service.as_str(),
            me.region_scope.as_str()
        ),
        ("welfare_post", "welfare_post", "3704")
    );

    let user = server
        .keys
        .user_token_for("clerk-sun", Department::Agri, &[Role::Clerk], "370402");
    let credentials = ServiceCredentials::for_user(tokens, &user).expect("credentials");
    let mut for_user = DiagnosticsServiceClient::with_interceptor(server.channel().await, credentials);
    let me = for_user
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("call for a user")
        .into_inner();
    assert_eq!(
        (
            me.subject.as_str(),
            me.acting_service.as_str(),
            me.region_scope.as_str()
        ),
        ("clerk-sun", "welfare_post", "370402")
    );
}

/// A server whose verifier trusts one department key and one partner province's key, with
/// WhoAmI open to local tokens and GetServerInfo standing in for a partner-facing method.
async fn two_door_server() -> (
    bangfu_platform::server::Shutdown,
    std::net::SocketAddr,
    TokenSigner,
    TokenSigner,
) {
    use bangfu_platform::auth::keys::{KeyRing, Signer, TrustedKey};
    use bangfu_platform::auth::verify::{Revocations, Verifier};
    use bangfu_platform::diagnostics::Diagnostics;
    use bangfu_platform::server::ServerHost;
    use jsonwebtoken::DecodingKey;
    let (department, department_public) = generate_key_pair("hr-1", "bangfu-test", false).expect("pair");
    let (partner, partner_public) = generate_key_pair("cq-1", "chongqing", false).expect("pair");
    let ring = KeyRing::new(vec![
        TrustedKey {
            kid: "hr-1".into(),
            issuer: "bangfu-test".into(),
            signer: Signer::Departments {
                departments: vec![Department::Hr],
                roles: vec![Role::Clerk, Role::Admin],
            },
            development: false,
            key: DecodingKey::from_ed_pem(department_public.as_bytes()).expect("public"),
        },
        TrustedKey {
            kid: "cq-1".into(),
            issuer: "chongqing".into(),
            signer: Signer::Partner,
            development: false,
            key: DecodingKey::from_ed_pem(partner_public.as_bytes()).expect("public"),
        },
    ]);
    let verifier = Verifier::new(ring, "bangfu", std::time::Duration::from_secs(30), Revocations::none());
    let methods = [
        MethodRule {
            path: "/bangfu.diagnostics.v1.DiagnosticsService/WhoAmI",
            access: Access::Requires(Permission::DiagnosticsWhoAmI),
            kind: CallKind::Unary,
        },
        MethodRule {
            path: "/bangfu.diagnostics.v1.DiagnosticsService/GetServerInfo",
            access: Access::Partner(Permission::ExchangePartnerInfo),
            kind: CallKind::Unary,
        },
    ];
    let config = server_config();
    let listener = bangfu_platform::server::bind(config.listen).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut host = ServerHost::with_methods(config, std::sync::Arc::new(verifier), &methods);
    let diagnostics = Diagnostics::new(host.config(), &[]).into_server(host.config());
    host.add_service(diagnostics);
    let shutdown = host.shutdown();
    tokio::spawn(host.serve(listener));
    (
        shutdown,
        addr,
        TokenSigner::from_file(&department).expect("signer"),
        TokenSigner::from_file(&partner).expect("signer"),
    )
}

#[tokio::test]
async fn a_partner_token_opens_only_partner_methods_and_no_local_token_opens_those() {
    let (shutdown, addr, department, partner) = two_door_server().await;
    let now = unix_now();
    let admin = department
        .sign(&department.user_claims(
            &UserIdentity {
                subject: "admin".into(),
                department: Department::Hr,
                roles: vec![Role::Admin],
                scope: bangfu_platform::auth::RegionScope::Country,
            },
            "bangfu",
            now,
            std::time::Duration::from_secs(300),
        ))
        .expect("admin token");
    let partner_token = partner
        .sign(&Claims {
            iss: "chongqing".into(),
            sub: "chongqing".into(),
            aud: "bangfu".into(),
            exp: now + 300,
            nbf: now,
            iat: now,
            jti: "p-1".into(),
            dept: None,
            roles: vec!["partner".into()],
            scope: Some("50".into()),
        })
        .expect("partner token");
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut client = DiagnosticsServiceClient::new(channel);
    // The administrator holds every permission, the partner one too, and still may not.
    let local_on_partner = client
        .get_server_info(with_token(GetServerInfoRequest {}, &admin))
        .await
        .expect_err("a local token on a partner method");
    assert_eq!(local_on_partner.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&local_on_partner).as_deref(), Some("CALLER_KIND_REFUSED"));
    let partner_on_local = client
        .who_am_i(with_token(WhoAmIRequest {}, &partner_token))
        .await
        .expect_err("a partner token on a local method");
    assert_eq!(partner_on_local.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&partner_on_local).as_deref(), Some("CALLER_KIND_REFUSED"));
    // Each door opens to its own caller.
    client
        .who_am_i(with_token(WhoAmIRequest {}, &admin))
        .await
        .expect("the administrator on a local method");
    client
        .get_server_info(with_token(GetServerInfoRequest {}, &partner_token))
        .await
        .expect("the partner on a partner method");
    shutdown.trigger();
}
