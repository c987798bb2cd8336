//! Signed messages and receipts across the province line (see `exchange.proto`): the sender
//! signs the message's id, parties, time, method and body hash; the receiver answers with a
//! receipt over the request's hash and its answer's. Both are compact JWS (EdDSA) by the
//! exchange's key, told apart from its tokens and from each other by `typ`, so none can be
//! passed off as another.

use bangfu_platform::auth::token::TokenSigner;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The metadata key of a message's signature.
pub const SIGNATURE_HEADER: &str = "x-bangfu-message-signature";
/// The metadata key of the receiver's receipt.
pub const RECEIPT_HEADER: &str = "x-bangfu-message-receipt";
/// The JWS type of a message signature.
pub const MESSAGE_TYPE: &str = "bangfu-message+jws";
/// The JWS type of a receipt.
pub const RECEIPT_TYPE: &str = "bangfu-receipt+jws";

/// What a sender signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageClaims {
    /// The header's message id.
    pub mid: String,
    /// The sender's partner id.
    pub iss: String,
    /// The receiver's partner id.
    pub aud: String,
    /// The send time, Unix seconds.
    pub iat: i64,
    /// The method's full name.
    pub mth: String,
    /// The request message's SHA-256, base64url.
    pub sha256: String,
}

/// What a receiver signs in answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptClaims {
    pub mid: String,
    /// The receiver's partner id.
    pub iss: String,
    /// The sender's partner id.
    pub aud: String,
    pub iat: i64,
    pub mth: String,
    /// The request's SHA-256 (as in the message's claims).
    pub req: String,
    /// The response message's SHA-256, base64url.
    pub sha256: String,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature was sent")]
    Missing,
    #[error("the signature is not a compact JWS of type {0}")]
    Malformed(&'static str),
    #[error("the signature's key id is not one of the partner's keys")]
    UnknownKey,
    #[error("the signature does not verify with the partner's key")]
    Invalid,
    #[error("the signed {0} does not match the message")]
    Mismatch(&'static str),
}

impl SignatureError {
    /// The short reason kept in the message log and sent in the refusal's metadata.
    pub fn detail(&self) -> String {
        self.to_string()
    }
}

/// A message body's SHA-256, base64url without padding, as the claims carry it.
pub fn body_hash(body: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(body))
}

/// The same hash in lowercase hex, as the log shows it.
pub fn hex_of(hash: &str) -> String {
    URL_SAFE_NO_PAD
        .decode(hash)
        .map(|bytes| crate::config::hex(&bytes))
        .unwrap_or_default()
}

/// Signs `claims` as a document of type `typ` with our exchange key.
pub fn sign<T: Serialize>(signer: &TokenSigner, typ: &str, claims: &T) -> Result<String, SignatureError> {
    signer.sign_document(typ, claims).map_err(|error| {
        tracing::error!(%error, "cannot sign with the exchange key");
        SignatureError::Malformed("signable")
    })
}

/// Verifies a compact JWS of type `typ` with the key its `kid` names among `key_of`'s, and
/// returns its claims. Times are checked by the caller against its own window, not here.
pub fn verify<'k, T: DeserializeOwned>(
    jws: &str,
    typ: &'static str,
    key_of: impl Fn(&str) -> Option<&'k DecodingKey>,
) -> Result<T, SignatureError> {
    let header = jsonwebtoken::decode_header(jws).map_err(|_| SignatureError::Malformed(typ))?;
    if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(typ) {
        return Err(SignatureError::Malformed(typ));
    }
    let kid = header.kid.ok_or(SignatureError::UnknownKey)?;
    let key = key_of(&kid).ok_or(SignatureError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(jws, key, &validation)
        .map(|data| data.claims)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => SignatureError::Invalid,
            _ => SignatureError::Malformed(typ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bangfu_platform::auth::keys::{SigningKeyFile, generate_key_pair};

    fn pair(kid: &str, issuer: &str) -> (TokenSigner, DecodingKey) {
        let (file, public): (SigningKeyFile, String) = generate_key_pair(kid, issuer, false).expect("pair");
        (
            TokenSigner::from_file(&file).expect("signer"),
            DecodingKey::from_ed_pem(public.as_bytes()).expect("public"),
        )
    }

    fn claims() -> MessageClaims {
        MessageClaims {
            mid: "m-1".into(),
            iss: "shandong".into(),
            aud: "chongqing".into(),
            iat: 1_780_000_000,
            mth: "bangfu.exchange.v1.PartnerExchangeService/VerifyPerson".into(),
            sha256: body_hash(b"body"),
        }
    }

    #[test]
    fn a_signed_message_verifies_with_the_senders_key_and_no_other() {
        let (signer, public) = pair("sd-1", "shandong");
        let (_, other) = pair("sd-1", "shandong");
        let jws = sign(&signer, MESSAGE_TYPE, &claims()).expect("sign");
        let back: MessageClaims = verify(&jws, MESSAGE_TYPE, |kid| (kid == "sd-1").then_some(&public)).expect("verify");
        assert_eq!(back, claims());
        let wrong: Result<MessageClaims, _> = verify(&jws, MESSAGE_TYPE, |_| Some(&other));
        assert_eq!(wrong, Err(SignatureError::Invalid));
        let unknown: Result<MessageClaims, _> = verify(&jws, MESSAGE_TYPE, |_| None);
        assert_eq!(unknown, Err(SignatureError::UnknownKey));
    }

    #[test]
    fn a_message_signature_is_not_a_receipt_and_a_changed_payload_fails() {
        let (signer, public) = pair("sd-1", "shandong");
        let jws = sign(&signer, MESSAGE_TYPE, &claims()).expect("sign");
        let as_receipt: Result<MessageClaims, _> = verify(&jws, RECEIPT_TYPE, |_| Some(&public));
        assert_eq!(as_receipt, Err(SignatureError::Malformed(RECEIPT_TYPE)));
        // Swap the payload for another's: the signature no longer covers it.
        let mut forged = claims();
        forged.sha256 = body_hash(b"another body");
        let other = sign(&signer, MESSAGE_TYPE, &forged).expect("sign");
        let parts: Vec<&str> = jws.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        let result: Result<MessageClaims, _> = verify(&spliced, MESSAGE_TYPE, |_| Some(&public));
        assert_eq!(result, Err(SignatureError::Invalid));
    }

    #[test]
    fn body_hashes_read_in_hex_for_the_log() {
        assert_eq!(
            hex_of(&body_hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
