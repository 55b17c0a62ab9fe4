//! Who may connect and what they may do: users with RabbitMQ-compatible password hashes and
//! tags, the vhosts that exist, and permissions per (user, vhost) and per topic exchange.
//! `Grant` is one connection's view: its user in its vhost, checked on every method as
//! RabbitMQ's table says (see the design notes on tenancy).

pub mod password;
pub mod permissions;
pub mod policies;
pub mod usage;

use parking_lot::RwLock;
pub use password::{Algorithm, PasswordHash};
pub use permissions::{Kind, Pattern, Permission, TopicPermission};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{AmqpError, AmqpResult};

/// A user as RabbitMQ's internal user store keeps it.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: PasswordHash,
    pub tags: Vec<String>,
    pub limits: UserLimits,
}

/// Per-user limits (RabbitMQ's `max-connections`, `max-channels`); None: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    pub max_connections: Option<u64>,
    pub max_channels: Option<u64>,
}

/// Per-vhost limits (RabbitMQ's `max-connections`, `max-queues`); None: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VhostLimits {
    pub max_connections: Option<u64>,
    pub max_queues: Option<u64>,
}

impl User {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// A vhost's record (its queues and exchanges live in the broker's `VHost`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VhostRecord {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub limits: VhostLimits,
}

/// A permission row as stored: the patterns' sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRow {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// A topic permission row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPermissionRow {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// A user as stored: name, password hash (base64) and its algorithm, tags, limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub password_hash: String,
    pub algorithm: Algorithm,
    pub tags: Vec<String>,
    pub limits: UserLimits,
}

/// Everything `Access` keeps, as plain rows (what is saved and exported).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRows {
    pub users: Vec<UserRow>,
    pub vhosts: Vec<VhostRecord>,
    pub permissions: Vec<PermissionRow>,
    pub topic_permissions: Vec<TopicPermissionRow>,
    pub policies: Vec<policies::Policy>,
    /// Operator policies (RabbitMQ's `set_operator_policy`): limits that win over both the
    /// client and the policies.
    pub operator_policies: Vec<policies::Policy>,
}

#[derive(Debug, Default)]
struct Tables {
    users: BTreeMap<String, Arc<User>>,
    vhosts: BTreeMap<String, VhostRecord>,
    /// user → vhost → permission.
    permissions: BTreeMap<String, BTreeMap<String, Arc<Permission>>>,
    /// user → vhost → topic rows.
    topic: BTreeMap<String, BTreeMap<String, Vec<TopicPermission>>>,
    rows: Vec<PermissionRow>,
    /// vhost → policy name → policy.
    policies: BTreeMap<String, BTreeMap<String, policies::Policy>>,
    /// vhost → operator policy name → operator policy.
    operator_policies: BTreeMap<String, BTreeMap<String, policies::Policy>>,
}

/// Why a login failed (the texts are RabbitMQ's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong password (not told apart, in time either).
    Invalid,
    /// A `loopback_users` user from another host.
    LoopbackOnly,
}

/// The users, vhosts and permissions of the broker.
#[derive(Debug)]
pub struct Access {
    tables: RwLock<Tables>,
    /// Bumped on every change: connections re-read what they cached.
    generation: AtomicU64,
    /// Some topic permission exists: only then does a publish to a topic exchange check one.
    any_topic_permission: AtomicBool,
    /// Users that may only connect from the loopback interface (RabbitMQ: `loopback_users`).
    loopback_users: Vec<String>,
    /// Hashed against when the user does not exist, so a refusal takes as long either way.
    dummy: PasswordHash,
}

/// The user and vhost a fresh data directory starts with (RabbitMQ: guest/guest,
/// administrator, `/`, all permissions).
#[derive(Debug, Clone)]
pub struct Defaults {
    pub user: String,
    pub password: String,
    pub vhost: String,
    pub loopback_users: Vec<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            user: "guest".into(),
            password: "guest".into(),
            vhost: "/".into(),
            loopback_users: vec!["guest".into()],
        }
    }
}

impl Access {
    /// An empty registry (no users, no vhosts).
    pub fn empty(loopback_users: Vec<String>) -> Access {
        Access {
            tables: RwLock::new(Tables::default()),
            generation: AtomicU64::new(1),
            any_topic_permission: AtomicBool::new(false),
            loopback_users,
            dummy: PasswordHash::new("not a real password"),
        }
    }

    /// What a fresh data directory starts with.
    pub fn with_defaults(d: &Defaults) -> Access {
        let access = Access::empty(d.loopback_users.clone());
        access.put_user(User {
            name: d.user.clone(),
            password: PasswordHash::new(&d.password),
            tags: vec!["administrator".into()],
            limits: UserLimits::default(),
        });
        access.put_vhost(VhostRecord {
            name: d.vhost.clone(),
            // RabbitMQ's text for the vhost a fresh node makes.
            description: "Default virtual host".into(),
            ..VhostRecord::default()
        });
        access.set_permission(PermissionRow {
            user: d.user.clone(),
            vhost: d.vhost.clone(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        });
        access
    }

    /// Rebuilds from saved rows.
    pub fn from_rows(rows: &AccessRows, loopback_users: Vec<String>) -> Access {
        let access = Access::empty(loopback_users);
        for u in &rows.users {
            let password = PasswordHash::from_base64(&u.password_hash, u.algorithm)
                .unwrap_or_else(PasswordHash::none);
            access.put_user(User {
                name: u.name.clone(),
                password,
                tags: u.tags.clone(),
                limits: u.limits,
            });
        }
        for v in &rows.vhosts {
            access.put_vhost(v.clone());
        }
        for p in &rows.permissions {
            access.set_permission(p.clone());
        }
        for t in &rows.topic_permissions {
            access.set_topic_permission(t.clone());
        }
        for p in &rows.policies {
            access.set_policy(p.clone());
        }
        for p in &rows.operator_policies {
            access.set_operator_policy(p.clone());
        }
        access
    }

    /// Everything, as rows (sorted by name).
    pub fn rows(&self) -> AccessRows {
        let t = self.tables.read();
        let mut topic_permissions = Vec::new();
        for (user, by_vhost) in &t.topic {
            for (vhost, list) in by_vhost {
                for p in list {
                    topic_permissions.push(TopicPermissionRow {
                        user: user.clone(),
                        vhost: vhost.clone(),
                        exchange: p.exchange.clone(),
                        write: p.write.clone(),
                        read: p.read.clone(),
                    });
                }
            }
        }
        AccessRows {
            users: t
                .users
                .values()
                .map(|u| UserRow {
                    name: u.name.clone(),
                    password_hash: u.password.to_base64(),
                    algorithm: u.password.algorithm(),
                    tags: u.tags.clone(),
                    limits: u.limits,
                })
                .collect(),
            vhosts: t.vhosts.values().cloned().collect(),
            permissions: t.rows.clone(),
            topic_permissions,
            policies: t
                .policies
                .values()
                .flat_map(|by_name| by_name.values().cloned())
                .collect(),
            operator_policies: t
                .operator_policies
                .values()
                .flat_map(|by_name| by_name.values().cloned())
                .collect(),
        }
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Changes every time users or permissions change.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn put_user(&self, user: User) {
        self.tables
            .write()
            .users
            .insert(user.name.clone(), Arc::new(user));
        self.changed();
    }

    /// Removes a user and its permissions; false if there was none.
    pub fn delete_user(&self, name: &str) -> bool {
        let mut t = self.tables.write();
        let existed = t.users.remove(name).is_some();
        t.permissions.remove(name);
        t.topic.remove(name);
        t.rows.retain(|r| r.user != name);
        drop(t);
        self.changed();
        existed
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.tables.read().users.get(name).cloned()
    }

    pub fn put_vhost(&self, v: VhostRecord) {
        self.tables.write().vhosts.insert(v.name.clone(), v);
        self.changed();
    }

    /// Removes a vhost's record and every permission in it.
    pub fn delete_vhost(&self, name: &str) -> bool {
        let mut t = self.tables.write();
        let existed = t.vhosts.remove(name).is_some();
        for by_vhost in t.permissions.values_mut() {
            by_vhost.remove(name);
        }
        for by_vhost in t.topic.values_mut() {
            by_vhost.remove(name);
        }
        t.rows.retain(|r| r.vhost != name);
        t.policies.remove(name);
        t.operator_policies.remove(name);
        drop(t);
        self.changed();
        existed
    }

    /// A vhost's record.
    pub fn vhost_record(&self, name: &str) -> Option<VhostRecord> {
        self.tables.read().vhosts.get(name).cloned()
    }

    /// Removes a policy (`operator`: an operator policy); false if there was none.
    pub fn delete_policy(&self, vhost: &str, name: &str, operator: bool) -> bool {
        let mut t = self.tables.write();
        let table = if operator {
            &mut t.operator_policies
        } else {
            &mut t.policies
        };
        let existed = table
            .get_mut(vhost)
            .is_some_and(|by_name| by_name.remove(name).is_some());
        drop(t);
        self.changed();
        existed
    }

    /// Adds or replaces a policy (by vhost and name).
    pub fn set_policy(&self, p: policies::Policy) {
        self.tables
            .write()
            .policies
            .entry(p.vhost.clone())
            .or_default()
            .insert(p.name.clone(), p);
        self.changed();
    }

    /// Adds or replaces an operator policy (by vhost and name).
    pub fn set_operator_policy(&self, p: policies::Policy) {
        self.tables
            .write()
            .operator_policies
            .entry(p.vhost.clone())
            .or_default()
            .insert(p.name.clone(), p);
        self.changed();
    }

    /// The queue arguments the policy and the operator policy of `vhost` give a queue named
    /// `queue`.
    pub fn queue_policy(
        &self,
        vhost: &str,
        queue: &str,
        quorum: bool,
    ) -> Option<policies::PolicyArguments> {
        let t = self.tables.read();
        let none = BTreeMap::new();
        policies::queue_arguments(
            t.policies.get(vhost).unwrap_or(&none).values(),
            t.operator_policies.get(vhost).unwrap_or(&none).values(),
            queue,
            quorum,
        )
    }

    /// The names of the policy and operator policy that apply to a queue.
    pub fn queue_policy_names(
        &self,
        vhost: &str,
        queue: &str,
        quorum: bool,
    ) -> (Option<String>, Option<String>) {
        let t = self.tables.read();
        let none = BTreeMap::new();
        policies::queue_policy_names(
            t.policies.get(vhost).unwrap_or(&none).values(),
            t.operator_policies.get(vhost).unwrap_or(&none).values(),
            queue,
            quorum,
        )
    }

    /// The alternate exchange the policies of `vhost` give an exchange named `exchange`.
    pub fn exchange_policy_alternate(&self, vhost: &str, exchange: &str) -> Option<String> {
        let t = self.tables.read();
        policies::exchange_alternate(t.policies.get(vhost)?.values(), exchange)
    }

    pub fn vhost_exists(&self, name: &str) -> bool {
        self.tables.read().vhosts.contains_key(name)
    }

    /// A vhost's limits (none for an unknown vhost).
    pub fn vhost_limits(&self, name: &str) -> VhostLimits {
        self.tables
            .read()
            .vhosts
            .get(name)
            .map(|v| v.limits)
            .unwrap_or_default()
    }

    pub fn vhost_names(&self) -> Vec<String> {
        self.tables.read().vhosts.keys().cloned().collect()
    }

    pub fn set_permission(&self, row: PermissionRow) {
        let p = Arc::new(Permission::new(&row.configure, &row.write, &row.read));
        let mut t = self.tables.write();
        t.permissions
            .entry(row.user.clone())
            .or_default()
            .insert(row.vhost.clone(), p);
        t.rows
            .retain(|r| !(r.user == row.user && r.vhost == row.vhost));
        t.rows.push(row);
        drop(t);
        self.changed();
    }

    pub fn clear_permission(&self, user: &str, vhost: &str) {
        let mut t = self.tables.write();
        if let Some(by_vhost) = t.permissions.get_mut(user) {
            by_vhost.remove(vhost);
        }
        t.rows.retain(|r| !(r.user == user && r.vhost == vhost));
        drop(t);
        self.changed();
    }

    pub fn set_topic_permission(&self, row: TopicPermissionRow) {
        let mut t = self.tables.write();
        let list = t
            .topic
            .entry(row.user.clone())
            .or_default()
            .entry(row.vhost.clone())
            .or_default();
        list.retain(|p| p.exchange != row.exchange);
        list.push(TopicPermission::new(
            row.exchange,
            row.write,
            row.read,
            &row.user,
            &row.vhost,
        ));
        drop(t);
        self.any_topic_permission.store(true, Ordering::Release);
        self.changed();
    }

    /// The permission of `user` in `vhost`, if it has one.
    pub fn permission(&self, user: &str, vhost: &str) -> Option<Arc<Permission>> {
        self.tables
            .read()
            .permissions
            .get(user)?
            .get(vhost)
            .cloned()
    }

    /// Checks a password login (PLAIN, AMQPLAIN, update-secret). The work is the same whether
    /// or not the user exists.
    pub fn login(
        &self,
        user: &str,
        password: &[u8],
        from_loopback: bool,
    ) -> Result<Arc<User>, LoginError> {
        let Some(u) = self.user(user) else {
            let _ = self.dummy.matches(password);
            return Err(LoginError::Invalid);
        };
        if !u.password.matches(password) {
            return Err(LoginError::Invalid);
        }
        if !from_loopback && self.loopback_users.iter().any(|l| l == user) {
            return Err(LoginError::LoopbackOnly);
        }
        Ok(u)
    }

    /// Checks a login by certificate (SASL EXTERNAL): the user must exist; its password is not
    /// asked (RabbitMQ's internal backend with no credentials). loopback_users still apply.
    pub fn login_external(&self, user: &str, from_loopback: bool) -> Result<Arc<User>, LoginError> {
        let u = self.user(user).ok_or(LoginError::Invalid)?;
        if !from_loopback && self.loopback_users.iter().any(|l| l == user) {
            return Err(LoginError::LoopbackOnly);
        }
        Ok(u)
    }

    /// Whether `user` may open `vhost` (a permission row exists).
    pub fn may_open(&self, user: &str, vhost: &str) -> bool {
        self.permission(user, vhost).is_some()
    }
}

/// One connection's rights: its user in its vhost. Re-reads the permission row when the
/// registry changes.
#[derive(Debug)]
pub struct Grant {
    access: Arc<Access>,
    user: Arc<User>,
    vhost: Arc<str>,
}

/// The text RabbitMQ uses for the default exchange in permission checks.
const DEFAULT_EXCHANGE: &str = "amq.default";

/// What a check is about (for the name and the refusal's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Queue,
    Exchange,
}

impl Grant {
    pub fn new(access: Arc<Access>, user: Arc<User>, vhost: Arc<str>) -> Grant {
        Grant {
            access,
            user,
            vhost,
        }
    }

    /// A grant with every right (broker-internal work and unit tests).
    pub fn unrestricted(user: &str, vhost: &str) -> Grant {
        let access = Access::empty(Vec::new());
        access.set_permission(PermissionRow {
            user: user.into(),
            vhost: vhost.into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        });
        Grant {
            access: Arc::new(access),
            user: Arc::new(User {
                name: user.into(),
                password: PasswordHash::none(),
                tags: vec!["administrator".into()],
                limits: UserLimits::default(),
            }),
            vhost: vhost.into(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user.name
    }

    pub fn user_record(&self) -> &Arc<User> {
        &self.user
    }

    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// The registry's generation: a cached check made at an older one is made again.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.access.generation()
    }

    /// The `impersonator` tag lets a publisher set another user's user-id.
    pub fn may_impersonate(&self) -> bool {
        self.user.has_tag("impersonator")
    }

    /// RabbitMQ's check: a search of `kind`'s regex over the resource name; the default
    /// exchange is named `amq.default`. Refused: 403 with RabbitMQ 3.10's text.
    pub fn check(&self, kind: Kind, resource: Resource, name: &str) -> AmqpResult<()> {
        let name = match (resource, name) {
            (Resource::Exchange, "") => DEFAULT_EXCHANGE,
            (_, n) => n,
        };
        let allowed = self
            .access
            .permission(&self.user.name, &self.vhost)
            .is_some_and(|p| p.pattern(kind).allows(name));
        if allowed {
            return Ok(());
        }
        let what = match resource {
            Resource::Queue => "queue",
            Resource::Exchange => "exchange",
        };
        Err(AmqpError::access_refused(format!(
            "access to {what} '{name}' in vhost '{}' refused for user '{}'",
            self.vhost, self.user.name
        )))
    }

    /// Whether a topic exchange needs a routing-key check at all (cheap: one shared flag).
    #[inline]
    pub fn topic_checks_possible(&self) -> bool {
        self.access.any_topic_permission.load(Ordering::Acquire)
    }

    /// A topic permission check of `key` on topic exchange `exchange` (write on publish, read
    /// on queue.bind). Only applies when a row for that exchange exists.
    pub fn check_topic(&self, kind: Kind, exchange: &str, key: &str) -> AmqpResult<()> {
        if !self.topic_checks_possible() {
            return Ok(());
        }
        let t = self.access.tables.read();
        let Some(row) = t
            .topic
            .get(&self.user.name)
            .and_then(|v| v.get(&*self.vhost))
            .and_then(|list| list.iter().find(|p| p.exchange == exchange))
        else {
            return Ok(());
        };
        let pattern = match kind {
            Kind::Write => &row.write_pattern,
            _ => &row.read_pattern,
        };
        if pattern.allows(key) {
            return Ok(());
        }
        Err(AmqpError::access_refused(format!(
            "access to topic '{key}' in exchange '{exchange}' in vhost '{}' refused for user '{}'",
            self.vhost, self.user.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Access {
        let a = Access::with_defaults(&Defaults::default());
        a.put_user(User {
            name: "orders".into(),
            password: PasswordHash::new("secret"),
            tags: vec![],
            limits: UserLimits::default(),
        });
        a.put_vhost(VhostRecord {
            name: "shop".into(),
            ..Default::default()
        });
        a.set_permission(PermissionRow {
            user: "orders".into(),
            vhost: "shop".into(),
            configure: "^orders\\.".into(),
            write: "^(orders\\.|amq\\.default$)".into(),
            read: "".into(),
        });
        a
    }

    #[test]
    fn logins_check_the_password_and_loopback_users() {
        let a = registry();
        assert!(a.login("orders", b"secret", false).is_ok());
        assert_eq!(
            a.login("orders", b"wrong", true).err(),
            Some(LoginError::Invalid)
        );
        assert_eq!(
            a.login("nobody", b"secret", true).err(),
            Some(LoginError::Invalid)
        );
        assert!(a.login("guest", b"guest", true).is_ok());
        assert_eq!(
            a.login("guest", b"guest", false).err(),
            Some(LoginError::LoopbackOnly)
        );
    }

    #[test]
    fn checks_follow_the_regexes_with_rabbitmqs_texts() {
        let a = Arc::new(registry());
        let user = a.user("orders").expect("user");
        let g = Grant::new(a.clone(), user, "shop".into());
        assert!(g
            .check(Kind::Configure, Resource::Queue, "orders.eu")
            .is_ok());
        let e = g
            .check(Kind::Configure, Resource::Queue, "billing")
            .expect_err("refused");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.text,
            "ACCESS_REFUSED - access to queue 'billing' in vhost 'shop' refused for user 'orders'"
        );
        assert!(
            g.check(Kind::Write, Resource::Exchange, "").is_ok(),
            "amq.default"
        );
        assert!(g.check(Kind::Read, Resource::Queue, "orders.eu").is_err());
        assert!(!a.may_open("orders", "/"));
        a.clear_permission("orders", "shop");
        assert!(g
            .check(Kind::Configure, Resource::Queue, "orders.eu")
            .is_err());
    }

    #[test]
    fn topic_permissions_apply_only_where_a_row_exists() {
        let a = Arc::new(registry());
        let g = Grant::new(a.clone(), a.user("orders").expect("user"), "shop".into());
        assert!(g.check_topic(Kind::Write, "amq.topic", "anything").is_ok());
        a.set_topic_permission(TopicPermissionRow {
            user: "orders".into(),
            vhost: "shop".into(),
            exchange: "amq.topic".into(),
            write: "^{username}\\.".into(),
            read: ".*".into(),
        });
        assert!(g
            .check_topic(Kind::Write, "amq.topic", "orders.new")
            .is_ok());
        let e = g
            .check_topic(Kind::Write, "amq.topic", "billing.new")
            .expect_err("refused");
        assert_eq!(e.text, "ACCESS_REFUSED - access to topic 'billing.new' in exchange 'amq.topic' in vhost 'shop' refused for user 'orders'");
        assert!(g.check_topic(Kind::Write, "other", "billing.new").is_ok());
    }

    #[test]
    fn rows_round_trip() {
        let a = registry();
        let back = Access::from_rows(&a.rows(), vec![]);
        assert_eq!(back.rows(), a.rows());
        assert!(back.login("orders", b"secret", true).is_ok());
    }
}
