//! The open connections and their channels, as the management API and the metrics list them.
//! A connection registers once it is open and leaves when it closes; its channels come and
//! go with channel.open and close. Nothing here is touched per message: the counters live in
//! each connection's `ConnectionInfo` and each channel's `ChannelStats`, written by the
//! connection's own task.

use super::signal::{self, Signal};
use super::stats::{ChannelStats, Counter, ExchangeTotals, MessageTotals};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a connection tells about itself when it registers.
#[derive(Debug, Clone)]
pub struct ConnectionDetails {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    pub user: String,
    pub vhost: String,
    pub auth_mechanism: String,
    /// connection.start-ok's client-properties, as JSON.
    pub client_properties: serde_json::Map<String, serde_json::Value>,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
}

/// One open connection.
#[derive(Debug)]
pub struct ConnectionInfo {
    pub id: u64,
    /// RabbitMQ's connection name: `"peer_ip:peer_port -> ip:port"`.
    pub name: String,
    pub details: ConnectionDetails,
    /// Wall-clock time it opened (ms since the Unix epoch).
    pub connected_at: u64,
    /// Bytes and reads/writes, written by the connection's task.
    pub recv_oct: Counter,
    pub recv_cnt: Counter,
    pub send_oct: Counter,
    pub send_cnt: Counter,
    /// 1 while a resource alarm blocks its publishers.
    pub blocked: Counter,
    channels: Mutex<BTreeMap<u16, Arc<ChannelStats>>>,
    /// A close asked by an operator (management API), with its reason.
    close_request: Mutex<Option<String>>,
    /// What other tasks tell the connection's loop (see `signal`).
    pub signal: Signal,
}

impl ConnectionInfo {
    /// The channels open now, by number.
    pub fn channels(&self) -> Vec<(u16, Arc<ChannelStats>)> {
        self.channels
            .lock()
            .iter()
            .map(|(n, s)| (*n, s.clone()))
            .collect()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.lock().len()
    }

    /// Asks the connection to close (320 CONNECTION_FORCED with `reason`).
    pub fn request_close(&self, reason: String) {
        *self.close_request.lock() = Some(reason);
        self.signal.raise(signal::OPERATOR_CLOSE);
    }

    /// The reason of an operator's close, once `signal::OPERATOR_CLOSE` was raised.
    pub fn take_close_request(&self) -> Option<String> {
        self.close_request.lock().take()
    }
}

/// Opened and closed objects since start, for the churn counters.
#[derive(Debug, Default)]
pub struct Churn {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub channels_opened: AtomicU64,
    pub channels_closed: AtomicU64,
}

/// What the channels of one vhost that are gone had counted.
#[derive(Debug, Default)]
struct ClosedTotals {
    messages: MessageTotals,
    exchanges: HashMap<Box<str>, ExchangeTotals>,
}

/// The broker's list of open connections.
#[derive(Debug, Default)]
pub struct Registry {
    connections: Mutex<BTreeMap<u64, Arc<ConnectionInfo>>>,
    /// Message counts of channels that are gone, per vhost, so totals never go back.
    closed_channels: Mutex<HashMap<String, ClosedTotals>>,
    pub churn: Churn,
}

impl Registry {
    /// Registers an open connection; it leaves when the returned handle is dropped.
    pub fn register(
        self: &Arc<Self>,
        id: u64,
        details: ConnectionDetails,
        connected_at: u64,
    ) -> Registered {
        let info = Arc::new(ConnectionInfo {
            id,
            name: format!("{} -> {}", details.peer, details.local),
            details,
            connected_at,
            recv_oct: Counter::default(),
            recv_cnt: Counter::default(),
            send_oct: Counter::default(),
            send_cnt: Counter::default(),
            blocked: Counter::default(),
            channels: Mutex::default(),
            close_request: Mutex::default(),
            signal: Signal::default(),
        });
        self.connections.lock().insert(id, info.clone());
        self.churn
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        Registered {
            registry: self.clone(),
            info,
        }
    }

    /// Every open connection, oldest first.
    pub fn connections(&self) -> Vec<Arc<ConnectionInfo>> {
        self.connections.lock().values().cloned().collect()
    }

    /// Raises `bits` on every open connection (shutdown, alarms) or on those of one vhost.
    pub fn raise(&self, vhost: Option<&str>, bits: u8) {
        for c in self.connections.lock().values() {
            if vhost.is_none_or(|v| v == c.details.vhost) {
                c.signal.raise(bits);
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.lock().len()
    }

    /// The connection with this id.
    pub fn connection(&self, id: u64) -> Option<Arc<ConnectionInfo>> {
        self.connections.lock().get(&id).cloned()
    }

    /// The connection with this name.
    pub fn by_name(&self, name: &str) -> Option<Arc<ConnectionInfo>> {
        self.connections
            .lock()
            .values()
            .find(|c| c.name == name)
            .cloned()
    }

    /// Message counts of every channel, open or gone, of `vhost` (all vhosts: None).
    pub fn message_totals(&self, vhost: Option<&str>) -> MessageTotals {
        let mut t = MessageTotals::default();
        for (v, closed) in self.closed_channels.lock().iter() {
            if vhost.is_none_or(|name| name == v) {
                t += closed.messages;
            }
        }
        for c in self.connections() {
            if vhost.is_none_or(|name| name == c.details.vhost) {
                for (_, ch) in c.channels() {
                    t += ch.totals();
                }
            }
        }
        t
    }

    /// Publishes per exchange of `vhost`, by every channel open or gone.
    pub fn exchange_totals(&self, vhost: &str) -> HashMap<Box<str>, ExchangeTotals> {
        let mut t = self
            .closed_channels
            .lock()
            .get(vhost)
            .map(|c| c.exchanges.clone())
            .unwrap_or_default();
        for c in self.connections() {
            if c.details.vhost == vhost {
                for (_, ch) in c.channels() {
                    for (name, counts) in ch.exchange_totals() {
                        *t.entry(name).or_default() += counts;
                    }
                }
            }
        }
        t
    }

    /// A publish made without a channel (the management API's): RabbitMQ makes it through a
    /// channel of its own in confirm mode with `mandatory` set, so it counts for its exchange
    /// and in the vhost's totals: a publish, a confirm unless a queue refused it, and routed or
    /// returned (`queues` it reached; a delayed message is routed and reached none yet).
    pub fn count_publish_without_channel(
        &self,
        vhost: &str,
        exchange: &str,
        queues: u32,
        routed: bool,
        rejected: bool,
    ) {
        let mut all = self.closed_channels.lock();
        let closed = all.entry(vhost.to_string()).or_default();
        let m = &mut closed.messages;
        m.publish += 1;
        m.confirm += u64::from(!rejected);
        if routed {
            m.routed += 1;
        } else {
            m.unroutable_returned += 1;
        }
        let counts = closed.exchanges.entry(exchange.into()).or_default();
        counts.publish_in += 1;
        counts.publish_out += queues as u64;
    }

    /// Forgets the counts closed channels left for exchanges of `vhost` that no longer exist
    /// (deleted: a new exchange of the name starts from zero, as on RabbitMQ).
    pub fn forget_gone_exchanges(&self, vhost: &str, exists: impl Fn(&str) -> bool) {
        if let Some(closed) = self.closed_channels.lock().get_mut(vhost) {
            closed
                .exchanges
                .retain(|name, _| name.is_empty() || exists(name));
        }
    }

    /// Forgets a deleted vhost's totals.
    pub fn forget_vhost(&self, vhost: &str) {
        self.closed_channels.lock().remove(vhost);
    }

    fn channel_gone(&self, vhost: &str, stats: &ChannelStats) {
        let by_exchange = stats.exchange_totals();
        {
            let mut all = self.closed_channels.lock();
            let closed = all.entry(vhost.to_string()).or_default();
            closed.messages += stats.totals();
            // A name with nothing counted (a publish to it failed) is not kept: a client
            // must not grow this map with names it makes up.
            for (name, counts) in by_exchange {
                if counts != ExchangeTotals::default() {
                    *closed.exchanges.entry(name).or_default() += counts;
                }
            }
        }
        self.churn.channels_closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection's place in the registry, held by its task.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<Registry>,
    pub info: Arc<ConnectionInfo>,
}

impl Registered {
    /// A channel opened.
    pub fn channel_opened(&self, number: u16, stats: Arc<ChannelStats>) {
        self.info.channels.lock().insert(number, stats);
        self.registry
            .churn
            .channels_opened
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A channel closed; its counts stay in the vhost's totals.
    pub fn channel_closed(&self, number: u16) {
        let gone = self.info.channels.lock().remove(&number);
        if let Some(stats) = gone {
            self.registry.channel_gone(&self.info.details.vhost, &stats);
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let channels = std::mem::take(&mut *self.info.channels.lock());
        for stats in channels.values() {
            self.registry.channel_gone(&self.info.details.vhost, stats);
        }
        self.registry.connections.lock().remove(&self.info.id);
        self.registry
            .churn
            .connections_closed
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(vhost: &str) -> ConnectionDetails {
        ConnectionDetails {
            peer: "127.0.0.1:5000".parse().expect("addr"),
            local: "127.0.0.1:5672".parse().expect("addr"),
            tls: false,
            user: "guest".into(),
            vhost: vhost.into(),
            auth_mechanism: "PLAIN".into(),
            client_properties: serde_json::Map::new(),
            frame_max: 131072,
            channel_max: 2047,
            heartbeat: 60,
        }
    }

    #[test]
    fn totals_keep_the_counts_of_closed_channels_and_connections() {
        let registry = Arc::new(Registry::default());
        let a = registry.register(1, details("/"), 0);
        assert_eq!(a.info.name, "127.0.0.1:5000 -> 127.0.0.1:5672");
        let stats = Arc::new(ChannelStats::default());
        stats.publish.add(7);
        a.channel_opened(1, stats.clone());
        let b = registry.register(2, details("other"), 0);
        let other = Arc::new(ChannelStats::default());
        other.publish.add(100);
        b.channel_opened(1, other);
        assert_eq!(registry.message_totals(Some("/")).publish, 7);
        assert_eq!(registry.message_totals(None).publish, 107);
        a.channel_closed(1);
        assert_eq!(registry.message_totals(Some("/")).publish, 7);
        drop(b);
        assert_eq!(registry.message_totals(None).publish, 107);
        assert_eq!(registry.connection_count(), 1);
        assert!(registry
            .by_name("127.0.0.1:5000 -> 127.0.0.1:5672")
            .is_some());
    }

    #[test]
    fn closed_channels_keep_counts_only_of_exchanges_that_counted_and_still_exist() {
        let registry = Arc::new(Registry::default());
        let a = registry.register(1, details("/"), 0);
        let stats = Arc::new(ChannelStats::default());
        stats.exchange_counters("orders").add(2);
        stats.exchange_counters("deleted-later").add(0);
        // A publish to a made-up name that failed: counters made, nothing counted.
        let _ = stats.exchange_counters("made-up");
        a.channel_opened(1, stats);
        a.channel_closed(1);
        let names = |r: &Registry| {
            let mut n: Vec<String> = r
                .exchange_totals("/")
                .keys()
                .map(|k| k.to_string())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&registry), ["deleted-later", "orders"]);
        assert_eq!(registry.exchange_totals("/")["orders"].publish_out, 2);
        registry.forget_gone_exchanges("/", |name| name == "orders");
        assert_eq!(names(&registry), ["orders"]);
    }
}
