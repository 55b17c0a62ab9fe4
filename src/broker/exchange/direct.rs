//! Direct exchange: a message goes to the queues bound with exactly its routing key.

use super::dest_set::DestSet;
use super::{Dest, DestKey, Routed};

#[derive(Debug, Default)]
pub(super) struct DirectIndex {
    by_key: crate::FastMap<String, DestSet>,
}

impl DirectIndex {
    /// `dest` is now bound with `routing_key`.
    pub(super) fn insert(&mut self, routing_key: &str, dest: &Dest) {
        match self.by_key.get_mut(routing_key) {
            Some(set) => {
                set.insert(dest);
            }
            None => {
                let mut set = DestSet::default();
                set.insert(dest);
                self.by_key.insert(routing_key.to_string(), set);
            }
        }
    }

    /// `dest` has no binding with `routing_key` any more.
    pub(super) fn remove(&mut self, routing_key: &str, dest: &DestKey) {
        if let Some(set) = self.by_key.get_mut(routing_key) {
            set.remove(dest);
            if set.is_empty() {
                self.by_key.remove(routing_key);
            }
        }
    }

    pub(super) fn route(&self, routing_key: &str, out: &mut Routed) {
        if let Some(set) = self.by_key.get(routing_key) {
            set.route(out);
        }
    }
}
