//! The users a SASL listener knows: for each user and SCRAM mechanism a
//! salted, hashed [`Credential`], never a password, kept in
//! `<data>/security/credentials` (one line per user and mechanism, written
//! whole to a temporary file and renamed over the old one, so a crash
//! leaves the old file or the new, never half of one). Read by the event
//! loops during authentication, changed by the `users` subcommand and
//! AlterUserScramCredentials (a lock taken per authentication step, not
//! per request). Uses the SCRAM module beside it.

use super::scram::{Credential, Mechanism};
use crate::folder_sync::{self, Durability};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// Iterations for credentials made here (Kafka's default for
/// kafka-configs is 4096; more costs each login more).
pub const DEFAULT_ITERATIONS: u32 = 8192;

/// Why a credential change failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the file is not a credential.
    #[error("{}, line {line}: not a credential", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
    },
    /// A user name that cannot be stored (empty, or with a tab or a line
    /// break).
    #[error("invalid user name {0:?}")]
    Name(String),
    /// Fewer iterations than Kafka accepts.
    #[error("{0} iterations: at least 4096")]
    Iterations(u32),
}

/// The users and their credentials.
#[derive(Debug)]
pub struct CredentialStore {
    path: PathBuf,
    /// Read by authentications, on the loops; written only to swap in a
    /// change already saved.
    users: RwLock<Users>,
    /// Held by a change for its file's write and sync (one change at a
    /// time), so no authentication waits on the disk behind it.
    saving: Mutex<()>,
}

/// Each user's credentials, by mechanism.
type Users = BTreeMap<String, BTreeMap<Mechanism, Credential>>;

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['\t', '\n', '\r'])
}

impl CredentialStore {
    /// Where a data folder keeps its credentials.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("security").join("credentials")
    }

    /// Loads the data folder's credentials (none if the file is missing).
    ///
    /// # Errors
    /// The file exists and cannot be read, or a line is damaged.
    pub fn open(data_dir: &Path) -> Result<CredentialStore, CredentialError> {
        let path = Self::path_in(data_dir);
        let mut users = Users::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let fields: Vec<&str> = line.split('\t').collect();
                    let parsed = fields
                        .split_first()
                        .and_then(|(name, rest)| Some((*name, Credential::from_fields(rest)?)));
                    let Some((name, credential)) = parsed else {
                        return Err(CredentialError::Corrupt { path, line: i + 1 });
                    };
                    users
                        .entry(name.to_owned())
                        .or_default()
                        .insert(credential.mechanism, credential);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(CredentialError::Io { path, source }),
        }
        Ok(CredentialStore {
            path,
            users: RwLock::new(users),
            saving: Mutex::new(()),
        })
    }

    /// `user`'s credential for `mechanism`.
    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<Credential> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(user)?.get(&mechanism).cloned()
    }

    /// Whether `password` is `user`'s (SASL/PLAIN): checked against the
    /// user's SCRAM-SHA-256 credential, or SCRAM-SHA-512 without one.
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        let credential = {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            users.get(user).and_then(|m| m.values().next().cloned())
        };
        credential.is_some_and(|c| c.verify_password(password))
    }

    /// Every user, with the mechanisms and iterations each has.
    pub fn list(&self) -> Vec<(String, Vec<(Mechanism, u32)>)> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .iter()
            .map(|(name, creds)| {
                let mechs = creds
                    .values()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect();
                (name.clone(), mechs)
            })
            .collect()
    }

    /// Sets `user`'s credential for its mechanism, and saves.
    ///
    /// # Errors
    /// An invalid name or iteration count; the file could not be written.
    pub fn set(&self, user: &str, credential: Credential) -> Result<(), CredentialError> {
        if !valid_name(user) {
            return Err(CredentialError::Name(user.to_owned()));
        }
        if credential.iterations < Mechanism::MIN_ITERATIONS {
            return Err(CredentialError::Iterations(credential.iterations));
        }
        self.change(|users| {
            users
                .entry(user.to_owned())
                .or_default()
                .insert(credential.mechanism, credential);
            true
        })
        .map(|_| ())
    }

    /// Removes `user`'s credential for `mechanism` (every mechanism with
    /// `None`), and saves; false if there was none.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn remove(
        &self,
        user: &str,
        mechanism: Option<Mechanism>,
    ) -> Result<bool, CredentialError> {
        self.change(|users| match (users.get_mut(user), mechanism) {
            (None, _) => false,
            (Some(_), None) => users.remove(user).is_some(),
            (Some(creds), Some(m)) => {
                let removed = creds.remove(&m).is_some();
                if creds.is_empty() {
                    users.remove(user);
                }
                removed
            }
        })
    }

    /// Applies `edit` to a copy of the users and, if it changed anything
    /// (it says so), saves the copy and only then swaps it in: the
    /// authentications' lock is held for the swap alone, never across the
    /// file's write and sync, and a change that could not be saved is not
    /// applied.
    fn change(&self, edit: impl FnOnce(&mut Users) -> bool) -> Result<bool, CredentialError> {
        let _one_at_a_time = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.users.read().unwrap_or_else(|e| e.into_inner()).clone();
        if !edit(&mut next) {
            return Ok(false);
        }
        self.save(&next)?;
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(true)
    }

    fn save(&self, users: &Users) -> Result<(), CredentialError> {
        let io = |source| CredentialError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().expect("inside the data folder");
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut text = String::from("# gyre-broker SCRAM credentials: user, mechanism, iterations, salt, stored key, server key\n");
        for (name, creds) in users {
            for c in creds.values() {
                text.push_str(name);
                text.push('\t');
                text.push_str(&c.to_fields());
                text.push('\n');
            }
        }
        // Durable, else a power loss could bring back a removed user or
        // an old password.
        folder_sync::replace(&self.path, text.as_bytes(), Durability::Durable).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change that cannot be saved (the data folder's `security` is a
    /// file) fails and changes nothing: before, the new password worked
    /// while the client was told the change failed.
    #[test]
    fn a_change_that_cannot_be_saved_is_not_applied() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-creds-unsaved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CredentialStore::open(&dir).unwrap();
        let alice = || Credential::new(Mechanism::Sha256, "wonderland", 4096);
        store.set("alice", alice()).unwrap();
        std::fs::remove_dir_all(dir.join("security")).unwrap();
        std::fs::write(dir.join("security"), b"not a folder").unwrap();
        let other = Credential::new(Mechanism::Sha256, "looking-glass", 4096);
        assert!(store.set("alice", other).is_err());
        assert!(store.verify_password("alice", "wonderland"));
        assert!(!store.verify_password("alice", "looking-glass"));
        assert!(store.remove("alice", None).is_err());
        assert!(store.verify_password("alice", "wonderland"), "not removed");
        assert!(!store.remove("nobody", None).unwrap(), "nothing to save");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn credentials_persist_hashed_and_verify() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CredentialStore::open(&dir).unwrap();
        folder_sync::record::take();
        store
            .set(
                "alice",
                Credential::new(Mechanism::Sha256, "wonderland", 4096),
            )
            .unwrap();
        let security = CredentialStore::path_in(&dir).parent().unwrap().to_owned();
        assert_eq!(
            folder_sync::record::take(),
            [security],
            "the rename is made durable"
        );
        store
            .set(
                "alice",
                Credential::new(Mechanism::Sha512, "wonderland", 4096),
            )
            .unwrap();
        assert!(matches!(
            store.set("bad\tname", Credential::new(Mechanism::Sha256, "x", 4096)),
            Err(CredentialError::Name(_))
        ));
        let again = CredentialStore::open(&dir).unwrap();
        assert!(again.verify_password("alice", "wonderland"));
        assert!(!again.verify_password("alice", "Wonderland"));
        assert!(!again.verify_password("bob", "wonderland"));
        let file = std::fs::read_to_string(CredentialStore::path_in(&dir)).unwrap();
        assert!(!file.contains("wonderland"), "no password in the file");
        assert_eq!(again.list()[0].1.len(), 2);
        assert!(again.remove("alice", Some(Mechanism::Sha512)).unwrap());
        assert!(again.remove("alice", None).unwrap());
        assert!(CredentialStore::open(&dir).unwrap().list().is_empty());
        std::fs::write(CredentialStore::path_in(&dir), "alice\tjunk\n").unwrap();
        assert!(matches!(
            CredentialStore::open(&dir),
            Err(CredentialError::Corrupt { line: 1, .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
