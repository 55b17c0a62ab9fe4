//! Topic exchange: binding keys are dot-separated words where `*` matches exactly one word and
//! `#` matches zero or more. Bindings are compiled into a word trie; routing walks it once.

use super::{Binding, Dest, Routed};
use std::collections::HashMap;

#[derive(Debug, Default)]
struct Node {
    words: HashMap<String, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    dests: Vec<Dest>,
}

/// The compiled bindings of one topic exchange.
#[derive(Debug, Default)]
pub(super) struct TopicTrie {
    root: Node,
}

impl TopicTrie {
    pub(super) fn build(list: &[Binding]) -> TopicTrie {
        let mut root = Node::default();
        for b in list {
            let mut node = &mut root;
            let mut previous = "";
            for word in words_of(&b.routing_key) {
                // "#.#" matches exactly what "#" matches; collapsing keeps routing linear.
                if word == "#" && previous == "#" {
                    continue;
                }
                previous = word;
                node = match word {
                    "*" => node.star.get_or_insert_with(Default::default),
                    "#" => node.hash.get_or_insert_with(Default::default),
                    w => node.words.entry(w.to_string()).or_default(),
                };
            }
            if !node.dests.iter().any(|d| d.same(&b.dest)) {
                node.dests.push(b.dest.clone());
            }
        }
        TopicTrie { root }
    }

    /// Appends matching queues (possibly with duplicates; the caller dedups).
    pub(super) fn route(&self, routing_key: &str, out: &mut Routed) {
        let words: Vec<&str> = words_of(routing_key).collect();
        walk(&self.root, &words, out);
    }
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
        node.dests.iter().for_each(|d| d.push_to(out));
        return;
    };
    if let Some(next) = node.words.get(*first) {
        walk(next, rest, out);
    }
    if let Some(star) = &node.star {
        walk(star, rest, out);
    }
}
