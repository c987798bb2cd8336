//! Files that hold keys — signing keys, trusted public keys, the data keys — written with tight
//! modes and refused when others could read or write them. Shared by the token keys
//! (`auth::keys`) and the data keys (`pii`), which neither depends on the other.

use std::fs;
use std::path::{Path, PathBuf};

/// Why keys could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is writable by group or others (mode {mode:o}); run: chmod go-w {path}")]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error("{path} holds a private key readable by group or others (mode {mode:o}); run: chmod 600 {path}")]
    PrivateKeyReadable { path: PathBuf, mode: u32 },
    #[error("{path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{path}: key {kid} is a development key made by `bangfu up`; a deployment needs keys made by `bangfu keys init`"
    )]
    DevelopmentKey { path: PathBuf, kid: String },
}

/// Writes a file with `mode`, created with that mode so it is never briefly readable by others.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io)
}

fn mode_of(path: &Path) -> Result<u32, KeyError> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.permissions().mode())
        .map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Refuses a path that group or others may write.
pub fn check_not_writable_by_others(path: &Path) -> Result<(), KeyError> {
    let mode = mode_of(path)?;
    if mode & 0o022 != 0 {
        return Err(KeyError::WritableByOthers {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Refuses a private key file that others may read, the way PostgreSQL judges its key file:
/// at most 0600 when the file belongs to someone else than root, at most 0640 when it belongs
/// to root (a Kubernetes Secret volume: root-owned, readable by the pod's group).
pub fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::MetadataExt;
    let mode = mode_of(path)?;
    let owner = fs::metadata(path).map(|m| m.uid()).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let forbidden = if owner == 0 { 0o037 } else { 0o077 };
    if mode & forbidden != 0 {
        return Err(KeyError::PrivateKeyReadable {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}
