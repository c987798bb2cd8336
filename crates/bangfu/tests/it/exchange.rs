//! Two provinces' suites, each its own `bangfu up` with its own data, keys (made by `bangfu keys
//! init --partner`), CA and ports — Shandong on SQLite, Chongqing on PostgreSQL — talking only
//! through their exchanges. It walks: a Chongqing person verified by Shandong (minimized; the
//! message and its receipt in both logs); a Zaozhuang posting shared and recommended by
//! Chongqing's matching; the person placed in Zaozhuang, the confirmation recorded in
//! Chongqing's identity once, and Chongqing's transport subsidy proposed; confirmations played
//! by hand (one for a person Chongqing does not know, kept for a clerk; the same again,
//! DUPLICATE); Chongqing stopped while a second worker's confirmation waits, started again, the
//! confirmation arriving once; the year's cooperation counts on both sides; and a replayed, a
//! late and a tampered message, a token of the wrong issuer, a local token, a partner token on
//! a local method and a certificate of another CA refused.

use std::path::{Path, PathBuf};

use bangfu_platform::auth::keys::generate_key_pair;
use bangfu_platform::auth::token::{Claims, TokenSigner, new_token_id};
use bangfu_proto::common::v1 as common;
use bangfu_proto::exchange::v1 as pb;
use bangfu_proto::exchange::v1::exchange_service_client::ExchangeServiceClient;
use bangfu_proto::exchange::v1::partner_exchange_service_client::PartnerExchangeServiceClient;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::cli::{against, day, json, ok, token};
use crate::up::{Up, free_port};

/// A village of Yuzhong district (渝中区), Chongqing.
const CQ_VILLAGE: &str = "500101001001";

/// One province's PKI and exchange key, written to its folder.
struct Province {
    id: &'static str,
    dir: PathBuf,
    ca_key: KeyPair,
    ca_params: CertificateParams,
    signer_file: PathBuf,
    partner_port: u16,
    main_port: u16,
}

impl Province {
    fn new(root: &Path, id: &'static str) -> Self {
        let dir = root.join(id);
        std::fs::create_dir_all(dir.join("exchange")).expect("dir");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{id} exchange CA"));
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        std::fs::write(dir.join("exchange/ca.pem"), ca.pem()).expect("write");
        let (tls_cert, tls_key) = issue(&ca_params, &ca_key, id);
        std::fs::write(dir.join("exchange/tls.pem"), tls_cert).expect("write");
        std::fs::write(dir.join("exchange/tls.key"), tls_key).expect("write");
        // The exchange's key pair as an operator makes it, with the partner port's request.
        let made = std::process::Command::new(env!("CARGO_BIN_EXE_bangfu"))
            .args(["keys", "init", "--partner", id, "--host", "localhost", "--out"])
            .arg(&dir)
            .output()
            .expect("keys init --partner");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let request =
            std::fs::read_to_string(dir.join(format!("exchange/{id}-exchange-tls.csr.pem"))).expect("request");
        assert!(request.starts_with("-----BEGIN CERTIFICATE REQUEST-----"), "{request}");
        let signer_file = dir.join(format!("exchange/{id}-exchange.signing.json"));
        std::fs::copy(
            dir.join(format!("exchange/{id}-exchange.pub.pem")),
            dir.join("exchange/public.pem"),
        )
        .expect("copy");
        Self {
            id,
            dir,
            ca_key,
            ca_params,
            signer_file,
            partner_port: free_port(),
            main_port: free_port(),
        }
    }

    fn signer(&self) -> TokenSigner {
        TokenSigner::load(&self.signer_file).expect("signer")
    }

    /// Writes this province's exchange.json naming `partner`.
    fn configure(&self, region: &str, partner: &Province, partner_region: &str) {
        let exchange = self.dir.join("exchange");
        std::fs::copy(partner.dir.join("exchange/ca.pem"), exchange.join("partner-ca.pem")).expect("copy");
        std::fs::copy(
            partner.dir.join("exchange/public.pem"),
            exchange.join("partner.pub.pem"),
        )
        .expect("copy");
        let config = serde_json::json!({
            "self": { "id": self.id, "display_name": format!("{} 人社", self.id), "region_prefix": region },
            "signing_key": format!("{}-exchange.signing.json", self.id),
            "listen": format!("127.0.0.1:{}", self.partner_port),
            "tls_cert": "tls.pem",
            "tls_key": "tls.key",
            "partners": [{
                "id": partner.id,
                "display_name": format!("{} 人社", partner.id),
                "region_prefix": partner_region,
                "url": format!("https://localhost:{}", partner.partner_port),
                "ca_file": "partner-ca.pem",
                "keys": [{ "kid": partner.signer().kid(), "public_key_file": "partner.pub.pem" }],
                "allowed": ["verify_person", "shared_postings", "employment_confirmations"]
            }]
        });
        std::fs::write(
            exchange.join("exchange.json"),
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("write");
    }

    fn config_path(&self) -> String {
        self.dir
            .join("exchange/exchange.json")
            .to_str()
            .expect("path")
            .to_string()
    }

    fn keys(&self) -> String {
        self.dir.join("data/keys").to_str().expect("path").to_string()
    }

    fn start(&self, extra: &[&str]) -> Up {
        Up::start_with(
            &self.dir.join("data"),
            self.main_port,
            extra,
            &[("BANGFU_EXCHANGE_CONFIG", &self.config_path())],
            "warn",
            None,
        )
    }
}

/// A certificate for localhost (server and client) issued by the CA; PEM and key.
fn issue(ca_params: &CertificateParams, ca_key: &KeyPair, name: &str) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    let issuer = Issuer::from_params(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).expect("cert");
    (cert.pem(), key.serialize_pem())
}

/// A channel to `to`'s partner port presenting `cert`/`key`, trusting `to`'s CA.
async fn partner_channel(to: &Province, cert: &str, key: &str) -> Result<Channel, tonic::transport::Error> {
    let ca = std::fs::read(to.dir.join("exchange/ca.pem")).expect("ca");
    tonic::transport::Endpoint::from_shared(format!("https://localhost:{}", to.partner_port))?
        .tls_config(
            ClientTlsConfig::new()
                .domain_name("localhost")
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert, key)),
        )?
        .connect()
        .await
}

/// A partner token signed by `signer` for `to`.
fn partner_token(signer: &TokenSigner, to: &str, scope: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    signer
        .sign(&Claims {
            iss: signer.issuer().to_string(),
            sub: signer.issuer().to_string(),
            aud: format!("bangfu-exchange-{to}"),
            exp: now + 300,
            nbf: now - 5,
            iat: now,
            jti: new_token_id(),
            dept: None,
            roles: vec!["partner".into()],
            scope: Some(scope.into()),
        })
        .expect("token")
}

/// A request as `from`'s exchange would send it: header, partner token and signature.
fn signed<M: Message + Clone>(
    from: &Province,
    to: &str,
    method: &str,
    mut message: M,
    header: fn(&mut M) -> &mut Option<pb::MessageHeader>,
    message_id: &str,
    sent: time::OffsetDateTime,
) -> tonic::Request<M> {
    *header(&mut message) = Some(pb::MessageHeader {
        message_id: message_id.into(),
        sender: from.id.into(),
        receiver: to.into(),
        send_time: Some(prost_types::Timestamp {
            seconds: sent.unix_timestamp(),
            nanos: 0,
        }),
    });
    let signer = from.signer();
    let body = message.encode_to_vec();
    let signature = bangfu_exchange::signing::sign(
        &signer,
        bangfu_exchange::signing::MESSAGE_TYPE,
        &bangfu_exchange::signing::MessageClaims {
            mid: message_id.into(),
            iss: from.id.into(),
            aud: to.into(),
            iat: sent.unix_timestamp(),
            mth: format!("bangfu.exchange.v1.PartnerExchangeService/{method}"),
            sha256: bangfu_exchange::signing::body_hash(&body),
        },
    )
    .expect("sign");
    let mut request = tonic::Request::new(message);
    let token = partner_token(&signer, to, "50");
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("header"));
    request.metadata_mut().insert(
        bangfu_exchange::signing::SIGNATURE_HEADER,
        signature.parse().expect("header"),
    );
    request
}

fn bearer<M>(message: M, token: &str) -> tonic::Request<M> {
    bangfu_platform::testing::with_token(message, token)
}

fn reason(status: &tonic::Status) -> String {
    bangfu_platform::testing::reason(status)
}

/// Registers a Chongqing person in `up`'s identity (as its administrator) and returns the name.
fn register(up: &Up, admin: &str, citizen_id: &str, name: &str) -> String {
    let person = json(against(
        up,
        admin,
        &[
            "identity",
            "create",
            "--name",
            name,
            "--citizen-id",
            citizen_id,
            "--region",
            CQ_VILLAGE,
            "--json",
        ],
    ));
    person["name"].as_str().expect("name").to_string()
}

/// Records in `channel`'s identity that `person` works in Zaozhuang from three days ago.
async fn record_work_in_shandong(channel: &Channel, admin: &str, person: &str, employer: &str) {
    let start = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        - time::Duration::days(3);
    IdentityServiceClient::new(channel.clone())
        .record_employment(bearer(
            id::RecordEmploymentRequest {
                person: person.into(),
                record: Some(id::EmploymentRecord {
                    status: common::EmploymentStatus::EmployedOutOfProvince as i32,
                    employer: employer.into(),
                    work_region: "370402".into(),
                    start_date: Some(common::Date {
                        year: start.year(),
                        month: i32::from(u8::from(start.month())),
                        day: i32::from(start.day()),
                    }),
                    reporting_system: "就业信息平台".into(),
                    ..Default::default()
                }),
                request_id: format!("work-{}", person.trim_start_matches("persons/")),
            },
            admin,
        ))
        .await
        .expect("employment recorded");
}

/// Waits until `person` in `channel`'s identity is employed out of province.
async fn await_employed_out_of_province(channel: &Channel, admin: &str, person: &str) {
    for _ in 0..300 {
        let got = IdentityServiceClient::new(channel.clone())
            .get_person(bearer(
                id::GetPersonRequest {
                    name: person.into(),
                    ..Default::default()
                },
                admin,
            ))
            .await
            .expect("person")
            .into_inner();
        if got.person.expect("person").employment_status() == common::EmploymentStatus::EmployedOutOfProvince {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{person} was not recorded as employed out of province within 60 s");
}

/// The confirmations `channel`'s exchange received and recorded for `person`.
async fn recorded_for(channel: &Channel, token: &str, person: &str) -> usize {
    ExchangeServiceClient::new(channel.clone())
        .list_received_confirmations(bearer(
            pb::ListReceivedConfirmationsRequest {
                outcome: pb::ConfirmationOutcome::Recorded as i32,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("list")
        .into_inner()
        .confirmations
        .iter()
        .filter(|c| c.person == person)
        .count()
}

/// How many confirmations wait in `channel`'s outbox for its one partner.
async fn waiting(channel: &Channel, token: &str) -> i32 {
    ExchangeServiceClient::new(channel.clone())
        .list_partners(bearer(pb::ListPartnersRequest::default(), token))
        .await
        .expect("partners")
        .into_inner()
        .partners[0]
        .waiting_messages
}

/// Chongqing's finance renews the cross-province transport subsidy for this year: a new version
/// of the shipped policy (the shipped one ends 2025-12-31), made by the administrator and
/// published by a finance reviewer.
async fn renew_transport_subsidy(channel: &Channel, admin: &str, reviewer: &str, year: i32) {
    let mut file: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../services/subsidy-payment/policies/cq-transport-cross-province.json"
    ))
    .expect("policy file");
    let version = &mut file["version"];
    version["validFrom"] = serde_json::json!({ "year": year, "month": 1, "day": 1 });
    version["validTo"] = serde_json::json!({ "year": year, "month": 12, "day": 31 });
    version["changeNote"] = serde_json::json!("本年度延续执行");
    for example in version["examples"].as_array_mut().expect("examples") {
        let day = serde_json::json!({ "year": year, "month": 3, "day": 2 });
        example["period"] = serde_json::json!({ "firstDay": day, "lastDay": day });
    }
    let request = bangfu_subsidy_payment::grpc::policy_files::parse("renewal", &file.to_string()).expect("parse");
    bangfu_platform::testing::publish_policy_version(
        channel.clone(),
        "policies/cq-transport-cross-province",
        request.version.expect("version"),
        admin,
        reviewer,
    )
    .await;
}

/// Waits until Chongqing's subsidy payment proposes the transport subsidy for `person`.
async fn await_transport_proposal(channel: &Channel, token: &str, person: &str) {
    use bangfu_proto::subsidy::v1 as sub;
    use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
    for _ in 0..300 {
        let claims = SubsidyServiceClient::new(channel.clone())
            .list_claims(bearer(
                sub::ListClaimsRequest {
                    policy: "policies/cq-transport-cross-province".into(),
                    person: person.into(),
                    state: sub::ClaimState::Proposed as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("claims")
            .into_inner()
            .claims;
        if !claims.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("no transport subsidy was proposed for {person} within 60 s");
}

fn confirmation(id: &str, citizen_id: &str) -> pb::EmploymentConfirmation {
    pb::EmploymentConfirmation {
        confirmation_id: id.into(),
        citizen_id: citizen_id.into(),
        employer: "枣庄市榴园服装有限公司".into(),
        work_region: "370402".into(),
        start_date: Some(common::Date {
            year: 2026,
            month: 11,
            day: 2,
        }),
        end_date: None,
        contract_months: 12,
        monthly_income: Some(common::Money { fen: 420_000 }),
        income_month: Some(common::YearMonth { year: 2026, month: 11 }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_provinces_exchange_only_signed_logged_minimized_messages_on_postgres() {
    let root = tempfile::tempdir().expect("tmp");
    let shandong = Province::new(root.path(), "shandong");
    let chongqing = Province::new(root.path(), "chongqing");
    shandong.configure("37", &chongqing, "50");
    chongqing.configure("50", &shandong, "37");
    let prefix = format!("exchange_{}", std::process::id());
    let pg = bangfu_platform::testing::postgres_admin_url();
    let cq_args = ["--database-url", pg.as_str(), "--database-prefix", prefix.as_str()];
    let sd = shandong.start(&[]);
    let mut cq = chongqing.start(&cq_args);

    // Chongqing's registry: a poverty-alleviated person of Yuzhong.
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let cq_keys = chongqing.keys();
    let cq_clerk = token(&cq_keys, "hr", "clerk", "50", "clerk-cq");
    let cq_certifier = token(&cq_keys, "agri", "reviewer", "50", "reviewer-cq");
    let citizen_id = bangfu_platform::testing::citizen_id("50010119900101301");
    let person = json(against(
        &cq,
        &cq_clerk,
        &[
            "identity",
            "create",
            "--name",
            "渝工甲",
            "--citizen-id",
            &citizen_id,
            "--region",
            CQ_VILLAGE,
            "--json",
        ],
    ));
    let person = person["name"].as_str().expect("name").to_string();
    ok(against(
        &cq,
        &cq_certifier,
        &[
            "identity",
            "certify",
            &person,
            "--category",
            "poverty-alleviated",
            "--body",
            "重庆市渝中区乡村振兴局",
            "--document",
            "渝中乡振〔2021〕1号",
            "--from",
            &day(today - time::Duration::days(3 * 365)),
        ],
    ));

    // Shandong's desk asks: a target person, the county, the category — nothing more.
    let sd_keys = shandong.keys();
    let sd_clerk = token(&sd_keys, "hr", "clerk", "37", "clerk-sd");
    let sd_main = Channel::from_shared(sd.addr.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut desk = ExchangeServiceClient::new(sd_main.clone());
    let cq_main = Channel::from_shared(cq.addr.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let verify = |citizen_id: &str, name: &str| pb::VerifyPartnerPersonRequest {
        partner: "partners/chongqing".into(),
        citizen_id: citizen_id.into(),
        on_date: None,
        display_name: name.into(),
    };
    let answer = desk
        .verify_partner_person(bearer(verify(&citizen_id, "渝工甲"), &sd_clerk))
        .await
        .expect("verified")
        .into_inner();
    let verification = answer.verification.expect("verification");
    assert_eq!(verification.outcome(), pb::VerificationOutcome::TargetPerson);
    assert_eq!(verification.home_county, "500101");
    assert_eq!(verification.name_check(), pb::NameCheck::Matched);
    assert_eq!(
        verification.categories.iter().map(|c| c.category()).collect::<Vec<_>>(),
        vec![common::PersonCategory::PovertyAlleviated]
    );
    let encoded = format!("{verification:?}");
    assert!(
        !encoded.contains("渝工甲") && !encoded.contains(CQ_VILLAGE),
        "{encoded}"
    );
    let unknown = bangfu_platform::testing::citizen_id("50010119800101401");
    let answer = desk
        .verify_partner_person(bearer(verify(&unknown, ""), &sd_clerk))
        .await
        .expect("asked")
        .into_inner();
    assert_eq!(
        answer.verification.expect("v").outcome(),
        pb::VerificationOutcome::NotFound
    );

    // The same question from the desk's command line.
    let asked = json(against(
        &sd,
        &sd_clerk,
        &["exchange", "verify", &citizen_id, "--partner", "chongqing", "--json"],
    ));
    assert_eq!(
        asked["verification"]["outcome"], "VERIFICATION_OUTCOME_TARGET_PERSON",
        "{asked}"
    );
    let partners = ok(against(&sd, &sd_clerk, &["exchange", "partners"]));
    assert!(partners.contains("partners/chongqing"), "{partners}");

    // Both logs hold the first message: same id and signature; the receipt verifies. (The
    // desks also poll each other's shared postings on their own schedule: left out here.)
    let sd_log = desk
        .list_exchange_messages(bearer(
            pb::ListExchangeMessagesRequest {
                method: "VerifyPerson".into(),
                ..Default::default()
            },
            &sd_clerk,
        ))
        .await
        .expect("log")
        .into_inner()
        .messages;
    assert_eq!(sd_log.len(), 3, "{sd_log:?}");
    let sent = sd_log.last().expect("first");
    assert_eq!(sent.direction(), pb::MessageDirection::Outgoing);
    assert_eq!(sent.result, "OK");
    assert!(!sent.receipt.is_empty() && !sent.signature.is_empty());
    let cq_log = ExchangeServiceClient::new(cq_main.clone())
        .list_exchange_messages(bearer(pb::ListExchangeMessagesRequest::default(), &cq_clerk))
        .await
        .expect("log")
        .into_inner()
        .messages;
    let received = cq_log
        .iter()
        .find(|m| m.message_id == sent.message_id)
        .expect("Chongqing logged Shandong's message");
    assert_eq!(received.direction(), pb::MessageDirection::Incoming);
    assert_eq!(received.signature, sent.signature);
    assert_eq!(received.request_sha256, sent.request_sha256);
    assert_eq!(received.receipt, sent.receipt);

    // A Zaozhuang employer shares a posting: Chongqing's job matching offers it to the person.
    let valid_until = day(today + time::Duration::days(365));
    let carrier = json(against(
        &sd,
        &sd_clerk,
        &[
            "jobs",
            "carrier-create",
            "--name",
            "枣庄市榴园服装有限公司",
            "--kind",
            "employer",
            "--credit-code",
            "91350100M000100Y43",
            "--region",
            "370402001013",
            "--contact",
            "王经理",
            "--phone",
            "0632-3311234",
            "--json",
        ],
    ));
    let carrier = carrier["carrier"]["name"].as_str().expect("name").to_string();
    let list = root.path().join("岗位.csv");
    std::fs::write(
        &list,
        format!(
            "岗位名称,职业编码,职业名称,工作地点,最低月薪,最高月薪,招聘人数,合同期限,每周工时,技能要求,有效期至,跨区域共享\n\
             服装缝纫工,6-05-01-01,缝纫工,370402001013,4000,5200,20,12,44,缝纫,{valid_until},是\n"
        ),
    )
    .expect("write");
    ok(against(
        &sd,
        &sd_clerk,
        &[
            "jobs",
            "postings-import",
            list.to_str().expect("path"),
            "--carrier",
            &carrier,
        ],
    ));
    let mut offered = None;
    for _ in 0..300 {
        let copies = ExchangeServiceClient::new(cq_main.clone())
            .list_partner_postings(bearer(pb::ListPartnerPostingsRequest::default(), &cq_clerk))
            .await
            .expect("partner postings")
            .into_inner()
            .postings;
        if let Some(copy) = copies.iter().find(|p| !p.local_posting.is_empty()) {
            offered = Some(copy.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let offered = offered.expect("Chongqing received the posting and created it in its job matching");
    let shared = offered.posting.clone().expect("posting");
    assert_eq!(
        (
            shared.title.as_str(),
            shared.employer.as_str(),
            shared.work_region.as_str()
        ),
        ("服装缝纫工", "枣庄市榴园服装有限公司", "370402001013")
    );
    let seeker = json(against(
        &cq,
        &cq_clerk,
        &[
            "jobs",
            "seeker-register",
            "--person",
            &person,
            "--intentions",
            "out-of-province",
            "--expected-wage",
            "4000",
            "--available-from",
            &day(today),
            "--skills",
            "缝纫",
            "--json",
        ],
    ));
    let seeker = seeker["seeker"]["name"].as_str().expect("name").to_string();
    let recommended = ok(against(&cq, &cq_clerk, &["jobs", "recommend", "--seeker", &seeker]));
    assert!(recommended.contains(&offered.local_posting), "{recommended}");

    // The person comes to work in Zaozhuang: Shandong's registry records it, Shandong's exchange
    // confirms it to Chongqing, and Chongqing's registry shows the person employed out of
    // province — recorded once.
    let sd_admin = std::fs::read_to_string(shandong.dir.join("data/admin.jwt")).expect("admin token");
    let sd_admin = sd_admin.trim();
    let cq_admin = std::fs::read_to_string(chongqing.dir.join("data/admin.jwt")).expect("admin token");
    let cq_admin = cq_admin.trim();
    let cq_finance = token(&cq_keys, "finance", "reviewer", "50", "reviewer-finance-cq");
    renew_transport_subsidy(&cq_main, cq_admin, &cq_finance, today.year()).await;
    let in_shandong = register(&sd, sd_admin, &citizen_id, "渝工甲");
    // Zaozhuang's desk places the worker on the posting; job matching records the employment
    // in Shandong's registry, whose feed the exchange follows.
    let postings = ok(against(
        &sd,
        sd_admin,
        &["jobs", "postings", "--carrier", &carrier, "--json"],
    ));
    let postings: serde_json::Value = serde_json::from_str(&postings).expect("a JSON array");
    let posting = postings[0]["name"].as_str().expect("name").to_string();
    let sd_seeker = json(against(
        &sd,
        sd_admin,
        &[
            "jobs",
            "seeker-register",
            "--person",
            &in_shandong,
            "--intentions",
            "local",
            "--expected-wage",
            "4000",
            "--available-from",
            &day(today),
            "--json",
        ],
    ));
    let sd_seeker = sd_seeker["seeker"]["name"].as_str().expect("name").to_string();
    let applied = json(against(
        &sd,
        sd_admin,
        &["jobs", "apply", "--posting", &posting, "--seeker", &sd_seeker, "--json"],
    ));
    let application = applied["application"]["name"].as_str().expect("name").to_string();
    ok(against(&sd, sd_admin, &["jobs", "decide", &application, "--accept"]));
    let placed = json(against(
        &sd,
        sd_admin,
        &[
            "jobs",
            "place",
            "--posting",
            &posting,
            "--seeker",
            &sd_seeker,
            "--application",
            &application,
            "--start",
            &day(today),
            "--contract-months",
            "12",
            "--wage",
            "4500",
            "--json",
        ],
    ));
    assert_eq!(placed["placement"]["state"], "PLACEMENT_STATE_ACTIVE", "{placed}");
    await_employed_out_of_province(&cq_main, cq_admin, &person).await;
    assert_eq!(recorded_for(&cq_main, &cq_clerk, &person).await, 1);
    // Chongqing's transport subsidy for going to work out of province is proposed (免申即享),
    // waiting for a clerk to confirm the fare.
    await_transport_proposal(&cq_main, cq_admin, &person).await;

    // Shandong (played here with its own key and certificate) confirms the person's work there:
    // Chongqing's identity records it, once; a person it does not know is kept for a clerk.
    let (sd_cert, sd_key) = (
        std::fs::read_to_string(shandong.dir.join("exchange/tls.pem")).expect("cert"),
        std::fs::read_to_string(shandong.dir.join("exchange/tls.key")).expect("key"),
    );
    let to_cq = partner_channel(&chongqing, &sd_cert, &sd_key)
        .await
        .expect("mutual TLS");
    let mut cq_partner = PartnerExchangeServiceClient::new(to_cq.clone());
    let now = time::OffsetDateTime::now_utc();
    let deliver = pb::DeliverEmploymentConfirmationsRequest {
        header: None,
        confirmations: vec![
            confirmation("sd-conf-1", &citizen_id),
            confirmation("sd-conf-2", &unknown),
        ],
    };
    let response = cq_partner
        .deliver_employment_confirmations(signed(
            &shandong,
            "chongqing",
            "DeliverEmploymentConfirmations",
            deliver.clone(),
            |m| &mut m.header,
            "sd-msg-1",
            now,
        ))
        .await
        .expect("delivered");
    assert!(response.metadata().get("x-bangfu-message-receipt").is_some());
    let outcomes: Vec<_> = response.into_inner().results.iter().map(|r| r.outcome()).collect();
    assert_eq!(outcomes, vec![pb::ConfirmationOutcome::Pending; 2]);
    await_employed_out_of_province(&cq_main, cq_admin, &person).await;
    let again = cq_partner
        .deliver_employment_confirmations(signed(
            &shandong,
            "chongqing",
            "DeliverEmploymentConfirmations",
            deliver.clone(),
            |m| &mut m.header,
            "sd-msg-2",
            now,
        ))
        .await
        .expect("delivered again")
        .into_inner();
    assert!(
        again
            .results
            .iter()
            .all(|r| r.outcome() == pb::ConfirmationOutcome::Duplicate),
        "{again:?}"
    );
    let unmatched = ExchangeServiceClient::new(cq_main.clone())
        .list_received_confirmations(bearer(
            pb::ListReceivedConfirmationsRequest {
                outcome: pb::ConfirmationOutcome::Unmatched as i32,
                ..Default::default()
            },
            &cq_clerk,
        ))
        .await
        .expect("list")
        .into_inner()
        .confirmations;
    assert_eq!(
        unmatched.iter().map(|c| c.confirmation_id.as_str()).collect::<Vec<_>>(),
        vec!["sd-conf-2"]
    );

    // Refused, each with its reason: a replayed id, a late message, a tampered body.
    let replay = cq_partner
        .deliver_employment_confirmations(signed(
            &shandong,
            "chongqing",
            "DeliverEmploymentConfirmations",
            deliver.clone(),
            |m| &mut m.header,
            "sd-msg-1",
            time::OffsetDateTime::now_utc(),
        ))
        .await
        .expect_err("replay");
    assert_eq!(reason(&replay), "MESSAGE_REPLAYED");
    let late = cq_partner
        .get_partner_info(signed(
            &shandong,
            "chongqing",
            "GetPartnerInfo",
            pb::GetPartnerInfoRequest::default(),
            |m| &mut m.header,
            "sd-msg-late",
            time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        ))
        .await
        .expect_err("late");
    assert_eq!(reason(&late), "MESSAGE_TIME_OUTSIDE_WINDOW");
    let mut tampered = signed(
        &shandong,
        "chongqing",
        "VerifyPerson",
        pb::VerifyPersonRequest {
            citizen_id: unknown.clone(),
            ..Default::default()
        },
        |m| &mut m.header,
        "sd-msg-tampered",
        time::OffsetDateTime::now_utc(),
    );
    tampered.get_mut().citizen_id = citizen_id.clone();
    let tampered = cq_partner.verify_person(tampered).await.expect_err("tampered");
    assert_eq!(reason(&tampered), "MESSAGE_SIGNATURE_INVALID");
    // An invalid citizen ID: refused when asked alone, answered on its own entry in a batch.
    let invalid = cq_partner
        .verify_person(signed(
            &shandong,
            "chongqing",
            "VerifyPerson",
            pb::VerifyPersonRequest {
                citizen_id: "500101199001013010".into(),
                ..Default::default()
            },
            |m| &mut m.header,
            "sd-msg-invalid",
            time::OffsetDateTime::now_utc(),
        ))
        .await
        .expect_err("an invalid ID");
    assert_eq!(reason(&invalid), "CITIZEN_ID_INVALID");
    let batch = cq_partner
        .batch_verify_persons(signed(
            &shandong,
            "chongqing",
            "BatchVerifyPersons",
            pb::BatchVerifyPersonsRequest {
                queries: vec![
                    pb::PersonQuery {
                        citizen_id: citizen_id.clone(),
                        display_name: String::new(),
                    },
                    pb::PersonQuery {
                        citizen_id: "500101199001013010".into(),
                        display_name: String::new(),
                    },
                ],
                ..Default::default()
            },
            |m| &mut m.header,
            "sd-msg-batch",
            time::OffsetDateTime::now_utc(),
        ))
        .await
        .expect("batch")
        .into_inner();
    assert_eq!(
        batch.verifications.iter().map(|v| v.outcome()).collect::<Vec<_>>(),
        vec![
            pb::VerificationOutcome::TargetPerson,
            pb::VerificationOutcome::CitizenIdInvalid
        ]
    );
    // Chongqing's auditors see each of Shandong's messages, refusals too, under Shandong's name.
    let cq_auditor = token(&cq_keys, "hr", "auditor", "50", "auditor-cq");
    let mut audited = Vec::new();
    for _ in 0..150 {
        audited = ExchangeServiceClient::new(cq_main.clone())
            .list_audit_events(bearer(
                pb::ListAuditEventsRequest {
                    page_size: 1000,
                    ..Default::default()
                },
                &cq_auditor,
            ))
            .await
            .expect("audit")
            .into_inner()
            .audit_events;
        if audited.iter().any(|e| e.resource.contains("sd-msg-tampered")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let tampered_audit = audited
        .iter()
        .find(|e| e.resource.contains("sd-msg-tampered"))
        .expect("the refused message is audited");
    assert_eq!(tampered_audit.subject, "shandong");
    assert_eq!(tampered_audit.outcome(), common::AuditOutcome::Denied);
    assert!(
        audited
            .iter()
            .any(|e| e.resource.contains("sd-msg-batch") && e.outcome() == common::AuditOutcome::Succeeded),
        "the answered batch is audited"
    );

    // A token of the wrong issuer (a key Chongqing does not trust, claiming to be Shandong).
    let (stranger, _) = generate_key_pair(shandong.signer().kid(), "shandong", false).expect("pair");
    let stranger = TokenSigner::from_file(&stranger).expect("signer");
    let mut request = bangfu_platform::testing::with_token(
        pb::GetPartnerInfoRequest::default(),
        &partner_token(&stranger, "chongqing", "50"),
    );
    request.metadata_mut().remove("x-bangfu-message-signature");
    let wrong_issuer = cq_partner.get_partner_info(request).await.expect_err("wrong issuer");
    assert_eq!(reason(&wrong_issuer), "TOKEN_SIGNATURE_INVALID");
    // A local token on the partner port; a partner token on the local port.
    let local = cq_partner
        .get_partner_info(bearer(pb::GetPartnerInfoRequest::default(), &cq_clerk))
        .await
        .expect_err("local token");
    assert_eq!(tonic::Code::Unauthenticated, local.code(), "{local:?}");
    let partner_on_local = ExchangeServiceClient::new(cq_main.clone())
        .list_partners(bearer(
            pb::ListPartnersRequest::default(),
            &partner_token(&shandong.signer(), "chongqing", "50"),
        ))
        .await
        .expect_err("partner token on a local method");
    assert_eq!(
        tonic::Code::Unauthenticated,
        partner_on_local.code(),
        "{partner_on_local:?}"
    );
    // A certificate of another CA: the handshake itself fails.
    let other = Province::new(root.path(), "gansu");
    let (foreign_cert, foreign_key) = issue(&other.ca_params, &other.ca_key, "gansu");
    let foreign = match partner_channel(&chongqing, &foreign_cert, &foreign_key).await {
        Err(_) => None,
        Ok(channel) => Some(
            PartnerExchangeServiceClient::new(channel)
                .get_partner_info(signed(
                    &shandong,
                    "chongqing",
                    "GetPartnerInfo",
                    pb::GetPartnerInfoRequest::default(),
                    |m| &mut m.header,
                    "sd-msg-foreign",
                    time::OffsetDateTime::now_utc(),
                ))
                .await
                .expect_err("a foreign certificate is refused"),
        ),
    };
    if let Some(status) = foreign {
        assert_ne!(status.code(), tonic::Code::Ok);
        assert_ne!(reason(&status), "MESSAGE_REPLAYED");
    }

    // Chongqing stops: Shandong's question is refused as the partner being unavailable, and
    // logged; a second worker's confirmation waits in Shandong's outbox; Chongqing starts again
    // on the same data and answers, and the confirmation arrives, once.
    let second_id = bangfu_platform::testing::citizen_id("50010119920202302");
    let second = json(against(
        &cq,
        &cq_clerk,
        &[
            "identity",
            "create",
            "--name",
            "渝工乙",
            "--citizen-id",
            &second_id,
            "--region",
            CQ_VILLAGE,
            "--json",
        ],
    ));
    let second = second["name"].as_str().expect("name").to_string();
    let before_restart = recorded_for(&cq_main, &cq_clerk, &person).await;
    assert!(cq.terminate().success());
    let second_in_shandong = register(&sd, sd_admin, &second_id, "渝工乙");
    record_work_in_shandong(&sd_main, sd_admin, &second_in_shandong, "滕州市鲁班建筑劳务有限公司").await;
    let mut queued = false;
    for _ in 0..300 {
        if waiting(&sd_main, &sd_clerk).await == 1 {
            queued = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(queued, "the confirmation waits for Chongqing");
    let down = desk
        .verify_partner_person(bearer(verify(&citizen_id, ""), &sd_clerk))
        .await
        .expect_err("partner down");
    assert_eq!(reason(&down), "PARTNER_UNAVAILABLE");
    let partners = desk
        .list_partners(bearer(pb::ListPartnersRequest::default(), &sd_clerk))
        .await
        .expect("partners")
        .into_inner()
        .partners;
    assert!(!partners[0].last_error.is_empty(), "{partners:?}");
    let cq = chongqing.start(&cq_args);
    let cq_main = Channel::from_shared(cq.addr.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    await_employed_out_of_province(&cq_main, cq_admin, &second).await;
    assert_eq!(recorded_for(&cq_main, &cq_clerk, &second).await, 1);
    assert_eq!(recorded_for(&cq_main, &cq_clerk, &person).await, before_restart);
    let mut emptied = false;
    for _ in 0..100 {
        if waiting(&sd_main, &sd_clerk).await == 0 {
            emptied = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(emptied, "the outbox empties once Chongqing answers");

    // The year's cooperation, as each desk counts it against Shandong §一's targets.
    let year = today.year();
    let ours = desk
        .get_cooperation_stats(bearer(pb::GetCooperationStatsRequest { year }, &sd_clerk))
        .await
        .expect("stats")
        .into_inner();
    let with_chongqing = &ours.partners[0];
    assert_eq!(
        (
            with_chongqing.partner_workers_employed_here,
            with_chongqing.partner_target_workers_employed_here,
            with_chongqing.partner_workers_unverified,
            with_chongqing.our_postings_shared,
        ),
        (2, 1, 0, 1),
        "{ours:?}"
    );
    assert_eq!(
        (ours.target_partner_workers, ours.target_partner_target_workers),
        (16_000, 10_000)
    );
    let table = ok(against(&sd, &sd_clerk, &["exchange", "stats"]));
    assert!(
        table.contains("16000") && table.contains("partners/chongqing"),
        "{table}"
    );
    let log = ok(against(
        &sd,
        &sd_clerk,
        &["exchange", "messages", "--method", "DeliverEmploymentConfirmations"],
    ));
    assert!(log.contains("PARTNER_UNAVAILABLE") && log.contains("OK"), "{log}");
    let theirs = ExchangeServiceClient::new(cq_main.clone())
        .get_cooperation_stats(bearer(pb::GetCooperationStatsRequest { year }, &cq_clerk))
        .await
        .expect("stats")
        .into_inner();
    let with_shandong = &theirs.partners[0];
    assert_eq!(
        (
            with_shandong.our_workers_employed_there,
            with_shandong.partner_postings_open
        ),
        (2, 1),
        "{theirs:?}"
    );
    let back = desk
        .verify_partner_person(bearer(verify(&citizen_id, ""), &sd_clerk))
        .await
        .expect("answered after the restart")
        .into_inner();
    assert_eq!(
        back.verification.expect("v").outcome(),
        pb::VerificationOutcome::TargetPerson
    );
    let sd_log = desk
        .list_exchange_messages(bearer(
            pb::ListExchangeMessagesRequest {
                method: "VerifyPerson".into(),
                ..Default::default()
            },
            &sd_clerk,
        ))
        .await
        .expect("log")
        .into_inner()
        .messages;
    assert_eq!(
        sd_log
            .iter()
            .filter(|m| m.method.ends_with("/VerifyPerson"))
            .map(|m| m.result.as_str())
            .collect::<Vec<_>>(),
        vec!["OK", "PARTNER_UNAVAILABLE", "OK", "OK", "OK"]
    );

    // Chongqing's databases go with the test, so runs do not pile them up on the server.
    drop(cq);
    drop_databases(&pg, &prefix).await;
}

/// Drops the databases `bangfu up --database-prefix PREFIX` made on the server `url`.
async fn drop_databases(url: &str, prefix: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(url).await.expect("the PostgreSQL server");
    for service in ["identity", "subsidy", "welfare_post", "work_relief", "jobs", "exchange"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{prefix}_{service}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop a test database");
    }
}
