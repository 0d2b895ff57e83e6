//! Typed service definitions: [`service!`](crate::service) declares a
//! service's methods once, with their argument and result types, and
//! generates the provider's trait and the consumer's client from it, so a
//! method name or a type that does not match is a compile error on both
//! sides (as tarpc's service traits and Dubbo's Java interfaces give).
//! Uses the consumer's and the cluster's untyped calls underneath, blocking
//! ([`Invoke`], the generated `Client`) or as futures ([`InvokeAsync`],
//! the generated `AsyncClient`).
//!
//! The wire format is the untyped one: a method's arguments travel as one
//! tuple (a 1-tuple for one argument, `()` for none), so a typed client can
//! call an untyped provider and the other way round.

use crate::cluster::Cluster;
use crate::consumer::{Connection, RpcError};
use crate::ServiceKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;

/// What a generated client calls through: one [`Connection`] (one
/// provider) or a [`Cluster`] (many, with its balancer and mode).
///
/// ```
/// use gyre_rpc::stub::Invoke;
/// use gyre_rpc::consumer::RpcError;
/// use gyre_rpc::ServiceKey;
///
/// /// An invoker for tests: every call answers 42.
/// struct Always42;
///
/// impl Invoke for Always42 {
///     fn invoke<Req, Resp>(&self, _: &ServiceKey, _: &str, _: &Req) -> Result<Resp, RpcError>
///     where
///         Req: serde::Serialize + ?Sized,
///         Resp: serde::de::DeserializeOwned,
///     {
///         serde_json::from_str("42").map_err(|e| RpcError::NoProvider(e.to_string()))
///     }
/// }
///
/// let n: u32 = Always42.invoke(&ServiceKey::new("any"), "thing", &()).unwrap();
/// assert_eq!(n, 42);
/// ```
pub trait Invoke {
    /// Calls `method` of `service` with `request` and waits for the result.
    ///
    /// # Errors
    /// Whatever the call ends in besides its result.
    fn invoke<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned;
}

impl Invoke for Connection {
    fn invoke<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call(service, method, request)
    }
}

impl Invoke for Cluster {
    /// The cluster's own service is called (a cluster is one service's
    /// providers); `service` is not sent anywhere else.
    fn invoke<Req, Resp>(
        &self,
        _: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call(method, request)
    }
}

/// A reference, an `Arc` or a `Box` to an invoker invokes through it.
impl<P> Invoke for P
where
    P: std::ops::Deref,
    P::Target: Invoke,
{
    fn invoke<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        (**self).invoke(service, method, request)
    }
}

/// What a generated `AsyncClient` calls through: one [`Connection`] or a
/// [`Cluster`], their calls as futures (sent as they are made, on any
/// executor, never blocking: fit for an event loop's thread).
///
/// ```
/// use gyre_rpc::stub::InvokeAsync;
/// use gyre_rpc::consumer::RpcError;
/// use gyre_rpc::ServiceKey;
/// use std::future::Future;
///
/// /// An invoker for tests: every call answers 42, at once.
/// struct Always42;
///
/// impl InvokeAsync for Always42 {
///     fn invoke_async<Req, Resp>(
///         &self,
///         _: &ServiceKey,
///         _: &str,
///         _: &Req,
///     ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static + use<Req, Resp>
///     where
///         Req: serde::Serialize + ?Sized,
///         Resp: serde::de::DeserializeOwned + Send + 'static,
///     {
///         std::future::ready(serde_json::from_str("42").map_err(|e| RpcError::NoProvider(e.to_string())))
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let n: u32 = rt.block_on(Always42.invoke_async(&ServiceKey::new("any"), "thing", &())).unwrap();
/// assert_eq!(n, 42);
/// ```
pub trait InvokeAsync {
    /// Sends a call of `method` of `service` with `request`; the future
    /// is its result.
    ///
    /// # Errors
    /// Whatever the call ends in besides its result.
    fn invoke_async<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static + use<Self, Req, Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + Send + 'static;
}

impl InvokeAsync for Connection {
    fn invoke_async<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static + use<Req, Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + Send + 'static,
    {
        self.call_async(service, method, request)
    }
}

impl InvokeAsync for Cluster {
    /// The cluster's own service is called, as [`Invoke`] does.
    fn invoke_async<Req, Resp>(
        &self,
        _: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static + use<Req, Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + Send + 'static,
    {
        self.call_async(method, request)
    }
}

/// A reference, an `Arc` or a `Box` to an invoker invokes through it.
impl<P> InvokeAsync for P
where
    P: std::ops::Deref,
    P::Target: InvokeAsync,
{
    fn invoke_async<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static + use<P, Req, Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + Send + 'static,
    {
        (**self).invoke_async(service, method, request)
    }
}

/// Declares a typed service: a module holding the provider's traits
/// (`Server`, and `AsyncServer`, whose methods return futures), the
/// consumer's clients (`Client`, blocking, and `AsyncClient`, whose methods
/// return futures), the service's name (`NAME`, `key()`), and
/// `service(..)` and `async_service(..)`, which export an implementation.
///
/// ```
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::provider::{Provider, ServiceError};
///
/// gyre_rpc::service! {
///     /// A calculator.
///     pub mod calc = "demo.Calc" {
///         /// `a + b`.
///         fn add(a: i64, b: i64) -> i64;
///         /// `a / b`; dividing by zero is a service error.
///         fn div(a: i64, b: i64) -> i64;
///         /// How many calls this provider has answered.
///         fn calls() -> u64;
///     }
/// }
///
/// #[derive(Default)]
/// struct Calc(std::sync::atomic::AtomicU64);
///
/// impl calc::Server for Calc {
///     fn add(&self, a: i64, b: i64) -> Result<i64, ServiceError> {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         Ok(a + b)
///     }
///     fn div(&self, a: i64, b: i64) -> Result<i64, ServiceError> {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         a.checked_div(b).ok_or_else(|| ServiceError::new("division by zero"))
///     }
///     fn calls(&self) -> Result<u64, ServiceError> {
///         Ok(self.0.load(std::sync::atomic::Ordering::Relaxed))
///     }
/// }
///
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(calc::service(calc::key().version("1.0"), Calc::default()).build())
///     .start()?;
/// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
/// let calc = calc::Client::new(conn).key(calc::key().version("1.0"));
/// assert_eq!(calc.add(2, 3)?, 5);
/// assert!(calc.div(1, 0).is_err());
/// assert_eq!(calc.calls()?, 2);
/// provider.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A method whose types do not match its declaration does not compile:
///
/// ```compile_fail,E0308
/// # use gyre_rpc::provider::ServiceError;
/// gyre_rpc::service! {
///     pub mod calc = "demo.Calc" {
///         fn add(a: i64, b: i64) -> i64;
///     }
/// }
/// # fn use_it(calc: &calc::Client<gyre_rpc::consumer::Connection>) {
/// let sum: String = calc.add(2, 3).unwrap(); // the result is an i64
/// # }
/// ```
///
/// The client calls through anything that implements [`Invoke`]: a
/// [`Connection`], a [`Cluster`], or a reference, `Arc` or `Box` to one;
/// its methods block. The `AsyncClient` calls through the same (any
/// [`InvokeAsync`]) and its methods return futures, each call sent as it
/// is made (a method's result type must then be `Send`):
///
/// ```
/// use gyre_rpc::cluster::Cluster;
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::provider::{Provider, ServiceError};
///
/// gyre_rpc::service! {
///     /// Squares.
///     pub mod squares = "demo.Squares" {
///         /// `n * n`.
///         fn square(n: u64) -> u64;
///     }
/// }
///
/// struct Squares;
///
/// impl squares::Server for Squares {
///     fn square(&self, n: u64) -> Result<u64, ServiceError> {
///         n.checked_mul(n).ok_or_else(|| ServiceError::new("too large"))
///     }
/// }
///
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(squares::service(squares::key(), Squares).build())
///     .start()?;
/// let cluster = Cluster::builder(squares::key()).build(Consumer::builder().build()?);
/// cluster.set_providers([(provider.local_addr(), 100)]);
/// let squares = squares::AsyncClient::new(cluster);
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let got = rt.block_on(async {
///     // Both calls are in flight before either is awaited.
///     let (a, b) = (squares.square(3), squares.square(u64::MAX));
///     (a.await, b.await)
/// });
/// assert_eq!(got.0?, 9);
/// assert!(got.1.is_err());
/// provider.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! service {
    (
        $(#[$meta:meta])*
        $vis:vis mod $module:ident = $name:literal {
            $(
                $(#[$method_meta:meta])*
                fn $method:ident ( $($arg:ident : $arg_ty:ty),* $(,)? ) -> $resp:ty ;
            )*
        }
    ) => {
        $(#[$meta])*
        $vis mod $module {
            #[allow(unused_imports)]
            use super::*;

            /// The service's interface name.
            pub const NAME: &str = $name;

            /// The service's key: its name, unversioned and ungrouped (add
            /// them with [`ServiceKey::version`]($crate::ServiceKey::version)
            /// and [`group`]($crate::ServiceKey::group)).
            pub fn key() -> $crate::ServiceKey {
                $crate::ServiceKey::new(NAME)
            }

            /// What a provider implements: one method per declared method,
            /// called with the arguments deserialized.
            pub trait Server: Send + Sync + 'static {
                $(
                    $(#[$method_meta])*
                    fn $method(&self $(, $arg: $arg_ty)*) -> ::std::result::Result<$resp, $crate::provider::ServiceError>;
                )*
            }

            /// `server`'s methods as a service with `key` (set its
            /// dispatch, then `build()` it for a provider).
            pub fn service(key: $crate::ServiceKey, server: impl Server) -> $crate::provider::ServiceBuilder {
                let server = ::std::sync::Arc::new(server);
                let builder = $crate::provider::Service::builder(key);
                $(
                    let builder = {
                        let server = server.clone();
                        builder.method(
                            stringify!($method),
                            move |($($arg,)*): ($($arg_ty,)*)| server.$method($($arg),*),
                        )
                    };
                )*
                let _ = server;
                builder
            }

            /// What a provider implements asynchronously: each method
            /// returns its result's future, run on the connection's event
            /// loop ([`ServiceBuilder::async_method`]($crate::provider::ServiceBuilder::async_method)),
            /// so it may await other calls without holding a thread, and
            /// must not block. `async fn` implements it.
            pub trait AsyncServer: Send + Sync + 'static {
                $(
                    $(#[$method_meta])*
                    fn $method(&self $(, $arg: $arg_ty)*) -> impl ::std::future::Future<
                        Output = ::std::result::Result<$resp, $crate::provider::ServiceError>,
                    > + Send;
                )*
            }

            /// `server`'s asynchronous methods as a service with `key`
            /// (`build()` it for a provider).
            pub fn async_service(key: $crate::ServiceKey, server: impl AsyncServer) -> $crate::provider::ServiceBuilder {
                let server = ::std::sync::Arc::new(server);
                let builder = $crate::provider::Service::builder(key);
                $(
                    let builder = {
                        let server = server.clone();
                        builder.async_method(
                            stringify!($method),
                            move |($($arg,)*): ($($arg_ty,)*)| {
                                let server = server.clone();
                                async move { server.$method($($arg),*).await }
                            },
                        )
                    };
                )*
                let _ = server;
                builder
            }

            $crate::service! {
                @client
                /// Calls the service through a [`Connection`]($crate::consumer::Connection)
                /// or a [`Cluster`]($crate::cluster::Cluster).
                Client: $crate::stub::Invoke
            }

            impl<C: $crate::stub::Invoke> Client<C> {
                $(
                    $(#[$method_meta])*
                    pub fn $method(&self $(, $arg: $arg_ty)*) -> ::std::result::Result<$resp, $crate::consumer::RpcError> {
                        $crate::stub::Invoke::invoke(
                            &self.invoker,
                            &self.key,
                            stringify!($method),
                            &($($arg,)*),
                        )
                    }
                )*
            }

            $crate::service! {
                @client
                /// Calls the service through a [`Connection`]($crate::consumer::Connection)
                /// or a [`Cluster`]($crate::cluster::Cluster), each method
                /// returning its call's future (the call sent as it is made).
                AsyncClient: $crate::stub::InvokeAsync
            }

            impl<C: $crate::stub::InvokeAsync> AsyncClient<C> {
                $(
                    $(#[$method_meta])*
                    pub fn $method(&self $(, $arg: $arg_ty)*) -> impl ::std::future::Future<
                        Output = ::std::result::Result<$resp, $crate::consumer::RpcError>,
                    > + Send + 'static {
                        $crate::stub::InvokeAsync::invoke_async(
                            &self.invoker,
                            &self.key,
                            stringify!($method),
                            &($($arg,)*),
                        )
                    }
                )*
            }
        }
    };
    // A client type: what it calls through, the key, and the methods every
    // client has (the caller adds the service's methods).
    (
        @client
        $(#[$doc:meta])*
        $client:ident: $invoke:path
    ) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $client<C> {
            invoker: C,
            key: $crate::ServiceKey,
        }

        impl<C: $invoke> $client<C> {
            /// A client of the service under [`key()`] through `invoker`.
            pub fn new(invoker: C) -> Self {
                $client { invoker, key: key() }
            }

            /// The same client calling the service under `key` (a
            /// version or group).
            pub fn key(mut self, key: $crate::ServiceKey) -> Self {
                self.key = key;
                self
            }

            /// What the client calls through.
            pub fn invoker(&self) -> &C {
                &self.invoker
            }
        }
    };
}
