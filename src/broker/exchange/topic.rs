//! Topic exchange: binding keys are dot-separated words where `*` matches exactly one word and
//! `#` matches zero or more. Bindings are compiled into a word trie, changed one binding at a
//! time; routing walks it once.

use super::dest_set::DestSet;
use super::{Dest, DestKey, Routed};
use std::collections::HashMap;

#[derive(Debug, Default)]
struct Node {
    words: HashMap<String, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    dests: DestSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.dests.is_empty() && self.words.is_empty() && self.star.is_none() && self.hash.is_none()
    }
}

/// The compiled bindings of one topic exchange.
#[derive(Debug, Default)]
pub(super) struct TopicTrie {
    root: Node,
}

/// The trie path of a binding key: its words, with "#.#" collapsed to "#" (it matches exactly
/// what "#" matches; collapsing keeps routing linear).
fn path_of(binding_key: &str) -> Vec<&str> {
    let mut path: Vec<&str> = Vec::new();
    for word in words_of(binding_key) {
        if word == "#" && path.last() == Some(&"#") {
            continue;
        }
        path.push(word);
    }
    path
}

impl TopicTrie {
    /// `dest` is now bound with `binding_key`.
    pub(super) fn insert(&mut self, binding_key: &str, dest: &Dest) {
        let mut node = &mut self.root;
        for word in path_of(binding_key) {
            node = match word {
                "*" => node.star.get_or_insert_with(Default::default),
                "#" => node.hash.get_or_insert_with(Default::default),
                w => node.words.entry(w.to_string()).or_default(),
            };
        }
        node.dests.insert(dest);
    }

    /// `dest` has no binding with `binding_key` any more; nodes left empty are pruned.
    pub(super) fn remove(&mut self, binding_key: &str, dest: &DestKey) {
        remove_at(&mut self.root, &path_of(binding_key), dest);
    }

    /// Appends matching queues (possibly with duplicates; the caller dedups). The words go in
    /// a stack array: no allocation per message unless the key has more than 32 words.
    pub(super) fn route(&self, routing_key: &str, out: &mut Routed) {
        let mut on_stack = [""; 32];
        let mut n = 0;
        for word in words_of(routing_key) {
            if n == on_stack.len() {
                let words: Vec<&str> = words_of(routing_key).collect();
                walk(&self.root, &words, out);
                return;
            }
            on_stack[n] = word;
            n += 1;
        }
        walk(&self.root, &on_stack[..n], out);
    }
}

/// Removes `dest` at the end of `path` below `node`; returns whether `node` is now empty.
/// The recursion is as deep as the key has words (a shortstr: at most 128).
fn remove_at(node: &mut Node, path: &[&str], dest: &DestKey) -> bool {
    match path.split_first() {
        None => {
            node.dests.remove(dest);
        }
        Some((&"*", rest)) => {
            if node.star.as_mut().is_some_and(|n| remove_at(n, rest, dest)) {
                node.star = None;
            }
        }
        Some((&"#", rest)) => {
            if node.hash.as_mut().is_some_and(|n| remove_at(n, rest, dest)) {
                node.hash = None;
            }
        }
        Some((word, rest)) => {
            if node
                .words
                .get_mut(*word)
                .is_some_and(|n| remove_at(n, rest, dest))
            {
                node.words.remove(*word);
            }
        }
    }
    node.is_empty()
}

/// The words of a routing or binding key. An empty key has none, as in RabbitMQ: `""` is
/// matched by `""` and `#` only, never by `*`, `#.*` or `*.#` (which need one word); "."
/// is two empty words.
fn words_of(key: &str) -> impl Iterator<Item = &str> {
    key.split('.').filter(move |_| !key.is_empty())
}

fn walk(node: &Node, words: &[&str], out: &mut Routed) {
    if let Some(hash) = &node.hash {
        // `#` swallows zero or more words.
        for skip in 0..=words.len() {
            walk(hash, &words[skip..], out);
        }
    }
    let Some((first, rest)) = words.split_first() else {
        node.dests.route(out);
        return;
    };
    if let Some(next) = node.words.get(*first) {
        walk(next, rest, out);
    }
    if let Some(star) = &node.star {
        walk(star, rest, out);
    }
}
