//! `bangfu backup --to DIR`: a consistent copy of every SQLite database in the data folder
//! (`VACUUM INTO`, which reads one snapshot while the suite keeps running) and of the keys,
//! with a manifest of every file's SHA-256. `bangfu backup verify DIR` checks a copy against
//! its manifest and each database's data key check value against the copy's keys; `bangfu
//! restore` verifies a copy and puts it in a data folder. PostgreSQL databases are backed up
//! with the server's own tools (`pg_dump` per database).
//!
//! Everything written is for the owner only (folders 0700, files 0600): whoever holds a database
//! copy and the keys beside it reads every citizen ID.

use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use bangfu_platform::auth::keys::{KeyError, create_private_dir, write_file};
use bangfu_platform::data_key_check::{self, KeyCheckError, KeyIds};
use bangfu_platform::db::{Database, DbError, PoolSettings, sqlite_url};
use bangfu_platform::pii::{DATA_KEYS_FILE, DataKeyFile};
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use crate::Failure;

/// The manifest's name in a backup folder. It is in `sha256sum` format, so `sha256sum -c` checks
/// a copy where bangfu is not installed.
pub const MANIFEST: &str = "MANIFEST.sha256";
/// The keys' folder, in a data folder and in a backup alike.
const KEYS: &str = "keys";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// Where to write the copy; a new folder named after the time (UTC) is made inside it.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// The data folder of `bangfu up`.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check a backup: every file in its manifest is there with its SHA-256, and each
    /// database's data key check value matches the backup's keys. Exits non-zero otherwise.
    Verify {
        /// The backup folder (bangfu-…UTC).
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup folder to restore (bangfu-…UTC); it is verified first.
    #[arg(long)]
    pub from: PathBuf,
    /// The data folder to restore into; stop any `bangfu up` on it first.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Restore into a folder that is not empty, replacing its databases and key files.
    #[arg(long)]
    pub force: bool,
}

/// Why a backup could not be made, verified or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} is not a data folder; give it with --data", .0.display())]
    NoDataFolder(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    #[error("{} is not a UTF-8 path", .0.display())]
    NotUtf8(PathBuf),
    #[error("copying {}: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: DbError,
    },
    #[error("{} has no {MANIFEST}: it is not a backup bangfu made, or it is incomplete", .0.display())]
    NoManifest(PathBuf),
    #[error("{}, line {line}: {reason}", manifest.display())]
    BadManifest {
        manifest: PathBuf,
        line: usize,
        reason: &'static str,
    },
    #[error("{}: the manifest lists it, and it is missing", .0.display())]
    Missing(PathBuf),
    #[error("{}: its SHA-256 is {actual}, the manifest says {expected}: the file was changed or damaged", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}: its data key check value is there, and the backup has no {KEYS}/{DATA_KEYS_FILE} to compare it with", .0.display())]
    NoDataKeys(PathBuf),
    #[error("{}: {source}", path.display())]
    KeyCheck {
        path: PathBuf,
        #[source]
        source: KeyCheckError,
    },
    #[error(
        "{} is not empty: restore into an empty (or new) folder, or give --force to replace its databases and key files",
        .0.display()
    )]
    NotEmpty(PathBuf),
}

impl BackupError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// At the edge: what the user gave wrong is a usage error (2), a backup that does not hold up
/// or work that failed is 1.
impl From<BackupError> for Failure {
    fn from(error: BackupError) -> Self {
        match error {
            BackupError::NoDataFolder(_)
            | BackupError::Exists(_)
            | BackupError::NotUtf8(_)
            | BackupError::NotEmpty(_) => Failure::usage(error.to_string()),
            other => Failure::failed(other.to_string()),
        }
    }
}

pub async fn run(args: BackupArgs) -> Result<(), Failure> {
    match (args.command, args.to) {
        (Some(BackupCommand::Verify { dir }), _) => {
            let verified = verify(&dir).await?;
            verified.report(&dir);
            Ok(())
        }
        (None, Some(to)) => Ok(backup(&args.data, &to).await?),
        (None, None) => Err(Failure::usage(
            "give --to DIR to make a backup, or `bangfu backup verify DIR` to check one",
        )),
    }
}

async fn backup(data: &Path, to: &Path) -> Result<(), BackupError> {
    if !data.is_dir() {
        return Err(BackupError::NoDataFolder(data.to_path_buf()));
    }
    // UTC, and the name says so: a folder named after a local time without its offset reads an
    // hour (or eight) off to whoever restores it elsewhere.
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]UTC"
        ))
        .map_err(|e| BackupError::Io {
            path: to.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    let target = to.join(format!("bangfu-{stamp}"));
    if target.exists() {
        return Err(BackupError::Exists(target));
    }
    create_private_dir(&target)?;

    let mut written = Vec::new();
    for path in files_in(data)? {
        if path.extension().is_some_and(|ext| ext == "db") {
            let name = file_name(&path);
            copy_database(&path, &target.join(&name)).await?;
            written.push(name);
        }
    }
    let databases = written.len();
    let keys = data.join(KEYS);
    if keys.is_dir() {
        create_private_dir(&target.join(KEYS))?;
        for path in files_in(&keys)? {
            let name = Path::new(KEYS).join(file_name(&path));
            // Every copied key file is private, whatever the original allowed.
            copy_private(&path, &target.join(&name))?;
            written.push(name);
        }
    }
    write_manifest(&target, &written)?;
    say!("backup written to {}", target.display());
    say!(
        "  {databases} database(s), {} key file(s), checksums in {MANIFEST}",
        written.len() - databases
    );
    say!("  check it with: bangfu backup verify {}", target.display());
    say!(
        "warning: keep this copy as safe as the data. Losing the keys loses every encrypted citizen ID for good; \
         anyone holding the keys and a database copy can read them."
    );
    Ok(())
}

/// The regular files directly in `dir`, sorted so a manifest lists them in a stable order.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(BackupError::io(dir))? {
        let path = entry.map_err(BackupError::io(dir))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> PathBuf {
    path.file_name().map(PathBuf::from).unwrap_or_default()
}

/// Copies one SQLite database through `VACUUM INTO`: a consistent snapshot, safe while the
/// suite is running.
async fn copy_database(source: &Path, target: &Path) -> Result<(), BackupError> {
    let failed = |source_error| BackupError::Database {
        path: source.to_path_buf(),
        source: source_error,
    };
    let database = Database::connect(&sqlite_url(source), PoolSettings::default())
        .await
        .map_err(failed)?;
    let target_text = target
        .to_str()
        .ok_or_else(|| BackupError::NotUtf8(target.to_path_buf()))?;
    // VACUUM INTO takes no bind parameter; the path is quoted as an SQL string literal.
    let statement = format!("VACUUM INTO '{}'", target_text.replace('\'', "''"));
    let copied = sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(database.pool())
        .await;
    database.close().await;
    copied.map_err(|e| failed(DbError::Query(e)))?;
    // SQLite creates the file under the umask; the folder (0700) kept it from others meanwhile.
    set_private(target)
}

fn set_private(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(BackupError::io(path))
}

/// Copies a file to one only its owner can read, created so from the start.
fn copy_private(source: &Path, target: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut from = std::fs::File::open(source).map_err(BackupError::io(source))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(target)
        .map_err(BackupError::io(target))?;
    std::io::copy(&mut from, &mut to).map_err(BackupError::io(target))?;
    to.sync_all().map_err(BackupError::io(target))?;
    // An existing file keeps its mode through `open`; this one must not.
    set_private(target)
}

fn sha256_of(path: &Path) -> Result<String, BackupError> {
    let mut file = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(BackupError::io(path))?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn write_manifest(target: &Path, files: &[PathBuf]) -> Result<(), BackupError> {
    let mut text = Vec::new();
    for name in files {
        let digest = sha256_of(&target.join(name))?;
        // Writing to a Vec cannot fail.
        let _ = writeln!(text, "{digest}  {}", name.display());
    }
    Ok(write_file(&target.join(MANIFEST), &text, 0o600)?)
}

/// One line of a manifest: a file (relative to the backup folder) and its SHA-256.
struct Entry {
    path: PathBuf,
    sha256: String,
}

fn read_manifest(dir: &Path) -> Result<Vec<Entry>, BackupError> {
    let manifest = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&manifest) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::NoManifest(dir.to_path_buf())),
        Err(e) => return Err(BackupError::io(&manifest)(e)),
    };
    let bad = |line, reason| BackupError::BadManifest {
        manifest: manifest.clone(),
        line,
        reason,
    };
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let (sha256, path) = line
            .split_once("  ")
            .ok_or_else(|| bad(index + 1, "not \"SHA-256  file\""))?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad(index + 1, "the checksum is not 64 lower-case hex digits"));
        }
        let path = PathBuf::from(path);
        // A manifest names files inside its folder only: restore must not write elsewhere.
        if path.as_os_str().is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad(index + 1, "the file is not a plain path inside the backup folder"));
        }
        entries.push(Entry {
            path,
            sha256: sha256.to_string(),
        });
    }
    Ok(entries)
}

/// What a verified backup holds.
pub struct Verified {
    entries: Vec<Entry>,
    /// Each database and the keys its check value names (`None`: it has none yet).
    databases: Vec<(PathBuf, Option<KeyIds>)>,
}

impl Verified {
    fn report(&self, dir: &Path) {
        say!(
            "backup {} verified: {} file(s) match {MANIFEST}",
            dir.display(),
            self.entries.len()
        );
        for (database, ids) in &self.databases {
            match ids {
                Some(ids) => say!(
                    "  {}: made with {ids}, which the backup's keys read",
                    database.display()
                ),
                None => say!(
                    "  {}: no data key check value (no personal data, or made before key checks)",
                    database.display()
                ),
            }
        }
    }
}

/// Checks every file against the manifest, then each database's data key check value against
/// the backup's data keys.
pub async fn verify(dir: &Path) -> Result<Verified, BackupError> {
    let entries = read_manifest(dir)?;
    for entry in &entries {
        let path = dir.join(&entry.path);
        if !path.is_file() {
            return Err(BackupError::Missing(path));
        }
        let actual = sha256_of(&path)?;
        if actual != entry.sha256 {
            return Err(BackupError::Checksum {
                path,
                expected: entry.sha256.clone(),
                actual,
            });
        }
    }
    let keys_path = dir.join(KEYS).join(DATA_KEYS_FILE);
    let keys = if keys_path.is_file() {
        Some(DataKeyFile::load(&keys_path)?)
    } else {
        None
    };
    let mut databases = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| e.path.extension().is_some_and(|ext| ext == "db"))
    {
        let path = dir.join(&entry.path);
        let key_check = |source| BackupError::KeyCheck {
            path: path.clone(),
            source,
        };
        // Read-only and immutable: reading a backup must not change the bytes just checked.
        let database = Database::open_sqlite_read_only(&path)
            .await
            .map_err(|e| key_check(KeyCheckError::Database(e)))?;
        let found = match &keys {
            Some(keys) => data_key_check::inspect(&database, keys).await,
            // Without keys, only a database that has no check value passes.
            None => match has_key_check(&database).await {
                Ok(false) => Ok(None),
                Ok(true) => {
                    database.close().await;
                    return Err(BackupError::NoDataKeys(path));
                }
                Err(e) => Err(e),
            },
        };
        database.close().await;
        databases.push((entry.path.clone(), found.map_err(key_check)?));
    }
    Ok(Verified { entries, databases })
}

async fn has_key_check(database: &Database) -> Result<bool, KeyCheckError> {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'data_key_check'")
            .fetch_one(database.pool())
            .await?;
    if count == 0 {
        return Ok(false);
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_key_check")
        .fetch_one(database.pool())
        .await?;
    Ok(rows > 0)
}

/// `bangfu restore --from BACKUP --data DIR`: verifies the backup, then copies its databases and
/// keys into the data folder, for the owner only.
pub async fn restore(args: RestoreArgs) -> Result<(), Failure> {
    let target = &args.data;
    let occupied = match std::fs::read_dir(target) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(BackupError::io(target)(e).into()),
    };
    if occupied && !args.force {
        return Err(BackupError::NotEmpty(target.clone()).into());
    }
    let verified = verify(&args.from).await?;
    verified.report(&args.from);
    create_private_dir(target).map_err(BackupError::from)?;
    let mut databases = 0;
    for entry in &verified.entries {
        let destination = target.join(&entry.path);
        if let Some(parent) = destination.parent().filter(|p| *p != target.as_path()) {
            create_private_dir(parent).map_err(BackupError::from)?;
        }
        if entry.path.extension().is_some_and(|ext| ext == "db") {
            // A write-ahead log left by the database this one replaces would be replayed
            // into the restored copy and corrupt it.
            for suffix in ["-wal", "-shm"] {
                let mut stale = destination.clone().into_os_string();
                stale.push(suffix);
                match std::fs::remove_file(&stale) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BackupError::io(Path::new(&stale))(e).into()),
                }
            }
            databases += 1;
        }
        copy_private(&args.from.join(&entry.path), &destination)?;
    }
    say!(
        "restored {databases} database(s) and {} key file(s) into {}",
        verified.entries.len() - databases,
        target.display()
    );
    say!("  start it with: bangfu up --data {}", target.display());
    Ok(())
}
