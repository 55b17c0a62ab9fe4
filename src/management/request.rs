//! Reading request bodies as RabbitMQ's management plugin does.

use super::reply::{ApiError, ApiResult};
use crate::protocol::json::json_to_table;
use crate::protocol::FieldTable;
use serde_json::{json, Value};

/// A request body read as JSON whatever its Content-Type (RabbitMQ reads `curl -d`'s
/// form-typed bodies too); an empty body is `{}`. Unreadable JSON is 400 `bad_request`.
pub fn json_body(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The `arguments` object of a declare or bind, as an AMQP table (absent or null: empty).
pub fn arguments_of(body: &Value) -> ApiResult<FieldTable> {
    match body.get("arguments") {
        Some(Value::Object(m)) => Ok(json_to_table(m)),
        None | Some(Value::Null) => Ok(Default::default()),
        Some(_) => Err(ApiError::bad_request("arguments must be an object")),
    }
}
