//! The domain: vhosts, exchanges, queues, messages, routing and ack semantics.
//! No sockets, frames or method structs here; errors are `AmqpError`s.

pub mod access;
pub mod alarm;
pub(crate) mod arguments;
pub(crate) mod clock;
pub(crate) mod consumer;
pub(crate) mod dead_letter;
pub(crate) mod dedup_key;
pub mod definitions;
pub(crate) mod exchange;
pub mod message;
pub(crate) mod queue;
pub mod rates;
pub mod registry;
pub mod signal;
pub mod stats;
pub(crate) mod vhost;

use crate::store::{Store, SyncPolicy};
use access::{Access, Defaults};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vhost::VHost;

/// The RabbitMQ release whose behaviour Warren reproduces (announced to clients as
/// `version`, written as `rabbit_version` in definitions).
pub const RABBITMQ_COMPATIBLE_VERSION: &str = "3.10.0";

/// The registry of vhosts and of who may use them, handed to every connection.
#[derive(Debug)]
pub struct Broker {
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    access: Arc<Access>,
    /// Open connections and channels, for the limits.
    usage: Arc<access::usage::Usage>,
    next_connection_id: AtomicU64,
    store: Option<Arc<Store>>,
    /// Which resource alarms are on.
    alarms: Option<tokio::sync::watch::Receiver<alarm::Alarms>>,
    /// The alarms' thresholds (None: no alarms started).
    alarm_limits: Option<alarm::Limits>,
    /// One save of access.json at a time, taken before the snapshot: a slower save of an
    /// older snapshot can never replace a newer one (operators change users concurrently).
    access_saves: parking_lot::Mutex<()>,
    /// Open connections and channels (management API, metrics).
    registry: Arc<registry::Registry>,
    /// Message rates, sampled (see `rates::start`).
    rates: Arc<rates::Rates>,
    /// When the broker started (monotonic), for uptime.
    started: std::time::Instant,
}

impl Broker {
    /// A broker with the default user and vhost and nothing persisted.
    pub fn new() -> Arc<Broker> {
        Self::with_store(None, Access::with_defaults(&Defaults::default()))
    }

    fn with_store(store: Option<Arc<Store>>, access: Access) -> Arc<Broker> {
        let vhosts = access
            .vhost_names()
            .into_iter()
            .map(|name| {
                let v = VHost::new(&name, store.clone());
                (name, v)
            })
            .collect();
        Arc::new(Broker {
            vhosts: RwLock::new(vhosts),
            access: Arc::new(access),
            usage: Arc::default(),
            next_connection_id: AtomicU64::new(1),
            store,
            alarms: None,
            alarm_limits: None,
            access_saves: parking_lot::Mutex::new(()),
            registry: Arc::default(),
            rates: Arc::default(),
            started: std::time::Instant::now(),
        })
    }

    /// Opens the data directory, recovering users, vhosts, durable definitions and messages.
    /// A fresh directory starts with `defaults`.
    pub fn open(
        data_dir: PathBuf,
        policy: SyncPolicy,
        defaults: &Defaults,
    ) -> std::io::Result<Arc<Broker>> {
        let store = Store::open(data_dir, policy)?;
        let defs = store.load_definitions()?;
        let access = match store.load_access()? {
            Some(json) => definitions::access_from_json(&json, defaults.loopback_users.clone())?,
            None => {
                let access = Access::with_defaults(defaults);
                // A data directory from before users and vhosts were stored keeps its vhosts.
                for vhost in defs.vhosts() {
                    if !access.vhost_exists(&vhost) {
                        access.put_vhost(access::VhostRecord {
                            name: vhost,
                            ..Default::default()
                        });
                    }
                }
                store.save_access(&definitions::access_to_json(&access))?;
                access
            }
        };
        for vhost in defs.vhosts() {
            if !access.vhost_exists(&vhost) {
                // Left behind by a vhost deletion that a crash interrupted.
                drop(store.delete_definitions_later(vhost.into()));
            }
        }
        let broker = Self::with_store(Some(store.clone()), access);
        let mut logs = Vec::new();
        for vhost in broker.vhosts.read().values() {
            logs.extend(vhost.recover(&defs, &broker.access)?);
        }
        store.remove_orphans(&logs)?;
        let dedup_logs: Vec<(String, String)> = broker
            .vhosts
            .read()
            .values()
            .flat_map(|v| {
                v.persistent_dedup_exchanges()
                    .into_iter()
                    .map(|x| (v.name.to_string(), x))
            })
            .collect();
        store.remove_orphan_dedup_logs(&dedup_logs)?;
        Ok(broker)
    }

    /// Users, vhosts and permissions.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// Open connections and channels per user and vhost.
    pub fn usage(&self) -> &Arc<access::usage::Usage> {
        &self.usage
    }

    /// Open connections and channels.
    pub fn registry(&self) -> &Arc<registry::Registry> {
        &self.registry
    }

    /// Message rates.
    pub fn rates(&self) -> &Arc<rates::Rates> {
        &self.rates
    }

    /// Starts sampling message rates every `interval`.
    pub fn start_statistics(self: &Arc<Self>, interval: std::time::Duration) {
        rates::start(self, interval);
    }

    /// Milliseconds since the broker started.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Saves users, vhosts and permissions after a change.
    pub fn save_access(&self) -> std::io::Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let _one_at_a_time = self.access_saves.lock();
        store.save_access(&definitions::access_to_json(&self.access))
    }

    /// Creates a vhost (with its amq.* exchanges); an existing one is left as it is.
    pub fn add_vhost(&self, record: access::VhostRecord) -> std::io::Result<Arc<VHost>> {
        let name = record.name.clone();
        self.access.put_vhost(record);
        let v = self
            .vhosts
            .write()
            .entry(name.clone())
            .or_insert_with(|| VHost::new(&name, self.store.clone()))
            .clone();
        self.save_access()?;
        Ok(v)
    }

    /// Deletes a vhost: its connections are closed (320 CONNECTION_FORCED), its queues and
    /// their messages, exchanges and permissions go, on disk too. False if it did not exist.
    pub fn delete_vhost(&self, name: &str) -> std::io::Result<bool> {
        let Some(v) = self.vhosts.write().remove(name) else {
            return Ok(false);
        };
        self.access.delete_vhost(name);
        // Gone for good before anything is removed: a crash from here on finishes the job at
        // the next start (a snapshot of an unknown vhost is removed, its logs are orphans).
        self.save_access()?;
        v.delete_everything();
        // Its connections close (the vhost's flag is set first: one that registers from now
        // on sees it when it starts).
        self.registry.raise(Some(name), signal::VHOST_DELETED);
        if let Some(store) = &self.store {
            drop(store.delete_definitions_later(name.into()));
        }
        Ok(true)
    }

    /// Every vhost.
    pub fn vhosts(&self) -> Vec<Arc<VHost>> {
        let mut all: Vec<Arc<VHost>> = self.vhosts.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Waits until every durable change handed to the storage thread is written (at most
    /// `limit`); false if that did not happen.
    pub fn sync_definitions(&self, limit: std::time::Duration) -> bool {
        self.store
            .as_ref()
            .is_none_or(|s| s.drain_definitions(limit))
    }

    /// Starts the resource alarms (memory and disk).
    pub fn with_alarms(self: Arc<Self>, limits: alarm::Limits) -> Arc<Broker> {
        match Arc::try_unwrap(self) {
            Ok(mut b) => {
                let disk = b.store.as_ref().map(|s| s.disk().clone());
                b.alarm_limits = Some(limits.clone());
                b.alarms = Some(alarm::start(limits, disk));
                Arc::new(b)
            }
            Err(shared) => shared,
        }
    }

    /// The resource alarms' thresholds.
    pub fn alarm_limits(&self) -> Option<&alarm::Limits> {
        self.alarm_limits.as_ref()
    }

    /// Watch the resource alarms.
    pub fn alarms(&self) -> Option<tokio::sync::watch::Receiver<alarm::Alarms>> {
        self.alarms.clone()
    }

    /// Watch the last durable flush round, when there is a store.
    pub fn durable_rounds(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.store.as_ref().map(|s| s.durable_rounds())
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.read().get(name).cloned()
    }

    /// Clean shutdown, after every connection has closed: everything pending reaches the
    /// disk (at most `limit`) and the store records that the run ended cleanly.
    pub fn close(&self, limit: std::time::Duration) {
        if let Some(store) = &self.store {
            if !store.close(limit) {
                tracing::warn!("not everything reached the disk before shutdown: the next start recovers as after a crash");
            }
        }
    }

    /// A process-unique id for a new connection (exclusive-queue ownership, consumers).
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}
