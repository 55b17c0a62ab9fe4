//! Definitions in RabbitMQ's JSON format (`rabbitmqctl export_definitions`,
//! `GET /api/definitions`): export and import of users, vhosts, permissions, topic
//! permissions, exchanges, queues and bindings, so a file moves between RabbitMQ and Warren
//! both ways. The users, vhosts and permissions part is also how Warren stores them.

use super::access::policies::{is_quorum, ApplyTo, Policy};
use super::access::{
    Access, AccessRows, Algorithm, PermissionRow, TopicPermissionRow, UserLimits, UserRow,
    VhostLimits, VhostRecord,
};
use super::vhost::{ExchangeDeclare, QueueDeclare};
use super::Broker;
use crate::broker::exchange::Dest;
use crate::protocol::json::{json_to_table, table_to_json};
use crate::protocol::AMQPValue;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

mod validate;

/// The file, field for field. Every array is always written (strict readers need them).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DefinitionsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    #[serde(default)]
    pub users: Vec<UserJson>,
    #[serde(default)]
    pub vhosts: Vec<VhostJson>,
    #[serde(default)]
    pub permissions: Vec<PermissionJson>,
    #[serde(default)]
    pub topic_permissions: Vec<TopicPermissionJson>,
    #[serde(default)]
    pub parameters: Vec<Value>,
    #[serde(default)]
    pub global_parameters: Vec<Value>,
    #[serde(default)]
    pub policies: Vec<PolicyJson>,
    #[serde(default)]
    pub queues: Vec<QueueJson>,
    #[serde(default)]
    pub exchanges: Vec<ExchangeJson>,
    #[serde(default)]
    pub bindings: Vec<BindingJson>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserJson {
    pub name: String,
    #[serde(default)]
    pub password_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// A list, or (older files) a comma-separated string.
    #[serde(default, deserialize_with = "list_or_commas")]
    pub tags: Vec<String>,
    #[serde(default = "empty_object")]
    pub limits: Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VhostJson {
    pub name: String,
    #[serde(default = "empty_object")]
    pub limits: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<VhostMetadata>,
    /// Older files put these at the top level instead of in `metadata`.
    #[serde(default, skip_serializing)]
    pub description: Option<String>,
    #[serde(default, skip_serializing, deserialize_with = "list_or_commas")]
    pub tags: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VhostMetadata {
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "list_or_commas")]
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PermissionJson {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TopicPermissionJson {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PolicyJson {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to", default = "all")]
    pub apply_to: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub definition: Map<String, Value>,
}

fn all() -> String {
    "all".into()
}

/// An operator policy as RabbitMQ exports it: a vhost parameter of component
/// `operator_policy` (3.10 writes the definition as a list of [key, value] pairs; a map is
/// read too). Ok(None): some other parameter.
fn operator_policy(param: &Value) -> Result<Option<Policy>, String> {
    if param.get("component").and_then(Value::as_str) != Some("operator_policy") {
        return Ok(None);
    }
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let name = text(param, "name").unwrap_or_default();
    let vhost = text(param, "vhost").unwrap_or_else(|| "/".into());
    let what = format!("operator policy '{name}' in vhost '{vhost}'");
    let value = param
        .get("value")
        .ok_or_else(|| format!("{what}: no value"))?;
    let pattern = text(value, "pattern").ok_or_else(|| format!("{what}: no pattern"))?;
    if regex::Regex::new(&pattern).is_err() {
        return Err(format!("{what}: pattern '{pattern}' is not a valid regex"));
    }
    let apply_to_name = text(value, "apply-to").unwrap_or_else(all);
    let apply_to = ApplyTo::from_name(&apply_to_name)
        .ok_or_else(|| format!("{what}: unknown apply-to '{apply_to_name}'"))?;
    let priority = value.get("priority").and_then(Value::as_i64).unwrap_or(0);
    let definition = match value.get("definition") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((k.clone(), v.clone())),
                _ => Err(format!(
                    "{what}: definition: {pair} is not a [key, value] pair"
                )),
            })
            .collect::<Result<Map<String, Value>, String>>()?,
        _ => return Err(format!("{what}: no definition")),
    };
    if let Some(why) = super::access::policies::operator_definition_error(&definition) {
        return Err(format!("{what}: definition: {why}"));
    }
    Ok(Some(Policy::new(
        &vhost, &name, &pattern, apply_to, priority, definition,
    )))
}

/// An operator policy as a vhost parameter (the definition as a map, as the HTTP API shows it).
fn operator_policy_json(p: &Policy) -> Value {
    serde_json::json!({
        "vhost": p.vhost,
        "component": "operator_policy",
        "name": p.name,
        "value": {
            "pattern": p.pattern,
            "apply-to": p.apply_to.name(),
            "priority": p.priority,
            "definition": p.definition,
        },
    })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QueueJson {
    pub name: String,
    pub vhost: String,
    #[serde(rename = "type", default = "classic")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExchangeJson {
    pub name: String,
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BindingJson {
    pub source: String,
    pub vhost: String,
    pub destination: String,
    pub destination_type: String,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn classic() -> String {
    "classic".into()
}

fn yes() -> bool {
    true
}

fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Text(String),
        Nothing(()),
    }
    Ok(match Tags::deserialize(d)? {
        Tags::List(l) => l,
        Tags::Text(t) => t
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        Tags::Nothing(()) => Vec::new(),
    })
}

/// The RabbitMQ release Warren's definitions say they come from (RabbitMQ reads the field).
const RABBIT_VERSION: &str = crate::broker::RABBITMQ_COMPATIBLE_VERSION;

/// Which hash a user's `password_hash` is: named, or (without a name) md5 in files from
/// RabbitMQ 3.0 to 3.5 and sha256 after (RabbitMQ's own rule).
fn algorithm_of(user: &UserJson, rabbit_version: Option<&str>) -> Option<Algorithm> {
    match &user.hashing_algorithm {
        Some(name) => Algorithm::from_name(name),
        None => {
            let old = rabbit_version.is_some_and(|v| {
                ["3.0", "3.1", "3.2", "3.3", "3.4", "3.5"]
                    .iter()
                    .any(|p| v == *p || v.starts_with(&format!("{p}.")))
            });
            Some(if old {
                Algorithm::Md5
            } else {
                Algorithm::Sha256
            })
        }
    }
}

/// A limit from a `limits` object (RabbitMQ: a negative value means no limit; an empty
/// list, as RabbitMQ 3.10 writes for no limits, has none).
fn limit(limits: &Value, key: &str) -> Option<u64> {
    limits
        .get(key)?
        .as_i64()
        .and_then(|n| u64::try_from(n).ok())
}

fn limits_json(pairs: &[(&str, Option<u64>)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), Value::from(v))))
            .collect(),
    )
}

fn access_part(access: &Access) -> DefinitionsFile {
    let rows = access.rows();
    DefinitionsFile {
        rabbit_version: Some(RABBIT_VERSION.into()),
        rabbitmq_version: Some(RABBIT_VERSION.into()),
        product_name: Some("Warren".into()),
        product_version: Some(env!("CARGO_PKG_VERSION").into()),
        users: rows
            .users
            .into_iter()
            .map(|u| UserJson {
                name: u.name,
                password_hash: u.password_hash,
                hashing_algorithm: Some(u.algorithm.name().into()),
                tags: u.tags,
                limits: limits_json(&[
                    ("max-connections", u.limits.max_connections),
                    ("max-channels", u.limits.max_channels),
                ]),
            })
            .collect(),
        vhosts: rows
            .vhosts
            .into_iter()
            .map(|v| VhostJson {
                limits: limits_json(&[
                    ("max-connections", v.limits.max_connections),
                    ("max-queues", v.limits.max_queues),
                ]),
                name: v.name,
                metadata: Some(VhostMetadata {
                    description: v.description,
                    tags: v.tags,
                }),
                description: None,
                tags: Vec::new(),
            })
            .collect(),
        permissions: rows
            .permissions
            .into_iter()
            .map(|p| PermissionJson {
                user: p.user,
                vhost: p.vhost,
                configure: p.configure,
                write: p.write,
                read: p.read,
            })
            .collect(),
        topic_permissions: rows
            .topic_permissions
            .into_iter()
            .map(|t| TopicPermissionJson {
                user: t.user,
                vhost: t.vhost,
                exchange: t.exchange,
                write: t.write,
                read: t.read,
            })
            .collect(),
        parameters: rows
            .operator_policies
            .iter()
            .map(operator_policy_json)
            .collect(),
        policies: rows
            .policies
            .into_iter()
            .map(|p| PolicyJson {
                vhost: p.vhost,
                name: p.name,
                pattern: p.pattern,
                apply_to: p.apply_to.name().into(),
                priority: p.priority,
                definition: p.definition,
            })
            .collect(),
        ..DefinitionsFile::default()
    }
}

/// Users, vhosts and permissions as stored in the data directory.
pub fn access_to_json(access: &Access) -> Vec<u8> {
    serde_json::to_vec_pretty(&access_part(access)).unwrap_or_default()
}

/// Reads what `access_to_json` wrote.
pub fn access_from_json(data: &[u8], loopback_users: Vec<String>) -> std::io::Result<Access> {
    let file: DefinitionsFile = serde_json::from_slice(data)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Access::from_rows(&access_rows(&file), loopback_users))
}

fn access_rows(file: &DefinitionsFile) -> AccessRows {
    let version = file.rabbit_version.as_deref();
    AccessRows {
        users: file
            .users
            .iter()
            .map(|u| UserRow {
                name: u.name.clone(),
                password_hash: u.password_hash.clone(),
                algorithm: algorithm_of(u, version).unwrap_or(Algorithm::Sha256),
                tags: u.tags.clone(),
                limits: UserLimits {
                    max_connections: limit(&u.limits, "max-connections"),
                    max_channels: limit(&u.limits, "max-channels"),
                },
            })
            .collect(),
        vhosts: file.vhosts.iter().map(vhost_record).collect(),
        permissions: file
            .permissions
            .iter()
            .map(|p| PermissionRow {
                user: p.user.clone(),
                vhost: p.vhost.clone(),
                configure: p.configure.clone(),
                write: p.write.clone(),
                read: p.read.clone(),
            })
            .collect(),
        topic_permissions: file
            .topic_permissions
            .iter()
            .map(|t| TopicPermissionRow {
                user: t.user.clone(),
                vhost: t.vhost.clone(),
                exchange: t.exchange.clone(),
                write: t.write.clone(),
                read: t.read.clone(),
            })
            .collect(),
        policies: file
            .policies
            .iter()
            .filter_map(|p| {
                let apply_to = ApplyTo::from_name(&p.apply_to)?;
                Some(Policy::new(
                    &p.vhost,
                    &p.name,
                    &p.pattern,
                    apply_to,
                    p.priority,
                    p.definition.clone(),
                ))
            })
            .collect(),
        operator_policies: file
            .parameters
            .iter()
            .filter_map(|p| operator_policy(p).ok().flatten())
            .collect(),
    }
}

fn vhost_record(v: &VhostJson) -> VhostRecord {
    let (description, tags) = match &v.metadata {
        Some(m) => (m.description.clone(), m.tags.clone()),
        None => (v.description.clone().unwrap_or_default(), v.tags.clone()),
    };
    VhostRecord {
        name: v.name.clone(),
        description,
        tags,
        limits: VhostLimits {
            max_connections: limit(&v.limits, "max-connections"),
            max_queues: limit(&v.limits, "max-queues"),
        },
    }
}

/// What an import did not apply, each with the reason (the rest was applied).
#[derive(Debug, Default)]
pub struct ImportReport {
    pub skipped: Vec<String>,
}

impl Broker {
    /// Every definition, in RabbitMQ's format (exclusive queues, the default exchange, the
    /// amq.* exchanges and the implicit default bindings left out, as RabbitMQ does).
    pub fn export_definitions(&self) -> DefinitionsFile {
        let mut file = access_part(self.access());
        for vhost in self.vhosts() {
            let name = vhost.name.to_string();
            for q in vhost.queue_list() {
                if q.spec.exclusive_owner.is_some() {
                    continue;
                }
                let kind = match q.spec.arguments.inner().get("x-queue-type") {
                    Some(AMQPValue::LongString(s)) => {
                        String::from_utf8_lossy(s.as_bytes()).into_owned()
                    }
                    _ => "classic".into(),
                };
                file.queues.push(QueueJson {
                    name: q.name().to_string(),
                    vhost: name.clone(),
                    kind,
                    durable: q.spec.durable,
                    auto_delete: q.spec.auto_delete,
                    arguments: table_to_json(&q.spec.arguments),
                });
            }
            for x in vhost.exchange_list() {
                for b in x.bindings() {
                    let (destination, destination_type) = match &b.dest {
                        Dest::Queue(q) if q.spec.exclusive_owner.is_some() => continue,
                        Dest::Queue(q) => (q.name().to_string(), "queue"),
                        Dest::Exchange(e) => (e.to_string(), "exchange"),
                    };
                    file.bindings.push(BindingJson {
                        source: x.spec.name.to_string(),
                        vhost: name.clone(),
                        destination,
                        destination_type: destination_type.into(),
                        routing_key: b.routing_key.clone(),
                        arguments: table_to_json(&b.arguments),
                    });
                }
                if x.spec.name.is_empty() || x.spec.name.starts_with("amq.") {
                    continue;
                }
                file.exchanges.push(ExchangeJson {
                    name: x.spec.name.to_string(),
                    vhost: name.clone(),
                    kind: x.spec.type_name().into(),
                    durable: x.spec.durable,
                    auto_delete: x.spec.auto_delete,
                    internal: x.spec.internal,
                    arguments: table_to_json(&x.spec.arguments),
                });
            }
        }
        file
    }

    /// Checks a definitions file, then applies it in RabbitMQ's order (users, vhosts, permissions, exchanges,
    /// topic permissions, queues, bindings). Existing objects are kept; what cannot be applied
    /// is reported and skipped. Policies and operator policies apply to the queues and
    /// exchanges that exist already too; other parameters are reported.
    pub fn import_definitions(&self, file: &DefinitionsFile) -> std::io::Result<ImportReport> {
        // A file with a bad item imports nothing; the error names the item and the field.
        validate::validate(file, self)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut report = ImportReport::default();
        let rows = access_rows(file);
        let access = self.access();
        for (u, row) in file.users.iter().zip(rows.users) {
            let name = &row.name;
            if algorithm_of(u, file.rabbit_version.as_deref()).is_none() {
                report.skipped.push(format!(
                    "user '{name}': unknown hashing_algorithm {:?}",
                    u.hashing_algorithm
                ));
                continue;
            }
            let hash = super::access::PasswordHash::from_base64(&row.password_hash, row.algorithm);
            let Some(password) = hash else {
                report
                    .skipped
                    .push(format!("user '{name}': password_hash is not valid"));
                continue;
            };
            access.put_user(super::access::User {
                name: row.name,
                password,
                tags: row.tags,
                limits: row.limits,
            });
        }
        for v in rows.vhosts {
            self.add_vhost(v)?;
        }
        for p in rows.permissions {
            access.set_permission(p);
        }
        // Policies before the exchanges and queues they apply to (this import does not
        // re-apply them to objects that exist already).
        for p in &file.policies {
            if ApplyTo::from_name(&p.apply_to).is_none() {
                report.skipped.push(format!(
                    "policy '{}' in vhost '{}': unknown apply-to '{}'",
                    p.name, p.vhost, p.apply_to
                ));
            }
        }
        for p in rows.policies {
            access.set_policy(p);
        }
        for x in &file.exchanges {
            let Some(vhost) = self.vhost(&x.vhost) else {
                report
                    .skipped
                    .push(format!("exchange '{}': no vhost '{}'", x.name, x.vhost));
                continue;
            };
            let arguments = json_to_table(&x.arguments);
            let alternate = access.exchange_policy_alternate(&x.vhost, &x.name);
            let declared = vhost.declare_exchange(&ExchangeDeclare {
                name: &x.name,
                policy_alternate: alternate.as_deref(),
                kind: &x.kind,
                passive: false,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: &arguments,
            });
            if let Err(e) = declared {
                report.skipped.push(format!(
                    "exchange '{}' in vhost '{}': {}",
                    x.name, x.vhost, e.text
                ));
            }
        }
        for t in rows.topic_permissions {
            access.set_topic_permission(t);
        }
        // Operator policies are vhost parameters; other ones (federation, shovels, ...) are
        // not supported. Global parameters (cluster_name, internal_cluster_id) mean nothing
        // here.
        let mut other_parameters = 0;
        for p in &file.parameters {
            match operator_policy(p) {
                Ok(Some(_)) => {}
                Ok(None) => other_parameters += 1,
                Err(why) => report.skipped.push(why),
            }
        }
        for p in rows.operator_policies {
            access.set_operator_policy(p);
        }
        if other_parameters > 0 {
            report
                .skipped
                .push(format!("{other_parameters} parameters: not supported"));
        }
        for q in &file.queues {
            let Some(vhost) = self.vhost(&q.vhost) else {
                report
                    .skipped
                    .push(format!("queue '{}': no vhost '{}'", q.name, q.vhost));
                continue;
            };
            let arguments = json_to_table(&q.arguments);
            let declared = vhost.declare_queue(
                &QueueDeclare {
                    name: &q.name,
                    server_named: false,
                    max_queues: None,
                    policy: access
                        .queue_policy(&q.vhost, &q.name, is_quorum(&arguments))
                        .as_ref(),
                    passive: false,
                    durable: q.durable,
                    exclusive: false,
                    auto_delete: q.auto_delete,
                    arguments: &arguments,
                },
                0,
            );
            if let Err(e) = declared {
                report.skipped.push(format!(
                    "queue '{}' in vhost '{}': {}",
                    q.name, q.vhost, e.text
                ));
            }
        }
        for b in &file.bindings {
            let Some(vhost) = self.vhost(&b.vhost) else {
                report.skipped.push(format!(
                    "binding from '{}': no vhost '{}'",
                    b.source, b.vhost
                ));
                continue;
            };
            let arguments = json_to_table(&b.arguments);
            let bound = if b.destination_type == "exchange" {
                vhost.bind_exchange(&b.destination, &b.source, &b.routing_key, &arguments)
            } else {
                vhost.bind_queue(&b.destination, &b.source, &b.routing_key, &arguments, 0)
            };
            if let Err(e) = bound {
                report.skipped.push(format!(
                    "binding '{}' -> '{}' in vhost '{}': {}",
                    b.source, b.destination, b.vhost, e.text
                ));
            }
        }
        // Recorded first: what the policies below drop from existing queues is dropped
        // under policies that a crash cannot take back.
        self.save_access()?;
        // Objects that existed before the import (recovered at start-up, or declared since)
        // get the policies as they are now.
        if !file.policies.is_empty() || !file.parameters.is_empty() {
            for vhost in self.vhosts() {
                vhost.apply_policies(access);
            }
        }
        if !self.sync_definitions(std::time::Duration::from_secs(60)) {
            return Err(std::io::Error::other(
                "the imported definitions could not be written",
            ));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `rabbitmqctl export_definitions` writes on RabbitMQ 3.10, trimmed.
    const FROM_RABBITMQ: &str = r#"{
      "rabbit_version": "3.10.8", "rabbitmq_version": "3.10.8",
      "product_name": "RabbitMQ", "product_version": "3.10.8",
      "users": [
        {"name": "guest", "password_hash": "A0EX/2hiwrIDKFS+nEqwbCGcVxwEkDBFF3mBfkNW53KFFk64",
         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"],
         "limits": {}},
        {"name": "legacy", "password_hash": "", "tags": "monitoring,management"}
      ],
      "vhosts": [{"name": "/", "limits": [], "metadata": {"description": "Default virtual host", "tags": []}},
                 {"name": "shop", "description": "old style", "tags": "a,b"}],
      "permissions": [{"user": "guest", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"}],
      "topic_permissions": [],
      "parameters": [], "global_parameters": [], "policies": [],
      "queues": [{"name": "orders", "vhost": "shop", "durable": true, "auto_delete": false,
                  "arguments": {"x-message-ttl": 60000, "x-queue-type": "classic"}}],
      "exchanges": [{"name": "events", "vhost": "shop", "type": "topic", "durable": true,
                     "auto_delete": false, "internal": false, "arguments": {}}],
      "bindings": [{"source": "events", "vhost": "shop", "destination": "orders",
                    "destination_type": "queue", "routing_key": "order.#", "arguments": {}}]
    }"#;

    #[test]
    fn a_rabbitmq_export_imports_and_exports_again() {
        let file: DefinitionsFile = serde_json::from_str(FROM_RABBITMQ).expect("parses");
        assert_eq!(file.users[1].tags, ["monitoring", "management"]);
        let broker = Broker::new();
        let report = broker.import_definitions(&file).expect("imports");
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert!(broker.access().login("guest", b"guest", true).is_ok());
        assert!(broker.access().may_open("guest", "shop"));
        let shop = broker.vhost("shop").expect("vhost shop");
        assert!(shop.queue("orders", 1).is_ok());
        let out = broker.export_definitions();
        let text = serde_json::to_string(&out).expect("serializes");
        let again: DefinitionsFile = serde_json::from_str(&text).expect("parses back");
        assert_eq!(again.queues.len(), 1);
        assert_eq!(again.queues[0].arguments["x-message-ttl"], 60000);
        assert_eq!(again.exchanges.len(), 1, "amq.* left out");
        assert_eq!(again.bindings.len(), 1);
        assert_eq!(again.bindings[0].routing_key, "order.#");
        let shop_record = again
            .vhosts
            .iter()
            .find(|v| v.name == "shop")
            .expect("shop");
        let meta = shop_record.metadata.as_ref().expect("metadata");
        assert_eq!(
            (meta.description.as_str(), meta.tags.len()),
            ("old style", 2)
        );
        for key in [
            "users",
            "vhosts",
            "permissions",
            "topic_permissions",
            "parameters",
            "global_parameters",
            "policies",
            "queues",
            "exchanges",
            "bindings",
        ] {
            assert!(
                text.contains(&format!("\"{key}\":[")),
                "{key} always written"
            );
        }
    }

    #[test]
    fn md5_is_assumed_for_files_from_rabbitmq_3_5_and_earlier() {
        let u = UserJson {
            name: "x".into(),
            password_hash: String::new(),
            hashing_algorithm: None,
            tags: vec![],
            limits: empty_object(),
        };
        assert_eq!(algorithm_of(&u, Some("3.5.7")), Some(Algorithm::Md5));
        assert_eq!(algorithm_of(&u, Some("3.6.0")), Some(Algorithm::Sha256));
        assert_eq!(algorithm_of(&u, None), Some(Algorithm::Sha256));
    }
}
