//! Direct exchange: a message goes to the queues bound with exactly its routing key.

use super::Binding;
use crate::broker::queue::Queue;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(super) struct DirectIndex {
    by_key: HashMap<String, Vec<Arc<Queue>>>,
}

impl DirectIndex {
    pub(super) fn build(list: &[Binding]) -> DirectIndex {
        let mut by_key: HashMap<String, Vec<Arc<Queue>>> = HashMap::new();
        for b in list {
            let qs = by_key.entry(b.routing_key.clone()).or_default();
            if !qs.iter().any(|q| Arc::ptr_eq(q, &b.queue)) {
                qs.push(b.queue.clone());
            }
        }
        DirectIndex { by_key }
    }

    pub(super) fn route(&self, routing_key: &str, out: &mut Vec<Arc<Queue>>) {
        if let Some(qs) = self.by_key.get(routing_key) {
            out.extend(qs.iter().cloned());
        }
    }
}
