//! The principal a TLS client certificate names, as Kafka's default SSL
//! principal builder writes it: `User:` and the certificate's subject in
//! RFC 2253 form, most specific part first (`CN=alice,OU=eng,O=Example`),
//! or what Kafka's `ssl.principal.mapping.rules` make of that subject
//! ([`PrincipalMapping`]). Uses `x509-parser` to read the certificate and
//! `regex` for the rules.

use regex::Regex;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Kafka's `ssl.principal.mapping.rules`: a list of `RULE:pattern/replacement/[LU]`
/// and `DEFAULT`, tried in order on a certificate's subject. The first rule
/// whose pattern matches the whole subject gives the principal's name
/// (`$1` and so on are the pattern's groups; `/L` or `/U` changes its
/// case); `DEFAULT` keeps the subject as it is. A subject no rule matches
/// has no principal: its connection is refused, as Kafka refuses it.
///
/// ```
/// use gyre_broker::security::principal::PrincipalMapping;
///
/// let rules = PrincipalMapping::parse(
///     "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/L,DEFAULT",
/// )?;
/// assert_eq!(rules.map("CN=kafka-app,OU=ServiceUsers,O=Example").as_deref(), Some("kafka-app"));
/// assert_eq!(rules.map("CN=Alice,OU=Eng,O=Example").as_deref(), Some("alice@eng"));
/// assert_eq!(rules.map("CN=bob").as_deref(), Some("CN=bob"));
/// # Ok::<(), gyre_broker::security::principal::MappingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PrincipalMapping {
    rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Pattern {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Clone, Copy, Debug)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Why `ssl.principal.mapping.rules` did not parse.
#[derive(Debug, thiserror::Error)]
#[error("ssl.principal.mapping.rules: {why} at {at:?}")]
pub struct MappingError {
    /// What was wrong.
    pub why: String,
    /// The rest of the rules from where it went wrong.
    pub at: String,
}

impl Default for PrincipalMapping {
    /// `DEFAULT` alone: the subject as it is (Kafka's default).
    fn default() -> Self {
        PrincipalMapping {
            rules: vec![Rule::Default],
        }
    }
}

/// `text` up to its first `/` not escaped by a backslash, and the rest
/// after that `/`.
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&text[..i], &text[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// A Java replacement (`$1`) as the `regex` crate reads it (`${1}`), so a
/// group followed by letters stays a group.
fn replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len() + 4);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push_str("${");
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                out.push(*d);
                chars.next();
            }
            out.push('}');
        } else {
            out.push(c);
        }
    }
    out
}

impl PrincipalMapping {
    /// Parses Kafka's rule list (`RULE:...,RULE:...,DEFAULT`).
    pub fn parse(rules: &str) -> Result<Self, MappingError> {
        let fail = |why: &str, at: &str| MappingError {
            why: why.to_owned(),
            at: at.to_owned(),
        };
        let mut parsed = Vec::new();
        let mut rest = rules.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                parsed.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| fail("a rule without its pattern's /", rest))?;
                let (with, after) = until_slash(after)
                    .ok_or_else(|| fail("a rule without its replacement's /", rest))?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                // Java's `matches()`: the pattern must match the whole
                // subject, so it is anchored at both ends.
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| fail(&e.to_string(), rest))?;
                parsed.push(Rule::Pattern {
                    pattern,
                    replacement: replacement(with),
                    case,
                });
                rest = after;
            } else {
                return Err(fail("expected RULE: or DEFAULT", rest));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(fail("expected a comma", rest)),
            }
        }
        if parsed.is_empty() {
            return Err(fail("no rules", rules));
        }
        Ok(PrincipalMapping { rules: parsed })
    }

    /// The principal's name for the certificate subject `dn`, by the first
    /// rule that matches it whole; `None` if none does.
    pub fn map(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_owned()),
            Rule::Pattern {
                pattern,
                replacement,
                case,
            } => {
                if !pattern.is_match(dn) {
                    return None;
                }
                let name = pattern.replace(dn, replacement.as_str());
                Some(match case {
                    Case::Keep => name.into_owned(),
                    Case::Lower => name.to_lowercase(),
                    Case::Upper => name.to_uppercase(),
                })
            }
        })
    }
}

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
    subject_of(der).map(|subject| format!("User:{subject}"))
}

/// A DER certificate's subject in RFC 2253 form; `None` if it does not
/// parse.
pub fn subject_of(der: &[u8]) -> Option<String> {
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
    Some(subject.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_rules_as_kafka_documents_them() {
        let rules = PrincipalMapping::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/ , RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules
                .map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            rules
                .map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(
            rules.map("cn=Client.Test,OU=x").as_deref(),
            Some("client.test")
        );
        assert_eq!(
            rules.map("OU=nobody").as_deref(),
            Some("OU=nobody"),
            "DEFAULT"
        );
        // Upper case, a group followed by letters, and an escaped slash.
        let rules = PrincipalMapping::parse(r"RULE:^CN=(\w+)\/x$/$1abc/U").unwrap();
        assert_eq!(rules.map("CN=bob/x").as_deref(), Some("BOBABC"));
        // No rule matches and no DEFAULT: no principal.
        assert_eq!(rules.map("CN=bob").as_deref(), None);
        // The whole subject must match, as Java's `matches()` asks.
        let rules = PrincipalMapping::parse("RULE:CN=(.*?),/$1/").unwrap();
        assert_eq!(rules.map("CN=a,OU=b"), None);
        assert_eq!(
            PrincipalMapping::default().map("CN=x").as_deref(),
            Some("CN=x")
        );
    }

    #[test]
    fn bad_rules_are_refused_with_where() {
        for bad in [
            "",
            "RULE:abc",
            "RULE:a/b",
            "RULES:x/y/",
            "DEFAULT DEFAULT",
            "RULE:(/x/",
        ] {
            let e = PrincipalMapping::parse(bad).expect_err(bad);
            assert!(
                e.to_string().starts_with("ssl.principal.mapping.rules: "),
                "{e}"
            );
        }
    }

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
