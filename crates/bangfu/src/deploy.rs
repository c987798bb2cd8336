//! What a deployment runs once before the services start: `bangfu keys init` makes each
//! service's keys and the operator's, `bangfu db init` makes one database and one login role
//! per service. Both keep what exists, so a service added later gets its keys and database on
//! the volumes and server already in use.

use std::path::PathBuf;

use bangfu_platform::auth::keys::{self, OPERATOR_DIR, PUBLIC_DIR};
use clap::Subcommand;
use sqlx::Connection;

use crate::Failure;
use crate::suite::built;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the deployment's keys under DIR, keeping those that exist: DIR/public (trust.json
    /// and public keys, for every service), DIR/<service>/signing.json (one service's own),
    /// DIR/operator/signing.json (signs user tokens) and DIR/data-keys.json.
    Init {
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
        /// Services to make keys for, comma-separated (default: every service of this build).
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create, on the PostgreSQL server BANGFU_ADMIN_DATABASE_URL names, a login role
    /// `bangfu_<service>` (password: the file named after the service in
    /// BANGFU_DB_PASSWORDS_DIR) and a database `bangfu_<service>` owned by it that nobody else may
    /// connect to. Safe to run again: it only sets a changed password.
    Init {
        /// Services to prepare, comma-separated (default: every service of this build).
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// A superuser's URL to the server (postgres://…/postgres).
        #[arg(long, env = "BANGFU_ADMIN_DATABASE_URL", hide_env_values = true)]
        admin_url: Option<String>,
        /// A directory with one file per service holding its role's password.
        #[arg(long, env = "BANGFU_DB_PASSWORDS_DIR")]
        passwords_dir: Option<PathBuf>,
    },
}

/// The services a command names, each checked, or every built one.
fn services(named: &[String]) -> Result<Vec<&'static str>, Failure> {
    if named.is_empty() {
        return Ok(built());
    }
    named
        .iter()
        .map(|name| {
            bangfu_platform::auth::permissions::SERVICES
                .iter()
                .find(|s| **s == name.trim())
                .copied()
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "--services: unknown service {name:?}; the suite's services are {}",
                        bangfu_platform::auth::permissions::SERVICES.join(", ")
                    ))
                })
        })
        .collect()
}

pub fn keys(command: KeysCommand) -> Result<(), Failure> {
    let KeysCommand::Init { out, services: named } = command;
    let services = services(&named)?;
    let made = keys::init_deployment_keys(&out, &services).map_err(|e| Failure::failed(e.to_string()))?;
    for kid in &made.created {
        say!("created key {kid}");
    }
    if made.data_keys_created {
        say!("created the data keys {}", out.join(keys::DATA_KEYS_FILE).display());
    }
    if made.created.is_empty() && !made.data_keys_created {
        say!("every key exists already; nothing changed");
    }
    say!(
        "mount {} read-only in every service, {}/<service>/signing.json in that service only; keep {} with the operators",
        out.join(PUBLIC_DIR).display(),
        out.display(),
        out.join(OPERATOR_DIR).display()
    );
    Ok(())
}

pub async fn db(command: DbCommand) -> Result<(), Failure> {
    let DbCommand::Init {
        services: named,
        admin_url,
        passwords_dir,
    } = command;
    let services = services(&named)?;
    let admin_url = admin_url.ok_or_else(|| {
        Failure::usage("BANGFU_ADMIN_DATABASE_URL is not set: db init needs a superuser's URL to the server")
    })?;
    let passwords_dir = passwords_dir.ok_or_else(|| {
        Failure::usage("BANGFU_DB_PASSWORDS_DIR is not set: db init needs a file with each service's password")
    })?;
    let mut passwords = Vec::with_capacity(services.len());
    for service in &services {
        let path = passwords_dir.join(service);
        let password = std::fs::read_to_string(&path)
            .map_err(|e| Failure::usage(format!("the password of {service}: {}: {e}", path.display())))?;
        let password = password.trim_end_matches(['\n', '\r']).to_string();
        if password.len() < 12 || password.contains('\0') {
            return Err(Failure::usage(format!(
                "the password in {} is shorter than 12 characters (or holds a NUL byte)",
                path.display()
            )));
        }
        passwords.push(password);
    }
    let redacted = bangfu_platform::config::redact_url(&admin_url);
    let unavailable = |e: sqlx::Error| Failure {
        message: format!("cannot reach the database server {redacted}: {e}"),
        exit_code: 3,
    };
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.map_err(unavailable)?;
    for (service, password) in services.iter().zip(passwords) {
        let name = format!("bangfu_{service}");
        // DDL takes no bind parameters: the server quotes the name and the password itself.
        let (role, secret): (String, String) = sqlx::query_as("SELECT quote_ident($1), quote_literal($2)")
            .bind(&name)
            .bind(&password)
            .fetch_one(&mut admin)
            .await
            .map_err(unavailable)?;
        let role_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .map_err(unavailable)?;
        let verb = if role_exists { "ALTER" } else { "CREATE" };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {secret}"
        )))
        .execute(&mut admin)
        .await
        .map_err(unavailable)?;
        let database_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .map_err(unavailable)?;
        let mut owner_note = String::new();
        if database_exists {
            // A database made by hand (or by an earlier tool) under another role would leave the
            // service's role without rights on its own schema, and `migrate` would fail deep in
            // a statement: give it to the service's role, and say so.
            let owner: String =
                sqlx::query_scalar("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1")
                    .bind(&name)
                    .fetch_one(&mut admin)
                    .await
                    .map_err(unavailable)?;
            if owner != name {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE {role} OWNER TO {role}")))
                    .execute(&mut admin)
                    .await
                    .map_err(unavailable)?;
                owner_note = format!(" (its owner was {owner}; now {name})");
            }
        } else {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {role} OWNER {role}")))
                .execute(&mut admin)
                .await
                .map_err(unavailable)?;
        }
        // Only its owner (and superusers) may connect: one service's role never reaches another's data.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "REVOKE ALL ON DATABASE {role} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE {role} TO {role}"
        )))
        .execute(&mut admin)
        .await
        .map_err(unavailable)?;
        say!(
            "{service}: role {name} {}, database {name} {}{owner_note}",
            if role_exists { "kept (password set)" } else { "created" },
            if database_exists { "kept" } else { "created" }
        );
    }
    Ok(())
}
