//! The administrator's client commands: they read the address and token from flags or the
//! environment, call the server, and print a table or JSON. Services' issues add their own
//! commands (`bangfu identity …`) on the same [`ClientArgs`].

use std::path::{Path, PathBuf};

use bangfu_platform::error::describe_status;
use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use bangfu_proto::diagnostics::v1::{CheckPeersRequest, GetServerInfoRequest, WhoAmIRequest};
use clap::Args;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::Failure;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Server address, http://host:port (plaintext) or https://host:port (TLS).
    #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// CA certificate (PEM) to trust for an https address.
    #[arg(long, visible_alias = "ca", env = "BANGFU_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) to present to a server that requires one (mutual TLS, the
    /// Helm chart's default); needs --tls-key and an https address.
    #[arg(long, env = "BANGFU_CLIENT_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "BANGFU_CLIENT_KEY")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The bearer token.
    #[arg(long, env = "BANGFU_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token (default: data/admin.jwt, made by `bangfu up`).
    #[arg(long, env = "BANGFU_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Print one JSON document (the protobuf JSON mapping; a list is an array) instead of a
    /// table; errors then go to stderr as a JSON object.
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print JSON lines: one object per record as it arrives (lists and streams).
    #[arg(long)]
    pub jsonl: bool,
}

impl ClientArgs {
    pub fn output(&self) -> crate::print::Output {
        use crate::print::Output;
        match (self.json, self.jsonl) {
            (_, true) => Output::JsonLines,
            (true, false) => Output::Json,
            (false, false) => Output::Text,
        }
    }
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The service to check, fully qualified; empty for the server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Print the answer as JSON (`{"status": "SERVING"}`), as grpcurl prints it.
    #[arg(long)]
    pub json: bool,
}

/// The address as a URL: a bare `host:port`, as grpcurl takes it, is plaintext http.
fn address_url(addr: &str) -> String {
    let addr = addr.trim();
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

async fn channel(args: &ConnectArgs) -> Result<Channel, Failure> {
    let addr = address_url(&args.addr);
    let mut endpoint = Channel::from_shared(addr.clone()).map_err(|e| {
        Failure::usage(format!(
            "--addr {:?} is not a URL like http://127.0.0.1:50051: {e}",
            args.addr
        ))
    })?;
    let identity = client_identity(args)?;
    let https = addr.starts_with("https://");
    PLAINTEXT.store(!https, std::sync::atomic::Ordering::Relaxed);
    if identity.is_some() && !https {
        return Err(Failure::usage(format!(
            "client certificates need an https:// address, and --addr is {addr}"
        )));
    }
    if https {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.ca_cert {
            tls = tls.ca_certificate(Certificate::from_pem(read_pem("--ca-cert", ca, "CERTIFICATE")?));
        }
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Failure::usage(format!("TLS settings: {e}")))?;
    }
    endpoint.connect().await.map_err(|e| {
        let cause = error_chain(&e);
        let hint = connect_hint(&addr, &cause);
        Failure::unavailable(format!("cannot connect to {addr}: {cause}{hint}"))
    })
}

/// What most often causes a connection failure, from its text: the words a clerk or an
/// integrator can act on.
fn connect_hint(addr: &str, cause: &str) -> &'static str {
    let cause = cause.to_ascii_lowercase();
    if cause.contains("connection refused") {
        " — nothing listens there: is the server running, and is the port right?"
    } else if cause.contains("unknownissuer") || cause.contains("unknown issuer") || cause.contains("badsignature") {
        " — the server's certificate is not signed by a CA this client trusts: give the deployment's CA with --ca-cert (BANGFU_CA_CERT)"
    } else if cause.contains("notvalidforname") || cause.contains("not valid for name") {
        " — the server's certificate does not name this host: connect by the name the certificate was made for"
    } else if addr.starts_with("http://")
        && (cause.contains("frame") || cause.contains("connection closed") || cause.contains("broken pipe"))
    {
        " — the server may speak TLS: try https:// with --ca-cert"
    } else if cause.contains("invalidcontenttype")
        || cause.contains("corrupt message")
        || cause.contains("invalid http version")
    {
        " — the server answered something other than plain gRPC: a TLS port needs https:// and --ca-cert"
    } else {
        ""
    }
}

/// An error and its causes, `transport error: invalid peer certificate: UnknownIssuer`: a
/// transport error alone says only "transport error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // A wrapper often says what it wraps again.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// The client certificate and key to present, when given: both or neither.
fn client_identity(args: &ConnectArgs) -> Result<Option<Identity>, Failure> {
    match (&args.tls_cert, &args.tls_key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(Failure::usage(
            "--tls-cert is given but not --tls-key (BANGFU_CLIENT_KEY): a client certificate needs its private key",
        )),
        (None, Some(_)) => Err(Failure::usage(
            "--tls-key is given but not --tls-cert (BANGFU_CLIENT_CERT): a private key needs its client certificate",
        )),
        (Some(cert), Some(key)) => Ok(Some(Identity::from_pem(
            read_pem("--tls-cert", cert, "CERTIFICATE")?,
            read_pem("--tls-key", key, "PRIVATE KEY")?,
        ))),
    }
}

/// The PEM file a flag names; a usage error naming the flag when it cannot be read or holds
/// no `label` block (`-----BEGIN CERTIFICATE-----`, `-----BEGIN [EC |RSA ]PRIVATE KEY-----`).
fn read_pem(flag: &str, path: &Path, label: &str) -> Result<Vec<u8>, Failure> {
    let pem = std::fs::read(path).map_err(|e| Failure::usage(format!("{flag} {}: {e}", path.display())))?;
    let end = format!("{label}-----");
    let holds_label = String::from_utf8_lossy(&pem)
        .lines()
        .any(|line| line.starts_with("-----BEGIN ") && line.trim_end().ends_with(&end));
    if holds_label {
        Ok(pem)
    } else {
        Err(Failure::usage(format!(
            "{flag} {} holds no PEM {label}",
            path.display()
        )))
    }
}

pub type Authorized =
    InterceptedService<Channel, Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>>;

/// A channel that sends the token on every call.
pub async fn authorized(args: &ClientArgs) -> Result<Authorized, Failure> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => token.trim().to_string(),
        (None, file) => {
            let path = file
                .clone()
                .unwrap_or_else(|| crate::default_data_dir().join("admin.jwt"));
            std::fs::read_to_string(&path)
                .map_err(|e| {
                    Failure::usage(format!(
                        "no token: give --token or --token-file ({}: {e})",
                        path.display()
                    ))
                })?
                .trim()
                .to_string()
        }
    };
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|_| Failure::usage("the token contains characters a header cannot carry"))?;
    let channel = channel(&args.connect).await?;
    Ok(InterceptedService::new(
        channel,
        Box::new(move |mut request: tonic::Request<()>| {
            request.metadata_mut().insert("authorization", value.clone());
            Ok(request)
        }),
    ))
}

/// A refused call as the user reads it. A call that failed in the connection rather than in the
/// server says what most often causes that over TLS: with TLS 1.3 a server that requires client
/// certificates turns a client without one away only after the handshake, so the refusal
/// reaches the client as a closed connection and not as an error naming the certificate.
/// Whether this command connected without TLS: a call that then fails in the connection most
/// often went to a TLS port.
static PLAINTEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn call_failed(status: &tonic::Status) -> Failure {
    let in_transport = std::error::Error::source(status).is_some_and(|source| source.is::<tonic::transport::Error>());
    let message = if in_transport && PLAINTEXT.load(std::sync::atomic::Ordering::Relaxed) {
        format!(
            "the connection failed ({}). The address is plaintext (http:// or host:port): a server that \
             serves TLS closes such a connection; give its https:// address and the CA that signed its \
             certificate (--ca-cert), and a client certificate if it requires one (--tls-cert, --tls-key)",
            describe_status(status)
        )
    } else if in_transport {
        format!(
            "the connection failed ({}). A server that requires client certificates (mutual TLS) closes \
             the connection of a client without one: give --tls-cert and --tls-key (BANGFU_CLIENT_CERT, \
             BANGFU_CLIENT_KEY), a certificate signed by the CA the server trusts, and an https:// address",
            describe_status(status)
        )
    } else {
        describe_status(status)
    };
    let parts = bangfu_platform::error::refusal_parts(status);
    Failure {
        message,
        // A call that failed in the connection did not reach the server's service.
        exit_code: if in_transport {
            crate::exit::UNAVAILABLE
        } else {
            crate::exit_code_of(status.code())
        },
        refusal: Some(Box::new(crate::Refusal {
            code: format!("{:?}", status.code()),
            reason: parts.reason,
            field: parts.field,
            message: parts.message,
            trace_id: parts.trace_id,
        })),
    }
}

/// Waits for a call and hands back its message, or the failure saying why it was refused:
/// `let person = call(identity.get_person(request)).await?;`.
pub async fn call<T>(response: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> Result<T, Failure> {
    response
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| call_failed(&status))
}

pub async fn whoami(args: ClientArgs) -> Result<(), Failure> {
    let mut client = DiagnosticsServiceClient::new(authorized(&args).await?);
    let me = call(client.who_am_i(WhoAmIRequest {})).await?;
    if args.output().is_json() {
        return crate::print::show("bangfu.diagnostics.v1.WhoAmIResponse", &me, true);
    }
    print_rows(&[
        ("subject", me.subject),
        ("issuer", me.issuer),
        ("department", me.department),
        ("roles", me.roles.join(", ")),
        ("region scope", me.region_scope),
        ("acting service", me.acting_service),
        ("permissions", me.permissions.join("\n")),
    ]);
    Ok(())
}

pub async fn server_info(args: ClientArgs) -> Result<(), Failure> {
    let mut client = DiagnosticsServiceClient::new(authorized(&args).await?);
    let info = call(client.get_server_info(GetServerInfoRequest {})).await?;
    if args.output().is_json() {
        crate::print::show("bangfu.diagnostics.v1.GetServerInfoResponse", &info, true)?;
    } else {
        let followers = info
            .followers
            .iter()
            .map(|f| {
                let mut line = format!(
                    "{}: {}, {} applied, {:.1} s and about {} events behind",
                    f.name,
                    follower_state(f.state),
                    f.events_applied,
                    f.lag_seconds,
                    f.events_behind
                );
                if !f.last_error.is_empty() {
                    line.push_str(&format!(" ({})", f.last_error));
                }
                line
            })
            .collect::<Vec<_>>();
        print_rows(&[
            ("version", info.version),
            ("services", info.services.join("\n")),
            ("max receive", format!("{} bytes", info.max_receive_message_bytes)),
            ("max send", format!("{} bytes", info.max_send_message_bytes)),
            ("unary timeout", format!("{} ms", info.unary_timeout_millis)),
            ("concurrency limit", info.concurrency_limit.to_string()),
            ("tls", info.tls.to_string()),
            (
                "followers",
                if followers.is_empty() {
                    "none".to_string()
                } else {
                    followers.join("\n")
                },
            ),
        ]);
    }
    Ok(())
}

/// A follower's state as a word (`following`, `standby`, `reconnecting`, `stopped`).
fn follower_state(state: i32) -> String {
    bangfu_proto::diagnostics::v1::FollowerState::try_from(state)
        .map(|s| s.as_str_name().trim_start_matches("FOLLOWER_STATE_").to_lowercase())
        .unwrap_or_else(|_| state.to_string())
}

pub async fn check_peers(args: ClientArgs) -> Result<(), Failure> {
    let mut client = DiagnosticsServiceClient::new(authorized(&args).await?);
    let checks = call(client.check_peers(CheckPeersRequest {})).await?.checks;
    let unreachable = checks.iter().filter(|c| !c.reachable).count();
    if args.output().is_json() {
        let checks = checks
            .iter()
            .map(|check| crate::print::reflect("bangfu.diagnostics.v1.PeerCheck", check))
            .collect::<Result<Vec<_>, _>>()?;
        say!(
            "{:#}",
            serde_json::Value::Array(checks.iter().map(crate::print::json).collect())
        );
    } else if checks.is_empty() {
        say!("no peers configured (BANGFU_PEER_<SERVICE>)");
    } else {
        for c in &checks {
            let outcome = if c.reachable {
                format!(
                    "ok, {} ms, seen as {} via {}",
                    c.latency_millis, c.seen_subject, c.seen_acting_service
                )
            } else {
                c.error.clone()
            };
            say!("{} → {} at {}: {outcome}", c.caller, c.peer, c.address);
        }
    }
    if unreachable > 0 {
        return Err(Failure::failed(format!(
            "{unreachable} of {} peers did not answer",
            checks.len()
        )));
    }
    Ok(())
}

pub async fn health(args: HealthArgs) -> Result<(), Failure> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut client = HealthClient::new(channel(&args.connect).await?);
    let response = call(client.check(HealthCheckRequest {
        service: args.service.clone(),
    }))
    .await?;
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    if args.json {
        say!("{:#}", serde_json::json!({ "status": status.as_str_name() }));
    } else {
        say!("{}", status.as_str_name());
    }
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "{} is {}",
            if args.service.is_empty() {
                "the server"
            } else {
                &args.service
            },
            status.as_str_name()
        )))
    }
}

/// Prints label/value rows; a value with several lines continues under its first line.
pub fn print_rows(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in rows {
        let mut lines = value.lines();
        say!("{label:<width$}  {}", lines.next().unwrap_or(""));
        for line in lines {
            say!("{:<width$}  {line}", "");
        }
    }
}

// Which page of a list to show; shared by the listing commands.
#[derive(Debug, Args)]
pub(crate) struct PageArgs {
    /// How many a page, up to 1000 (0: the server's default, 100).
    #[arg(long, default_value_t = 0)]
    pub(crate) page_size: i32,
    /// Start at this page: the next-page token a previous call printed.
    #[arg(long, default_value = "")]
    pub(crate) page_token: String,
    /// Every page to the end, not only one.
    #[arg(long)]
    pub(crate) all: bool,
    /// Write the list to this file instead: .xlsx for a workbook, otherwise CSV with a
    /// byte-order mark (opens in Excel).
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// Walks a list paged with next-page tokens: one page from the token given, or with `all`
/// every page to the end.
pub(crate) struct Pages {
    pub(crate) size: i32,
    next: Option<String>,
    all: bool,
    last: String,
}

impl Pages {
    pub(crate) fn new(size: i32, page_token: String, all: bool) -> Result<Self, Failure> {
        if !(0..=1000).contains(&size) {
            return Err(Failure::usage(format!(
                "--page-size {size} must be 0 (the server's default, 100) to 1000"
            )));
        }
        Ok(Self {
            size,
            next: Some(page_token),
            all,
            last: String::new(),
        })
    }

    /// The token of the page to fetch next; `None` when done.
    pub(crate) fn next_token(&mut self) -> Option<String> {
        self.next.take()
    }

    /// Takes note of a page's next-page token.
    pub(crate) fn fetched(&mut self, next_page_token: String) {
        if self.all && !next_page_token.is_empty() {
            self.next = Some(next_page_token.clone());
        }
        self.last = next_page_token;
    }

    /// Says where the next page starts, unless the list has ended: under the table, or on
    /// stderr beside JSON so that stdout stays one document.
    pub(crate) fn finish(&self, output: crate::print::Output) {
        if self.last.is_empty() {
            return;
        }
        if output.is_json() {
            eprintln!("{}", serde_json::json!({ "nextPageToken": self.last }));
        } else {
            say!("next page: --page-token {}", self.last);
        }
    }
}

/// One page of a list: its records and the next page's token.
pub(crate) type Page<'a, M> = std::pin::Pin<Box<dyn Future<Output = Result<(Vec<M>, String), Failure>> + Send + 'a>>;

/// Prints a list page by page as `page` says: a table of `layout`'s columns per page (JSON
/// lines with `json`), then where the next page starts.
pub(crate) async fn list_pages<C, M: prost::Message>(
    service: &mut C,
    output: crate::print::Output,
    page: &PageArgs,
    layout: &crate::print::Columns,
    fetch: impl for<'a> Fn(&'a mut C, i32, String) -> Page<'a, M>,
) -> Result<(), Failure> {
    let mut pages = Pages::new(page.page_size, page.page_token.clone(), page.all)?;
    let mut listing = crate::print::Listing::to_file(output, page.output.clone());
    while let Some(token) = pages.next_token() {
        let (items, next) = fetch(service, pages.size, token).await?;
        listing.page(&layout.rows(&items)?, layout.columns);
        pages.fetched(next);
    }
    listing.finish()?;
    pages.finish(output);
    Ok(())
}
