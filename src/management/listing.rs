//! Lists as RabbitMQ's management API answers them: filtered by `name` (a substring, or a
//! regex with `use_regex=true`), sorted by `sort` (a field, dotted for nested ones) and
//! `sort_reverse`, cut to `columns`, and paged with `page` and `page_size` (then wrapped in
//! `{total_count, item_count, filtered_count, page, page_size, page_count, items}`; without
//! `page`, a plain array).

use super::reply::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// RabbitMQ's largest page.
const MAX_PAGE_SIZE: usize = 500;
const DEFAULT_PAGE_SIZE: usize = 100;

/// The query parameters every list takes.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub page: Option<String>,
    pub page_size: Option<String>,
    pub name: Option<String>,
    pub use_regex: Option<String>,
    pub sort: Option<String>,
    pub sort_reverse: Option<String>,
    pub columns: Option<String>,
}

fn truthy(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| s == "true")
}

/// The value at a dotted path (`message_stats.publish_details.rate`).
fn at_path<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |v, key| v.get(key))
}

/// Orders JSON values as RabbitMQ's sort does for what lists hold: numbers by value,
/// strings by text, missing first.
fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// Keeps only `columns` (dotted paths keep the nested value under its parents).
fn project(item: Value, columns: &[&str]) -> Value {
    let mut out = Value::Object(Map::new());
    for c in columns {
        let Some(v) = at_path(&item, c) else {
            continue;
        };
        put_path(&mut out, c, v.clone());
    }
    out
}

/// Sets `path` (dotted) in `node`, making the objects on the way.
fn put_path(node: &mut Value, path: &str, v: Value) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(m) = node else {
        return;
    };
    match rest {
        None => {
            m.insert(head.to_string(), v);
        }
        Some(rest) => {
            let child = m
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            put_path(child, rest, v);
        }
    }
}

/// A paging parameter: absent, a number (perhaps out of bounds), or not a number, which
/// RabbitMQ refuses before looking at the other.
fn paging_number(v: &Option<String>) -> ApiResult<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request("Pagination parameters are invalid")),
    }
}

/// Applies the query to `items` (already in their default order).
pub fn answer(mut items: Vec<Value>, q: &ListQuery) -> ApiResult<Value> {
    let total = items.len();
    if let Some(name) = q.name.as_deref().filter(|n| !n.is_empty()) {
        let name_of = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if truthy(&q.use_regex) {
            let re = regex::Regex::new(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
            items.retain(|v| re.is_match(&name_of(v)));
        } else {
            let needle = name.to_lowercase();
            items.retain(|v| name_of(v).to_lowercase().contains(&needle));
        }
    }
    if let Some(sort) = q.sort.as_deref().filter(|s| !s.is_empty()) {
        items.sort_by(|a, b| compare(at_path(a, sort), at_path(b, sort)));
    }
    if truthy(&q.sort_reverse) {
        items.reverse();
    }
    let filtered = items.len();
    let columns: Option<Vec<&str>> = q.columns.as_deref().map(|c| {
        c.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    });
    let cut = |items: Vec<Value>| -> Vec<Value> {
        match &columns {
            Some(cols) => items.into_iter().map(|v| project(v, cols)).collect(),
            None => items,
        }
    };
    if q.page.is_none() {
        return Ok(Value::Array(cut(items)));
    }
    // RabbitMQ's answers and texts (checked against Debian's 3.10.8).
    let (page, page_size) = (paging_number(&q.page)?, paging_number(&q.page_size)?);
    let bounded = |n: Option<i64>, max: i64| n.is_none_or(|n| (1..=max).contains(&n));
    if !bounded(page, i64::MAX) || !bounded(page_size, MAX_PAGE_SIZE as i64) {
        let shown = |n: Option<i64>| n.map_or("undefined".to_string(), |n| n.to_string());
        return Err(ApiError::bad_request_as(
            "invalid_pagination_parameters",
            format!(
                "Invalid pagination parameters: page number {}, page size {}",
                shown(page),
                shown(page_size)
            ),
        ));
    }
    let page = page.unwrap_or(1) as usize;
    let page_size = page_size.map_or(DEFAULT_PAGE_SIZE, |n| n as usize);
    let page_count = filtered.div_ceil(page_size).max(1);
    if page > page_count {
        return Err(ApiError::bad_request_as(
            "page_out_of_range",
            format!("Page out of range, page: {page} page size: {page_size}, len: {filtered}"),
        ));
    }
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .collect();
    let shown = cut(shown);
    Ok(json!({
        "filtered_count": filtered,
        "item_count": shown.len(),
        "items": shown,
        "page": page,
        "page_count": page_count,
        "page_size": page_size,
        "total_count": total,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        (1..=7)
            .map(|i| json!({"name": format!("q{i}"), "messages": 10 - i, "message_stats": {"publish": i}}))
            .collect()
    }

    #[test]
    fn without_page_the_answer_is_a_plain_array() {
        let v = answer(items(), &ListQuery::default()).expect("list");
        assert_eq!(v.as_array().map(Vec::len), Some(7));
    }

    #[test]
    fn pages_filter_sort_and_columns_as_rabbitmq_does() {
        let q = ListQuery {
            page: Some("2".into()),
            page_size: Some("3".into()),
            sort: Some("messages".into()),
            columns: Some("name,message_stats.publish".into()),
            ..Default::default()
        };
        let v = answer(items(), &q).expect("page");
        assert_eq!(v["total_count"], 7);
        assert_eq!(v["filtered_count"], 7);
        assert_eq!(v["page_count"], 3);
        assert_eq!(v["item_count"], 3);
        // Sorted by messages ascending: q7 (3), q6, q5 | q4, q3, q2 | q1.
        assert_eq!(
            v["items"],
            json!([
                {"name": "q4", "message_stats": {"publish": 4}},
                {"name": "q3", "message_stats": {"publish": 3}},
                {"name": "q2", "message_stats": {"publish": 2}},
            ])
        );
        let q = ListQuery {
            page: Some("9".into()),
            ..Default::default()
        };
        assert!(answer(items(), &q).is_err());
        let q = ListQuery {
            name: Some("^q[12]$".into()),
            use_regex: Some("true".into()),
            page: Some("1".into()),
            ..Default::default()
        };
        let v = answer(items(), &q).expect("regex");
        assert_eq!(
            (v["filtered_count"].clone(), v["total_count"].clone()),
            (json!(2), json!(7))
        );
    }
}
