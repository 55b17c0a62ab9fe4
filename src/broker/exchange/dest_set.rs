//! A set of binding destinations that routes by iterating a plain vector and adds or removes
//! one destination in constant time (a position map beside the vector), so that binding or
//! unbinding one of N queues never costs O(N).

use super::{Dest, DestKey, Routed};

#[derive(Debug, Default)]
pub(super) struct DestSet {
    list: Vec<Dest>,
    positions: crate::FastMap<DestKey, usize>,
}

impl DestSet {
    /// Adds `dest`; false if it was there already.
    pub(super) fn insert(&mut self, dest: &Dest) -> bool {
        let key = dest.key();
        if self.positions.contains_key(&key) {
            return false;
        }
        self.positions.insert(key, self.list.len());
        self.list.push(dest.clone());
        true
    }

    /// Removes the destination with `key`; false if it was not there.
    pub(super) fn remove(&mut self, key: &DestKey) -> bool {
        let Some(at) = self.positions.remove(key) else {
            return false;
        };
        self.list.swap_remove(at);
        if let Some(moved) = self.list.get(at) {
            self.positions.insert(moved.key(), at);
        }
        true
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Appends every destination to the routing result.
    #[inline]
    pub(super) fn route(&self, out: &mut Routed) {
        self.list.iter().for_each(|d| d.push_to(out));
    }
}
