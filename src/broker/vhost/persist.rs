//! Durable definitions of a vhost: the snapshot written after every durable change, and the
//! rebuild at start-up.

use super::VHost;
use crate::broker::exchange::{parse_type, Dest, Exchange, ExchangeSpec};
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::queue::{Queue, QueueSpec};
use crate::error::{AmqpError, AmqpResult};
use crate::protocol::table::{decode_table, encode_table};
use crate::store::{AfterSave, BindingDef, Definitions, ExchangeDef, QueueDef, Saved};
use std::sync::Arc;

/// Recovered messages are handed to their queue in batches of this many.
const RESTORE_BATCH: usize = 4096;

/// The write that records a change to the durable definitions. The change is in memory at
/// once; its reply (declare-ok, delete-ok, ...) waits for this, so a client never hears of a
/// change a crash could undo.
#[must_use = "a durable change is answered only once it is recorded"]
#[derive(Debug, Default)]
pub struct Recording(Option<Saved>);

impl Recording {
    /// Nothing durable changed: answer at once.
    pub fn nothing() -> Recording {
        Recording(None)
    }

    /// Whether the reply has to wait.
    pub fn is_pending(&self) -> bool {
        self.0.is_some()
    }

    /// Waits for the write; a failure is 541 INTERNAL_ERROR, as the client got when the write
    /// was made in place.
    pub async fn finished(&mut self) -> AmqpResult<()> {
        let Some(saved) = self.0.as_mut() else {
            return Ok(());
        };
        let ok = saved.await.unwrap_or(false);
        self.0 = None;
        if ok {
            Ok(())
        } else {
            Err(AmqpError::internal_error(
                "cannot write durable definitions",
            ))
        }
    }
}

impl VHost {
    /// Records the durable definitions when `changed` (a durable thing was touched): the
    /// snapshot is taken now and written on the storage thread, which runs `then` once it is
    /// on disk.
    pub(super) fn persist_if(&self, changed: bool, then: Option<AfterSave>) -> Recording {
        let Some(store) = self
            .store
            .as_ref()
            .filter(|_| changed && !self.is_deleted())
        else {
            if let Some(then) = then {
                then();
            }
            return Recording::nothing();
        };
        // Snapshots reach the storage thread in the order they were taken.
        let _serial = self.persist_lock.lock();
        Recording(Some(store.save_definitions_later(
            self.name.clone(),
            self.snapshot(),
            then,
        )))
    }

    /// The durable definitions of this vhost as they are now.
    fn snapshot(&self) -> Definitions {
        let vhost = self.name.to_string();
        let mut d = Definitions::default();
        let queues = self.queues.read();
        let durable_queue = |q: &Arc<Queue>| q.log().is_some() && !q.is_deleted();
        for q in queues.values().filter(|q| durable_queue(q)) {
            if let Some(log) = q.log() {
                d.queues.push(QueueDef {
                    vhost: vhost.clone(),
                    name: q.name().to_string(),
                    auto_delete: q.spec.auto_delete,
                    arguments: encode_table(&q.spec.arguments),
                    log: log.name().to_string(),
                });
            }
        }
        if let Some(delayed) = self.delayed.get() {
            d.queues.push(QueueDef {
                vhost: vhost.clone(),
                name: super::delayed::DELAYED_LOG_NAME.to_string(),
                auto_delete: false,
                arguments: Vec::new(),
                log: delayed.log.name().to_string(),
            });
        }
        let exchanges = self.exchanges.read();
        for x in exchanges.values().filter(|x| x.spec.durable) {
            if !x.spec.name.starts_with("amq.") {
                d.exchanges.push(ExchangeDef {
                    vhost: vhost.clone(),
                    name: x.spec.name.to_string(),
                    kind: x.spec.type_name().to_string(),
                    auto_delete: x.spec.auto_delete,
                    internal: x.spec.internal,
                    arguments: encode_table(&x.spec.arguments),
                });
            }
            for b in x.bindings() {
                let (destination, to_queue) = match &b.dest {
                    Dest::Queue(q) if durable_queue(q) => (q.name().to_string(), true),
                    Dest::Exchange(n) if exchanges.get(n).is_some_and(|e| e.spec.durable) => {
                        (n.to_string(), false)
                    }
                    _ => continue,
                };
                d.bindings.push(BindingDef {
                    vhost: vhost.clone(),
                    source: x.spec.name.to_string(),
                    destination,
                    to_queue,
                    routing_key: b.routing_key.clone(),
                    arguments: encode_table(&b.arguments),
                });
            }
        }
        d
    }

    /// Rebuilds durable exchanges, queues (with their messages) and bindings at start-up.
    /// Recovered messages that had been delivered before are marked redelivered.
    /// Policies from `access` apply to the recovered queues as to newly declared ones.
    pub fn recover(
        &self,
        defs: &Definitions,
        access: &crate::broker::access::Access,
    ) -> std::io::Result<Vec<String>> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        let mut logs = Vec::new();
        for x in defs.exchanges.iter().filter(|x| *x.vhost == *self.name) {
            let arguments = decode_table(&x.arguments).unwrap_or_default();
            let Ok((kind, delayed)) = parse_type(&x.kind, &arguments) else {
                tracing::warn!(exchange = ?x.name, kind = ?x.kind, "skipping an exchange of unknown type");
                continue;
            };
            let spec = ExchangeSpec {
                name: x.name.as_str().into(),
                kind,
                delayed,
                durable: true,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments,
            };
            let alternate = access.exchange_policy_alternate(&self.name, &spec.name);
            let x = Exchange::with_policy(spec, alternate.as_deref());
            self.open_dedup_log(&x, false)?;
            self.exchanges.write().insert(x.spec.name.clone(), x);
        }
        let clean = store.recovered_cleanly();
        let mut recovered = 0usize;
        let mut delayed = 0;
        let mut delayed_log = None;
        // A crash can come after a message reached the disk and before its deduplication key
        // did: persistent caches take such keys back from the recovered messages.
        let dedup_caches: Vec<(Arc<str>, Arc<crate::broker::exchange::dedup::Cache>)> = self
            .exchanges
            .read()
            .values()
            .filter_map(|x| {
                let cache = x.dedup().filter(|c| c.settings().persistent)?;
                Some((x.spec.name.clone(), cache.clone()))
            })
            .collect();
        for qd in defs.queues.iter().filter(|q| *q.vhost == *self.name) {
            if qd.name == super::delayed::DELAYED_LOG_NAME {
                delayed_log = Some(qd.log.clone());
                logs.push(qd.log.clone());
                continue;
            }
            let spec = QueueSpec {
                name: qd.name.as_str().into(),
                durable: true,
                exclusive_owner: None,
                auto_delete: qd.auto_delete,
                arguments: decode_table(&qd.arguments).unwrap_or_default(),
            };
            let quorum = crate::broker::access::policies::is_quorum(&spec.arguments);
            let policy = access.queue_policy(&self.name, &spec.name, quorum);
            let q = Queue::new(
                spec,
                self.name.clone(),
                None,
                self.spool_path(),
                policy.as_ref(),
            );
            // TTLs restart from recovery time.
            let now = crate::broker::clock::now_ms();
            let policy = q.policy();
            let mut batch: Vec<QueuedMessage> = Vec::with_capacity(RESTORE_BATCH);
            // Streamed: the queue pages out beyond its window while the log is read.
            let log = store.open_queue_log(&qd.log, &mut |m| {
                let message = Message::new(&m.exchange, &m.routing_key, &m.properties, &m.body);
                if let Some((_, cache)) = dedup_caches.iter().find(|(n, _)| **n == *m.exchange) {
                    cache.recover_key(message.view().headers);
                }
                let mut qm = QueuedMessage::new(
                    m.seq,
                    message,
                    now,
                    policy.message_ttl,
                    policy.max_priority,
                );
                // After a crash every message may have been delivered: the spec's meaning of
                // redelivered (delivery records are written behind the deliveries).
                qm.redelivered = m.delivered || !clean;
                qm.delivery_recorded = m.delivered;
                batch.push(qm);
                recovered += 1;
                if batch.len() == RESTORE_BATCH {
                    q.restore(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(RESTORE_BATCH),
                    ));
                }
            })?;
            q.restore(batch);
            q.attach_log(log);
            logs.push(qd.log.clone());
            self.queues.write().insert(q.spec.name.clone(), q);
        }
        for b in defs.bindings.iter().filter(|b| *b.vhost == *self.name) {
            let Ok(x) = self.exchange(&b.source) else {
                continue;
            };
            let args = decode_table(&b.arguments).unwrap_or_default();
            let dest = if b.to_queue {
                match self.queues.read().get(b.destination.as_str()) {
                    Some(q) => Dest::Queue(q.clone()),
                    None => continue,
                }
            } else {
                Dest::Exchange(b.destination.as_str().into())
            };
            x.bind(dest, &b.routing_key, &args);
        }
        let recovered_queues: Vec<Arc<Queue>> = self.queues.read().values().cloned().collect();
        for q in recovered_queues {
            let fx = q.recovered();
            self.carry_out(&q, fx);
            super::timers::start_idle_timer(self, &q);
        }
        // Delayed messages whose time passed while Warren was down are routed at once: only
        // now that their queues and bindings are back.
        if let Some(dir) = delayed_log {
            delayed += self.recover_delayed(&dir)?;
        }
        let durable_delayed = self
            .exchanges
            .read()
            .values()
            .any(|x| x.spec.delayed && x.spec.durable);
        if durable_delayed && self.delayed.get().is_none() {
            // Data written before the log came with its exchange's declare: create and record
            // it now, before any delayed message can be confirmed.
            self.create_delayed_log()?;
            store.save_definitions(&self.name, &self.snapshot())?;
            if let Some(d) = self.delayed.get() {
                logs.push(d.log.name().to_string());
            }
        }
        tracing::info!(
            vhost = %self.name,
            exchanges = defs.exchanges.len(),
            queues = defs.queues.len(),
            bindings = defs.bindings.len(),
            messages = recovered,
            delayed,
            "recovered durable state"
        );
        Ok(logs)
    }
}
