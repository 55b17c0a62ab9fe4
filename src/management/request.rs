//! Reading request URLs and bodies as RabbitMQ's management plugin does.

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

/// URLs the management plugin's web server refuses before routing: a `%` not followed by two
/// hex digits in the path or query is 400 with an empty body (cowboy's answer, before any
/// login); a path segment that decodes to something other than UTF-8 names no object: 404.
pub async fn well_formed_url(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = request.uri();
    let query = uri.query().unwrap_or("");
    if !escapes_well_formed(uri.path()) || !escapes_well_formed(query) {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    }
    if uri
        .path()
        .split('/')
        .any(|segment| std::str::from_utf8(&percent_decoded(segment)).is_err())
    {
        return ApiError::not_found().into_response();
    }
    next.run(request).await
}

/// Every `%` starts an escape of two hex digits.
fn escapes_well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The bytes a well-formed percent-encoded string stands for.
fn percent_decoded(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (
            b[i],
            b.get(i + 1).copied().and_then(digit),
            b.get(i + 2).copied().and_then(digit),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_need_two_hex_digits() {
        assert!(escapes_well_formed("/api/queues/%2F/a%20b"));
        assert!(escapes_well_formed("name=abc&page=1"));
        assert!(!escapes_well_formed("name=abc%"));
        assert!(!escapes_well_formed("x=%4"));
        assert!(!escapes_well_formed("/api/queues/%zz"));
    }

    #[test]
    fn segments_decode_to_bytes() {
        assert_eq!(percent_decoded("a%2Fb%20c"), b"a/b c");
        assert_eq!(percent_decoded("a%C3%28"), b"a\xC3(");
    }
}
