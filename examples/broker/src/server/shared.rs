//! What every connection of a broker shares: the topic catalog, the
//! limits, the group coordinator, the admin thread, the request
//! memory pool, the SASL credentials and the counters. Plain data.

use super::budget::RequestMemory;
use super::groups::Coordinator;
use crate::log::LogConfig;
use crate::security::{Authorizer, CredentialStore};
use crate::topics::Catalog;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub(crate) catalog: Arc<Catalog>,
    /// The share groups' own configs, as the log writer publishes them,
    /// and the broker's start rule and lock (ms) they fall back to.
    pub(crate) share_configs: crate::share::GroupConfigs,
    pub(crate) share_defaults: crate::share::group_config::GroupDefaults,
    pub(crate) auto_create_topics: bool,
    /// The log settings a topic gets unless it sets its own.
    pub(crate) default_log: LogConfig,
    pub(crate) max_in_flight: usize,
    pub(crate) producer_ids: Arc<crate::producer_ids::ProducerIds>,
    pub(crate) groups: Coordinator,
    /// Times a connection found the log writer's ring full and paused.
    pub(crate) ring_stalls: AtomicU64,
    /// Partitions of a topic created without a count.
    pub(crate) default_partitions: i32,
    /// SASL sessions renewed on their connections (KIP-368).
    pub(crate) sasl_reauthentications: AtomicU64,
    /// The bytes of requests being received, bounded server-wide.
    pub(crate) request_memory: Arc<RequestMemory>,
    /// The users SASL listeners authenticate.
    pub(crate) credentials: Arc<CredentialStore>,
    /// The ACLs and the rules that apply them.
    pub(crate) acls: Arc<Authorizer>,
    /// The feature levels finalized (KIP-584), and the file they are kept in.
    pub(crate) features: super::features::Features,
    /// The client quotas configured and the rates measured against them.
    pub(crate) quotas: super::quotas::ClientQuotas,
    /// The data folder's absolute path: the broker's one log directory,
    /// as DescribeLogDirs names it.
    pub(crate) log_dir: String,
    /// How long a SASL authentication lasts before the client must
    /// re-authenticate (`connections.max.reauth.ms`); `None`: for good.
    pub(crate) sasl_lifetime: Option<std::time::Duration>,
    /// OAUTHBEARER's token validator, where SASL listeners offer it.
    pub(crate) oauthbearer: Option<Arc<crate::security::oauthbearer::OAuthBearer>>,
    /// Each address's open connections, where a per-address limit is set.
    pub(crate) ip_connections: Option<gyre_reactor::ConnectionsPerIp>,
    /// The thread that writes the admin requests' files.
    pub(crate) admin: super::admin_worker::AdminWorker,
    /// The bound on incremental fetch sessions and what they hold.
    pub(crate) fetch_sessions: Arc<super::fetch_session::SessionBudget>,
}

impl Shared {
    /// What checks a SASL client's credentials: the stored users, and the
    /// token validator where OAUTHBEARER is offered.
    pub(crate) fn sasl_verifiers(&self) -> crate::security::sasl::Verifiers<'_> {
        crate::security::sasl::Verifiers {
            credentials: &self.credentials,
            oauthbearer: self.oauthbearer.as_deref(),
        }
    }
}
