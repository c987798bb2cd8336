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

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    fn ca(name: &str) -> (CertificateParams, KeyPair, Vec<u8>) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let der = params.self_signed(&key).expect("ca").der().to_vec();
        (params, key, der)
    }

    fn leaf(ca: &(CertificateParams, KeyPair, Vec<u8>)) -> CertificateDer<'static> {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let issuer = Issuer::from_params(&ca.0, &ca.1);
        CertificateDer::from(params.signed_by(&key, &issuer).expect("leaf").der().to_vec())
    }

    #[test]
    fn a_certificate_belongs_to_the_partner_whose_ca_issued_it_and_no_other() {
        let chongqing = ca("chongqing exchange CA");
        let gansu = ca("gansu exchange CA");
        let certificate = leaf(&chongqing);
        assert!(issued_by(std::slice::from_ref(&certificate), &chongqing.2));
        assert!(!issued_by(std::slice::from_ref(&certificate), &gansu.2));
        assert!(!issued_by(&[], &chongqing.2), "no certificate belongs to nobody");
    }
}
