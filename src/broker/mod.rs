//! The domain: vhosts, exchanges, queues, messages, routing and ack semantics.
//! No sockets, frames or method structs here; errors are `AmqpError`s.

pub mod arguments;
pub mod consumer;
pub mod exchange;
pub mod message;
pub mod queue;
pub mod vhost;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vhost::VHost;

/// The registry of vhosts handed to every connection.
#[derive(Debug)]
pub struct Broker {
    vhosts: HashMap<String, Arc<VHost>>,
    next_connection_id: AtomicU64,
}

impl Broker {
    /// A broker with the default vhost "/".
    pub fn new() -> Arc<Broker> {
        let mut vhosts = HashMap::new();
        vhosts.insert("/".to_string(), VHost::new("/"));
        Arc::new(Broker {
            vhosts,
            next_connection_id: AtomicU64::new(1),
        })
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).cloned()
    }

    /// A process-unique id for a new connection (exclusive-queue ownership, consumers).
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}
