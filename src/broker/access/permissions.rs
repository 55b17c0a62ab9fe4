//! Permission rows as RabbitMQ keeps them: three regexes per (user, vhost) for configure,
//! write and read, and per (user, vhost, exchange) a write and a read regex for topic routing
//! keys. A check is an unanchored search of the resource name.

use regex::Regex;

/// One permission regex, compiled once.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    /// None: matches nothing (the empty pattern, which RabbitMQ reads as `^$`, or a pattern
    /// that does not compile, which denies).
    regex: Option<Regex>,
}

impl Pattern {
    pub fn new(source: &str) -> Pattern {
        let regex = if source.is_empty() {
            None
        } else {
            match Regex::new(source) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(pattern = source, error = %e, "permission pattern does not compile: it denies everything");
                    None
                }
            }
        };
        Pattern {
            source: source.to_string(),
            regex,
        }
    }

    /// A topic permission pattern: `{username}` and `{vhost}` stand for the connection's.
    pub fn for_topic(source: &str, user: &str, vhost: &str) -> Pattern {
        Pattern::new(&source.replace("{username}", user).replace("{vhost}", vhost))
    }

    pub fn allows(&self, name: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(name))
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// What a user may do in one vhost.
#[derive(Debug, Clone)]
pub struct Permission {
    pub configure: Pattern,
    pub write: Pattern,
    pub read: Pattern,
}

impl Permission {
    pub fn new(configure: &str, write: &str, read: &str) -> Permission {
        Permission {
            configure: Pattern::new(configure),
            write: Pattern::new(write),
            read: Pattern::new(read),
        }
    }
}

/// The three kinds of access (RabbitMQ's names, used in the tables and the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Configure,
    Write,
    Read,
}

impl Permission {
    pub fn pattern(&self, kind: Kind) -> &Pattern {
        match kind {
            Kind::Configure => &self.configure,
            Kind::Write => &self.write,
            Kind::Read => &self.read,
        }
    }
}

/// Routing-key patterns for one topic exchange: the sources as stored, and the patterns
/// compiled once with `{username}` and `{vhost}` expanded (a row belongs to one user and vhost),
/// so a publish matches a key without compiling anything.
#[derive(Debug, Clone)]
pub struct TopicPermission {
    pub exchange: String,
    pub write: String,
    pub read: String,
    pub write_pattern: Pattern,
    pub read_pattern: Pattern,
}

impl TopicPermission {
    pub fn new(exchange: String, write: String, read: String, user: &str, vhost: &str) -> Self {
        TopicPermission {
            write_pattern: Pattern::for_topic(&write, user, vhost),
            read_pattern: Pattern::for_topic(&read, user, vhost),
            exchange,
            write,
            read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_search_unanchored_and_empty_or_broken_ones_deny() {
        assert!(Pattern::new(".*").allows(""));
        assert!(Pattern::new("^orders").allows("orders.eu"));
        assert!(
            Pattern::new("eu").allows("orders.eu.x"),
            "a search, not a full match"
        );
        assert!(!Pattern::new("^eu").allows("orders.eu"));
        assert!(!Pattern::new("").allows(""), "empty means nothing");
        assert!(!Pattern::new("(").allows("("), "a bad regex denies");
    }

    #[test]
    fn topic_patterns_expand_the_user_and_vhost() {
        let p = Pattern::for_topic("^{username}\\.{vhost}\\.", "alice", "shop");
        assert!(p.allows("alice.shop.orders"));
        assert!(!p.allows("bob.shop.orders"));
    }
}
