//! Who a client quota is for, as Kafka names it: a user (the principal's
//! name), a client id, or a user and a client id together, each either
//! named or the default for all; or an IP address, named or the default
//! for each (connection creation rates, KIP-612); which configured
//! entity's quota applies to a connection (Kafka's eight levels of
//! precedence, per quota kind; two for an IP); and how
//! DescribeClientQuotas' filters select entities. Plain data.

use std::net::IpAddr;

/// One part of an entity: a name, or the default (Kafka's `<default>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The default for every user (or client id) with no quota of its own.
    Default,
    /// This one.
    Named(String),
}

/// A quota entity: the user part, the client-id part, or both; or the
/// IP part alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity {
    /// The `user` part, if the entity has one.
    pub user: Option<Part>,
    /// The `client-id` part, if the entity has one.
    pub client: Option<Part>,
    /// The `ip` part (an address in its canonical text form), if the
    /// entity is an IP's.
    pub ip: Option<Part>,
}

/// Kafka's entity type names.
pub const USER: &str = "user";
/// See [`USER`].
pub const CLIENT_ID: &str = "client-id";
/// An IP address's entity (connection creation rates).
pub const IP: &str = "ip";

impl Entity {
    /// The entity named by a request's (type, name) pairs (`None` for the
    /// default), or why it is not one this broker keeps.
    pub fn from_parts<'a>(
        parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Entity, String> {
        let mut e = Entity::default();
        for (kind, name) in parts {
            let part = match (kind, name) {
                (_, None) => Part::Default,
                // Kept in the address's own form, so that a connection's
                // address finds it however the request spelled it (an
                // IPv4 address mapped into IPv6 is the IPv4 one, as a
                // dual-stack listener's peer is).
                (IP, Some(n)) => match n.parse::<IpAddr>() {
                    Ok(ip) => Part::Named(ip.to_canonical().to_string()),
                    Err(_) => return Err(format!("{n:?} is not an IP address")),
                },
                (_, Some(n)) => Part::Named(n.to_owned()),
            };
            let slot = match kind {
                USER => &mut e.user,
                CLIENT_ID => &mut e.client,
                IP => &mut e.ip,
                other => return Err(format!("unknown entity type {other:?}")),
            };
            if slot.replace(part).is_some() {
                return Err(format!("entity type {kind:?} named twice"));
            }
        }
        match (&e.user, &e.client, &e.ip) {
            (None, None, None) => {
                Err("an entity names a user, a client id or both, or an ip".into())
            }
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                Err("an ip entity names no user or client id".into())
            }
            _ => Ok(e),
        }
    }

    /// The entity as (type, name) pairs, `None` for the default.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        fn as_ref(p: &Part) -> Option<&str> {
            match p {
                Part::Default => None,
                Part::Named(n) => Some(n.as_str()),
            }
        }
        let mut out = Vec::new();
        if let Some(u) = &self.user {
            out.push((USER, as_ref(u)));
        }
        if let Some(c) = &self.client {
            out.push((CLIENT_ID, as_ref(c)));
        }
        if let Some(ip) = &self.ip {
            out.push((IP, as_ref(ip)));
        }
        out
    }

    /// Whether this is an IP's entity.
    pub fn is_ip(&self) -> bool {
        self.ip.is_some()
    }
}

/// The entities whose quota applies to `user`'s connections with client
/// id `client`, most specific first (Kafka's order): the first that sets
/// a quota kind is the one for that kind.
pub fn precedence(user: &str, client: &str) -> [Entity; 8] {
    let named = |s: &str| Some(Part::Named(s.to_owned()));
    let e = |user, client| Entity {
        user,
        client,
        ip: None,
    };
    [
        e(named(user), named(client)),
        e(named(user), Some(Part::Default)),
        e(named(user), None),
        e(Some(Part::Default), named(client)),
        e(Some(Part::Default), Some(Part::Default)),
        e(Some(Part::Default), None),
        e(None, named(client)),
        e(None, Some(Part::Default)),
    ]
}

/// The entities whose connection creation rate applies to connections
/// from `ip`, most specific first: its own, then the default (which
/// limits each address on its own, as Kafka's does).
pub fn ip_precedence(ip: IpAddr) -> [Entity; 2] {
    let e = |part| Entity {
        ip: Some(part),
        ..Entity::default()
    };
    [
        e(Part::Named(ip.to_canonical().to_string())),
        e(Part::Default),
    ]
}

/// Who shares a quota's measured rate: the connections whose user and
/// client id are those of the parts the applying entity has (a default
/// part stands for each user or client id on its own; a missing part
/// for all of them together), as Kafka tags its quota sensors.
pub fn sharing(applying: &Entity, user: &str, client: &str) -> (String, String) {
    (
        applying
            .user
            .as_ref()
            .map_or(String::new(), |_| user.to_owned()),
        applying
            .client
            .as_ref()
            .map_or(String::new(), |_| client.to_owned()),
    )
}

/// How a DescribeClientQuotas filter component matches its entity type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// That name.
    Exact(String),
    /// The default.
    Default,
    /// Any name, or the default.
    Any,
}

/// A DescribeClientQuotas filter: components by entity type, and whether
/// an entity may have parts the filter does not name.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The user component, if any.
    pub user: Option<Match>,
    /// The client-id component, if any.
    pub client: Option<Match>,
    /// Whether the entity must have no other part.
    pub strict: bool,
    /// The ip component, if any.
    pub ip: Option<Match>,
}

impl Filter {
    /// The filter of a request's components (type, match type, match),
    /// or why it is malformed.
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = (&'a str, i8, Option<&'a str>)>,
        strict: bool,
    ) -> Result<Filter, String> {
        let mut f = Filter {
            user: None,
            client: None,
            strict,
            ip: None,
        };
        for (kind, match_type, name) in components {
            let m = match (match_type, name) {
                // An address matches however it was spelled.
                (0, Some(n)) if kind == IP => Match::Exact(
                    n.parse::<IpAddr>()
                        .map_or(n.to_owned(), |ip| ip.to_string()),
                ),
                (0, Some(n)) => Match::Exact(n.to_owned()),
                (0, None) => return Err(format!("an exact match for {kind:?} names none")),
                (1, _) => Match::Default,
                (2, _) => Match::Any,
                (t, _) => return Err(format!("unknown match type {t}")),
            };
            let slot = match kind {
                USER => &mut f.user,
                CLIENT_ID => &mut f.client,
                IP => &mut f.ip,
                other => return Err(format!("unknown entity type {other:?}")),
            };
            if slot.replace(m).is_some() {
                return Err(format!("entity type {kind:?} filtered twice"));
            }
        }
        Ok(f)
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &Entity) -> bool {
        fn one(m: &Option<Match>, p: &Option<Part>, strict: bool) -> bool {
            match (m, p) {
                (None, None) => true,
                (None, Some(_)) => !strict,
                (Some(_), None) => false,
                (Some(Match::Any), Some(_)) => true,
                (Some(Match::Default), Some(p)) => *p == Part::Default,
                (Some(Match::Exact(n)), Some(Part::Named(p))) => n == p,
                (Some(Match::Exact(_)), Some(Part::Default)) => false,
            }
        }
        one(&self.user, &e.user, self.strict)
            && one(&self.client, &e.client, self.strict)
            && one(&self.ip, &e.ip, self.strict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(s: &str) -> Option<Part> {
        Some(Part::Named(s.into()))
    }

    #[test]
    fn entities_are_read_from_their_parts_and_bad_ones_refused() {
        let e = Entity::from_parts([(USER, Some("alice")), (CLIENT_ID, None)]).unwrap();
        assert_eq!(
            (e.user.clone(), e.client.clone()),
            (named("alice"), Some(Part::Default))
        );
        assert_eq!(e.parts(), vec![(USER, Some("alice")), (CLIENT_ID, None)]);
        assert!(Entity::from_parts([]).is_err());
        assert!(Entity::from_parts([(USER, None), (USER, Some("x"))]).is_err());
        assert!(Entity::from_parts([("group", Some("g"))]).is_err());
        // An address alone, in its own form; never beside a user.
        let ip = Entity::from_parts([(IP, Some("::0001"))]).unwrap();
        assert_eq!(ip.parts(), vec![(IP, Some("::1"))]);
        assert!(Entity::from_parts([(IP, None)]).unwrap().is_ip());
        assert!(Entity::from_parts([(IP, Some("1.2.3.4")), (USER, None)]).is_err());
        assert!(Entity::from_parts([(IP, Some("1.2.3"))]).is_err());
        let mapped = Entity::from_parts([(IP, Some("::ffff:10.0.0.1"))]).unwrap();
        assert_eq!(mapped.parts(), vec![(IP, Some("10.0.0.1"))]);
        assert_eq!(ip_precedence("::ffff:10.0.0.1".parse().unwrap())[0], mapped);
        assert_eq!(
            ip_precedence("::1".parse().unwrap()),
            [ip, Entity::from_parts([(IP, None)]).unwrap()]
        );
    }

    #[test]
    fn the_most_specific_entity_comes_first_and_shares_as_kafka_tags() {
        let order = precedence("alice", "app");
        assert_eq!(
            order[0],
            Entity {
                user: named("alice"),
                client: named("app"),
                ip: None
            }
        );
        assert_eq!(
            order[7],
            Entity {
                user: None,
                client: Some(Part::Default),
                ip: None
            }
        );
        // A default client-id quota is each client's own; a user quota is
        // shared by all the user's clients.
        assert_eq!(
            sharing(&order[7], "alice", "app"),
            (String::new(), "app".into())
        );
        assert_eq!(
            sharing(&order[2], "alice", "app"),
            ("alice".into(), String::new())
        );
    }

    #[test]
    fn filters_match_exact_default_and_any_strictly_or_not() {
        let both = Entity {
            user: named("alice"),
            client: Some(Part::Default),
            ip: None,
        };
        let user_only = Entity {
            user: named("alice"),
            client: None,
            ip: None,
        };
        let f = Filter::from_components([(USER, 0, Some("alice"))], false).unwrap();
        assert!(f.matches(&both) && f.matches(&user_only));
        let strict = Filter::from_components([(USER, 0, Some("alice"))], true).unwrap();
        assert!(!strict.matches(&both) && strict.matches(&user_only));
        let defaults = Filter::from_components([(CLIENT_ID, 1, None)], false).unwrap();
        assert!(defaults.matches(&both) && !defaults.matches(&user_only));
        let any = Filter::from_components([(USER, 2, None), (CLIENT_ID, 2, None)], true).unwrap();
        assert!(any.matches(&both) && !any.matches(&user_only));
        let ip = Filter::from_components([(IP, 2, None)], false).unwrap();
        let an_ip = Entity::from_parts([(IP, Some("10.0.0.1"))]).unwrap();
        assert!(!ip.matches(&both) && ip.matches(&an_ip));
        assert!(!any.matches(&an_ip), "a user and client filter takes no ip");
        let exact = Filter::from_components([(IP, 0, Some("10.0.0.01"))], true);
        assert!(
            exact.is_ok_and(|f| !f.matches(&an_ip)),
            "not an address: kept as given"
        );
        let exact = Filter::from_components([(IP, 0, Some("10.0.0.1"))], true).unwrap();
        assert!(exact.matches(&an_ip));
        assert!(Filter::from_components([(USER, 0, None)], false).is_err());
        assert!(Filter::from_components([(USER, 2, None), (USER, 1, None)], false).is_err());
    }
}
