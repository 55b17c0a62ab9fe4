//! Direct exchange: a message goes to the queues bound with exactly its routing key.

use super::{Binding, Dest, Routed};

#[derive(Debug, Default)]
pub(super) struct DirectIndex {
    by_key: crate::FastMap<String, Vec<Dest>>,
}

impl DirectIndex {
    pub(super) fn build(list: &[Binding]) -> DirectIndex {
        let mut by_key: crate::FastMap<String, Vec<Dest>> = crate::FastMap::default();
        for b in list {
            let ds = by_key.entry(b.routing_key.clone()).or_default();
            if !ds.iter().any(|d| d.same(&b.dest)) {
                ds.push(b.dest.clone());
            }
        }
        DirectIndex { by_key }
    }

    pub(super) fn route(&self, routing_key: &str, out: &mut Routed) {
        if let Some(ds) = self.by_key.get(routing_key) {
            ds.iter().for_each(|d| d.push_to(out));
        }
    }
}
