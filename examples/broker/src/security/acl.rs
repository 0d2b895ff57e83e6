//! Kafka's access control lists: bindings of a principal to an operation
//! on a resource (a topic, a group, the cluster; by literal name, `*`, or
//! name prefix), allowed or denied, and the authorizer that checks a
//! request against them. Kept in `<data>/security/acls`, one binding per
//! line, written whole and renamed into place. Plain data and functions;
//! the codes are Kafka's own, as the ACL APIs carry them.
//!
//! The rules are Kafka's `AclAuthorizer`'s: super users may do anything;
//! a matching DENY beats any ALLOW; READ, WRITE, DELETE and ALTER each
//! imply DESCRIBE, and ALTER_CONFIGS implies DESCRIBE_CONFIGS; a resource
//! that no binding names at all is allowed only with
//! `allow.everyone.if.no.acl.found`.

use crate::folder_sync::{self, Durability};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// A resource type (Kafka's codes).
pub mod resource {
    /// Matches any type (filters only).
    pub const ANY: i8 = 1;
    /// A topic.
    pub const TOPIC: i8 = 2;
    /// A consumer group.
    pub const GROUP: i8 = 3;
    /// The cluster.
    pub const CLUSTER: i8 = 4;
    /// A transactional id.
    pub const TRANSACTIONAL_ID: i8 = 5;
}

/// A resource pattern type (Kafka's codes).
pub mod pattern {
    /// Matches any pattern type (filters only).
    pub const ANY: i8 = 1;
    /// Matches the bindings that apply to a name (filters only).
    pub const MATCH: i8 = 2;
    /// The name itself (or `*`: every resource of the type).
    pub const LITERAL: i8 = 3;
    /// Every name that starts with it.
    pub const PREFIXED: i8 = 4;
}

/// An operation (Kafka's codes).
pub mod op {
    /// Matches any operation (filters only).
    pub const ANY: i8 = 1;
    /// Every operation.
    pub const ALL: i8 = 2;
    /// Consume; commit offsets; join a group.
    pub const READ: i8 = 3;
    /// Produce.
    pub const WRITE: i8 = 4;
    /// Create topics.
    pub const CREATE: i8 = 5;
    /// Delete topics, records, groups.
    pub const DELETE: i8 = 6;
    /// Add partitions; change ACLs and users (cluster).
    pub const ALTER: i8 = 7;
    /// See that it exists.
    pub const DESCRIBE: i8 = 8;
    /// Broker-to-broker (unused here).
    pub const CLUSTER_ACTION: i8 = 9;
    /// Read configs.
    pub const DESCRIBE_CONFIGS: i8 = 10;
    /// Change configs.
    pub const ALTER_CONFIGS: i8 = 11;
    /// Idempotent produce (cluster).
    pub const IDEMPOTENT_WRITE: i8 = 12;

    /// What may be done to a topic, as Kafka lists it.
    pub const ON_TOPIC: [i8; 8] = [
        READ,
        WRITE,
        CREATE,
        DELETE,
        ALTER,
        DESCRIBE,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
    ];
    /// What may be done to a group, as Kafka lists it.
    pub const ON_GROUP: [i8; 5] = [READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS];
    /// What may be done to the cluster, as Kafka lists it.
    pub const ON_CLUSTER: [i8; 7] = [
        CREATE,
        ALTER,
        DESCRIBE,
        CLUSTER_ACTION,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
        IDEMPOTENT_WRITE,
    ];

    /// Kafka's bit set of operation codes, as a describe's
    /// `authorized_operations` carries it: each of `operations` that
    /// `may` allows.
    pub fn bits(operations: &[i8], may: impl Fn(i8) -> bool) -> i32 {
        operations
            .iter()
            .filter(|&&o| may(o))
            .fold(0, |bits, &o| bits | 1 << o)
    }
}

/// Allowed or denied (Kafka's codes).
pub mod permission {
    /// Matches either (filters only).
    pub const ANY: i8 = 1;
    /// Denied.
    pub const DENY: i8 = 2;
    /// Allowed.
    pub const ALLOW: i8 = 3;
}

/// One binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// [`resource`] code (not ANY).
    pub resource_type: i8,
    /// The resource's name, `*`, or a prefix.
    pub name: String,
    /// [`pattern::LITERAL`] or [`pattern::PREFIXED`].
    pub pattern: i8,
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// The client's address, or `*`.
    pub host: String,
    /// [`op`] code (not ANY).
    pub operation: i8,
    /// [`permission::ALLOW`] or [`permission::DENY`].
    pub permission: i8,
}

/// A filter over bindings (DescribeAcls, DeleteAcls): `None` and the ANY
/// codes match everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Resource type or ANY.
    pub resource_type: i8,
    /// A name, or any.
    pub name: Option<String>,
    /// A pattern type, ANY, or MATCH.
    pub pattern: i8,
    /// A principal, or any.
    pub principal: Option<String>,
    /// A host, or any.
    pub host: Option<String>,
    /// An operation or ANY.
    pub operation: i8,
    /// A permission or ANY.
    pub permission: i8,
}

impl Binding {
    /// Why this binding cannot be stored, if it cannot.
    pub fn invalid(&self) -> Option<&'static str> {
        if !(resource::TOPIC..=resource::TRANSACTIONAL_ID).contains(&self.resource_type) {
            return Some("resource type must be TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID");
        }
        if self.pattern != pattern::LITERAL && self.pattern != pattern::PREFIXED {
            return Some("pattern type must be LITERAL or PREFIXED");
        }
        if !(op::ALL..=op::IDEMPOTENT_WRITE).contains(&self.operation) {
            return Some("unknown operation");
        }
        if self.permission != permission::ALLOW && self.permission != permission::DENY {
            return Some("permission must be ALLOW or DENY");
        }
        if !self.principal.starts_with("User:") {
            return Some("the principal must be User:<name> or User:*");
        }
        if self.name.is_empty()
            || [&self.name, &self.principal, &self.host]
                .iter()
                .any(|s| s.contains(['\t', '\n']))
        {
            return Some("empty name, or a tab or line break in a field");
        }
        None
    }

    /// Whether it applies to resource `name` of its type.
    fn covers(&self, name: &str) -> bool {
        match self.pattern {
            pattern::LITERAL => self.name == name || self.name == "*",
            _ => name.starts_with(&self.name),
        }
    }

    fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.resource_type,
            self.pattern,
            self.operation,
            self.permission,
            self.principal,
            self.host,
            self.name
        )
    }

    fn from_line(line: &str) -> Option<Binding> {
        let f: Vec<&str> = line.splitn(7, '\t').collect();
        let [rt, pt, opc, perm, principal, host, name] = f[..] else {
            return None;
        };
        let b = Binding {
            resource_type: rt.parse().ok()?,
            pattern: pt.parse().ok()?,
            operation: opc.parse().ok()?,
            permission: perm.parse().ok()?,
            principal: principal.to_owned(),
            host: host.to_owned(),
            name: name.to_owned(),
        };
        b.invalid().is_none().then_some(b)
    }
}

impl Filter {
    /// Whether `b` matches.
    pub fn matches(&self, b: &Binding) -> bool {
        let code = |want: i8, any: i8, have: i8| want == any || want == have;
        let text = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let name = match (self.pattern, &self.name) {
            (_, None) => true,
            // MATCH: the bindings that would apply to this name.
            (pattern::MATCH, Some(n)) => b.covers(n),
            (_, Some(n)) => *n == b.name,
        };
        code(self.resource_type, resource::ANY, b.resource_type)
            && (self.pattern == pattern::ANY
                || self.pattern == pattern::MATCH
                || self.pattern == b.pattern)
            && name
            && text(&self.principal, &b.principal)
            && text(&self.host, &b.host)
            && code(self.operation, op::ANY, b.operation)
            && code(self.permission, permission::ANY, b.permission)
    }
}

/// How requests are authorized.
#[derive(Clone, Debug, Default)]
pub struct AuthorizerConfig {
    /// Check requests against the ACLs (Kafka's `authorizer.class.name`);
    /// off: every client may do everything.
    pub enabled: bool,
    /// Principals (`User:admin`) allowed everything.
    pub super_users: Vec<String>,
    /// Allow what no binding names (`allow.everyone.if.no.acl.found`).
    pub allow_if_no_acl: bool,
    /// How a TLS client certificate's subject becomes a principal's name
    /// (`ssl.principal.mapping.rules`; default: the subject as it is).
    pub principal_mapping: crate::security::principal::PrincipalMapping,
}

/// Why an ACL change failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct AclError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// The bindings and the rules that apply them.
#[derive(Debug)]
pub struct Authorizer {
    config: AuthorizerConfig,
    path: PathBuf,
    /// Read by every check, on the loops; written only to swap in a
    /// change already saved.
    bindings: RwLock<Vec<Binding>>,
    /// Held by a change for its file's write and sync (one change at a
    /// time), so no check waits on the disk behind it.
    saving: Mutex<()>,
}

/// Whether `wanted` is granted by a binding for `granted` (with Kafka's
/// implications).
fn implies(granted: i8, wanted: i8) -> bool {
    granted == op::ALL
        || granted == wanted
        || (wanted == op::DESCRIBE
            && matches!(granted, op::READ | op::WRITE | op::DELETE | op::ALTER))
        || (wanted == op::DESCRIBE_CONFIGS && granted == op::ALTER_CONFIGS)
}

impl Authorizer {
    /// Where a data folder keeps its ACLs.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("security").join("acls")
    }

    /// Loads the data folder's ACLs (none if the file is missing; a line
    /// that is not a binding is an error naming it).
    ///
    /// # Errors
    /// The file cannot be read, or holds a damaged line.
    pub fn open(data_dir: &Path, config: AuthorizerConfig) -> Result<Authorizer, AclError> {
        let path = Self::path_in(data_dir);
        let mut bindings = Vec::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    match Binding::from_line(line) {
                        Some(b) => bindings.push(b),
                        None => {
                            return Err(AclError {
                                path,
                                source: std::io::Error::new(
                                    std::io::ErrorKind::InvalidData,
                                    format!("line {}: not an ACL binding", i + 1),
                                ),
                            })
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(AclError { path, source }),
        }
        Ok(Authorizer {
            config,
            path,
            bindings: RwLock::new(bindings),
            saving: Mutex::new(()),
        })
    }

    /// Whether checks are on.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// How certificate subjects become principals.
    pub fn principal_mapping(&self) -> &crate::security::principal::PrincipalMapping {
        &self.config.principal_mapping
    }

    /// Whether `principal` (from `host`) may do `operation` on resource
    /// `name` of `resource_type`.
    pub fn allows(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        if !self.config.enabled || self.config.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let bindings = self.bindings.read().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        let mut allowed = false;
        for b in bindings
            .iter()
            .filter(|b| b.resource_type == resource_type && b.covers(name))
        {
            any = true;
            let who = b.principal == principal || b.principal == "User:*";
            let from = b.host == "*" || b.host == host;
            if !(who && from) {
                continue;
            }
            if b.permission == permission::DENY
                && (b.operation == op::ALL || b.operation == operation)
            {
                return false;
            }
            allowed |= b.permission == permission::ALLOW && implies(b.operation, operation);
        }
        allowed || (!any && self.config.allow_if_no_acl)
    }

    /// The bindings `filter` matches.
    pub fn describe(&self, filter: &Filter) -> Vec<Binding> {
        let bindings = self.bindings.read().unwrap_or_else(|e| e.into_inner());
        bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Adds bindings (one already there is not added twice), and saves.
    /// Checks see them once they are saved.
    ///
    /// # Errors
    /// The file could not be written: nothing changed.
    pub fn create(&self, new: &[Binding]) -> Result<(), AclError> {
        self.change(|bindings| {
            for b in new {
                if !bindings.contains(b) {
                    bindings.push(b.clone());
                }
            }
        })
    }

    /// Removes what each filter matches, and saves; the removed bindings,
    /// per filter. Checks see the change once it is saved.
    ///
    /// # Errors
    /// The file could not be written: nothing changed.
    pub fn delete(&self, filters: &[Filter]) -> Result<Vec<Vec<Binding>>, AclError> {
        let mut removed = Vec::new();
        self.change(|bindings| {
            removed = filters
                .iter()
                .map(|f| bindings.iter().filter(|b| f.matches(b)).cloned().collect())
                .collect();
            bindings.retain(|b| !filters.iter().any(|f| f.matches(b)));
        })?;
        Ok(removed)
    }

    /// Applies `edit` to a copy of the bindings, saves the copy, and only
    /// then swaps it in: the checks' lock is held for the swap alone,
    /// never across the file's write and sync (which would hold up every
    /// loop checking a request meanwhile), and a change that could not be
    /// saved is not applied (the client is told it failed).
    fn change(&self, edit: impl FnOnce(&mut Vec<Binding>)) -> Result<(), AclError> {
        let _one_at_a_time = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self
            .bindings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        edit(&mut next);
        self.save(&next)?;
        *self.bindings.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    fn save(&self, bindings: &[Binding]) -> Result<(), AclError> {
        let io = |source| AclError {
            path: self.path.clone(),
            source,
        };
        std::fs::create_dir_all(self.path.parent().expect("in the data folder")).map_err(io)?;
        let mut text = String::from("# gyre-broker ACLs: resource type, pattern, operation, permission, principal, host, name\n");
        for b in bindings {
            text.push_str(&b.to_line());
            text.push('\n');
        }
        // Durable, else a power loss could bring back the file an ACL was
        // deleted from.
        folder_sync::replace(&self.path, text.as_bytes(), Durability::Durable).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(principal: &str, rt: i8, name: &str, pattern: i8, operation: i8) -> Binding {
        Binding {
            resource_type: rt,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: permission::ALLOW,
        }
    }

    /// A change that cannot be saved (here the data folder's `security`
    /// is a file, so its folder cannot be made) fails and changes
    /// nothing; before, the bindings changed in memory while the client
    /// was told the change failed.
    #[test]
    fn a_change_that_cannot_be_saved_is_not_applied() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-acl-unsaved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = AuthorizerConfig {
            enabled: true,
            allow_if_no_acl: false,
            ..AuthorizerConfig::default()
        };
        let a = Authorizer::open(&dir, config).unwrap();
        std::fs::write(dir.join("security"), b"not a folder").unwrap();
        let t = resource::TOPIC;
        let grant = allow("User:alice", t, "orders", pattern::LITERAL, op::WRITE);
        assert!(a.create(std::slice::from_ref(&grant)).is_err());
        assert!(!a.allows("User:alice", "h", op::WRITE, t, "orders"));
        std::fs::remove_file(dir.join("security")).unwrap();
        folder_sync::record::take();
        a.create(std::slice::from_ref(&grant)).unwrap();
        assert!(a.allows("User:alice", "h", op::WRITE, t, "orders"));
        assert_eq!(
            folder_sync::record::take(),
            [dir.join("security")],
            "the rename is made durable"
        );
        std::fs::remove_dir_all(dir.join("security")).unwrap();
        std::fs::write(dir.join("security"), b"not a folder").unwrap();
        let everything = Filter {
            resource_type: resource::ANY,
            name: None,
            pattern: pattern::ANY,
            principal: None,
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        };
        assert!(a.delete(&[everything]).is_err());
        assert!(
            a.allows("User:alice", "h", op::WRITE, t, "orders"),
            "an unsaved delete removed nothing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kafka_rules_deny_beats_allow_implications_prefixes_and_super_users() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-acl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = AuthorizerConfig {
            enabled: true,
            super_users: vec!["User:admin".into()],
            allow_if_no_acl: false,
            ..AuthorizerConfig::default()
        };
        let a = Authorizer::open(&dir, config.clone()).unwrap();
        let t = resource::TOPIC;
        a.create(&[
            allow("User:alice", t, "orders", pattern::LITERAL, op::WRITE),
            allow("User:bob", t, "logs-", pattern::PREFIXED, op::READ),
            allow("User:*", t, "public", pattern::LITERAL, op::ALL),
            Binding {
                permission: permission::DENY,
                ..allow("User:carol", t, "public", pattern::LITERAL, op::READ)
            },
        ])
        .unwrap();
        assert!(a.allows("User:alice", "h", op::WRITE, t, "orders"));
        assert!(
            a.allows("User:alice", "h", op::DESCRIBE, t, "orders"),
            "WRITE implies DESCRIBE"
        );
        assert!(!a.allows("User:alice", "h", op::READ, t, "orders"));
        assert!(a.allows("User:bob", "h", op::READ, t, "logs-app"));
        assert!(!a.allows("User:bob", "h", op::READ, t, "log"));
        assert!(a.allows("User:dave", "h", op::READ, t, "public"));
        assert!(
            !a.allows("User:carol", "h", op::READ, t, "public"),
            "DENY beats ALLOW"
        );
        assert!(
            !a.allows("User:alice", "h", op::READ, t, "unnamed"),
            "no ACL: denied"
        );
        assert!(
            a.allows("User:admin", "h", op::DELETE, t, "orders"),
            "super user"
        );
        // Saved, reloaded, filtered and deleted.
        let again = Authorizer::open(&dir, config).unwrap();
        let by_bob = Filter {
            resource_type: resource::ANY,
            name: None,
            pattern: pattern::ANY,
            principal: Some("User:bob".into()),
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        };
        assert_eq!(again.describe(&by_bob).len(), 1);
        let matching = Filter {
            principal: None,
            name: Some("logs-x".into()),
            pattern: pattern::MATCH,
            ..by_bob.clone()
        };
        assert_eq!(again.describe(&matching).len(), 1);
        assert_eq!(again.delete(&[by_bob]).unwrap()[0].len(), 1);
        assert!(!again.allows("User:bob", "h", op::READ, t, "logs-app"));
        let open = Authorizer::open(
            &dir,
            AuthorizerConfig {
                enabled: true,
                super_users: vec![],
                allow_if_no_acl: true,
                ..AuthorizerConfig::default()
            },
        )
        .unwrap();
        assert!(
            open.allows("User:x", "h", op::READ, t, "unnamed"),
            "allow.everyone.if.no.acl.found"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
