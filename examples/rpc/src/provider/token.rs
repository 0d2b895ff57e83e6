//! A provider's token, as Dubbo's `token` setting: a provider that has one
//! publishes it through the registry and answers [`Status::Forbidden`]
//! to any call that does not carry it, so only consumers that found it
//! through the registry (or were given it) get in. Plain data.
//!
//! [`Status::Forbidden`]: crate::Status::Forbidden

use rand::Rng;

/// What token a provider requires (Dubbo's `token="true"` or
/// `token="<value>"`).
///
/// ```
/// use gyre_rpc::provider::{Provider, ProviderToken, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
///
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .token(ProviderToken::Random)
///     .service(Service::builder(ServiceKey::new("demo.Echo"))
///         .method("echo", |s: String| Ok::<_, ServiceError>(s))
///         .build())
///     .start()?;
/// // What the registry publishes, and every call must carry.
/// assert_eq!(provider.token().map(str::len), Some(32));
/// provider.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderToken {
    /// A random token made at start (Dubbo's `token="true"`): each
    /// provider process has its own, so only the registry can tell it.
    Random,
    /// This token (Dubbo's `token="<value>"`).
    Fixed(String),
}

impl ProviderToken {
    /// The token itself.
    pub(crate) fn resolve(self) -> String {
        match self {
            ProviderToken::Fixed(t) => t,
            ProviderToken::Random => {
                // ThreadRng: a ChaCha stream seeded from the OS, fit for secrets.
                let mut rng = rand::rng();
                (0..32)
                    .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("a hex digit"))
                    .collect()
            }
        }
    }
}
