//! Signing tokens: the claims every bangfu token carries, and a signer for a key that a
//! department issuer or a service holds. Services mint their own short-lived `service` tokens
//! with [`ServiceTokens`], reused until shortly before they expire.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::keys::{KeyError, SigningKeyFile};
use super::{Department, RegionScope, Role};

/// The claims of a bangfu token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// Token id, for revocation and the audit trail.
    pub jti: String,
    /// Department: required for users, absent for services and partners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept: Option<String>,
    pub roles: Vec<String>,
    /// Region scope: a division-code prefix or `*`. Required; a token without one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Who a user token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    pub subject: String,
    pub department: Department,
    pub roles: Vec<Role>,
    pub scope: RegionScope,
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the signing key could not be used: {0}")]
    Key(#[from] KeyError),
    #[error("signing failed: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// A private key with the identity it signs as.
pub struct TokenSigner {
    kid: String,
    issuer: String,
    key: EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn from_file(file: &SigningKeyFile) -> Result<Self, SignError> {
        let key = EncodingKey::from_ed_pem(file.private_key_pem.as_bytes())?;
        Ok(Self {
            kid: file.kid.clone(),
            issuer: file.issuer.clone(),
            key,
        })
    }

    /// Loads a signing key file, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<Self, SignError> {
        Self::from_file(&SigningKeyFile::load(path)?)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims` as they are (tests use this to make bad tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }

    /// Signs any JSON payload as a compact JWS of type `typ` with this key (the exchange's
    /// signed messages and receipts): the same key, kid and algorithm as its tokens, told apart
    /// from them by `typ`.
    pub fn sign_document<T: serde::Serialize>(&self, typ: &str, payload: &T) -> Result<String, SignError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        Ok(jsonwebtoken::encode(&header, payload, &self.key)?)
    }

    /// Claims for a user token valid from `now` for `ttl`.
    pub fn user_claims(&self, user: &UserIdentity, audience: &str, now: i64, ttl: Duration) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            sub: user.subject.clone(),
            aud: audience.to_string(),
            exp: now + ttl.as_secs() as i64,
            nbf: now,
            iat: now,
            jti: new_token_id(),
            dept: Some(user.department.as_str().to_string()),
            roles: user.roles.iter().map(|r| r.as_str().to_string()).collect(),
            scope: Some(user.scope.to_string()),
        }
    }

    /// Claims for the service's own token.
    pub fn service_claims(
        &self,
        service: &str,
        scope: &RegionScope,
        audience: &str,
        now: i64,
        ttl: Duration,
    ) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            sub: service.to_string(),
            aud: audience.to_string(),
            exp: now + ttl.as_secs() as i64,
            nbf: now,
            iat: now,
            jti: new_token_id(),
            dept: None,
            roles: vec![Role::Service.as_str().to_string()],
            scope: Some(scope.to_string()),
        }
    }
}

/// A random token id.
pub fn new_token_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch, as JWT time claims count.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The service's own short-lived tokens, minted on demand and reused until a minute before
/// they expire.
#[derive(Debug)]
pub struct ServiceTokens {
    signer: TokenSigner,
    service: String,
    scope: RegionScope,
    audience: String,
    ttl: Duration,
    current: Mutex<Option<(String, i64)>>,
}

impl ServiceTokens {
    pub fn new(signer: TokenSigner, service: &str, scope: RegionScope, audience: &str, ttl: Duration) -> Self {
        Self {
            signer,
            service: service.to_string(),
            scope,
            audience: audience.to_string(),
            ttl,
            current: Mutex::new(None),
        }
    }

    /// A valid token for this service.
    pub fn token(&self) -> Result<String, SignError> {
        let now = unix_now();
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, exp)) = current.as_ref()
            && *exp - 60 > now
        {
            return Ok(token.clone());
        }
        let claims = self
            .signer
            .service_claims(&self.service, &self.scope, &self.audience, now, self.ttl);
        let token = self.signer.sign(&claims)?;
        *current = Some((token.clone(), claims.exp));
        Ok(token)
    }
}
