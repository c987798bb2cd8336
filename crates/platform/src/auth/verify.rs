//! Token verification: EdDSA only, the key chosen by `kid`, `iss`/`aud`/`exp`/`nbf`/`sub`
//! required with an explicit leeway, the key's binding enforced (what it may sign), and the
//! operator's revocation list applied on every call. A verified token is cached until it
//! expires, so the signature is checked once per token rather than once per call.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::keys::{KeyRing, Signer};
use super::token::{Claims, unix_now};
use super::{Department, Principal, RegionScope, Role, permissions};
use crate::error::{ErrorReason, Problem};

/// Verified tokens kept at most; past this, expired ones are dropped, then all.
const CACHE_CAPACITY: usize = 10_000;

/// What kind of caller a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    User,
    /// A bangfu service, by name.
    Service(String),
    /// The partner province's desk.
    Partner,
}

/// A token whose signature, times, audience, issuer and binding have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub kind: TokenKind,
    pub subject: String,
    pub issuer: String,
    pub department: Option<Department>,
    pub roles: Vec<Role>,
    pub scope: RegionScope,
    pub token_id: String,
    pub expires_at: i64,
    /// The caller this token stands for when it is sent alone, built once per token.
    pub principal: Arc<Principal>,
}

/// Revoked token ids and subjects, as the operator writes them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RevocationList {
    #[serde(default)]
    pub token_ids: HashSet<String>,
    #[serde(default)]
    pub subjects: HashSet<String>,
}

/// The revocation file, re-read when its modification time changes (looked at no more often
/// than `recheck`).
#[derive(Debug)]
pub struct Revocations {
    path: Option<PathBuf>,
    recheck: Duration,
    state: RwLock<RevocationState>,
}

#[derive(Debug)]
struct RevocationState {
    list: Arc<RevocationList>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl Revocations {
    pub fn none() -> Self {
        Self::from_file(None, Duration::from_secs(5))
    }

    pub fn from_file(path: Option<PathBuf>, recheck: Duration) -> Self {
        Self {
            path,
            recheck,
            state: RwLock::new(RevocationState {
                list: Arc::new(RevocationList::default()),
                modified: None,
                checked: None,
            }),
        }
    }

    /// The current list. A file that disappears or cannot be parsed keeps the last good list:
    /// a typo must not un-revoke every token.
    pub fn current(&self) -> Arc<RevocationList> {
        {
            let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let fresh = state.checked.is_some_and(|at| at.elapsed() < self.recheck);
            if self.path.is_none() || fresh {
                return state.list.clone();
            }
        }
        let Some(path) = &self.path else {
            return Arc::new(RevocationList::default());
        };
        let mut state = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.checked = Some(Instant::now());
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified.is_some() && modified != state.modified {
            match std::fs::read_to_string(path).map(|text| serde_json::from_str::<RevocationList>(&text)) {
                Ok(Ok(list)) => {
                    state.list = Arc::new(list);
                    state.modified = modified;
                }
                Ok(Err(error)) => {
                    tracing::error!(path = %path.display(), %error, "revocation file is not valid; keeping the previous list")
                }
                Err(error) => {
                    tracing::error!(path = %path.display(), %error, "revocation file cannot be read; keeping the previous list")
                }
            }
        }
        state.list.clone()
    }
}

/// Verifies tokens against a key ring.
#[derive(Debug)]
pub struct Verifier {
    keys: KeyRing,
    audience: String,
    leeway: Duration,
    revocations: Revocations,
    cache: RwLock<HashMap<[u8; 32], Arc<VerifiedToken>>>,
}

impl Verifier {
    pub fn new(keys: KeyRing, audience: &str, leeway: Duration, revocations: Revocations) -> Self {
        Self {
            keys,
            audience: audience.to_string(),
            leeway,
            revocations,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The verifier a server runs with: the trusted keys of `keys_dir`, the configured audience
    /// and leeway, and the operator's revocation file.
    pub fn from_config(
        config: &crate::config::AuthConfig,
        development: super::keys::DevelopmentKeys,
    ) -> Result<Self, super::keys::KeyError> {
        let Some(dir) = &config.keys_dir else {
            return Err(super::keys::KeyError::Invalid {
                path: std::path::PathBuf::from("BANGFU_KEYS_DIR"),
                reason: "no keys directory is configured: set BANGFU_KEYS_DIR".into(),
            });
        };
        let keys = KeyRing::load(dir, development)?;
        let revocations = Revocations::from_file(config.revocation_file.clone(), Duration::from_secs(5));
        Ok(Self::new(keys, &config.audience, config.leeway, revocations))
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies a compact JWT.
    pub fn verify(&self, token: &str) -> Result<Arc<VerifiedToken>, Problem> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&digest)
            .filter(|t| t.expires_at + self.leeway.as_secs() as i64 > now)
            .cloned();
        let verified = match cached {
            Some(verified) => verified,
            None => {
                let verified = Arc::new(self.verify_uncached(token)?);
                let mut cache = self.cache.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                if cache.len() >= CACHE_CAPACITY {
                    cache.retain(|_, t| t.expires_at > now);
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                }
                cache.insert(digest, verified.clone());
                verified
            }
        };
        let revoked = self.revocations.current();
        if revoked.token_ids.contains(&verified.token_id) || revoked.subjects.contains(&verified.subject) {
            return Err(unauthenticated(
                ErrorReason::TokenRevoked,
                "the token or its subject has been revoked",
                "该令牌已被吊销，请向管理员重新申请",
            ));
        }
        Ok(verified)
    }

    fn verify_uncached(&self, token: &str) -> Result<VerifiedToken, Problem> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            unauthenticated(
                ErrorReason::TokenMalformed,
                "the token is not a well-formed JWT",
                "令牌格式不正确，请重新获取令牌",
            )
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauthenticated(
                ErrorReason::TokenSignatureInvalid,
                "only EdDSA-signed tokens are accepted",
                "令牌签名算法不被接受，请使用系统签发的令牌",
            ));
        }
        let unknown_key = || {
            unauthenticated(
                ErrorReason::TokenUnknownKey,
                "the token's key id is not trusted here",
                "令牌的签发密钥不受信任，请使用本系统签发的令牌",
            )
        };
        let kid = header.kid.ok_or_else(unknown_key)?;
        let trusted = self.keys.get(&kid).ok_or_else(unknown_key)?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_issuer(&[trusted.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &trusted.key, &validation).map_err(|e| map_jwt_error(e.kind()))?;
        let claims = data.claims;

        let claim_invalid = |what: &str, zh: &str| {
            unauthenticated(
                ErrorReason::TokenClaimInvalid,
                format!("token claim {what}"),
                zh.to_string(),
            )
        };
        if claims.sub.trim().is_empty() {
            return Err(claim_invalid("sub is empty", "令牌缺少主体（sub），请重新获取令牌"));
        }
        let scope = claims
            .scope
            .as_deref()
            .ok_or_else(|| claim_invalid("scope is missing", "令牌缺少管辖区域（scope），请重新获取令牌"))?;
        let scope = RegionScope::parse(scope).ok_or_else(|| {
            claim_invalid(
                "scope must be `*` or a 2, 4, 6, 9 or 12 digit division code",
                "令牌的管辖区域（scope）格式不正确",
            )
        })?;
        if claims.roles.is_empty() {
            return Err(claim_invalid("roles is empty", "令牌未包含任何角色"));
        }
        let roles = claims
            .roles
            .iter()
            .map(|r| Role::parse(r).ok_or_else(|| claim_invalid("roles names an unknown role", "令牌包含未知角色")))
            .collect::<Result<Vec<_>, _>>()?;
        let department = match claims.dept.as_deref() {
            None => None,
            Some(d) => Some(
                Department::parse(d)
                    .ok_or_else(|| claim_invalid("dept names an unknown department", "令牌包含未知部门"))?,
            ),
        };

        let not_allowed = || {
            unauthenticated(
                ErrorReason::TokenKeyNotAllowed,
                "the key that signed this token may not sign tokens of this kind",
                "签发该令牌的密钥无权签发此类令牌",
            )
        };
        let kind = match &trusted.signer {
            Signer::Service(service) => {
                if roles != [Role::Service] || claims.sub != *service || department.is_some() {
                    return Err(not_allowed());
                }
                TokenKind::Service(service.clone())
            }
            Signer::Partner => {
                if roles != [Role::Partner] || department.is_some() {
                    return Err(not_allowed());
                }
                TokenKind::Partner
            }
            Signer::Departments {
                departments,
                roles: allowed_roles,
            } => {
                let Some(dept) = department else {
                    return Err(claim_invalid("dept is missing", "令牌缺少所属部门（dept）"));
                };
                if !departments.contains(&dept) || roles.iter().any(|r| !allowed_roles.contains(r)) {
                    return Err(not_allowed());
                }
                TokenKind::User
            }
        };
        let (permissions, acting_service) = match &kind {
            TokenKind::Service(service) => (permissions::service_permissions(service), Some(service.clone())),
            TokenKind::User | TokenKind::Partner => (permissions::user_permissions(department, &roles), None),
        };
        let principal = Arc::new(Principal {
            subject: claims.sub.clone(),
            issuer: claims.iss.clone(),
            department,
            roles: roles.clone(),
            scope: scope.clone(),
            acting_service,
            token_id: claims.jti.clone(),
            permissions,
        });
        Ok(VerifiedToken {
            kind,
            subject: claims.sub,
            issuer: claims.iss,
            department,
            roles,
            scope,
            token_id: claims.jti,
            expires_at: claims.exp,
            principal,
        })
    }
}

fn map_jwt_error(kind: &ErrorKind) -> Problem {
    match kind {
        ErrorKind::ExpiredSignature => unauthenticated(
            ErrorReason::TokenExpired,
            "the token has expired",
            "令牌已过期，请重新获取令牌",
        ),
        ErrorKind::ImmatureSignature => unauthenticated(
            ErrorReason::TokenNotYetValid,
            "the token is not valid yet",
            "令牌尚未生效，请检查本机时间或稍后再试",
        ),
        ErrorKind::InvalidAudience => unauthenticated(
            ErrorReason::TokenWrongAudience,
            "the token is for another audience",
            "令牌不是签发给本系统的",
        ),
        ErrorKind::InvalidIssuer => unauthenticated(
            ErrorReason::TokenWrongIssuer,
            "the token's issuer does not match its key",
            "令牌签发方与签发密钥不符",
        ),
        ErrorKind::MissingRequiredClaim(claim) => unauthenticated(
            ErrorReason::TokenClaimInvalid,
            format!("the token lacks the required claim {claim}"),
            "令牌缺少必需的声明，请重新获取令牌",
        ),
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => unauthenticated(
            ErrorReason::TokenSignatureInvalid,
            "the token's signature does not verify",
            "令牌签名无效",
        ),
        _ => unauthenticated(
            ErrorReason::TokenMalformed,
            "the token is not a well-formed JWT",
            "令牌格式不正确，请重新获取令牌",
        ),
    }
}

/// An UNAUTHENTICATED problem.
pub fn unauthenticated(reason: ErrorReason, message: impl Into<String>, message_zh: impl Into<String>) -> Problem {
    Problem::new(tonic::Code::Unauthenticated, reason, message, message_zh)
}
