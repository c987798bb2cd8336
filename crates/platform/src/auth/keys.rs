//! The keys a server trusts and the keys it signs with, as files in one directory:
//!
//! ```text
//! keys/
//!   trust.json                 which public keys are trusted, for which issuer, to sign what
//!   <kid>.pub.pem              an Ed25519 public key (SPKI PEM)
//!   <kid>.signing.json         a private key with its kid and issuer (mode 0600)
//!   revoked.json               revoked token ids and subjects (optional)
//! ```
//!
//! Each trusted key is bound to an issuer and to what it may sign, so a service's key cannot
//! mint an administrator and a department's key cannot pose as a service. A directory or file
//! that group or others may write is refused: whoever can write it can trust their own key.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};

use super::permissions::SERVICES;
use super::{Department, Role};

pub use crate::key_files::{KeyError, check_not_writable_by_others, check_private, write_file};

pub const TRUST_FILE: &str = "trust.json";

/// What a trusted key may sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MaySign {
    /// User tokens of these departments with these roles (never `service` or `partner`).
    Departments {
        departments: Vec<String>,
        roles: Vec<String>,
    },
    /// Only `role=service` tokens whose subject is this service.
    Service { service: String },
    /// Only `role=partner` tokens (the partner province's issuer).
    Partner,
}

/// One entry of `trust.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustEntry {
    pub kid: String,
    pub issuer: String,
    /// The public key file, relative to the keys directory.
    pub public_key_file: String,
    pub may_sign: MaySign,
    /// Made by `bangfu up` for trying the suite; `bangfu serve` refuses it.
    #[serde(default)]
    pub development: bool,
}

/// The contents of `trust.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustFile {
    pub keys: Vec<TrustEntry>,
}

/// A private signing key with the identity it signs as.
#[derive(Clone, Serialize, Deserialize)]
pub struct SigningKeyFile {
    pub kid: String,
    pub issuer: String,
    pub private_key_pem: String,
    #[serde(default)]
    pub development: bool,
}

impl std::fmt::Debug for SigningKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyFile")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

impl SigningKeyFile {
    /// Reads a signing key, refusing one whose file group or others can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        check_private(path)?;
        let text = read(path)?;
        serde_json::from_str(&text).map_err(|e| KeyError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// Who may sign what, resolved from a trust entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    Departments {
        departments: Vec<Department>,
        roles: Vec<Role>,
    },
    Service(String),
    Partner,
}

/// A public key the server trusts.
pub struct TrustedKey {
    pub kid: String,
    pub issuer: String,
    pub signer: Signer,
    pub development: bool,
    pub key: DecodingKey,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Whether development keys are acceptable: yes for `bangfu up`, never for `bangfu serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevelopmentKeys {
    Allow,
    Refuse,
}

/// Every trusted public key, by key id.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: HashMap<String, TrustedKey>,
}

impl KeyRing {
    pub fn new(keys: Vec<TrustedKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.kid.clone(), k)).collect(),
        }
    }

    pub fn get(&self, kid: &str) -> Option<&TrustedKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Loads `trust.json` and the public keys it names.
    pub fn load(dir: &Path, development: DevelopmentKeys) -> Result<Self, KeyError> {
        check_not_writable_by_others(dir)?;
        let trust_path = dir.join(TRUST_FILE);
        check_not_writable_by_others(&trust_path)?;
        let trust: TrustFile = serde_json::from_str(&read(&trust_path)?).map_err(|e| KeyError::Invalid {
            path: trust_path.clone(),
            reason: e.to_string(),
        })?;
        let mut keys = Vec::with_capacity(trust.keys.len());
        for entry in trust.keys {
            if entry.development && development == DevelopmentKeys::Refuse {
                return Err(KeyError::DevelopmentKey {
                    path: trust_path,
                    kid: entry.kid,
                });
            }
            let invalid = |reason: String| KeyError::Invalid {
                path: trust_path.clone(),
                reason,
            };
            let signer = match &entry.may_sign {
                MaySign::Departments { departments, roles } => {
                    let departments = departments
                        .iter()
                        .map(|d| {
                            Department::parse(d)
                                .ok_or_else(|| invalid(format!("key {}: unknown department {d:?}", entry.kid)))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let roles = roles
                        .iter()
                        .map(|r| match Role::parse(r) {
                            Some(Role::Service | Role::Partner) | None => Err(invalid(format!(
                                "key {}: a department key may not sign role {r:?}",
                                entry.kid
                            ))),
                            Some(role) => Ok(role),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Signer::Departments { departments, roles }
                }
                MaySign::Service { service } => {
                    if !SERVICES.contains(&service.as_str()) {
                        return Err(invalid(format!("key {}: unknown service {service:?}", entry.kid)));
                    }
                    Signer::Service(service.clone())
                }
                MaySign::Partner => Signer::Partner,
            };
            let key_path = dir.join(&entry.public_key_file);
            check_not_writable_by_others(&key_path)?;
            let pem = read(&key_path)?;
            let key = DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| KeyError::Invalid {
                path: key_path.clone(),
                reason: e.to_string(),
            })?;
            keys.push(TrustedKey {
                kid: entry.kid,
                issuer: entry.issuer,
                signer,
                development: entry.development,
                key,
            });
        }
        Ok(Self::new(keys))
    }
}

/// A new Ed25519 key pair: the signing file and the public key PEM.
pub fn generate_key_pair(kid: &str, issuer: &str, development: bool) -> Result<(SigningKeyFile, String), KeyError> {
    let signing = SigningKey::from_bytes(&rand::random());
    let invalid = |reason: String| KeyError::Invalid {
        path: PathBuf::from(kid),
        reason,
    };
    let private_key_pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| invalid(e.to_string()))?
        .to_string();
    let public_pem = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| invalid(e.to_string()))?;
    Ok((
        SigningKeyFile {
            kid: kid.to_string(),
            issuer: issuer.to_string(),
            private_key_pem,
            development,
        },
        public_pem,
    ))
}

/// The issuer of department tokens made by `bangfu up`.
pub const DEVELOPMENT_ISSUER: &str = "bangfu-development";
/// The key id of that issuer's key.
pub const DEVELOPMENT_DEPARTMENT_KID: &str = "dev-departments";

/// The issuer name of a service's own tokens.
pub fn service_issuer(service: &str) -> String {
    format!("bangfu-service-{service}")
}

/// The signing key file of a key id in a keys directory.
pub fn signing_key_path(dir: &Path, kid: &str) -> PathBuf {
    dir.join(format!("{kid}.signing.json"))
}

/// Creates the development keys of `bangfu up` in `dir` unless `trust.json` is already there:
/// one department issuer that may sign every role of every department, and one key per service.
/// Returns whether keys were created.
pub fn ensure_development_keys(dir: &Path) -> Result<bool, KeyError> {
    if dir.join(TRUST_FILE).exists() {
        return Ok(false);
    }
    create_private_dir(dir)?;
    let mut trust = TrustFile::default();
    let (file, public) = generate_key_pair(DEVELOPMENT_DEPARTMENT_KID, DEVELOPMENT_ISSUER, true)?;
    write_key_pair(dir, &file, &public)?;
    trust.keys.push(TrustEntry {
        kid: file.kid.clone(),
        issuer: file.issuer.clone(),
        public_key_file: format!("{}.pub.pem", file.kid),
        may_sign: MaySign::Departments {
            departments: Department::ALL.iter().map(|d| d.as_str().to_string()).collect(),
            roles: [Role::Clerk, Role::Reviewer, Role::Auditor, Role::Admin]
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
        },
        development: true,
    });
    for service in SERVICES {
        let kid = format!("dev-service-{service}");
        let (file, public) = generate_key_pair(&kid, &service_issuer(service), true)?;
        write_key_pair(dir, &file, &public)?;
        trust.keys.push(TrustEntry {
            kid,
            issuer: file.issuer.clone(),
            public_key_file: format!("{}.pub.pem", file.kid),
            may_sign: MaySign::Service {
                service: (*service).to_string(),
            },
            development: true,
        });
    }
    let text = serde_json::to_string_pretty(&trust).map_err(|e| KeyError::Invalid {
        path: dir.join(TRUST_FILE),
        reason: e.to_string(),
    })?;
    write_file(&dir.join(TRUST_FILE), text.as_bytes(), 0o644)?;
    Ok(true)
}

/// Writes a signing key (0600) and its public key (0644).
pub fn write_key_pair(dir: &Path, file: &SigningKeyFile, public_pem: &str) -> Result<(), KeyError> {
    let path = signing_key_path(dir, &file.kid);
    let text = serde_json::to_string_pretty(file).map_err(|e| KeyError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_file(&path, text.as_bytes(), 0o600)?;
    write_file(&dir.join(format!("{}.pub.pem", file.kid)), public_pem.as_bytes(), 0o644)
}

/// Creates a directory only its owner can enter.
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)
}

fn read(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// What `init_deployment_keys` made (names of keys it created; empty when all existed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeysInitialized {
    pub created: Vec<String>,
    pub data_keys_created: bool,
}

/// The public directory of a deployment's keys, mounted read-only by every service.
pub const PUBLIC_DIR: &str = "public";
/// The operator's directory: the key that signs user tokens (`bangfu token issue`).
pub const OPERATOR_DIR: &str = "operator";
/// The signing key file inside a service's or the operator's directory.
pub const SIGNING_FILE: &str = "signing.json";
/// The data keys file (citizen IDs at rest), beside the directories.
pub const DATA_KEYS_FILE: &str = "data-keys.json";

/// Creates a deployment's keys under `out`, keeping any that exist, so a service added later
/// gets its key on the same volume:
///
/// ```text
/// out/public/trust.json, out/public/<kid>.pub.pem   every service mounts this, read-only
/// out/operator/signing.json                          signs user tokens; stays with operators
/// out/<service>/signing.json                         mounted by that service only
/// out/data-keys.json                                 mounted by services holding personal data
/// ```
pub fn init_deployment_keys(out: &Path, services: &[&str]) -> Result<KeysInitialized, KeyError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let public = out.join(PUBLIC_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&public)
        .map_err(io(&public))?;
    fs::set_permissions(&public, fs::Permissions::from_mode(0o755)).map_err(io(&public))?;
    let trust_path = public.join(TRUST_FILE);
    let mut trust: TrustFile = if trust_path.exists() {
        serde_json::from_str(&read(&trust_path)?).map_err(|e| KeyError::Invalid {
            path: trust_path.clone(),
            reason: e.to_string(),
        })?
    } else {
        TrustFile::default()
    };
    let mut report = KeysInitialized::default();
    let suffix = || {
        let bytes: [u8; 4] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mut add = |dir_name: &str, issuer: String, may_sign: MaySign, trust: &mut TrustFile| -> Result<(), KeyError> {
        let dir = out.join(dir_name);
        let signing = dir.join(SIGNING_FILE);
        if signing.exists() {
            return Ok(());
        }
        create_private_dir(&dir)?;
        let kid = format!("{}-{}", dir_name.replace('_', "-"), suffix());
        let (file, public_pem) = generate_key_pair(&kid, &issuer, false)?;
        let text = serde_json::to_string_pretty(&file).map_err(|e| KeyError::Invalid {
            path: signing.clone(),
            reason: e.to_string(),
        })?;
        write_file(&public.join(format!("{kid}.pub.pem")), public_pem.as_bytes(), 0o644)?;
        write_file(&signing, text.as_bytes(), 0o600)?;
        trust.keys.push(TrustEntry {
            kid: kid.clone(),
            issuer,
            public_key_file: format!("{kid}.pub.pem"),
            may_sign,
            development: false,
        });
        report.created.push(kid);
        Ok(())
    };
    add(
        OPERATOR_DIR,
        "bangfu-operator".to_string(),
        MaySign::Departments {
            departments: Department::ALL.iter().map(|d| d.as_str().to_string()).collect(),
            roles: [Role::Clerk, Role::Reviewer, Role::Auditor, Role::Admin]
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
        },
        &mut trust,
    )?;
    for service in services {
        if !SERVICES.contains(service) {
            return Err(KeyError::Invalid {
                path: out.to_path_buf(),
                reason: format!(
                    "unknown service {service:?}; the suite's services are {}",
                    SERVICES.join(", ")
                ),
            });
        }
        add(
            service,
            service_issuer(service),
            MaySign::Service {
                service: (*service).to_string(),
            },
            &mut trust,
        )?;
    }
    let text = serde_json::to_string_pretty(&trust).map_err(|e| KeyError::Invalid {
        path: trust_path.clone(),
        reason: e.to_string(),
    })?;
    write_file(&trust_path, text.as_bytes(), 0o644)?;
    report.data_keys_created = crate::pii::DataKeyFile::ensure(&out.join(DATA_KEYS_FILE))?;
    Ok(report)
}
