//! Checks a definitions file before anything of it is applied, so that a bad file imports
//! nothing: the first problem is named by its item and field, e.g.
//! `permissions[2] (user 'app' in vhost 'shop'): field 'write': '(' is not a valid regex`.

use super::{algorithm_of, operator_policy, DefinitionsFile};
use crate::broker::access::policies::{policy_definition_error, ApplyTo};
use crate::broker::access::PasswordHash;
use crate::broker::exchange::parse_type;
use crate::broker::Broker;
use crate::protocol::json::json_to_table;
use regex::Regex;
use std::collections::HashSet;

/// The first problem of `file` against what `broker` already holds, if any.
pub fn validate(file: &DefinitionsFile, broker: &Broker) -> Result<(), String> {
    let access = broker.access();
    let in_file_vhosts: HashSet<&str> = file.vhosts.iter().map(|v| v.name.as_str()).collect();
    let vhost_known = |v: &str| in_file_vhosts.contains(v) || broker.vhost(v).is_some();
    let in_file_users: HashSet<&str> = file.users.iter().map(|u| u.name.as_str()).collect();
    let user_known = |u: &str| in_file_users.contains(u) || access.user(u).is_some();
    let regex = |what: &str, field: &str, pattern: &str| match Regex::new(pattern) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{what}: field '{field}': '{pattern}' is not a valid regex"
        )),
    };
    let no_vhost = |what: &str, vhost: &str| format!("{what}: field 'vhost': no vhost '{vhost}'");

    for (i, u) in file.users.iter().enumerate() {
        let what = format!("users[{i}] (user '{}')", u.name);
        if u.name.is_empty() {
            return Err(format!("{what}: field 'name': empty"));
        }
        let Some(algorithm) = algorithm_of(u, file.rabbit_version.as_deref()) else {
            return Err(format!(
                "{what}: field 'hashing_algorithm': unknown {:?}",
                u.hashing_algorithm.as_deref().unwrap_or_default()
            ));
        };
        if PasswordHash::from_base64(&u.password_hash, algorithm).is_none() {
            return Err(format!(
                "{what}: field 'password_hash': not a valid hash for {}",
                algorithm.name()
            ));
        }
    }
    for (i, v) in file.vhosts.iter().enumerate() {
        if v.name.is_empty() {
            return Err(format!("vhosts[{i}]: field 'name': empty"));
        }
    }
    for (i, p) in file.permissions.iter().enumerate() {
        let what = format!(
            "permissions[{i}] (user '{}' in vhost '{}')",
            p.user, p.vhost
        );
        if !user_known(&p.user) {
            return Err(format!("{what}: field 'user': no user '{}'", p.user));
        }
        if !vhost_known(&p.vhost) {
            return Err(no_vhost(&what, &p.vhost));
        }
        regex(&what, "configure", &p.configure)?;
        regex(&what, "write", &p.write)?;
        regex(&what, "read", &p.read)?;
    }
    for (i, t) in file.topic_permissions.iter().enumerate() {
        let what = format!(
            "topic_permissions[{i}] (user '{}' in vhost '{}')",
            t.user, t.vhost
        );
        if !user_known(&t.user) {
            return Err(format!("{what}: field 'user': no user '{}'", t.user));
        }
        if !vhost_known(&t.vhost) {
            return Err(no_vhost(&what, &t.vhost));
        }
        // `{username}` and `{vhost}` are expanded before the pattern is compiled.
        let expand = |p: &str| {
            p.replace("{username}", &t.user)
                .replace("{vhost}", &t.vhost)
        };
        regex(&what, "write", &expand(&t.write))?;
        regex(&what, "read", &expand(&t.read))?;
    }
    for (i, p) in file.policies.iter().enumerate() {
        let what = format!("policies[{i}] (policy '{}' in vhost '{}')", p.name, p.vhost);
        if !vhost_known(&p.vhost) {
            return Err(no_vhost(&what, &p.vhost));
        }
        if ApplyTo::from_name(&p.apply_to).is_none() {
            return Err(format!(
                "{what}: field 'apply-to': unknown '{}'",
                p.apply_to
            ));
        }
        regex(&what, "pattern", &p.pattern)?;
        if let Some(why) = policy_definition_error(&p.definition) {
            return Err(format!("{what}: field 'definition': {why}"));
        }
    }
    for (i, p) in file.parameters.iter().enumerate() {
        operator_policy(p).map_err(|why| format!("parameters[{i}]: {why}"))?;
        if let Some(v) = p.get("vhost").and_then(|v| v.as_str()) {
            if !vhost_known(v) {
                return Err(no_vhost(&format!("parameters[{i}]"), v));
            }
        }
    }
    let mut exchanges: HashSet<(&str, &str)> = HashSet::new();
    for (i, x) in file.exchanges.iter().enumerate() {
        let what = format!(
            "exchanges[{i}] (exchange '{}' in vhost '{}')",
            x.name, x.vhost
        );
        if !vhost_known(&x.vhost) {
            return Err(no_vhost(&what, &x.vhost));
        }
        if x.name.is_empty() {
            return Err(format!("{what}: field 'name': empty"));
        }
        let arguments = json_to_table(&x.arguments);
        match parse_type(&x.kind, &arguments) {
            Err(e) => return Err(format!("{what}: field 'type': {}", e.text)),
            Ok((kind, _)) => {
                let plugin_type = kind == crate::broker::exchange::ExchangeKind::Deduplication;
                if let Err(e) = crate::broker::exchange::dedup::Settings::from_arguments(
                    plugin_type,
                    &arguments,
                ) {
                    return Err(format!("{what}: field 'arguments': {}", e.text));
                }
            }
        }
        exchanges.insert((&x.vhost, &x.name));
    }
    let mut queues: HashSet<(&str, &str)> = HashSet::new();
    for (i, q) in file.queues.iter().enumerate() {
        let what = format!("queues[{i}] (queue '{}' in vhost '{}')", q.name, q.vhost);
        if !vhost_known(&q.vhost) {
            return Err(no_vhost(&what, &q.vhost));
        }
        if q.name.is_empty() {
            return Err(format!("{what}: field 'name': empty"));
        }
        queues.insert((&q.vhost, &q.name));
    }
    // The predeclared exchanges exist in every vhost, new ones included.
    let predeclared = |name: &str| {
        matches!(
            name,
            "amq.direct" | "amq.fanout" | "amq.topic" | "amq.headers" | "amq.match"
        )
    };
    let exchange_known = |vhost: &str, name: &str| {
        predeclared(name)
            || exchanges.contains(&(vhost, name))
            || broker
                .vhost(vhost)
                .is_some_and(|v| v.exchange(name).is_ok())
    };
    for (i, b) in file.bindings.iter().enumerate() {
        let what = format!(
            "bindings[{i}] ('{}' -> '{}' in vhost '{}')",
            b.source, b.destination, b.vhost
        );
        if !vhost_known(&b.vhost) {
            return Err(no_vhost(&what, &b.vhost));
        }
        if !exchange_known(&b.vhost, &b.source) {
            return Err(format!(
                "{what}: field 'source': no exchange '{}'",
                b.source
            ));
        }
        let found = match b.destination_type.as_str() {
            "queue" => {
                queues.contains(&(b.vhost.as_str(), b.destination.as_str()))
                    || broker
                        .vhost(&b.vhost)
                        .is_some_and(|v| v.queue(&b.destination, 0).is_ok())
            }
            "exchange" => exchange_known(&b.vhost, &b.destination),
            other => {
                return Err(format!(
                    "{what}: field 'destination_type': '{other}' is not queue or exchange"
                ))
            }
        };
        if !found {
            return Err(format!(
                "{what}: field 'destination': no {} '{}'",
                b.destination_type, b.destination
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "users": [{"name": "app", "password_hash": "A0EX/2hiwrIDKFS+nEqwbCGcVxwEkDBFF3mBfkNW53KFFk64",
                 "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}],
      "vhosts": [{"name": "shop"}],
      "permissions": [{"user": "app", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"}],
      "policies": [{"vhost": "shop", "name": "p", "pattern": "^q", "apply-to": "queues",
                    "definition": {"max-length": 1}}],
      "queues": [{"name": "q", "vhost": "shop", "durable": false, "auto_delete": false, "arguments": {}}],
      "exchanges": [{"name": "x", "vhost": "shop", "type": "topic", "durable": false,
                     "auto_delete": false, "internal": false, "arguments": {}}],
      "bindings": [{"source": "x", "vhost": "shop", "destination": "q", "destination_type": "queue",
                    "routing_key": "k", "arguments": {}},
                   {"source": "amq.topic", "vhost": "shop", "destination": "x",
                    "destination_type": "exchange", "routing_key": "k", "arguments": {}}]
    }"#;

    /// GOOD with one JSON pointer replaced.
    fn spoiled(pointer: &str, value: serde_json::Value) -> DefinitionsFile {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).expect("json");
        *v.pointer_mut(pointer).expect("pointer") = value;
        serde_json::from_value(v).expect("still a definitions file")
    }

    #[test]
    fn a_bad_item_is_named_with_its_field_and_nothing_is_imported() {
        let broker = Broker::new();
        let good: DefinitionsFile = serde_json::from_str(GOOD).expect("json");
        assert_eq!(validate(&good, &broker), Ok(()));
        let cases = [
            ("/permissions/0/write", "(".into(), "permissions[0] (user 'app' in vhost 'shop'): field 'write': '(' is not a valid regex"),
            ("/users/0/hashing_algorithm", "rot13".into(), "users[0] (user 'app'): field 'hashing_algorithm': unknown \"rot13\""),
            ("/users/0/password_hash", "not base64!".into(), "users[0] (user 'app'): field 'password_hash': not a valid hash"),
            ("/policies/0/pattern", "[".into(), "policies[0] (policy 'p' in vhost 'shop'): field 'pattern'"),
            ("/policies/0/apply-to", "everything".into(), "field 'apply-to': unknown 'everything'"),
            ("/queues/0/vhost", "nowhere".into(), "queues[0] (queue 'q' in vhost 'nowhere'): field 'vhost': no vhost 'nowhere'"),
            ("/exchanges/0/type", "x-unknown".into(), "exchanges[0] (exchange 'x' in vhost 'shop'): field 'type'"),
            ("/bindings/0/destination", "missing".into(), "bindings[0] ('x' -> 'missing' in vhost 'shop'): field 'destination': no queue 'missing'"),
            ("/permissions/0/user", "ghost".into(), "field 'user': no user 'ghost'"),
        ];
        for (pointer, value, expected) in cases {
            let file = spoiled(pointer, value);
            let err = broker.import_definitions(&file).expect_err(pointer);
            assert!(
                err.to_string().starts_with(expected) || err.to_string().contains(expected),
                "{pointer}: {err}"
            );
            // Nothing of it was applied.
            assert!(broker.access().user("app").is_none(), "{pointer}");
            assert!(broker.vhost("shop").is_none(), "{pointer}");
        }
        broker
            .import_definitions(&good)
            .expect("the good file imports");
        assert!(broker
            .vhost("shop")
            .is_some_and(|v| v.queue("q", 0).is_ok()));
    }
}
