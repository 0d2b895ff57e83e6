//! DescribeUserScramCredentials and AlterUserScramCredentials: Kafka's
//! APIs for the SASL/SCRAM users, over the broker's credential store. An
//! alteration carries the client's salted password, never the password
//! itself; the store keeps only the keys derived from it. Uses the
//! security module and the protocol's error codes.

use crate::protocol::error_code as ec;
use crate::security::scram::{Credential, Mechanism};
use crate::security::CredentialStore;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashMap};

/// Kafka's accepted iteration range for SCRAM credentials.
const ITERATIONS: std::ops::RangeInclusive<i32> = 4096..=16384;

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

/// Answers DescribeUserScramCredentials: every user with a credential
/// when none is named, else each named one (`RESOURCE_NOT_FOUND` for a
/// user without one, `DUPLICATE_RESOURCE` for a name given twice).
pub(crate) fn describe(
    store: &CredentialStore,
    r: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let all = store.list();
    let by_name: HashMap<&str, &Vec<(Mechanism, u32)>> =
        all.iter().map(|(n, m)| (n.as_str(), m)).collect();
    let wanted: Vec<String> = match &r.users {
        Some(users) if !users.is_empty() => {
            users.iter().map(|u| u.name.as_str().to_owned()).collect()
        }
        _ => all.iter().map(|(n, _)| n.clone()).collect(),
    };
    let mut seen = HashMap::new();
    for name in &wanted {
        *seen.entry(name.clone()).or_insert(0) += 1;
    }
    let mut resp = DescribeUserScramCredentialsResponse::default();
    for name in wanted {
        let mut result = DescribeUserScramCredentialsResult::default();
        result.user = StrBytes::from_string(name.clone());
        if seen[&name] > 1 {
            result.error_code = ec::DUPLICATE_RESOURCE;
            result.error_message = text(format!("user {name:?} named more than once"));
        } else if let Some(mechanisms) = by_name.get(name.as_str()) {
            result.credential_infos = mechanisms
                .iter()
                .map(|(m, iterations)| {
                    let mut info = CredentialInfo::default();
                    info.mechanism = m.code();
                    info.iterations = *iterations as i32;
                    info
                })
                .collect();
        } else {
            result.error_code = ec::RESOURCE_NOT_FOUND;
            result.error_message = text(format!("user {name:?} has no SCRAM credential"));
        }
        resp.results.push(result);
    }
    resp
}

/// Applies AlterUserScramCredentials: deletions, then upsertions, each
/// user answered once with the first error of its changes (Kafka's
/// rules: a known mechanism, 4096 to 16384 iterations, a non-empty name,
/// no user and mechanism twice). Writes the credentials file: run it off
/// the event loops.
pub(crate) fn alter(
    store: &CredentialStore,
    r: &AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    fn fail(errors: &mut BTreeMap<String, (i16, String)>, user: &str, code: i16, why: String) {
        errors.entry(user.to_owned()).or_insert((code, why));
    }
    let mut pairs = HashMap::new();
    for (user, mechanism) in r
        .deletions
        .iter()
        .map(|d| (d.name.as_str(), d.mechanism))
        .chain(r.upsertions.iter().map(|u| (u.name.as_str(), u.mechanism)))
    {
        if *pairs
            .entry((user, mechanism))
            .and_modify(|n| *n += 1)
            .or_insert(1)
            > 1
        {
            fail(
                &mut errors,
                user,
                ec::DUPLICATE_RESOURCE,
                "a user and mechanism altered twice".into(),
            );
        }
    }
    let mut order: Vec<String> = Vec::new();
    for d in &r.deletions {
        let user = d.name.as_str();
        order.push(user.to_owned());
        if errors.contains_key(user) {
            continue;
        }
        match Mechanism::from_code(d.mechanism) {
            None => fail(
                &mut errors,
                user,
                ec::UNSUPPORTED_SASL_MECHANISM,
                format!("mechanism {}", d.mechanism),
            ),
            Some(m) => match store.remove(user, Some(m)) {
                Ok(true) => {}
                Ok(false) => fail(
                    &mut errors,
                    user,
                    ec::RESOURCE_NOT_FOUND,
                    format!("no {} credential", m.name()),
                ),
                Err(e) => fail(&mut errors, user, ec::KAFKA_STORAGE_ERROR, e.to_string()),
            },
        }
    }
    for u in &r.upsertions {
        let user = u.name.as_str().to_owned();
        order.push(user.clone());
        if errors.contains_key(&user) {
            continue;
        }
        let Some(m) = Mechanism::from_code(u.mechanism) else {
            fail(
                &mut errors,
                &user,
                ec::UNSUPPORTED_SASL_MECHANISM,
                format!("mechanism {}", u.mechanism),
            );
            continue;
        };
        if user.is_empty() || !ITERATIONS.contains(&u.iterations) || u.salt.is_empty() {
            fail(
                &mut errors,
                &user,
                ec::UNACCEPTABLE_CREDENTIAL,
                format!(
                    "{} iterations (4096 to 16384), a salt and a name are required",
                    u.iterations
                ),
            );
            continue;
        }
        let credential = Credential::from_salted_password(
            m,
            u.salt.to_vec(),
            u.iterations as u32,
            &u.salted_password,
        );
        if let Err(e) = store.set(&user, credential) {
            fail(
                &mut errors,
                &user,
                ec::UNACCEPTABLE_CREDENTIAL,
                e.to_string(),
            );
        }
    }
    order.dedup();
    let mut done = std::collections::HashSet::new();
    let mut resp = AlterUserScramCredentialsResponse::default();
    for user in order {
        if !done.insert(user.clone()) {
            continue;
        }
        let mut result = AlterUserScramCredentialsResult::default();
        if let Some((code, why)) = errors.get(&user) {
            tracing::warn!(%user, reason = %why, "SCRAM credential change refused");
            result.error_code = *code;
            result.error_message = text(why.clone());
        } else {
            tracing::info!(%user, "SCRAM credentials altered");
        }
        result.user = StrBytes::from_string(user);
        resp.results.push(result);
    }
    resp
}
