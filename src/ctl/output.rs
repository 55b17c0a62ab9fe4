//! What `warren ctl` prints: rabbitmqctl's tab-separated table (an info line, a header row,
//! one row per item) or, with `--formatter json`, a JSON array of objects.

use serde_json::{Map, Value};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Formatter {
    Table,
    Json,
}

/// One column: its name as rabbitmqctl prints it and the API field it comes from (dotted
/// for nested fields).
pub struct Column<'a> {
    pub name: &'a str,
    pub field: &'a str,
}

fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// A cell as rabbitmqctl writes it: strings bare, the rest as JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Prints `items` with `columns`. `info` is rabbitmqctl's "Listing … ..." line (not with
/// `quiet`); `silent` drops the header row too.
pub fn print_list(
    items: &[Value],
    columns: &[Column<'_>],
    formatter: Formatter,
    info: &str,
    quiet: bool,
    silent: bool,
) {
    match formatter {
        Formatter::Json => {
            let rows: Vec<Value> = items
                .iter()
                .map(|item| {
                    let mut m = Map::new();
                    for c in columns {
                        m.insert(
                            c.name.to_string(),
                            at_path(item, c.field).cloned().unwrap_or(Value::Null),
                        );
                    }
                    Value::Object(m)
                })
                .collect();
            out!("{}", Value::Array(rows));
        }
        Formatter::Table => {
            if !quiet && !silent {
                out!("{info}");
            }
            if !silent {
                let header: Vec<&str> = columns.iter().map(|c| c.name).collect();
                out!("{}", header.join("\t"));
            }
            for item in items {
                let row: Vec<String> = columns
                    .iter()
                    .map(|c| cell(at_path(item, c.field)))
                    .collect();
                out!("{}", row.join("\t"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_written_as_rabbitmqctl_writes_them() {
        let v = serde_json::json!({"name": "q", "messages": 3, "arguments": {}, "x": {"y": true}});
        assert_eq!(cell(at_path(&v, "name")), "q");
        assert_eq!(cell(at_path(&v, "messages")), "3");
        assert_eq!(cell(at_path(&v, "arguments")), "{}");
        assert_eq!(cell(at_path(&v, "x.y")), "true");
        assert_eq!(cell(at_path(&v, "missing")), "");
    }
}
