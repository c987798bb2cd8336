//! Logging set up once per process: a tracing subscriber with the configured filter, as text
//! for a terminal or JSON for a log collector. Nothing personal is ever logged: citizen IDs,
//! names and phones reach the log only through their masked `Display`.

use tracing_subscriber::EnvFilter;

use crate::config::TelemetryConfig;

/// Installs the global subscriber. A second call (tests start many servers) does nothing.
pub fn init(config: &TelemetryConfig) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if config.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
