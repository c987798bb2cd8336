//! The suite's services and how a server process hosts them. `bangfu up` hosts every service
//! built so far on one port; `bangfu serve <service>` hosts one. Both go through [`host`], so
//! the two ways of running differ only in configuration.

use std::sync::Arc;

use bangfu_platform::auth::keys::DevelopmentKeys;
use bangfu_platform::auth::permissions::SERVICES;
use bangfu_platform::auth::verify::Verifier;
use bangfu_platform::config::Config;
use bangfu_platform::diagnostics::Diagnostics;
use bangfu_platform::server::ServerHost;
use clap::Args;

use crate::Failure;

/// The services this build can run. Each service's issue adds its name here and its routes
/// in [`host`].
pub const BUILT: &[&str] = &[];

/// A server hosting `services` (and diagnostics, health and reflection, always).
pub fn host(config: &Config, verifier: Verifier, services: &[&str]) -> Result<ServerHost, Failure> {
    let mut host = ServerHost::new(config.server.clone(), Arc::new(verifier));
    if let Some(unknown) = services.iter().find(|s| !BUILT.contains(s)) {
        return Err(not_built(unknown));
    }
    let diagnostics = Diagnostics::new(&config.server, host.service_names());
    host.add_service(diagnostics.into_server(&config.server));
    Ok(host)
}

fn not_built(service: &str) -> Failure {
    let built = if BUILT.is_empty() {
        "none yet".to_string()
    } else {
        BUILT.join(", ")
    };
    if SERVICES.contains(&service) {
        Failure::usage(format!(
            "the {service} service is not part of this build yet (built: {built})"
        ))
    } else {
        Failure::usage(format!(
            "unknown service {service:?}: the suite's services are {} (built: {built})",
            SERVICES.join(", ")
        ))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service to run: identity, jobs, welfare_post, work_relief, subsidy or exchange.
    pub service: String,
    /// Check the configuration and keys, print them (secrets redacted) and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// `bangfu serve <service>`: one service, configured from the environment, as containers run it.
pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let config = Config::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let telemetry = bangfu_platform::telemetry::init_service(&config.telemetry, &format!("bangfu-{}", args.service));
    if !BUILT.contains(&args.service.as_str()) {
        return Err(not_built(&args.service));
    }
    // A deployment never runs on the keys `bangfu up` made for trying the suite.
    let verifier =
        Verifier::from_config(&config.auth, DevelopmentKeys::Refuse).map_err(|e| Failure::usage(e.to_string()))?;
    for line in config.redacted_lines() {
        tracing::info!("config: {line}");
    }
    if args.check_config {
        println!("configuration of {} is usable", args.service);
        return Ok(());
    }
    let host = host(&config, verifier, &[args.service.as_str()])?;
    let listener = bangfu_platform::server::bind(config.server.listen)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    host.shutdown().trigger_on_signals();
    let served = host.serve(listener).await.map_err(|e| Failure::failed(e.to_string()));
    telemetry.shutdown().await;
    served
}
