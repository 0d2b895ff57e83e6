//! The ZooKeeper registry backend, on the `zookeeper-client` crate.
//!
//! Layout, as Dubbo's: a provider is an ephemeral node
//! `/gyre/<service>/providers/<host:port>` whose data is its weight (and,
//! on a second line, `token=<token>` for a provider that requires one), so a
//! provider whose process dies disappears when its ZooKeeper session
//! expires (the session timeout, default 4 s); `<service>` is the
//! [`ServiceKey`]'s display form with `%` and `/` escaped. Consumers watch
//! the children of `providers` and re-read the list at every change.
//!
//! The client runs on a one-thread tokio runtime of its own. When the
//! session expires (a long partition), a supervisor opens a new one and
//! creates this process's provider nodes again; watches resume on the new
//! session.

use super::contract::{
    Listener, ProviderEntry, ProviderList, Registry, RegistryError, Subscription,
};
use crate::ServiceKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zookeeper_client as zk;

/// Escapes a service key for one path segment.
fn segment(service: &ServiceKey) -> String {
    service.to_string().replace('%', "%25").replace('/', "%2F")
}

fn providers_path(service: &ServiceKey) -> String {
    format!("/gyre/{}/providers", segment(service))
}

fn zk_error(e: zk::Error) -> RegistryError {
    RegistryError::Thread(std::io::Error::other(format!("zookeeper: {e}")))
}

struct Shared {
    servers: String,
    session_timeout: Duration,
    /// `user:password` for ZooKeeper's digest scheme, given at every
    /// session's start.
    digest: Option<Vec<u8>>,
    client: Mutex<zk::Client>,
    /// Provider nodes this process owns: path -> data.
    owned: Mutex<HashMap<String, Vec<u8>>>,
}

impl Shared {
    /// The ACLs of the nodes this registry creates: with digest
    /// authentication, only sessions with the same credentials may read
    /// or change them; without, anyone may.
    fn acls(&self) -> zk::Acls<'static> {
        if self.digest.is_some() {
            zk::Acls::creator_all()
        } else {
            zk::Acls::anyone_all()
        }
    }

    fn client(&self) -> zk::Client {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn create_owned(
        &self,
        client: &zk::Client,
        path: &str,
        data: &[u8],
    ) -> Result<(), zk::Error> {
        let parent = &path[..path.rfind('/').expect("absolute path")];
        client
            .mkdir(parent, &zk::CreateMode::Persistent.with_acls(self.acls()))
            .await?;
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(self.acls());
        match client.create(path, data, &ephemeral).await {
            Ok(_) => Ok(()),
            // Ours from this session already (a repeated register), or a
            // leftover of an expired one that ZooKeeper has not removed
            // yet: replace it so it belongs to this session.
            Err(zk::Error::NodeExists) => {
                let _ = client.delete(path, None).await;
                client.create(path, data, &ephemeral).await.map(drop)
            }
            Err(e) => Err(e),
        }
    }
}

async fn connect(
    servers: &str,
    session_timeout: Duration,
    digest: Option<&[u8]>,
) -> Result<zk::Client, zk::Error> {
    let mut connector = zk::Client::connector().with_session_timeout(session_timeout);
    if let Some(digest) = digest {
        connector = connector.with_auth("digest", digest);
    }
    connector.connect(servers).await
}

/// A registry on a ZooKeeper ensemble.
///
/// ```no_run
/// use gyre_rpc::cluster::Cluster;
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::registry::ZooKeeperRegistry;
/// use gyre_rpc::ServiceKey;
///
/// // An ensemble of three (feature `zookeeper`).
/// let registry = ZooKeeperRegistry::connect("zk1:2181,zk2:2181,zk3:2181")?;
/// let cluster = Cluster::builder(ServiceKey::new("demo.Calc")).build(Consumer::builder().build()?);
/// let _subscription = cluster.subscribe(&registry)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ZooKeeperRegistry {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for ZooKeeperRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZooKeeperRegistry")
            .field("servers", &self.shared.servers)
            .finish()
    }
}

impl ZooKeeperRegistry {
    /// Connects to `servers` (`host:port[,host:port...]`) with a 4 s
    /// session timeout.
    pub fn connect(servers: &str) -> Result<ZooKeeperRegistry, RegistryError> {
        ZooKeeperRegistry::connect_with(servers, Duration::from_secs(4))
    }

    /// Connects with `session_timeout`: how long a dead provider stays
    /// listed.
    pub fn connect_with(
        servers: &str,
        session_timeout: Duration,
    ) -> Result<ZooKeeperRegistry, RegistryError> {
        Self::connect_digest(servers, session_timeout, None)
    }

    /// Connects with ZooKeeper's digest authentication as `user` with
    /// `password` (Dubbo's `zookeeper://...?username=&password=`): the
    /// nodes this registry creates can then be read and changed only by
    /// sessions with the same credentials, so a consumer or provider
    /// without them sees no providers and cannot register.
    ///
    /// ```no_run
    /// use gyre_rpc::registry::ZooKeeperRegistry;
    ///
    /// let registry = ZooKeeperRegistry::connect_with_digest("zk1:2181", "rpc", "s3cret")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_with_digest(
        servers: &str,
        user: &str,
        password: &str,
    ) -> Result<ZooKeeperRegistry, RegistryError> {
        let digest = format!("{user}:{password}").into_bytes();
        Self::connect_digest(servers, Duration::from_secs(4), Some(digest))
    }

    fn connect_digest(
        servers: &str,
        session_timeout: Duration,
        digest: Option<Vec<u8>>,
    ) -> Result<ZooKeeperRegistry, RegistryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gyre-zookeeper")
            .enable_all()
            .build()?;
        let client = runtime
            .block_on(connect(servers, session_timeout, digest.as_deref()))
            .map_err(zk_error)?;
        let shared = Arc::new(Shared {
            servers: servers.to_string(),
            session_timeout,
            digest,
            client: Mutex::new(client),
            owned: Mutex::new(HashMap::new()),
        });
        runtime.spawn(supervise(Arc::downgrade(&shared)));
        Ok(ZooKeeperRegistry { shared, runtime })
    }
}

/// Opens a new session when the current one ends, and puts this process's
/// provider nodes back.
async fn supervise(shared: std::sync::Weak<Shared>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        let mut states = s.client().state_watcher();
        drop(s);
        loop {
            let state = states.changed().await;
            if state.is_terminated() {
                break;
            }
        }
        let Some(s) = shared.upgrade() else { return };
        tracing::warn!(servers = %s.servers, "zookeeper session ended; opening a new one");
        let client = loop {
            match connect(&s.servers, s.session_timeout, s.digest.as_deref()).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "zookeeper reconnect failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        *s.client.lock().unwrap_or_else(|e| e.into_inner()) = client.clone();
        let owned: Vec<(String, Vec<u8>)> = s
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect();
        for (path, data) in owned {
            if let Err(e) = s.create_owned(&client, &path, &data).await {
                tracing::error!(%path, error = %e, "cannot re-register after a new session");
            }
        }
    }
}

impl Registry for ZooKeeperRegistry {
    fn register(
        &self,
        service: &ServiceKey,
        provider: &ProviderEntry,
    ) -> Result<(), RegistryError> {
        let path = format!("{}/{}", providers_path(service), provider.addr);
        let data = node_data(provider);
        let client = self.shared.client();
        self.runtime
            .block_on(self.shared.create_owned(&client, &path, &data))
            .map_err(zk_error)?;
        self.shared
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, data);
        Ok(())
    }

    fn unregister(&self, service: &ServiceKey, addr: SocketAddr) -> Result<(), RegistryError> {
        let path = format!("{}/{addr}", providers_path(service));
        self.shared
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&path);
        let client = self.shared.client();
        match self.runtime.block_on(client.delete(&path, None)) {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(zk_error(e)),
        }
    }

    fn subscribe(
        &self,
        service: &ServiceKey,
        listener: Listener,
    ) -> Result<Subscription, RegistryError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let shared = self.shared.clone();
        let path = providers_path(service);
        let task = self.runtime.spawn(async move {
            let mut last: Option<ProviderList> = None;
            while !flag.load(Ordering::Relaxed) {
                let client = shared.client();
                match read_and_watch(&client, &path, shared.acls()).await {
                    Ok((list, watcher)) => {
                        if last.as_ref() != Some(&list) {
                            last = Some(list.clone());
                            listener(list);
                        }
                        watcher.changed().await;
                    }
                    Err(e) => {
                        tracing::debug!(%path, error = %e, "zookeeper watch failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(Subscription::new(move || {
            stop.store(true, Ordering::Relaxed);
            task.abort();
        }))
    }
}

/// A provider node's data: its weight, then its token on a line of its own.
fn node_data(provider: &ProviderEntry) -> Vec<u8> {
    match &provider.token {
        Some(token) => format!("{}\ntoken={token}", provider.weight).into_bytes(),
        None => provider.weight.to_string().into_bytes(),
    }
}

/// Reads [`node_data`] (a weight that does not parse counts as 100).
fn parse_node(addr: SocketAddr, data: &[u8]) -> ProviderEntry {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let weight = lines
        .next()
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(100);
    let token = lines.find_map(|l| l.strip_prefix("token=").map(str::to_owned));
    ProviderEntry {
        addr,
        weight,
        token,
    }
}

/// The provider list under `path` (created if missing) and a watch on it.
async fn read_and_watch(
    client: &zk::Client,
    path: &str,
    acls: zk::Acls<'static>,
) -> Result<(ProviderList, zk::OneshotWatcher), zk::Error> {
    client
        .mkdir(path, &zk::CreateMode::Persistent.with_acls(acls))
        .await?;
    let (children, _, watcher) = client.get_and_watch_children(path).await?;
    let mut list = Vec::with_capacity(children.len());
    for child in children {
        let Ok(addr) = child.parse::<SocketAddr>() else {
            continue;
        };
        let entry = match client.get_data(&format!("{path}/{child}")).await {
            Ok((data, _)) => parse_node(addr, &data),
            // Gone between the listing and the read: the watch will fire.
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e),
        };
        list.push(entry);
    }
    list.sort();
    Ok((list, watcher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_are_one_path_segment() {
        let key = ServiceKey::new("demo.Calc")
            .version("1.0")
            .group("blue/green");
        assert_eq!(
            providers_path(&key),
            "/gyre/blue%2Fgreen%2Fdemo.Calc:1.0/providers"
        );
        assert_eq!(segment(&ServiceKey::new("a%b")), "a%25b");
    }

    #[test]
    fn node_data_round_trips_with_and_without_a_token() {
        let addr = "127.0.0.1:20880".parse().unwrap();
        let plain = ProviderEntry::new(addr, 7);
        let guarded = ProviderEntry {
            token: Some("t0k".into()),
            ..plain.clone()
        };
        assert_eq!(parse_node(addr, &node_data(&plain)), plain);
        assert_eq!(parse_node(addr, &node_data(&guarded)), guarded);
        assert_eq!(parse_node(addr, b"junk").weight, 100);
    }
}
