//! Facts about this node and its totals, read when asked: the overview and nodes endpoints
//! and the Prometheus metrics show the same numbers.

use crate::broker::stats::MessageTotals;
use crate::broker::Broker;

/// Process and machine facts.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub mem_used: u64,
    pub mem_limit: u64,
    pub mem_alarm: bool,
    pub disk_free: u64,
    pub disk_free_limit: u64,
    pub disk_free_alarm: bool,
    pub fd_used: u64,
    pub fd_total: u64,
    pub processors: usize,
    pub os_pid: u32,
    pub uptime_ms: u64,
}

/// The soft limit of open files, from /proc (0 when unknown).
fn max_open_files() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

pub fn facts(broker: &Broker) -> NodeFacts {
    let alarms = broker.alarms().map(|a| *a.borrow()).unwrap_or_default();
    let limits = broker.alarm_limits();
    let disk_free = limits
        .and_then(|l| fs4::available_space(&l.data_dir).ok())
        .unwrap_or(0);
    NodeFacts {
        mem_used: crate::broker::alarm::resident_bytes(),
        mem_limit: limits.map_or(0, |l| l.memory_bytes),
        mem_alarm: alarms.memory,
        disk_free,
        disk_free_limit: limits.map_or(0, |l| l.disk_free_bytes),
        disk_free_alarm: alarms.disk,
        fd_used: open_files(),
        fd_total: max_open_files(),
        processors: std::thread::available_parallelism().map_or(1, |n| n.get()),
        os_pid: std::process::id(),
        uptime_ms: broker.uptime_ms(),
    }
}

/// Object and message totals of the whole broker.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub connections: u64,
    pub channels: u64,
    pub queues: u64,
    pub exchanges: u64,
    pub consumers: u64,
    pub messages_ready: u64,
    pub messages_unacknowledged: u64,
    /// Queues declared, created and deleted since start.
    pub queues_declared: u64,
    pub queues_created: u64,
    pub queues_deleted: u64,
    /// Message counts since start (every vhost).
    pub messages: MessageTotals,
}

pub fn totals(broker: &Broker) -> Totals {
    let mut t = Totals::default();
    let registry = broker.registry();
    for c in registry.connections() {
        t.connections += 1;
        t.channels += c.channel_count() as u64;
    }
    for v in broker.vhosts() {
        t.exchanges += v.exchange_list().len() as u64 + 1;
        let churn = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        t.queues_declared += churn(&v.churn.declared);
        t.queues_created += churn(&v.churn.created);
        t.queues_deleted += churn(&v.churn.deleted);
        for q in v.queue_list() {
            let depth = q.depth();
            t.queues += 1;
            t.consumers += depth.consumers;
            t.messages_ready += depth.ready;
            t.messages_unacknowledged += q.stats.unacked();
        }
    }
    t.messages = broker.rates().overall().totals;
    t
}
