//! The principal a TLS client certificate names, as Kafka's default SSL
//! principal builder writes it: `User:` and the certificate's subject in
//! RFC 2253 form, most specific part first (`CN=alice,OU=eng,O=Example`).
//! Uses `x509-parser` to read the certificate.

use x509_parser::prelude::{FromDer, X509Certificate};

/// RFC 2253's names for the attribute types it names; others are written
/// as their dotted OID with the value in hex (`2.5.4.5=#...`).
const NAMES: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Escapes a value as RFC 2253 asks.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge =
            (i == 0 && (c == '#' || c == ' ')) || (i + 1 == value.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `User:<subject>` for a DER certificate; `None` if it does not parse.
///
/// ```
/// use gyre_broker::security::principal::of_certificate;
/// use rustls::pki_types::pem::PemObject;
///
/// let ca = gyre_testkit::certs::TestCa::new("client CA");
/// let pem = ca.issue(&["alice"]).cert_pem;
/// let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
/// assert_eq!(of_certificate(&der).as_deref(), Some("User:CN=alice"));
/// ```
pub fn of_certificate(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let name = NAMES.iter().find(|(o, _)| *o == oid).map(|(_, n)| *n);
                    match (name, attr.as_str()) {
                        (Some(name), Ok(value)) => format!("{name}={}", escape(value)),
                        _ => {
                            let hex: String =
                                attr.as_slice().iter().map(|b| format!("{b:02x}")).collect();
                            format!("{oid}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    // RFC 2253 writes the most specific part first: the certificate holds
    // it last.
    let subject: Vec<String> = rdns.into_iter().rev().collect();
    Some(format!("User:{}", subject.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#lead "), "\\#lead\\ ");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn garbage_is_no_principal() {
        assert_eq!(of_certificate(b"not a certificate"), None);
    }
}
