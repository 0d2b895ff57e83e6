//! Who may connect, and as whom: listeners by Kafka's security protocol
//! (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), SASL authentication (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512) against salted, hashed credentials kept
//! in the data folder, OAUTHBEARER against a JSON Web Key Set, and ACLs
//! that say what each principal may do. TLS itself is gyre-reactor's
//! layer. Below the server, beside the log: plain data and functions.

pub mod acl;
pub mod credentials;
mod https_get;
pub mod jwt;
pub mod listener;
pub mod oauthbearer;
pub mod principal;
pub mod sasl;
pub mod scram;

pub use acl::{AclError, Authorizer, AuthorizerConfig};
pub use credentials::{CredentialError, CredentialStore};
pub use listener::{Listener, SecurityProtocol};
