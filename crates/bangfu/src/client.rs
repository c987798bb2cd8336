//! The administrator's client commands: they read the address and token from flags or the
//! environment, call the server, and print a table or JSON. Services' issues add their own
//! commands (`bangfu identity …`) on the same [`ClientArgs`].

use std::path::PathBuf;

use bangfu_platform::error::describe_status;
use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use bangfu_proto::diagnostics::v1::{CheckPeersRequest, GetServerInfoRequest, WhoAmIRequest};
use clap::Args;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::Failure;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Server address, http://host:port (plaintext) or https://host:port (TLS).
    #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// CA certificate (PEM) to trust for an https address.
    #[arg(long, env = "BANGFU_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
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
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The service to check, fully qualified; empty for the server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
}

async fn channel(args: &ConnectArgs) -> Result<Channel, Failure> {
    let mut endpoint = Channel::from_shared(args.addr.clone()).map_err(|e| {
        Failure::usage(format!(
            "--addr {:?} is not a URL like http://127.0.0.1:50051: {e}",
            args.addr
        ))
    })?;
    if args.addr.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| Failure::usage(format!("--ca-cert {}: {e}", ca.display())))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Failure::usage(format!("TLS settings: {e}")))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|e| Failure::failed(format!("cannot connect to {}: {e}", args.addr)))
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

pub fn call_failed(status: &tonic::Status) -> Failure {
    Failure::failed(describe_status(status))
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
    if args.json {
        let value = serde_json::json!({
            "subject": me.subject,
            "issuer": me.issuer,
            "department": me.department,
            "roles": me.roles,
            "region_scope": me.region_scope,
            "acting_service": me.acting_service,
            "permissions": me.permissions,
        });
        say!("{value:#}");
    } else {
        print_rows(&[
            ("subject", me.subject),
            ("issuer", me.issuer),
            ("department", me.department),
            ("roles", me.roles.join(", ")),
            ("region scope", me.region_scope),
            ("acting service", me.acting_service),
            ("permissions", me.permissions.join("\n")),
        ]);
    }
    Ok(())
}

pub async fn server_info(args: ClientArgs) -> Result<(), Failure> {
    let mut client = DiagnosticsServiceClient::new(authorized(&args).await?);
    let info = call(client.get_server_info(GetServerInfoRequest {})).await?;
    if args.json {
        let value = serde_json::json!({
            "version": info.version,
            "services": info.services,
            "max_receive_message_bytes": info.max_receive_message_bytes,
            "max_send_message_bytes": info.max_send_message_bytes,
            "unary_timeout_millis": info.unary_timeout_millis,
            "concurrency_limit": info.concurrency_limit,
            "tls": info.tls,
        });
        say!("{value:#}");
    } else {
        print_rows(&[
            ("version", info.version),
            ("services", info.services.join("\n")),
            ("max receive", format!("{} bytes", info.max_receive_message_bytes)),
            ("max send", format!("{} bytes", info.max_send_message_bytes)),
            ("unary timeout", format!("{} ms", info.unary_timeout_millis)),
            ("concurrency limit", info.concurrency_limit.to_string()),
            ("tls", info.tls.to_string()),
        ]);
    }
    Ok(())
}

pub async fn check_peers(args: ClientArgs) -> Result<(), Failure> {
    let mut client = DiagnosticsServiceClient::new(authorized(&args).await?);
    let checks = call(client.check_peers(CheckPeersRequest {})).await?.checks;
    let unreachable = checks.iter().filter(|c| !c.reachable).count();
    if args.json {
        let value: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "caller": c.caller,
                    "peer": c.peer,
                    "address": c.address,
                    "reachable": c.reachable,
                    "seen_subject": c.seen_subject,
                    "seen_acting_service": c.seen_acting_service,
                    "error": c.error,
                    "latency_millis": c.latency_millis,
                })
            })
            .collect();
        say!("{:#}", serde_json::Value::Array(value));
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
    say!("{}", status.as_str_name());
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
