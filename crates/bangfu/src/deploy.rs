//! What a deployment runs once before the services start: `bangfu keys init` makes each
//! service's keys and the operator's, `bangfu db init` makes one database and two login roles
//! per service (its owner, for migrations, and the runtime role, with data rights only). Both keep what exists, so a service added later gets its keys and database on
//! the volumes and server already in use.

use std::path::PathBuf;

use bangfu_platform::auth::keys::{self, OPERATOR_DIR, PUBLIC_DIR};
use clap::Subcommand;
use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;

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
        /// Instead, the exchange's partner files for this province's id (e.g. shandong), under
        /// OUT/exchange: the signing key (mode 0600) and its public half for the partner, and a
        /// TLS key with a certificate request for the partner port, for your CA to sign.
        #[arg(long)]
        partner: Option<String>,
        /// The partner port's host names in the certificate request (with --partner).
        #[arg(long = "host", value_delimiter = ',')]
        hosts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create, on the PostgreSQL server BANGFU_ADMIN_DATABASE_URL names, per service a database
    /// `bangfu_<service>` that nobody else may connect to, its owner role
    /// `bangfu_<service>_owner` (for `bangfu migrate`; password: file `<service>-owner` in
    /// BANGFU_DB_PASSWORDS_DIR) and the runtime role `bangfu_<service>` (for `bangfu serve`;
    /// password: file `<service>`), which may read and write rows but not change the schema.
    /// Safe to run again: it sets changed passwords, and moves a database of the earlier layout
    /// (owned by `bangfu_<service>`) to the owner role.
    Init {
        /// Services to prepare, comma-separated (default: every service of this build).
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// A superuser's URL to the server (postgres://…/postgres).
        #[arg(long, env = "BANGFU_ADMIN_DATABASE_URL", hide_env_values = true)]
        admin_url: Option<String>,
        /// A file holding the superuser's password, for an admin URL that names none (so the
        /// password stays out of the environment; any character is fine).
        #[arg(long, env = "BANGFU_ADMIN_PASSWORD_FILE")]
        admin_password_file: Option<PathBuf>,
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
    let KeysCommand::Init {
        out,
        services: named,
        partner,
        hosts,
    } = command;
    if let Some(partner) = partner {
        return partner_keys(&out, &partner, &hosts);
    }
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
        admin_password_file,
        passwords_dir,
    } = command;
    let services = services(&named)?;
    let admin_url = admin_url.ok_or_else(|| {
        Failure::usage("BANGFU_ADMIN_DATABASE_URL is not set: db init needs a superuser's URL to the server")
    })?;
    let passwords_dir = passwords_dir.ok_or_else(|| {
        Failure::usage("BANGFU_DB_PASSWORDS_DIR is not set: db init needs a file with each service's password")
    })?;
    // Every password is read before anything changes on the server: a missing file stops the
    // run with nothing done, not halfway through the services.
    let mut passwords = Vec::with_capacity(services.len());
    for service in &services {
        let runtime = read_password(&passwords_dir, service)?;
        let owner = read_password(&passwords_dir, &format!("{service}-owner"))?;
        passwords.push((runtime, owner));
    }
    let redacted = bangfu_platform::config::redact_url(&admin_url);
    let unavailable =
        |e: sqlx::Error| Failure::cannot_start(format!("cannot reach the database server {redacted}: {e}"));
    let mut admin_options: PgConnectOptions = admin_url
        .parse()
        .map_err(|e| Failure::usage(format!("BANGFU_ADMIN_DATABASE_URL {redacted}: {e}")))?;
    if let Some(path) = &admin_password_file {
        let password = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("BANGFU_ADMIN_PASSWORD_FILE: {}: {e}", path.display())))?;
        // Given to the driver as it is, not through the URL: no character needs escaping.
        admin_options = admin_options.password(password.trim_end_matches(['\n', '\r']));
    }
    let mut admin = sqlx::PgConnection::connect_with(&admin_options)
        .await
        .map_err(unavailable)?;
    for (service, (runtime_password, owner_password)) in services.iter().zip(passwords) {
        let name = format!("bangfu_{service}");
        let owner_name = format!("{name}_owner");
        let runtime_created = login_role(&mut admin, &name, &runtime_password)
            .await
            .map_err(unavailable)?;
        let owner_created = login_role(&mut admin, &owner_name, &owner_password)
            .await
            .map_err(unavailable)?;
        let (database, owner, runtime): (String, String, String) =
            sqlx::query_as("SELECT quote_ident($1), quote_ident($2), quote_ident($1)")
                .bind(&name)
                .bind(&owner_name)
                .fetch_one(&mut admin)
                .await
                .map_err(unavailable)?;
        let was_owned_by: Option<String> =
            sqlx::query_scalar("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut admin)
                .await
                .map_err(unavailable)?;
        let mut notes = Vec::new();
        match &was_owned_by {
            None => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database} OWNER {owner}")))
                    .execute(&mut admin)
                    .await
                    .map_err(unavailable)?;
            }
            Some(current) if *current != owner_name => {
                // A database made by hand (or by an earlier tool) under another role would
                // leave the owner role without rights on its own schema, and `migrate` would
                // fail deep in a statement: give it to the owner role, and say so.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE {database} OWNER TO {owner}"
                )))
                .execute(&mut admin)
                .await
                .map_err(unavailable)?;
                notes.push(format!("its owner was {current}; now {owner_name}"));
            }
            Some(_) => {}
        }
        // Only the two roles (and superusers) may connect: one service's roles never reach
        // another's data. TEMPORARY stays granted: a runtime statement may use a temporary table.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "REVOKE ALL ON DATABASE {database} FROM PUBLIC; \
             GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {owner}, {runtime}"
        )))
        .execute(&mut admin)
        .await
        .map_err(unavailable)?;

        // The rest happens inside the service's database, still as the superuser.
        let mut inside = sqlx::PgConnection::connect_with(&admin_options.clone().database(&name))
            .await
            .map_err(unavailable)?;
        // The layout before the owner role existed: the runtime role owned the database and
        // everything the migrations made. Everything it owns here goes to the owner role, so
        // that the runtime role keeps only the rights granted below.
        let owned_by_runtime: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = to_regrole($1)) \
                  + (SELECT count(*) FROM pg_namespace WHERE nspowner = to_regrole($1)) \
                  + (SELECT count(*) FROM pg_proc WHERE proowner = to_regrole($1)) \
                  + (SELECT count(*) FROM pg_type \
                     WHERE typowner = to_regrole($1) AND typrelid = 0 AND typelem = 0)",
        )
        .bind(&name)
        .fetch_one(&mut inside)
        .await
        .map_err(unavailable)?;
        if owned_by_runtime > 0 {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("REASSIGN OWNED BY {runtime} TO {owner}")))
                .execute(&mut inside)
                .await
                .map_err(unavailable)?;
            notes.push(format!(
                "{owned_by_runtime} objects {name} owned (tables, indexes, sequences, functions, the schema) \
                 now belong to {owner_name}; {name} keeps data rights only"
            ));
        }
        // PostgreSQL 17 has a privilege for ANALYZE (MAINTAIN): with it the runtime role
        // refreshes the statistics after a bulk import; older servers let only the owner, and
        // the import then leaves that to autovacuum.
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&mut inside)
            .await
            .map_err(unavailable)?;
        let table_rights = if version >= 170_000 {
            "SELECT, INSERT, UPDATE, DELETE, MAINTAIN"
        } else {
            "SELECT, INSERT, UPDATE, DELETE"
        };
        // The schema belongs to the owner role (on PostgreSQL 15 it is the database owner's
        // by default, on older servers the bootstrap superuser's with CREATE for everyone):
        // nobody else may create in it. The runtime role reads and writes rows, and the
        // default privileges extend that to the tables and sequences later migrations make.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER SCHEMA public OWNER TO {owner}; \
             REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
             REVOKE CREATE ON SCHEMA public FROM {runtime}; \
             GRANT USAGE ON SCHEMA public TO {runtime}; \
             GRANT {table_rights} ON ALL TABLES IN SCHEMA public TO {runtime}; \
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {runtime}; \
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
                 GRANT {table_rights} ON TABLES TO {runtime}; \
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
                 GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {runtime}"
        )))
        .execute(&mut inside)
        .await
        .map_err(unavailable)?;
        // Best effort: the connection is ours alone and dropped either way.
        let _ = inside.close().await;

        let created = |yes: bool| if yes { "created" } else { "kept (password set)" };
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        say!(
            "{service}: owner role {owner_name} {} (runs `bangfu migrate {service}`), runtime role {name} {} (data rights only), database {name} {}{notes}",
            created(owner_created),
            created(runtime_created),
            if was_owned_by.is_some() { "kept" } else { "created" }
        );
    }
    Ok(())
}

/// The password in `dir`/`file`, without its line ending.
fn read_password(dir: &std::path::Path, file: &str) -> Result<String, Failure> {
    let path = dir.join(file);
    let password = std::fs::read_to_string(&path)
        .map_err(|e| Failure::usage(format!("the password {file:?}: {}: {e}", path.display())))?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.len() < 12 || password.contains('\0') {
        return Err(Failure::usage(format!(
            "the password in {} is shorter than 12 characters (or holds a NUL byte)",
            path.display()
        )));
    }
    Ok(password)
}

/// Creates login role `name` with `password`, or sets the password of the existing one; true
/// when it was created. Neither role may create databases or roles.
async fn login_role(admin: &mut sqlx::PgConnection, name: &str, password: &str) -> Result<bool, sqlx::Error> {
    // DDL takes no bind parameters: the server quotes the name and the password itself.
    let (role, secret): (String, String) = sqlx::query_as("SELECT quote_ident($1), quote_literal($2)")
        .bind(name)
        .bind(password)
        .fetch_one(&mut *admin)
        .await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(name)
        .fetch_one(&mut *admin)
        .await?;
    let verb = if exists { "ALTER" } else { "CREATE" };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {secret}"
    )))
    .execute(&mut *admin)
    .await?;
    Ok(!exists)
}

/// The exchange's own key pair and its partner port's certificate request, under OUT/exchange;
/// existing files are kept (a second run changes nothing).
fn partner_keys(out: &std::path::Path, id: &str, hosts: &[String]) -> Result<(), Failure> {
    bangfu_exchange::config::check_id(id).map_err(|reason| Failure::usage(format!("--partner {reason}")))?;
    if hosts.is_empty() {
        return Err(Failure::usage(
            "--host is needed with --partner: the name(s) the partner reaches the partner port at",
        ));
    }
    let dir = out.join("exchange");
    std::fs::create_dir_all(&dir).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let failed = |e: &dyn std::fmt::Display| Failure::failed(e.to_string());
    let signing = dir.join(format!("{id}-exchange.signing.json"));
    let public = dir.join(format!("{id}-exchange.pub.pem"));
    if signing.exists() {
        say!("kept {} (it exists)", signing.display());
    } else {
        let today = time::OffsetDateTime::now_utc().date();
        let kid = format!(
            "{id}-exchange-{:04}{:02}{:02}",
            today.year(),
            u8::from(today.month()),
            today.day()
        );
        let (file, public_pem) = keys::generate_key_pair(&kid, id, false).map_err(|e| failed(&e))?;
        let json = serde_json::to_vec_pretty(&file).map_err(|e| failed(&e))?;
        keys::write_file(&signing, &json, 0o600).map_err(|e| failed(&e))?;
        keys::write_file(&public, public_pem.as_bytes(), 0o644).map_err(|e| failed(&e))?;
        say!(
            "created the exchange key {kid}: {} (keep it), {} (give it to the partner)",
            signing.display(),
            public.display()
        );
    }
    let tls_key = dir.join(format!("{id}-exchange-tls.key"));
    let request = dir.join(format!("{id}-exchange-tls.csr.pem"));
    if tls_key.exists() {
        say!("kept {} (it exists)", tls_key.display());
        return Ok(());
    }
    let key = rcgen::KeyPair::generate().map_err(|e| failed(&e))?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(|e| failed(&e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{id} exchange"));
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let csr = params.serialize_request(&key).map_err(|e| failed(&e))?;
    keys::write_file(&tls_key, key.serialize_pem().as_bytes(), 0o600).map_err(|e| failed(&e))?;
    keys::write_file(&request, csr.pem().map_err(|e| failed(&e))?.as_bytes(), 0o644).map_err(|e| failed(&e))?;
    say!(
        "created {} and the request {}: have your CA sign it (server and client use), and give the partner that CA's certificate to pin",
        tls_key.display(),
        request.display()
    );
    Ok(())
}
