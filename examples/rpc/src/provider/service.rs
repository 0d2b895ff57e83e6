//! Services as a provider exposes them: a key, typed methods behind one
//! erased signature, and where their calls run.

use super::method::{Body, DeferredMethod, Failure, Method, MethodEntry, ServiceError};
use super::responder::Responder;
use crate::protocol::{ServiceKey, Status};
use gyre_reactor::EventLoop;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// Where a service's calls run.
///
/// ```
/// use gyre_rpc::provider::{Dispatch, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
///
/// // Quick, never-blocking methods on the event loop...
/// let fast = Service::builder(ServiceKey::new("demo.Math"))
///     .dispatch(Dispatch::IoThread)
///     .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
///     .build();
/// // ...and blocking ones on the worker pool (the default).
/// let slow = Service::builder(ServiceKey::new("demo.Files"))
///     .dispatch(Dispatch::WorkerPool)
///     .method("size", |path: String| {
///         std::fs::metadata(path).map(|m| m.len()).map_err(|e| ServiceError::new(e.to_string()))
///     })
///     .build();
/// assert_eq!(fast.dispatch(), Dispatch::IoThread);
/// assert_eq!(slow.dispatch(), Dispatch::WorkerPool);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dispatch {
    /// On the connection's event loop, as soon as the request is decoded:
    /// the fastest path for methods that never block (Dubbo's `direct`).
    IoThread,
    /// On the provider's worker pool, handed over through a gyre ring
    /// buffer: for methods that block or take long (Dubbo's `all` with a
    /// fixed pool). When the ring is full the call is refused with
    /// [`Status::ServerOverloaded`].
    #[default]
    WorkerPool,
}

/// A service ready to export: made with [`Service::builder`], exported
/// by a provider.
///
/// ```
/// use gyre_rpc::provider::{Provider, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
///
/// let calc = Service::builder(ServiceKey::new("demo.Calc"))
///     .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
///     .build();
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(calc)
///     .start()?;
/// provider.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Service {
    pub(crate) key: ServiceKey,
    pub(crate) methods: HashMap<String, Arc<MethodEntry>>,
    pub(crate) dispatch: Dispatch,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.methods.keys().collect();
        names.sort();
        f.debug_struct("Service")
            .field("key", &self.key)
            .field("methods", &names)
            .field("dispatch", &self.dispatch)
            .finish()
    }
}

impl Service {
    /// Starts describing the service `key`.
    ///
    /// ```
    /// use gyre_rpc::provider::{Dispatch, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// let greeter = Service::builder(ServiceKey::new("demo.Greeter").version("1.0"))
    ///     .dispatch(Dispatch::IoThread)
    ///     .method("greet", |name: String| Ok::<_, ServiceError>(format!("hello, {name}")))
    ///     .method("fail", |_: ()| Err::<(), _>(ServiceError::new("always")))
    ///     .build();
    /// assert_eq!(greeter.key().to_string(), "demo.Greeter:1.0");
    /// ```
    pub fn builder(key: ServiceKey) -> ServiceBuilder {
        ServiceBuilder {
            service: Service {
                key,
                methods: HashMap::new(),
                dispatch: Dispatch::default(),
            },
        }
    }

    /// The service's key.
    pub fn key(&self) -> &ServiceKey {
        &self.key
    }

    /// Where its calls run.
    pub fn dispatch(&self) -> Dispatch {
        self.dispatch
    }
}

/// Builds a [`Service`].
///
/// ```
/// use gyre_rpc::provider::{Responder, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
///
/// let svc = Service::builder(ServiceKey::new("demo.Kv").version("2").group("eu"))
///     .method("get", |key: String| Ok::<_, ServiceError>(key.len() as u64))
///     .deferred_method("slow_get", |key: String, answer: Responder<u64>| {
///         std::thread::spawn(move || answer.send(Ok(key.len() as u64)));
///     })
///     .build();
/// assert_eq!(svc.key().to_string(), "eu/demo.Kv:2");
/// ```
pub struct ServiceBuilder {
    service: Service,
}

impl std::fmt::Debug for ServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBuilder")
            .field("service", &self.service)
            .finish()
    }
}

impl ServiceBuilder {
    /// Where the service's calls run (default [`Dispatch::WorkerPool`]).
    pub fn dispatch(mut self, dispatch: Dispatch) -> Self {
        self.service.dispatch = dispatch;
        self
    }

    /// Adds method `name`: `f` takes the deserialized request and returns
    /// the response or a [`ServiceError`]. Several arguments travel as one
    /// tuple. A second method of the same name replaces the first.
    pub fn method<Req, Resp, F>(self, name: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Fn(Req) -> Result<Resp, ServiceError> + Send + Sync + 'static,
    {
        let method: Box<Method> = Box::new(move |serialization, args, out| {
            let request: Req = serialization.deserialize(args).map_err(|e| Failure {
                status: Status::BadRequest,
                message: e.to_string(),
            })?;
            // A panicking method must not take the event loop or a pool
            // worker with it: it answers ServerError.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(request)))
                .map_err(|panic| Failure {
                    status: Status::ServerError,
                    message: format!(
                        "method panicked: {}",
                        gyre_ringbuffer::panic_message(&*panic)
                    ),
                })?;
            let response = outcome.map_err(|e| Failure {
                status: Status::ServiceError,
                message: e.0,
            })?;
            serialization
                .serialize(&response, out)
                .map_err(|e| Failure {
                    status: Status::ServerError,
                    message: e.to_string(),
                })
        });
        self.add(name.into(), Body::Now(method), false)
    }

    /// Adds method `name` that answers later: `f` takes the deserialized
    /// request and a [`Responder`], and returns at once; the responder is
    /// sent from any thread when the result is ready (a callback, another
    /// service's answer, a future's completion). The loop or pool worker
    /// that called `f` goes on with other calls meanwhile. A provider's
    /// graceful shutdown waits for unsent responders (up to its timeout).
    pub fn deferred_method<Req, Resp, F>(self, name: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Fn(Req, Responder<Resp>) + Send + Sync + 'static,
    {
        self.add_deferred(name.into(), f, false)
    }

    /// A deferred method, on the event loop whatever the dispatch if
    /// `on_loop`.
    fn add_deferred<Req, Resp, F>(self, name: String, f: F, on_loop: bool) -> Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Fn(Req, Responder<Resp>) + Send + Sync + 'static,
    {
        let method: Box<DeferredMethod> = Box::new(move |serialization, args, pending| {
            let request: Req = serialization.deserialize(args).map_err(|e| Failure {
                status: Status::BadRequest,
                message: e.to_string(),
            })?;
            let Some(pending) = pending.take() else {
                return Ok(());
            };
            // A panic drops the responder, which answers ServerError.
            let call = std::panic::AssertUnwindSafe(|| f(request, Responder::new(pending)));
            if let Err(panic) = std::panic::catch_unwind(call) {
                tracing::warn!(
                    panic = gyre_ringbuffer::panic_message(&*panic),
                    "deferred method panicked"
                );
            }
            Ok(())
        });
        self.add(name, Body::Later(method), on_loop)
    }

    /// Adds method `name` whose result comes from a future, as a tarpc
    /// server's methods and Dubbo's `CompletableFuture` methods do: `f`
    /// takes the deserialized request and returns the future, which runs
    /// on the connection's event loop whatever the service's dispatch
    /// ([`EventLoop::spawn`](gyre_reactor::EventLoop::spawn)). It may
    /// await other calls (a cluster's or a connection's `call_async`, a
    /// promise) without holding any thread while it waits; it must not
    /// block, since it holds the loop's connections while it is polled. A
    /// future that panics answers `ServerError`. One ready at its first
    /// poll (made as the call is read) answers as a plain method does,
    /// with the read's other answers; one that waits answers through the
    /// connection's handle when it is done.
    ///
    /// ```
    /// use gyre_rpc::cluster::Cluster;
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    /// use std::sync::Arc;
    ///
    /// // A pricing service...
    /// let prices = ServiceKey::new("demo.Prices");
    /// let backend = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .service(Service::builder(prices.clone())
    ///         .method("price", |item: String| Ok::<_, ServiceError>(item.len() as u64 * 100))
    ///         .build())
    ///     .start()?;
    /// let pricing = Arc::new(Cluster::builder(prices).build(Consumer::builder().build()?));
    /// pricing.set_providers([(backend.local_addr(), 100)]);
    ///
    /// // ...called by a basket service's method while it waits on nothing.
    /// let basket = ServiceKey::new("demo.Basket");
    /// let front = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .service(Service::builder(basket.clone())
    ///         .async_method("total", move |items: Vec<String>| {
    ///             let calls: Vec<_> =
    ///                 items.iter().map(|i| pricing.call_async::<_, u64>("price", i)).collect();
    ///             async move {
    ///                 let mut total = 0;
    ///                 for call in calls {
    ///                     total += call.await.map_err(|e| ServiceError::new(e.to_string()))?;
    ///                 }
    ///                 Ok::<_, ServiceError>(total)
    ///             }
    ///         })
    ///         .build())
    ///     .start()?;
    /// let conn = Consumer::builder().build()?.connect(front.local_addr())?;
    /// let total: u64 = conn.call(&basket, "total", &vec!["tea".to_owned(), "milk".to_owned()])?;
    /// assert_eq!(total, 700);
    /// # front.shutdown(std::time::Duration::from_secs(1));
    /// # backend.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn async_method<Req, Resp, F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned,
        Resp: Serialize + Send + 'static,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, ServiceError>> + Send + 'static,
    {
        let service = self.service.key.name.clone();
        let run = move |request: Req, answer: Responder<Resp>| {
            let result = f(request);
            let call = async move { answer.send(result.await) };
            // The route puts every call of this method on its loop, which
            // polls the future first right here: one whose answer is at
            // hand answers at once. A loop that is stopping drops the
            // call's future, and with it the responder, which answers
            // ServerError.
            match EventLoop::current() {
                Some(lp) => {
                    if let Err(e) = lp.spawn_eager(call) {
                        tracing::warn!(%service, error = %e, "cannot run an asynchronous method");
                    }
                }
                None => unreachable!("asynchronous methods are routed to the event loop"),
            }
        };
        self.add_deferred(name.into(), run, true)
    }

    fn add(mut self, name: String, body: Body, on_loop: bool) -> Self {
        let entry = MethodEntry {
            service: self.service.key.name.clone(),
            name: name.clone(),
            body,
            on_loop,
        };
        self.service.methods.insert(name, Arc::new(entry));
        self
    }

    /// The finished service.
    pub fn build(self) -> Service {
        self.service
    }
}

/// The services a provider exports, found by the three coordinates.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    by_name: HashMap<String, Vec<Arc<Service>>>,
}

impl Exports {
    pub(crate) fn add(&mut self, service: Service) {
        let list = self.by_name.entry(service.key.name.clone()).or_default();
        list.retain(|s| s.key != service.key);
        list.push(Arc::new(service));
    }

    /// The service named by the request's coordinates, without allocating:
    /// what a call that has no route is told (calls find their methods
    /// through the routing table).
    pub(crate) fn find(&self, name: &str, version: &str, group: &str) -> Option<&Arc<Service>> {
        self.by_name
            .get(name)?
            .iter()
            .find(|s| s.key.version == version && s.key.group == group)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services().map(|s| &s.key)
    }

    /// Every service exported.
    pub(crate) fn services(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.by_name.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Serialization;
    use bytes::BytesMut;

    fn now(entry: &MethodEntry) -> &Method {
        match &entry.body {
            Body::Now(m) => m,
            Body::Later(_) => panic!("an answer-now method"),
        }
    }

    #[test]
    fn methods_answer_ok_service_error_and_bad_request() {
        let svc = Service::builder(ServiceKey::new("s"))
            .method("add", |(a, b): (i32, i32)| Ok::<_, ServiceError>(a + b))
            .method("no", |_: ()| Err::<(), _>(ServiceError::new("nope")))
            .method("boom", |_: ()| -> Result<(), ServiceError> {
                panic!("boom")
            })
            .build();
        let mut exports = Exports::default();
        exports.add(svc);
        let s = exports.find("s", "", "").unwrap();
        let ser = Serialization::Json;
        let mut out = BytesMut::new();
        now(s.methods.get("add").unwrap())(ser, b"[2,3]", &mut out).unwrap();
        assert_eq!(&out[..], b"5");
        let e = now(s.methods.get("no").unwrap())(ser, b"null", &mut out).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (Status::ServiceError, "nope")
        );
        let e = now(s.methods.get("add").unwrap())(ser, b"[2", &mut out).unwrap_err();
        assert_eq!(e.status, Status::BadRequest);
        let e = now(s.methods.get("boom").unwrap())(ser, b"null", &mut out).unwrap_err();
        assert_eq!(e.status, Status::ServerError);
        assert_eq!(e.message, "method panicked: boom");
        assert!(!s.methods.contains_key("missing"));
        assert!(exports.find("s", "2.0", "").is_none());
    }
}
