//! `bangfu backup --to DIR`: a consistent copy of every SQLite database in the data folder
//! (`VACUUM INTO`, which reads one snapshot while the suite keeps running) and of the keys.
//! PostgreSQL databases are backed up with the server's own tools (`pg_dump` per database).

use std::path::{Path, PathBuf};

use bangfu_platform::auth::keys::{create_private_dir, write_file};
use bangfu_platform::db::{Database, PoolSettings, sqlite_url};
use clap::Args;

use crate::Failure;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy; a new folder named after the time is made inside it.
    #[arg(long)]
    pub to: PathBuf,
    /// The data folder of `bangfu up`.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
}

pub async fn run(args: BackupArgs) -> Result<(), Failure> {
    if !args.data.is_dir() {
        return Err(Failure::usage(format!(
            "{} is not a data folder; give it with --data",
            args.data.display()
        )));
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| Failure::failed(e.to_string()))?;
    let target = args.to.join(format!("bangfu-{stamp}"));
    if target.exists() {
        return Err(Failure::usage(format!("{} already exists", target.display())));
    }
    create_private_dir(&target).map_err(|e| Failure::usage(e.to_string()))?;

    let mut databases = 0;
    for entry in std::fs::read_dir(&args.data).map_err(|e| Failure::failed(format!("{}: {e}", args.data.display())))? {
        let path = entry.map_err(|e| Failure::failed(e.to_string()))?.path();
        if path.extension().is_some_and(|ext| ext == "db") && path.is_file() {
            let file_name = path.file_name().map(PathBuf::from).unwrap_or_default();
            copy_database(&path, &target.join(file_name)).await?;
            databases += 1;
        }
    }
    let keys = args.data.join("keys");
    let mut key_files = 0;
    if keys.is_dir() {
        let target_keys = target.join("keys");
        create_private_dir(&target_keys).map_err(|e| Failure::failed(e.to_string()))?;
        for entry in std::fs::read_dir(&keys).map_err(|e| Failure::failed(format!("{}: {e}", keys.display())))? {
            let path = entry.map_err(|e| Failure::failed(e.to_string()))?.path();
            if path.is_file() {
                let contents = std::fs::read(&path).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
                let file_name = path.file_name().map(PathBuf::from).unwrap_or_default();
                // Every copied key file is private, whatever the original allowed.
                write_file(&target_keys.join(file_name), &contents, 0o600)
                    .map_err(|e| Failure::failed(e.to_string()))?;
                key_files += 1;
            }
        }
    }
    say!("backup written to {}", target.display());
    say!("  {databases} database(s), {key_files} key file(s)");
    say!(
        "warning: keep this copy as safe as the data. Losing the keys loses every encrypted citizen ID for good; \
         anyone holding the keys and a database copy can read them."
    );
    Ok(())
}

/// Copies one SQLite database through `VACUUM INTO`: a consistent snapshot, safe while the
/// suite is running.
async fn copy_database(source: &Path, target: &Path) -> Result<(), Failure> {
    let database = Database::connect(&sqlite_url(source), PoolSettings::default())
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let target_text = target
        .to_str()
        .ok_or_else(|| Failure::usage(format!("{} is not a UTF-8 path", target.display())))?;
    // VACUUM INTO takes no bind parameter; the path is quoted as an SQL string literal.
    let statement = format!("VACUUM INTO '{}'", target_text.replace('\'', "''"));
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(database.pool())
        .await
        .map_err(|e| Failure::failed(format!("copying {}: {e}", source.display())))?;
    database.close().await;
    Ok(())
}
