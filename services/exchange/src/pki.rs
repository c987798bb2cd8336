//! Which partner a client certificate belongs to. The partner port's TLS accepts a certificate
//! that chains to any partner's CA; a call is then accepted only when the certificate chains to
//! the CA of the partner whose token it carries, so one partner's certificate cannot carry
//! another's token (X-Road: the authentication certificate must match the member).

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};

/// The algorithms a partner's certificate may be signed with.
static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ED25519,
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Whether `chain` (the client's certificates as the TLS session has them, end entity first)
/// leads to `ca_der` for client authentication now.
pub fn issued_by(chain: &[CertificateDer<'static>], ca_der: &[u8]) -> bool {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return false;
    };
    let ca = CertificateDer::from(ca_der);
    let Ok(anchor) = webpki::anchor_from_trusted_cert(&ca) else {
        return false;
    };
    let Ok(certificate) = webpki::EndEntityCert::try_from(end_entity) else {
        return false;
    };
    certificate
        .verify_for_usage(
            ALGORITHMS,
            &[anchor],
            intermediates,
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .is_ok()
}
