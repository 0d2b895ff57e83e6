//! The ZooKeeper registry backend, on the `zookeeper-client` crate.
//!
//! Layout, as Dubbo's: a provider is an ephemeral node
//! `/gyre/<service>/providers/<host:port>` whose data is its weight, so a
//! provider whose process dies disappears when its ZooKeeper session
//! expires (the session timeout, default 4 s); `<service>` is the
//! [`ServiceKey`]'s display form with `%` and `/` escaped. Consumers watch
//! the children of `providers` and re-read the list at every change.
//!
//! The client runs on a one-thread tokio runtime of its own. When the
//! session expires (a long partition), a supervisor opens a new one and
//! creates this process's provider nodes again; watches resume on the new
//! session.

use super::contract::{Listener, ProviderList, Registry, RegistryError, Subscription};
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
    client: Mutex<zk::Client>,
    /// Provider nodes this process owns: path -> weight.
    owned: Mutex<HashMap<String, u32>>,
}

impl Shared {
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
        weight: u32,
    ) -> Result<(), zk::Error> {
        let parent = &path[..path.rfind('/').expect("absolute path")];
        client
            .mkdir(
                parent,
                &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
            )
            .await?;
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        match client
            .create(path, weight.to_string().as_bytes(), &ephemeral)
            .await
        {
            Ok(_) => Ok(()),
            // Ours from this session already (a repeated register), or a
            // leftover of an expired one that ZooKeeper has not removed
            // yet: replace it so it belongs to this session.
            Err(zk::Error::NodeExists) => {
                let _ = client.delete(path, None).await;
                client
                    .create(path, weight.to_string().as_bytes(), &ephemeral)
                    .await
                    .map(drop)
            }
            Err(e) => Err(e),
        }
    }
}

async fn connect(servers: &str, session_timeout: Duration) -> Result<zk::Client, zk::Error> {
    zk::Client::connector()
        .with_session_timeout(session_timeout)
        .connect(servers)
        .await
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gyre-zookeeper")
            .enable_all()
            .build()?;
        let client = runtime
            .block_on(connect(servers, session_timeout))
            .map_err(zk_error)?;
        let shared = Arc::new(Shared {
            servers: servers.to_string(),
            session_timeout,
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
            match connect(&s.servers, s.session_timeout).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "zookeeper reconnect failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        *s.client.lock().unwrap_or_else(|e| e.into_inner()) = client.clone();
        let owned: Vec<(String, u32)> = s
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(p, w)| (p.clone(), *w))
            .collect();
        for (path, weight) in owned {
            if let Err(e) = s.create_owned(&client, &path, weight).await {
                tracing::error!(%path, error = %e, "cannot re-register after a new session");
            }
        }
    }
}

impl Registry for ZooKeeperRegistry {
    fn register(
        &self,
        service: &ServiceKey,
        addr: SocketAddr,
        weight: u32,
    ) -> Result<(), RegistryError> {
        let path = format!("{}/{addr}", providers_path(service));
        let client = self.shared.client();
        self.runtime
            .block_on(self.shared.create_owned(&client, &path, weight))
            .map_err(zk_error)?;
        self.shared
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, weight);
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
                match read_and_watch(&client, &path).await {
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

/// The provider list under `path` (created if missing) and a watch on it.
async fn read_and_watch(
    client: &zk::Client,
    path: &str,
) -> Result<(ProviderList, zk::OneshotWatcher), zk::Error> {
    client
        .mkdir(
            path,
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await?;
    let (children, _, watcher) = client.get_and_watch_children(path).await?;
    let mut list = Vec::with_capacity(children.len());
    for child in children {
        let Ok(addr) = child.parse::<SocketAddr>() else {
            continue;
        };
        let weight = match client.get_data(&format!("{path}/{child}")).await {
            Ok((data, _)) => std::str::from_utf8(&data)
                .ok()
                .and_then(|w| w.parse().ok())
                .unwrap_or(100),
            // Gone between the listing and the read: the watch will fire.
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e),
        };
        list.push((addr, weight));
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
}
