//! Message rates, as RabbitMQ's management plugin shows them (`*_details.rate`): a sampler
//! reads the counters every `collect_statistics_interval` (RabbitMQ's name, 5 s by default)
//! and keeps, per object, the last totals and the rate since the sample before. Reading a
//! rate is a lookup; the message path never sees any of this.

use super::stats::{ExchangeTotals, MessageRates, MessageTotals};
use super::Broker;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Samples kept for the overview's charts.
pub const HISTORY: usize = 120;

/// The last sample of one object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    pub totals: MessageTotals,
    pub rates: MessageRates,
}

impl Sampled {
    fn next(&self, totals: MessageTotals, secs: f64) -> Sampled {
        Sampled {
            totals,
            rates: totals.rates_since(&self.totals, secs),
        }
    }
}

/// Queue depth totals at one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Depth {
    pub ready: u64,
    pub unacked: u64,
}

/// One point of the overview's history.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point {
    /// Wall-clock time, ms since the Unix epoch.
    pub at: u64,
    pub depth: Depth,
    pub rates: MessageRates,
}

type QueueKey = (Arc<str>, Arc<str>);
/// A vhost and an exchange ("" for the default exchange).
type ExchangeKey = (Arc<str>, Box<str>);
/// A connection id and a channel number.
type ChannelKey = (u64, u16);

/// A connection's bytes received and sent at the last sample, and per second since the one
/// before.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampledBytes {
    pub recv_oct: u64,
    pub send_oct: u64,
    pub recv_rate: f64,
    pub send_rate: f64,
}

/// The last sample of one exchange: its totals and (publish_in, publish_out) per second.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampledExchange {
    pub totals: ExchangeTotals,
    pub rates: (f64, f64),
}

#[derive(Debug, Default)]
struct Samples {
    at: Option<Instant>,
    overall: Sampled,
    vhosts: HashMap<String, Sampled>,
    queues: HashMap<QueueKey, Sampled>,
    exchanges: HashMap<ExchangeKey, SampledExchange>,
    channels: HashMap<ChannelKey, Sampled>,
    /// Per connection id: (recv_oct, send_oct) at the last sample and their rates.
    connections: HashMap<u64, SampledBytes>,
    history: VecDeque<Point>,
}

/// The broker's rates.
#[derive(Debug, Default)]
pub struct Rates {
    samples: Mutex<Samples>,
}

impl Rates {
    /// Overall rates (every vhost): publishes and confirms from channels, deliveries and
    /// acks from the queues' side as RabbitMQ's overview counts them.
    pub fn overall(&self) -> Sampled {
        self.samples.lock().overall
    }

    pub fn vhost(&self, name: &str) -> Sampled {
        self.samples
            .lock()
            .vhosts
            .get(name)
            .copied()
            .unwrap_or_default()
    }

    pub fn queue(&self, vhost: &str, name: &str) -> Sampled {
        let key: QueueKey = (vhost.into(), name.into());
        self.samples
            .lock()
            .queues
            .get(&key)
            .copied()
            .unwrap_or_default()
    }

    /// An exchange's publishes ("" for the default exchange).
    pub fn exchange(&self, vhost: &str, name: &str) -> SampledExchange {
        let key: ExchangeKey = (vhost.into(), name.into());
        self.samples
            .lock()
            .exchanges
            .get(&key)
            .copied()
            .unwrap_or_default()
    }

    /// One channel (connection id, channel number).
    pub fn channel(&self, connection: u64, number: u16) -> Sampled {
        self.samples
            .lock()
            .channels
            .get(&(connection, number))
            .copied()
            .unwrap_or_default()
    }

    /// A connection's byte rates (recv_oct_details, send_oct_details).
    pub fn connection(&self, id: u64) -> SampledBytes {
        self.samples
            .lock()
            .connections
            .get(&id)
            .copied()
            .unwrap_or_default()
    }

    /// The overview's history, oldest first.
    pub fn history(&self) -> Vec<Point> {
        self.samples.lock().history.iter().copied().collect()
    }

    /// Takes one sample of every counter.
    pub fn sample(&self, broker: &Broker) {
        let now = Instant::now();
        // Only queues that have seen traffic: a queue never used has no entry (its baseline
        // is zero), so idle queues cost the sampler nothing.
        let mut queues = Vec::new();
        let mut exchanges = Vec::new();
        let mut vhost_totals: HashMap<String, MessageTotals> = HashMap::new();
        let mut depth = Depth::default();
        for v in broker.vhosts() {
            let mut from_queues = MessageTotals::default();
            for q in v.queue_list() {
                let t = q.stats.totals();
                from_queues += t;
                depth.ready += q.message_count() as u64;
                depth.unacked += q.stats.unacked();
                if t != MessageTotals::default() {
                    queues.push(((v.name.clone(), q.spec.name.clone()), t));
                }
            }
            let in_vhost = merged(
                broker.registry().message_totals(Some(&v.name)),
                &from_queues,
            );
            vhost_totals.insert(v.name.to_string(), in_vhost);
            let names: std::collections::HashSet<Arc<str>> = v
                .exchange_list()
                .iter()
                .map(|x| x.spec.name.clone())
                .collect();
            broker
                .registry()
                .forget_gone_exchanges(&v.name, |name| names.contains(name));
            for (name, t) in broker.registry().exchange_totals(&v.name) {
                exchanges.push(((v.name.clone(), name), t));
            }
        }
        let mut channels = Vec::new();
        let mut connections = Vec::new();
        for c in broker.registry().connections() {
            connections.push((c.id, c.recv_oct.get(), c.send_oct.get()));
            for (number, ch) in c.channels() {
                let t = ch.totals();
                if t != MessageTotals::default() {
                    channels.push(((c.id, number), t));
                }
            }
        }
        let mut overall = MessageTotals::default();
        for t in vhost_totals.values() {
            overall += *t;
        }
        let mut s = self.samples.lock();
        let secs = s.at.map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        s.at = Some(now);
        s.overall = s.overall.next(overall, secs);
        let old_vhosts = std::mem::take(&mut s.vhosts);
        s.vhosts = vhost_totals
            .into_iter()
            .map(|(name, t)| {
                let before = old_vhosts.get(&name).copied().unwrap_or(Sampled {
                    totals: t,
                    ..Default::default()
                });
                let next = before.next(t, secs);
                (name, next)
            })
            .collect();
        let old_queues = std::mem::take(&mut s.queues);
        s.queues = queues
            .into_iter()
            .map(|(key, t)| {
                let before = old_queues.get(&key).copied().unwrap_or_default();
                let next = before.next(t, secs);
                (key, next)
            })
            .collect();
        let old_exchanges = std::mem::take(&mut s.exchanges);
        s.exchanges = exchanges
            .into_iter()
            .map(|(key, totals)| {
                let before = old_exchanges
                    .get(&key)
                    .map(|e| e.totals)
                    .unwrap_or_default();
                let rates = totals.rates_since(&before, secs);
                (key, SampledExchange { totals, rates })
            })
            .collect();
        // Like queues, a channel without an entry counted nothing at the last sample.
        let old_channels = std::mem::take(&mut s.channels);
        s.channels = channels
            .into_iter()
            .map(|(key, t)| {
                let before = old_channels.get(&key).copied().unwrap_or_default();
                (key, before.next(t, secs))
            })
            .collect();
        // A connection's handshake is counted before its first sample: its rates start at
        // the second.
        let old_connections = std::mem::take(&mut s.connections);
        s.connections = connections
            .into_iter()
            .map(|(id, recv_oct, send_oct)| {
                let per_sec = |now: u64, then: u64| {
                    if secs > 0.0 {
                        now.saturating_sub(then) as f64 / secs
                    } else {
                        0.0
                    }
                };
                let sampled = match old_connections.get(&id) {
                    Some(before) => SampledBytes {
                        recv_oct,
                        send_oct,
                        recv_rate: per_sec(recv_oct, before.recv_oct),
                        send_rate: per_sec(send_oct, before.send_oct),
                    },
                    None => SampledBytes {
                        recv_oct,
                        send_oct,
                        ..Default::default()
                    },
                };
                (id, sampled)
            })
            .collect();
        let rates = s.overall.rates;
        s.history.push_back(Point {
            at: super::clock::unix_ms(),
            depth,
            rates,
        });
        while s.history.len() > HISTORY {
            s.history.pop_front();
        }
    }
}

/// A vhost's totals: publishes and confirms as its channels counted them; deliveries, gets
/// and acks as its queues did, when they saw more (the queues count basic.get and acks from
/// channels that are gone too).
fn merged(mut channels: MessageTotals, queues: &MessageTotals) -> MessageTotals {
    channels.deliver = channels.deliver.max(queues.deliver);
    channels.deliver_no_ack = channels.deliver_no_ack.max(queues.deliver_no_ack);
    channels.get = channels.get.max(queues.get);
    channels.get_no_ack = channels.get_no_ack.max(queues.get_no_ack);
    channels.ack = channels.ack.max(queues.ack);
    channels.redeliver = channels.redeliver.max(queues.redeliver);
    channels
}

/// Every vhost's totals now (the Prometheus endpoint reads them at each scrape).
pub fn current_totals(broker: &Broker) -> MessageTotals {
    let mut all = MessageTotals::default();
    for v in broker.vhosts() {
        let mut from_queues = MessageTotals::default();
        for q in v.queue_list() {
            from_queues += q.stats.totals();
        }
        all += merged(
            broker.registry().message_totals(Some(&v.name)),
            &from_queues,
        );
    }
    all
}

/// Samples every `interval` while the broker lives.
pub fn start(broker: &Arc<Broker>, interval: Duration) {
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let interval = interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(broker) = weak.upgrade() else {
                return;
            };
            let rates = broker.rates().clone();
            // Walking thousands of queues takes their locks one by one: off the async workers.
            let done = tokio::task::spawn_blocking(move || rates.sample(&broker)).await;
            if done.is_err() {
                return;
            }
        }
    });
}
