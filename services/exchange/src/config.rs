//! Who we are to our partners and who they are to us, from one file the operator writes
//! (`BANGFU_EXCHANGE_CONFIG`). Paths in it are relative to its folder:
//!
//! ```json
//! {
//!   "self": { "id": "shandong", "display_name": "山东省人力资源和社会保障厅", "region_prefix": "37" },
//!   "signing_key": "shandong-exchange.signing.json",
//!   "listen": "0.0.0.0:50070",
//!   "tls_cert": "shandong-exchange.pem",
//!   "tls_key": "shandong-exchange.key",
//!   "partners": [{
//!     "id": "chongqing", "display_name": "重庆市人力资源和社会保障局", "region_prefix": "50",
//!     "url": "https://exchange.cq.example:50070",
//!     "ca_file": "chongqing-ca.pem",
//!     "keys": [{ "kid": "chongqing-exchange-1", "public_key_file": "chongqing-exchange-1.pub.pem" }],
//!     "allowed": ["verify_person", "shared_postings", "employment_confirmations"]
//!   }]
//! }
//! ```
//!
//! The signing key (made by `bangfu keys init --partner`) signs our partner tokens, our messages
//! and our receipts; its public half and our CA certificate are what the partner configures for
//! us. A partner's CA is pinned: its client certificate must chain to that CA, no other.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bangfu_platform::auth::token::TokenSigner;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The variable naming the file.
pub const CONFIG_VARIABLE: &str = "BANGFU_EXCHANGE_CONFIG";

/// What a partner may ask of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ability {
    VerifyPerson,
    SharedPostings,
    EmploymentConfirmations,
}

impl Ability {
    pub const ALL: [Ability; 3] = [Self::VerifyPerson, Self::SharedPostings, Self::EmploymentConfirmations];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyPerson => "verify_person",
            Self::SharedPostings => "shared_postings",
            Self::EmploymentConfirmations => "employment_confirmations",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// One partner province's exchange.
pub struct Partner {
    pub id: String,
    pub display_name: String,
    pub region_prefix: String,
    pub url: String,
    /// The partner's CA certificate (PEM and DER), pinned.
    pub ca_pem: Vec<u8>,
    pub ca_der: Vec<u8>,
    pub ca_sha256: String,
    /// Its exchange keys by kid: they sign its tokens, messages and receipts.
    pub keys: Vec<(String, DecodingKey)>,
    pub allowed: BTreeSet<Ability>,
}

impl std::fmt::Debug for Partner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partner")
            .field("id", &self.id)
            .field("region_prefix", &self.region_prefix)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Partner {
    pub fn key(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|(kid, _)| kid.clone()).collect()
    }

    pub fn may(&self, ability: Ability) -> bool {
        self.allowed.contains(&ability)
    }

    /// The audience our tokens for this partner carry: its exchange's.
    pub fn audience(&self) -> String {
        audience_of(&self.id)
    }
}

/// The audience a partner token for the exchange of `id` carries.
pub fn audience_of(id: &str) -> String {
    format!("bangfu-exchange-{id}")
}

/// The exchange's configuration.
pub struct ExchangeConfig {
    pub id: String,
    pub display_name: String,
    pub region_prefix: String,
    pub signer: Arc<TokenSigner>,
    pub listen: SocketAddr,
    pub tls_cert: Vec<u8>,
    pub tls_key: Vec<u8>,
    /// The same certificate and key as files, for the partner port's TLS.
    pub tls_cert_path: PathBuf,
    pub tls_key_path: PathBuf,
    pub partners: Vec<Arc<Partner>>,
}

impl std::fmt::Debug for ExchangeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeConfig")
            .field("id", &self.id)
            .field("listen", &self.listen)
            .field("partners", &self.partners)
            .finish_non_exhaustive()
    }
}

impl ExchangeConfig {
    pub fn partner(&self, id: &str) -> Option<&Arc<Partner>> {
        self.partners.iter().find(|p| p.id == id)
    }

    /// Every partner's CA, concatenated: what the partner port's TLS accepts. Which partner a
    /// certificate belongs to is checked per call against the token's partner.
    pub fn partner_cas_pem(&self) -> Vec<u8> {
        self.partners
            .iter()
            .flat_map(|p| p.ca_pem.iter().copied().chain([b'\n']))
            .collect()
    }

    /// The audience partner tokens for us carry.
    pub fn audience(&self) -> String {
        audience_of(&self.id)
    }

    /// Reads the file `BANGFU_EXCHANGE_CONFIG` names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let invalid = |path: &Path, reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(path, e.to_string()))?;
        let file: ConfigFile = serde_json::from_str(&text).map_err(|e| invalid(path, e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let read = |name: &str| {
            let full = dir.join(name);
            std::fs::read(&full).map_err(|e| invalid(&full, e.to_string()))
        };
        check_id(&file.me.id).map_err(|reason| invalid(path, format!("self.id: {reason}")))?;
        check_prefix(&file.me.region_prefix)
            .map_err(|reason| invalid(path, format!("self.region_prefix: {reason}")))?;
        let signing_path = dir.join(&file.signing_key);
        let signer = TokenSigner::load(&signing_path).map_err(|e| invalid(&signing_path, e.to_string()))?;
        if signer.issuer() != file.me.id {
            return Err(invalid(
                &signing_path,
                format!(
                    "the key signs as {:?}, and this exchange is {:?}: make it with `bangfu keys init --partner {}`",
                    signer.issuer(),
                    file.me.id,
                    file.me.id
                ),
            ));
        }
        let listen: SocketAddr = file
            .listen
            .parse()
            .map_err(|e| invalid(path, format!("listen {:?}: {e}", file.listen)))?;
        let mut partners: Vec<Arc<Partner>> = Vec::new();
        for (i, p) in file.partners.into_iter().enumerate() {
            let at = |what: &str, reason: String| invalid(path, format!("partners[{i}].{what}: {reason}"));
            check_id(&p.id).map_err(|r| at("id", r))?;
            if p.id == file.me.id {
                return Err(at("id", "a partner cannot be this exchange itself".into()));
            }
            if partners.iter().any(|q| q.id == p.id) {
                return Err(at("id", format!("{:?} is listed twice", p.id)));
            }
            check_prefix(&p.region_prefix).map_err(|r| at("region_prefix", r))?;
            if p.region_prefix.starts_with(&file.me.region_prefix)
                || file.me.region_prefix.starts_with(&p.region_prefix)
            {
                return Err(at("region_prefix", "it overlaps this exchange's own region".into()));
            }
            if !p.url.starts_with("https://") {
                return Err(at(
                    "url",
                    "a partner is reached over mutual TLS: https://host:port".into(),
                ));
            }
            let ca_pem = read(&p.ca_file)?;
            let ca_der = first_certificate(&ca_pem).ok_or_else(|| at("ca_file", "holds no PEM certificate".into()))?;
            webpki::anchor_from_trusted_cert(&rustls_pki_types::CertificateDer::from(ca_der.as_slice()))
                .map_err(|e| at("ca_file", format!("not a usable CA certificate: {e:?}")))?;
            let ca_sha256 = hex(&Sha256::digest(&ca_der));
            if p.keys.is_empty() {
                return Err(at(
                    "keys",
                    "at least one key of the partner's exchange is needed".into(),
                ));
            }
            let mut keys = Vec::new();
            for key in &p.keys {
                let pem = read(&key.public_key_file)?;
                let decoding = DecodingKey::from_ed_pem(&pem).map_err(|e| at("keys", format!("{}: {e}", key.kid)))?;
                keys.push((key.kid.clone(), decoding));
            }
            let allowed = p
                .allowed
                .iter()
                .map(|a| Ability::parse(a).ok_or_else(|| at("allowed", format!("unknown ability {a:?}"))))
                .collect::<Result<BTreeSet<_>, _>>()?;
            partners.push(Arc::new(Partner {
                id: p.id,
                display_name: p.display_name,
                region_prefix: p.region_prefix,
                url: p.url,
                ca_pem,
                ca_der,
                ca_sha256,
                keys,
                allowed,
            }));
        }
        Ok(Self {
            id: file.me.id,
            display_name: file.me.display_name,
            region_prefix: file.me.region_prefix,
            signer: Arc::new(signer),
            listen,
            tls_cert: read(&file.tls_cert)?,
            tls_key: read(&file.tls_key)?,
            tls_cert_path: dir.join(&file.tls_cert),
            tls_key_path: dir.join(&file.tls_key),
            partners,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(rename = "self")]
    me: SelfEntry,
    signing_key: String,
    listen: String,
    tls_cert: String,
    tls_key: String,
    #[serde(default)]
    partners: Vec<PartnerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfEntry {
    id: String,
    display_name: String,
    region_prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerEntry {
    id: String,
    display_name: String,
    region_prefix: String,
    url: String,
    ca_file: String,
    keys: Vec<KeyEntry>,
    #[serde(default)]
    allowed: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    kid: String,
    public_key_file: String,
}

/// A partner id: 1 to 32 lowercase letters, digits or '-' (it names the partner in tokens,
/// message headers and resource names).
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} must be 1 to 32 lowercase letters, digits or '-'"))
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if matches!(prefix.len(), 2 | 4 | 6) && prefix.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("{prefix:?} must be a 2, 4 or 6 digit division-code prefix"))
    }
}

/// The DER of the first certificate in `pem`.
pub fn first_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .next()
        .and_then(Result::ok)
        .map(|der| der.to_vec())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bangfu_platform::auth::keys::{generate_key_pair, write_file};

    /// A folder with our key, a partner's CA and key, and the file `partners` describes.
    fn folder(me: &str, partners: serde_json::Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tmp");
        let (ours, _) = generate_key_pair("sd-1", "shandong", false).expect("pair");
        write_file(
            &dir.path().join("signing.json"),
            &serde_json::to_vec(&ours).expect("json"),
            0o600,
        )
        .expect("write");
        let (_, theirs) = generate_key_pair("cq-1", "chongqing", false).expect("pair");
        std::fs::write(dir.path().join("cq.pub.pem"), theirs).expect("write");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(
            dir.path().join("cq-ca.pem"),
            params.self_signed(&key).expect("ca").pem(),
        )
        .expect("write");
        std::fs::write(dir.path().join("tls.pem"), "").expect("write");
        std::fs::write(dir.path().join("tls.key"), "").expect("write");
        let file = serde_json::json!({
            "self": { "id": me, "display_name": "山东", "region_prefix": "37" },
            "signing_key": "signing.json",
            "listen": "127.0.0.1:0",
            "tls_cert": "tls.pem",
            "tls_key": "tls.key",
            "partners": partners,
        });
        std::fs::write(dir.path().join("exchange.json"), file.to_string()).expect("write");
        dir
    }

    fn chongqing(region: &str, url: &str, allowed: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "id": "chongqing", "display_name": "重庆", "region_prefix": region, "url": url,
            "ca_file": "cq-ca.pem", "keys": [{ "kid": "cq-1", "public_key_file": "cq.pub.pem" }],
            "allowed": allowed,
        })
    }

    fn load(dir: &tempfile::TempDir) -> Result<ExchangeConfig, String> {
        ExchangeConfig::load(&dir.path().join("exchange.json")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_partner_file_as_written_loads_with_its_pinned_ca_and_keys() {
        let dir = folder(
            "shandong",
            serde_json::json!([chongqing("50", "https://cq.example:50070", &["verify_person"])]),
        );
        let config = load(&dir).expect("loads");
        let partner = config.partner("chongqing").expect("partner");
        assert!(partner.may(Ability::VerifyPerson) && !partner.may(Ability::EmploymentConfirmations));
        assert_eq!(partner.key_ids(), vec!["cq-1".to_string()]);
        assert_eq!(partner.ca_sha256.len(), 64);
        assert_eq!(config.audience(), "bangfu-exchange-shandong");
    }

    #[test]
    fn a_partner_file_that_cannot_be_right_is_refused_naming_what() {
        let cases = [
            (folder("Shandong", serde_json::json!([])), "self.id"),
            (folder("chongqing", serde_json::json!([])), "signs as \"shandong\""),
            (
                folder(
                    "shandong",
                    serde_json::json!([chongqing("3704", "https://cq.example:1", &[])]),
                ),
                "overlaps",
            ),
            (
                folder(
                    "shandong",
                    serde_json::json!([chongqing("50", "http://cq.example:1", &[])]),
                ),
                "mutual TLS",
            ),
            (
                folder(
                    "shandong",
                    serde_json::json!([chongqing("50", "https://cq.example:1", &["everything"])]),
                ),
                "unknown ability",
            ),
            (
                folder(
                    "shandong",
                    serde_json::json!([
                        chongqing("50", "https://cq.example:1", &[]),
                        chongqing("50", "https://cq.example:2", &[])
                    ]),
                ),
                "listed twice",
            ),
        ];
        for (dir, expected) in cases {
            let error = load(&dir).expect_err(expected);
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
