//! The management HTTP API's tenancy part, as RabbitMQ 3.10's management plugin answers it
//! (checked with curl against Debian's RabbitMQ): logins and tags, vhosts, users, permissions
//! and policies changed at run time and usable at once, definitions, health checks.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

mod common;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

const GUEST: Option<(&str, &str)> = Some(("guest", "guest"));

#[tokio::test]
async fn logins_and_tags_are_checked_as_rabbitmq_does() {
    let b = start().await;
    let api = management(&b).await;
    let r = http(api, "GET", "/api/whoami", GUEST, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "guest", "tags": ["administrator"]})
    );
    for credentials in [Some(("guest", "wrong")), None] {
        let r = http(api, "GET", "/api/whoami", credentials, None).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"RabbitMQ Management\"")
        );
        assert_eq!(
            r.json(),
            serde_json::json!({"error": "not_authorized", "reason": "Login failed"})
        );
    }
    // A user without a management tag, and one that is not an administrator.
    for (name, tags) in [("plain", ""), ("watcher", "management")] {
        let body = format!(r#"{{"password": "pw", "tags": "{tags}"}}"#);
        let path = format!("/api/users/{name}");
        assert_eq!(
            http(api, "PUT", &path, GUEST, Some(&body)).await.status,
            201
        );
    }
    let r = http(api, "GET", "/api/whoami", Some(("plain", "pw")), None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            serde_json::json!({"error": "not_authorised", "reason": "Not management user"})
        )
    );
    let r = http(api, "GET", "/api/users", Some(("watcher", "pw")), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "Not administrator user");
    let r = http(api, "GET", "/api/no/such/thing", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            serde_json::json!({"error": "Object Not Found", "reason": "Not Found"})
        )
    );
}

#[tokio::test]
async fn vhosts_users_and_permissions_made_at_run_time_are_usable_at_once() {
    let b = start().await;
    let api = management(&b).await;
    let put = |path: &'static str, body: &'static str| async move {
        http(api, "PUT", path, GUEST, Some(body)).await.status
    };
    assert_eq!(
        put("/api/vhosts/shop", r#"{"description": "the shop"}"#).await,
        201
    );
    assert_eq!(put("/api/vhosts/shop", r#"{"tags": "a,b"}"#).await, 204);
    // RabbitMQ's own example creates a vhost with an empty body.
    assert_eq!(put("/api/vhosts/bare", "").await, 201);
    assert_eq!(
        put(
            "/api/users/app",
            r#"{"password": "secret", "tags": "management"}"#
        )
        .await,
        201
    );
    let bad = http(
        api,
        "PUT",
        "/api/permissions/shop/app",
        GUEST,
        Some(r#"{"configure": "(", "write": ".*", "read": ".*"}"#),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "bad_request");
    assert_eq!(
        put(
            "/api/permissions/shop/app",
            r#"{"configure": ".*", "write": ".*", "read": ".*"}"#
        )
        .await,
        201
    );
    let vhost = http(api, "GET", "/api/vhosts/shop", GUEST, None)
        .await
        .json();
    assert_eq!(vhost["name"], "shop");
    assert_eq!(vhost["description"], "the shop");
    assert_eq!(vhost["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(vhost["metadata"]["description"], "the shop");
    let user = http(api, "GET", "/api/users/app", GUEST, None).await.json();
    assert_eq!(user["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert_eq!(user["tags"], serde_json::json!(["management"]));
    assert_eq!(
        http(api, "GET", "/api/permissions/shop/app", GUEST, None)
            .await
            .json(),
        serde_json::json!({"user": "app", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"})
    );
    // The management user sees the vhost it has a permission in, and only that one.
    let seen = http(api, "GET", "/api/vhosts", Some(("app", "secret")), None)
        .await
        .json();
    let names: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop"]);

    // Usable over AMQP at once.
    let uri = format!("amqp://app:secret@{}/shop", b.addr);
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "orders").await;
    publish(&ch, "", "orders", b"first order").await;
    assert_eq!(count(&ch, "orders").await, 1);

    // Deleting the vhost closes its connections (320) and its queues go.
    let r = http(api, "DELETE", "/api/vhosts/shop", GUEST, None).await;
    assert_eq!(r.status, 204);
    assert!(
        eventually(|| async { !conn.status().connected() }).await,
        "the vhost's connection is closed"
    );
    assert_eq!(
        http(api, "GET", "/api/vhosts/shop", GUEST, None)
            .await
            .status,
        404
    );
    assert_eq!(
        http(api, "DELETE", "/api/users/app", GUEST, None)
            .await
            .status,
        204
    );
    assert_eq!(
        http(api, "DELETE", "/api/users/app", GUEST, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_policy_set_over_the_api_applies_to_queues_that_exist() {
    let b = start().await;
    let api = management(&b).await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare(
        "pol.q".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for i in 0..5 {
        publish(&ch, "", "pol.q", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(count(&ch, "pol.q").await, 5);
    let r = http(
        api,
        "PUT",
        "/api/policies/%2F/short",
        GUEST,
        Some(r#"{"pattern": "^pol\\.", "definition": {"max-length": 2}, "apply-to": "queues"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(count(&ch, "pol.q").await, 2, "the oldest three are dropped");
    assert_eq!(
        http(api, "GET", "/api/policies/%2F", GUEST, None)
            .await
            .json(),
        serde_json::json!([{"vhost": "/", "name": "short", "pattern": "^pol\\.",
                            "apply-to": "queues", "definition": {"max-length": 2},
                            "priority": 0}])
    );
    let r = http(
        api,
        "PUT",
        "/api/policies/%2F/broken",
        GUEST,
        Some(r#"{"pattern": "[", "definition": {"max-length": 1}}"#),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = http(
        api,
        "PUT",
        "/api/policies/%2F/bogus",
        GUEST,
        Some(r#"{"pattern": ".*", "definition": {"overflow": "bogus"}}"#),
    )
    .await;
    assert_eq!(r.status, 400);
    // A policymaker (also allowed to monitor everything) changes policies only where it
    // has a permission.
    let r = http(
        api,
        "PUT",
        "/api/users/pm",
        GUEST,
        Some(r#"{"password": "pm", "tags": "policymaker,monitoring"}"#),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = http(
        api,
        "PUT",
        "/api/policies/%2F/theirs",
        Some(("pm", "pm")),
        Some(r#"{"pattern": ".*", "definition": {"max-length": 1}}"#),
    )
    .await;
    assert_eq!(r.status, 401);
    // Operator policies take only their keys.
    let r = http(
        api,
        "PUT",
        "/api/operator-policies/%2F/dlx",
        GUEST,
        Some(r#"{"pattern": ".*", "definition": {"dead-letter-exchange": "x"}}"#),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .contains("not recognised policy settings"));
    // Removed, the limit goes: the queue takes more again.
    assert_eq!(
        http(api, "DELETE", "/api/policies/%2F/short", GUEST, None)
            .await
            .status,
        204
    );
    for i in 5..8 {
        publish(&ch, "", "pol.q", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(count(&ch, "pol.q").await, 5);
}

#[tokio::test]
async fn definitions_move_over_the_api_and_a_bad_file_imports_nothing() {
    let b = start().await;
    let api = management(&b).await;
    let exported = http(api, "GET", "/api/definitions", GUEST, None).await;
    assert_eq!(exported.status, 200);
    let defs = exported.json();
    for key in [
        "users",
        "vhosts",
        "permissions",
        "policies",
        "queues",
        "exchanges",
        "bindings",
    ] {
        assert!(defs[key].is_array(), "{key}");
    }
    let bad = r#"{"vhosts": [{"name": "v2"}],
                  "permissions": [{"user": "guest", "vhost": "v2", "configure": "(", "write": "", "read": ""}]}"#;
    let r = http(api, "POST", "/api/definitions", GUEST, Some(bad)).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .starts_with("permissions[0] (user 'guest' in vhost 'v2'): field 'configure'"));
    assert!(b.broker.vhost("v2").is_none(), "nothing was imported");
    let good = bad.replace("\"(\"", "\".*\"");
    let r = http(api, "POST", "/api/definitions", GUEST, Some(&good)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(b.broker.vhost("v2").is_some());
    let r = http(api, "GET", "/api/health/checks/alarms", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"status": "ok"}))
    );
    let r = http(api, "GET", "/api/health/checks/virtual-hosts", GUEST, None).await;
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn bodies_are_json_whatever_their_content_type_and_bad_json_is_a_json_400() {
    // `curl -d` sends application/x-www-form-urlencoded; RabbitMQ reads the JSON anyway.
    let b = start().await;
    let api = management(&b).await;
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let puts = [
        (
            "/api/users/formed",
            r#"{"password":"pw","tags":"management"}"#,
        ),
        (
            "/api/permissions/%2F/formed",
            r#"{"configure":".*","write":".*","read":".*"}"#,
        ),
        (
            "/api/policies/%2F/short",
            r#"{"pattern":"^s","definition":{"message-ttl":1000}}"#,
        ),
        ("/api/queues/%2F/formq", r#"{"durable":false}"#),
    ];
    for (path, body) in puts {
        let r = http_with(api, "PUT", path, GUEST, &form, Some(body)).await;
        assert!(r.status == 201 || r.status == 204, "{path}: {}", r.status);
    }
    let r = http(api, "GET", "/api/whoami", Some(("formed", "pw")), None).await;
    assert_eq!(r.status, 200, "the user was made from a form-typed body");
    for (path, _) in puts {
        let r = http_with(api, "PUT", path, GUEST, &form, Some("{not json")).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"], "bad_request", "{path}");
    }
}

#[tokio::test]
async fn bad_percent_encoding_is_refused_as_rabbitmqs_web_server_does() {
    let b = start().await;
    let api = management(&b).await;
    // A `%` without two hex digits: 400 with an empty body, before any login.
    for path in [
        "/api/queues?name=abc%",
        "/api/overview?x=%4",
        "/api/queues/%zz",
        "/api/queues/%2F/x%",
    ] {
        for login in [GUEST, None] {
            let r = http(api, "GET", path, login, None).await;
            assert_eq!((r.status, r.body.as_str()), (400, ""), "{path}");
        }
    }
    // A name that is not UTF-8 names no queue.
    let r = http(api, "GET", "/api/queues/%2F/a%C3%28", GUEST, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "Object Not Found");
    // Well-formed escapes still work.
    let r = http(api, "GET", "/api/queues/%2F", GUEST, None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn policies_are_read_as_rabbitmq_lets_each_kind_of_user_read_them() {
    let b = start().await;
    let api = management(&b).await;
    let put = |path: String, body: &'static str| async move {
        let r = http(api, "PUT", &path, GUEST, Some(body)).await;
        assert!(r.status == 201 || r.status == 204, "{path}: {}", r.body);
    };
    put("/api/vhosts/other".into(), "{}").await;
    put(
        "/api/policies/%2F/p1".into(),
        r#"{"pattern": "^x", "definition": {"message-ttl": 1000}}"#,
    )
    .await;
    put(
        "/api/policies/other/p2".into(),
        r#"{"pattern": "^y", "definition": {"message-ttl": 1000}}"#,
    )
    .await;
    put(
        "/api/operator-policies/%2F/op1".into(),
        r#"{"pattern": "^x", "definition": {"message-ttl": 1000}}"#,
    )
    .await;
    for (user, tags, permitted) in [
        ("pm", "policymaker", true),
        ("mg", "management", true),
        ("mon", "monitoring", false),
    ] {
        put(
            format!("/api/users/{user}"),
            match tags {
                "policymaker" => r#"{"password": "pm", "tags": "policymaker"}"#,
                "management" => r#"{"password": "mg", "tags": "management"}"#,
                _ => r#"{"password": "mon", "tags": "monitoring"}"#,
            },
        )
        .await;
        if permitted {
            put(
                format!("/api/permissions/%2F/{user}"),
                r#"{"configure": ".*", "write": ".*", "read": ".*"}"#,
            )
            .await;
        }
    }
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    // What Debian's RabbitMQ 3.10.8 answered for the same users and paths.
    let not = |reason: &str| (401, Some(reason.to_string()));
    for (user, path, status, reason_or_names) in [
        ("pm", "/api/policies", 200, None),
        ("pm", "/api/operator-policies/%2F", 200, None),
        ("pm", "/api/policies/%2F/p1", 200, None),
        (
            "pm",
            "/api/policies/other",
            401,
            Some("User not authorised to access virtual host"),
        ),
        (
            "pm",
            "/api/policies/other/p2",
            401,
            Some("User not authorised to access object"),
        ),
        (
            "pm",
            "/api/operator-policies/%2F/op1",
            401,
            Some("Not administrator user"),
        ),
        ("mg", "/api/policies/%2F", 200, None),
        (
            "mg",
            "/api/policies/%2F/p1",
            401,
            Some("User not authorised to access object"),
        ),
        ("mon", "/api/policies", 200, None),
        (
            "mon",
            "/api/policies/%2F",
            401,
            Some("User not authorised to access virtual host"),
        ),
        ("guest", "/api/policies/other/p2", 200, None),
        ("guest", "/api/operator-policies/%2F/op1", 200, None),
        ("guest", "/api/policies/nope", 404, None),
    ] {
        let password = if user == "guest" { "guest" } else { user };
        let r = http(api, "GET", path, Some((user, password)), None).await;
        let expected = match reason_or_names {
            Some(reason) => not(reason),
            None => (status, None),
        };
        let got_reason =
            (r.status == 401).then(|| r.json()["reason"].as_str().unwrap().to_string());
        assert_eq!(
            (r.status, got_reason),
            expected,
            "{user} {path}: {}",
            r.body
        );
    }
    let listed = |user: &'static str, path: &'static str| async move {
        names(
            http(api, "GET", path, Some((user, user)), None)
                .await
                .json(),
        )
    };
    assert_eq!(listed("pm", "/api/policies").await, ["p1"]);
    assert_eq!(listed("mg", "/api/operator-policies").await, ["op1"]);
    assert!(listed("mon", "/api/policies").await.is_empty());
    let all = http(api, "GET", "/api/policies", GUEST, None).await.json();
    assert_eq!(names(all), ["p1", "p2"]);
}
