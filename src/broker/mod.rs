//! The domain: vhosts, exchanges, queues, messages, routing and ack semantics.
//! No sockets, frames or method structs here; errors are `AmqpError`s.

pub mod alarm;
pub(crate) mod arguments;
pub(crate) mod clock;
pub(crate) mod consumer;
pub(crate) mod dead_letter;
pub(crate) mod exchange;
pub mod message;
pub(crate) mod queue;
pub(crate) mod vhost;

use crate::store::{Store, SyncPolicy};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vhost::VHost;

/// The registry of vhosts handed to every connection.
#[derive(Debug)]
pub struct Broker {
    vhosts: HashMap<String, Arc<VHost>>,
    next_connection_id: AtomicU64,
    store: Option<Arc<Store>>,
    /// Which resource alarms are on.
    alarms: Option<tokio::sync::watch::Receiver<alarm::Alarms>>,
}

impl Broker {
    /// A broker with the default vhost "/" and nothing persisted.
    pub fn new() -> Arc<Broker> {
        Self::with_store(None)
    }

    fn with_store(store: Option<Arc<Store>>) -> Arc<Broker> {
        let mut vhosts = HashMap::new();
        vhosts.insert("/".to_string(), VHost::new("/", store.clone()));
        Arc::new(Broker {
            vhosts,
            next_connection_id: AtomicU64::new(1),
            store,
            alarms: None,
        })
    }

    /// Opens the data directory, recovering durable definitions and messages.
    pub fn open(data_dir: PathBuf, policy: SyncPolicy) -> std::io::Result<Arc<Broker>> {
        let store = Store::open(data_dir, policy)?;
        let defs = store.load_definitions()?;
        let broker = Self::with_store(Some(store.clone()));
        let mut logs = Vec::new();
        for vhost in broker.vhosts.values() {
            logs.extend(vhost.recover(&defs)?);
        }
        store.remove_orphans(&logs)?;
        Ok(broker)
    }

    /// Starts the resource alarms (memory and disk).
    pub fn with_alarms(self: Arc<Self>, limits: alarm::Limits) -> Arc<Broker> {
        match Arc::try_unwrap(self) {
            Ok(mut b) => {
                let disk = b.store.as_ref().map(|s| s.disk().clone());
                b.alarms = Some(alarm::start(limits, disk));
                Arc::new(b)
            }
            Err(shared) => shared,
        }
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
        self.vhosts.get(name).cloned()
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
