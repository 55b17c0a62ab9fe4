//! Bindings an exchange type matches one by one (headers, JMS selectors): each kept with what
//! it compiled to, removed by binding id in O(1) (a swap with the last).

use super::Dest;

#[derive(Debug)]
struct Entry<T> {
    /// The binding's id (see `Bindings`).
    id: u64,
    matcher: T,
    dest: Dest,
}

#[derive(Debug)]
pub(super) struct BindingList<T> {
    entries: Vec<Entry<T>>,
    /// Where each binding id sits in `entries`.
    positions: crate::FastMap<u64, usize>,
}

impl<T> Default for BindingList<T> {
    fn default() -> Self {
        BindingList {
            entries: Vec::new(),
            positions: Default::default(),
        }
    }
}

impl<T> BindingList<T> {
    pub(super) fn insert(&mut self, id: u64, matcher: T, dest: &Dest) {
        self.positions.insert(id, self.entries.len());
        self.entries.push(Entry {
            id,
            matcher,
            dest: dest.clone(),
        });
    }

    pub(super) fn remove(&mut self, id: u64) {
        let Some(at) = self.positions.remove(&id) else {
            return;
        };
        self.entries.swap_remove(at);
        if let Some(moved) = self.entries.get(at) {
            self.positions.insert(moved.id, at);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Each binding's compiled matcher and destination.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&T, &Dest)> {
        self.entries.iter().map(|e| (&e.matcher, &e.dest))
    }
}
