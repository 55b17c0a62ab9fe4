//! `warren ctl`: the everyday rabbitmqctl and rabbitmq-diagnostics commands, as a client of
//! the management API (one source of truth, as lavinmqctl does). Table or JSON output;
//! `ping` and `await_startup` for container health checks.

/// println! that ignores a closed pipe (`warren ctl … | head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod http;
mod output;

use http::{segment, Endpoint};
use output::{print_list, Column, Formatter};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

/// rabbitmqctl's exit codes (sysexits): usage, unavailable, software error.
const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;

/// `warren ctl` options (before the command, as rabbitmqctl takes them).
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// Management API host (default: the `listen` address).
    #[arg(long)]
    host: Option<String>,
    /// Management API port (default: `management_port`).
    #[arg(long = "api-port")]
    api_port: Option<u16>,
    /// User (default: `default_user`).
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Password (default: `default_pass`).
    #[arg(long)]
    password: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    formatter: Formatter,
    /// No informational lines.
    #[arg(short, long)]
    quiet: bool,
    /// No informational lines and no table header.
    #[arg(short, long)]
    silent: bool,
    /// Seconds to wait for an answer (await_startup: for the broker).
    #[arg(short, long, default_value_t = 60)]
    timeout: u64,
    #[command(subcommand)]
    command: CtlCommand,
}

/// A vhost option as rabbitmqctl spells it (`-p`).
#[derive(Debug, Clone, clap::Args)]
struct VhostArg {
    /// Virtual host.
    #[arg(short = 'p', long = "vhost", default_value = "/")]
    vhost: String,
}

#[derive(Debug, clap::Subcommand)]
#[command(rename_all = "snake_case")]
enum CtlCommand {
    /// Lists queues (columns: name messages … as rabbitmqctl's).
    ListQueues {
        #[command(flatten)]
        v: VhostArg,
        columns: Vec<String>,
    },
    ListExchanges {
        #[command(flatten)]
        v: VhostArg,
        columns: Vec<String>,
    },
    ListBindings {
        #[command(flatten)]
        v: VhostArg,
        columns: Vec<String>,
    },
    ListConnections {
        columns: Vec<String>,
    },
    ListChannels {
        columns: Vec<String>,
    },
    ListConsumers {
        #[command(flatten)]
        v: VhostArg,
        columns: Vec<String>,
    },
    ListUsers,
    ListVhosts {
        columns: Vec<String>,
    },
    ListPermissions {
        #[command(flatten)]
        v: VhostArg,
    },
    ListPolicies {
        #[command(flatten)]
        v: VhostArg,
    },
    PurgeQueue {
        #[command(flatten)]
        v: VhostArg,
        name: String,
    },
    DeleteQueue {
        #[command(flatten)]
        v: VhostArg,
        name: String,
        #[arg(short = 'e', long = "if-empty")]
        if_empty: bool,
        #[arg(short = 'u', long = "if-unused")]
        if_unused: bool,
    },
    AddUser {
        name: String,
        password: String,
    },
    DeleteUser {
        name: String,
    },
    ChangePassword {
        name: String,
        password: String,
    },
    SetUserTags {
        name: String,
        tags: Vec<String>,
    },
    AddVhost {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    DeleteVhost {
        name: String,
    },
    SetPermissions {
        #[command(flatten)]
        v: VhostArg,
        user: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        #[command(flatten)]
        v: VhostArg,
        user: String,
    },
    SetTopicPermissions {
        #[command(flatten)]
        v: VhostArg,
        user: String,
        exchange: String,
        write: String,
        read: String,
    },
    SetPolicy {
        #[command(flatten)]
        v: VhostArg,
        #[arg(long = "apply-to", default_value = "all")]
        apply_to: String,
        #[arg(long, default_value_t = 0)]
        priority: i64,
        name: String,
        pattern: String,
        definition: String,
    },
    ClearPolicy {
        #[command(flatten)]
        v: VhostArg,
        name: String,
    },
    /// Writes every definition to FILE ("-": standard output).
    ExportDefinitions {
        file: String,
    },
    /// Imports FILE ("-": standard input).
    ImportDefinitions {
        file: String,
    },
    CloseConnection {
        name: String,
        reason: String,
    },
    CloseAllConnections {
        #[arg(short = 'p', long = "vhost")]
        vhost: Option<String>,
        reason: String,
    },
    /// Versions, listeners, totals, memory and alarms.
    Status,
    /// Succeeds once the broker answers (container health checks).
    Ping,
    /// Waits until the broker answers, at most --timeout seconds.
    AwaitStartup,
    CheckRunning,
    CheckLocalAlarms,
    /// Every listener the node reports accepts TCP connections.
    CheckPortConnectivity,
}

/// A failed command: what to print and the exit code.
struct Failure(u8, String);

type Outcome = Result<(), Failure>;

fn software(e: String) -> Failure {
    Failure(EX_SOFTWARE, e)
}

/// Runs `warren ctl …` against the broker `config` describes.
pub fn run(args: CtlArgs, config: &crate::config::Config) -> ExitCode {
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| match config.listen.as_str() {
            "0.0.0.0" | "::" => "127.0.0.1".to_string(),
            other => other.to_string(),
        });
    let port = args.api_port.unwrap_or(config.management_port);
    let endpoint = Endpoint {
        address: if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        },
        user: args
            .username
            .clone()
            .unwrap_or_else(|| config.default_user.clone()),
        password: args
            .password
            .clone()
            .unwrap_or_else(|| config.default_pass.clone()),
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warren ctl: {e}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    match runtime.block_on(
        Ctl {
            endpoint,
            args: &args,
        }
        .run(),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, text)) => {
            eprintln!("Error: {text}");
            ExitCode::from(code)
        }
    }
}

struct Ctl<'a> {
    endpoint: Endpoint,
    args: &'a CtlArgs,
}

/// Columns named on the command line, or the defaults; each maps to an API field.
fn columns<'a>(
    asked: &'a [String],
    defaults: &[&'a str],
    field_of: fn(&str) -> &str,
) -> Vec<Column<'a>> {
    let names: Vec<&str> = if asked.is_empty() {
        defaults.to_vec()
    } else {
        asked.iter().map(String::as_str).collect()
    };
    names
        .into_iter()
        .map(|name| Column {
            name,
            field: field_of(name),
        })
        .collect()
}

fn same(name: &str) -> &str {
    name
}

/// rabbitmqctl's binding columns in the API's names.
fn binding_field(name: &str) -> &str {
    match name {
        "source_name" => "source",
        "destination_name" => "destination",
        "destination_kind" => "destination_type",
        "source_kind" => "source_kind",
        other => other,
    }
}

fn consumer_field(name: &str) -> &str {
    match name {
        "queue_name" => "queue.name",
        "channel_pid" => "channel_details.name",
        other => other,
    }
}

impl Ctl<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, Failure> {
        let reply = self
            .endpoint
            .request(method, path, body.as_ref(), headers)
            .await
            .map_err(|e| Failure(EX_UNAVAILABLE, e))?;
        if reply.status >= 400 {
            return Err(software(reply.error_text()));
        }
        reply.json().map_err(software)
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, Failure> {
        match self.call("GET", path, None).await? {
            Value::Array(items) => Ok(items),
            other => Err(software(format!("expected a list, got {other}"))),
        }
    }

    fn print(&self, items: &[Value], columns: &[Column<'_>], info: &str) {
        print_list(
            items,
            columns,
            self.args.formatter,
            info,
            self.args.quiet,
            self.args.silent,
        );
    }

    fn say(&self, text: &str) {
        if !self.args.quiet && !self.args.silent && self.args.formatter == Formatter::Table {
            out!("{text}");
        }
    }

    async fn run(&self) -> Outcome {
        use CtlCommand as C;
        match &self.args.command {
            C::ListQueues { v, columns: c } => {
                let items = self
                    .list(&format!("/api/queues/{}", segment(&v.vhost)))
                    .await?;
                let cols = columns(c, &["name", "messages"], same);
                self.print(
                    &items,
                    &cols,
                    &format!("Listing queues for vhost {} ...", v.vhost),
                );
            }
            C::ListExchanges { v, columns: c } => {
                let items = self
                    .list(&format!("/api/exchanges/{}", segment(&v.vhost)))
                    .await?;
                let cols = columns(c, &["name", "type"], same);
                self.print(
                    &items,
                    &cols,
                    &format!("Listing exchanges for vhost {} ...", v.vhost),
                );
            }
            C::ListBindings { v, columns: c } => {
                let mut items = self
                    .list(&format!("/api/bindings/{}", segment(&v.vhost)))
                    .await?;
                for b in &mut items {
                    b["source_kind"] = json!("exchange");
                }
                let defaults = [
                    "source_name",
                    "source_kind",
                    "destination_name",
                    "destination_kind",
                    "routing_key",
                    "arguments",
                ];
                let cols = columns(c, &defaults, binding_field);
                self.print(
                    &items,
                    &cols,
                    &format!("Listing bindings for vhost {}...", v.vhost),
                );
            }
            C::ListConnections { columns: c } => {
                let items = self.list("/api/connections").await?;
                let cols = columns(c, &["user", "peer_host", "peer_port", "state"], same);
                self.print(&items, &cols, "Listing connections ...");
            }
            C::ListChannels { columns: c } => {
                let items = self.list("/api/channels").await?;
                let cols = columns(
                    c,
                    &["name", "user", "consumer_count", "messages_unacknowledged"],
                    same,
                );
                self.print(&items, &cols, "Listing channels ...");
            }
            C::ListConsumers { v, columns: c } => {
                let items = self
                    .list(&format!("/api/consumers/{}", segment(&v.vhost)))
                    .await?;
                let defaults = [
                    "queue_name",
                    "channel_pid",
                    "consumer_tag",
                    "ack_required",
                    "prefetch_count",
                    "active",
                    "arguments",
                ];
                let cols = columns(c, &defaults, consumer_field);
                self.print(
                    &items,
                    &cols,
                    &format!("Listing consumers in vhost {} ...", v.vhost),
                );
            }
            C::ListUsers => {
                let items = self.list("/api/users").await?;
                let cols = columns(
                    &[],
                    &["user", "tags"],
                    |n| if n == "user" { "name" } else { n },
                );
                self.print(&items, &cols, "Listing users ...");
            }
            C::ListVhosts { columns: c } => {
                let items = self.list("/api/vhosts").await?;
                self.print(&items, &columns(c, &["name"], same), "Listing vhosts ...");
            }
            C::ListPermissions { v } => {
                let items = self
                    .list(&format!("/api/vhosts/{}/permissions", segment(&v.vhost)))
                    .await?;
                let cols = columns(&[], &["user", "configure", "write", "read"], same);
                self.print(
                    &items,
                    &cols,
                    &format!("Listing permissions for vhost \"{}\" ...", v.vhost),
                );
            }
            C::ListPolicies { v } => {
                let items = self
                    .list(&format!("/api/policies/{}", segment(&v.vhost)))
                    .await?;
                let cols = columns(
                    &[],
                    &[
                        "vhost",
                        "name",
                        "pattern",
                        "apply-to",
                        "definition",
                        "priority",
                    ],
                    same,
                );
                self.print(
                    &items,
                    &cols,
                    &format!("Listing policies for vhost \"{}\" ...", v.vhost),
                );
            }
            C::PurgeQueue { v, name } => {
                self.say(&format!(
                    "Purging queue '{name}' in vhost '{}' ...",
                    v.vhost
                ));
                let path = format!(
                    "/api/queues/{}/{}/contents",
                    segment(&v.vhost),
                    segment(name)
                );
                self.call("DELETE", &path, None).await?;
            }
            C::DeleteQueue {
                v,
                name,
                if_empty,
                if_unused,
            } => {
                self.say(&format!(
                    "Deleting queue '{name}' on vhost '{}' ...",
                    v.vhost
                ));
                let path = format!(
                    "/api/queues/{}/{}?if-empty={if_empty}&if-unused={if_unused}",
                    segment(&v.vhost),
                    segment(name)
                );
                self.call("DELETE", &path, None).await?;
            }
            C::AddUser { name, password } => {
                self.say(&format!("Adding user \"{name}\" ..."));
                let path = format!("/api/users/{}", segment(name));
                if self
                    .endpoint
                    .request("GET", &path, None, &[])
                    .await
                    .map_err(|e| Failure(EX_UNAVAILABLE, e))?
                    .status
                    == 200
                {
                    return Err(software(format!("User \"{name}\" already exists")));
                }
                self.call(
                    "PUT",
                    &path,
                    Some(json!({"password": password, "tags": ""})),
                )
                .await?;
            }
            C::DeleteUser { name } => {
                self.say(&format!("Deleting user \"{name}\" ..."));
                self.call("DELETE", &format!("/api/users/{}", segment(name)), None)
                    .await?;
            }
            C::ChangePassword { name, password } => {
                self.say(&format!("Changing password for user \"{name}\" ..."));
                let path = format!("/api/users/{}", segment(name));
                let user = self.call("GET", &path, None).await?;
                let tags = user.get("tags").cloned().unwrap_or(json!([]));
                self.call(
                    "PUT",
                    &path,
                    Some(json!({"password": password, "tags": tags})),
                )
                .await?;
            }
            C::SetUserTags { name, tags } => {
                self.say(&format!(
                    "Setting tags for user \"{name}\" to [{}] ...",
                    tags.join(", ")
                ));
                let path = format!("/api/users/{}", segment(name));
                let user = self.call("GET", &path, None).await?;
                let body = json!({
                    "password_hash": user.get("password_hash").cloned().unwrap_or(json!("")),
                    "hashing_algorithm": user.get("hashing_algorithm").cloned().unwrap_or(json!("rabbit_password_hashing_sha256")),
                    "tags": tags.join(","),
                });
                self.call("PUT", &path, Some(body)).await?;
            }
            C::AddVhost { name, description } => {
                self.say(&format!("Adding vhost \"{name}\" ..."));
                let body = json!({"description": description.clone().unwrap_or_default()});
                self.call("PUT", &format!("/api/vhosts/{}", segment(name)), Some(body))
                    .await?;
            }
            C::DeleteVhost { name } => {
                self.say(&format!("Deleting vhost \"{name}\" ..."));
                self.call("DELETE", &format!("/api/vhosts/{}", segment(name)), None)
                    .await?;
            }
            C::SetPermissions {
                v,
                user,
                configure,
                write,
                read,
            } => {
                self.say(&format!(
                    "Setting permissions for user \"{user}\" in vhost \"{}\" ...",
                    v.vhost
                ));
                let path = format!("/api/permissions/{}/{}", segment(&v.vhost), segment(user));
                self.call(
                    "PUT",
                    &path,
                    Some(json!({"configure": configure, "write": write, "read": read})),
                )
                .await?;
            }
            C::ClearPermissions { v, user } => {
                self.say(&format!(
                    "Clearing permissions for user \"{user}\" in vhost \"{}\" ...",
                    v.vhost
                ));
                let path = format!("/api/permissions/{}/{}", segment(&v.vhost), segment(user));
                self.call("DELETE", &path, None).await?;
            }
            C::SetTopicPermissions {
                v,
                user,
                exchange,
                write,
                read,
            } => {
                self.say(&format!("Setting topic permissions on \"{exchange}\" for user \"{user}\" in vhost \"{}\" ...", v.vhost));
                let path = format!(
                    "/api/topic-permissions/{}/{}",
                    segment(&v.vhost),
                    segment(user)
                );
                self.call(
                    "PUT",
                    &path,
                    Some(json!({"exchange": exchange, "write": write, "read": read})),
                )
                .await?;
            }
            C::SetPolicy {
                v,
                apply_to,
                priority,
                name,
                pattern,
                definition,
            } => {
                let definition: Value = serde_json::from_str(definition).map_err(|e| {
                    Failure(EX_USAGE, format!("the policy definition is not JSON: {e}"))
                })?;
                self.say(&format!("Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{}\" ...", v.vhost));
                let path = format!("/api/policies/{}/{}", segment(&v.vhost), segment(name));
                let body = json!({"pattern": pattern, "definition": definition, "priority": priority, "apply-to": apply_to});
                self.call("PUT", &path, Some(body)).await?;
            }
            C::ClearPolicy { v, name } => {
                self.say(&format!(
                    "Clearing policy \"{name}\" on vhost \"{}\" ...",
                    v.vhost
                ));
                self.call(
                    "DELETE",
                    &format!("/api/policies/{}/{}", segment(&v.vhost), segment(name)),
                    None,
                )
                .await?;
            }
            C::ExportDefinitions { file } => {
                let defs = self.call("GET", "/api/definitions", None).await?;
                let text =
                    serde_json::to_string_pretty(&defs).map_err(|e| software(e.to_string()))?;
                if file == "-" {
                    out!("{text}");
                } else {
                    self.say(&format!(
                        "Exporting definitions in JSON to a file at \"{file}\" ..."
                    ));
                    std::fs::write(file, text + "\n")
                        .map_err(|e| software(format!("{file}: {e}")))?;
                }
            }
            C::ImportDefinitions { file } => {
                let text = if file == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                        .map_err(|e| software(e.to_string()))?;
                    s
                } else {
                    std::fs::read_to_string(file).map_err(|e| software(format!("{file}: {e}")))?
                };
                let defs: Value = serde_json::from_str(&text)
                    .map_err(|e| Failure(EX_USAGE, format!("{file} is not JSON: {e}")))?;
                self.say(&format!(
                    "Importing definitions in JSON from a file at \"{file}\" ..."
                ));
                self.call("POST", "/api/definitions", Some(defs)).await?;
            }
            C::CloseConnection { name, reason } => {
                self.say(&format!("Closing connection {name}, reason: {reason}..."));
                let path = format!("/api/connections/{}", segment(name));
                self.call_with("DELETE", &path, None, &[("X-Reason", reason)])
                    .await?;
            }
            C::CloseAllConnections { vhost, reason } => {
                let items = self.list("/api/connections").await?;
                for c in items {
                    if vhost.as_deref().is_some_and(|v| c["vhost"] != *v) {
                        continue;
                    }
                    let Some(name) = c["name"].as_str() else {
                        continue;
                    };
                    self.say(&format!("Closing connection {name}, reason: {reason}..."));
                    let path = format!("/api/connections/{}", segment(name));
                    self.call_with("DELETE", &path, None, &[("X-Reason", reason)])
                        .await?;
                }
            }
            C::Status => self.status().await?,
            C::Ping | C::CheckRunning => {
                self.call("GET", "/api/health/checks/ready-to-serve-clients", None)
                    .await?;
                self.say("Ping succeeded");
            }
            C::AwaitStartup => self.await_startup().await?,
            C::CheckLocalAlarms => {
                let reply = self
                    .endpoint
                    .request("GET", "/api/health/checks/local-alarms", None, &[])
                    .await
                    .map_err(|e| Failure(EX_UNAVAILABLE, e))?;
                if reply.status != 200 {
                    return Err(Failure(
                        EX_UNAVAILABLE,
                        format!("resource alarms in effect: {}", reply.error_text()),
                    ));
                }
                self.say("Node reported no local alarms");
            }
            C::CheckPortConnectivity => {
                let overview = self.call("GET", "/api/overview", None).await?;
                let listeners = overview["listeners"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for l in listeners {
                    let (Some(ip), Some(port)) = (l["ip_address"].as_str(), l["port"].as_u64())
                    else {
                        continue;
                    };
                    let address = if ip.contains(':') {
                        format!("[{ip}]:{port}")
                    } else {
                        format!("{ip}:{port}")
                    };
                    if tokio::net::TcpStream::connect(&address).await.is_err() {
                        return Err(Failure(
                            EX_UNAVAILABLE,
                            format!("cannot connect to {address} ({})", l["protocol"]),
                        ));
                    }
                }
                self.say("Successfully connected to ports");
            }
        }
        Ok(())
    }

    async fn await_startup(&self) -> Outcome {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.args.timeout);
        loop {
            let tick = tokio::time::Instant::now() + Duration::from_millis(200);
            match self
                .endpoint
                .request(
                    "GET",
                    "/api/health/checks/ready-to-serve-clients",
                    None,
                    &[],
                )
                .await
            {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) if r.status == 401 => return Err(software(r.error_text())),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(Failure(
                        EX_UNAVAILABLE,
                        format!("the broker did not start within {} s", self.args.timeout),
                    ))
                }
                _ => tokio::time::sleep_until(tick).await,
            }
        }
    }

    async fn status(&self) -> Outcome {
        let o = self.call("GET", "/api/overview", None).await?;
        let nodes = self.call("GET", "/api/nodes", None).await?;
        let n = &nodes[0];
        if self.args.formatter == Formatter::Json {
            out!("{}", json!({"overview": o, "node": n}));
            return Ok(());
        }
        out!("Status of node {}", o["node"].as_str().unwrap_or("?"));
        out!("Runtime\n");
        out!("OS PID: {}", n["os_pid"].as_str().unwrap_or("?"));
        out!(
            "Uptime (seconds): {}",
            n["uptime"].as_u64().unwrap_or(0) / 1000
        );
        out!(
            "Product name: {}",
            o["product_name"].as_str().unwrap_or("?")
        );
        out!(
            "Product version: {}",
            o["product_version"].as_str().unwrap_or("?")
        );
        out!(
            "RabbitMQ version (compatible): {}",
            o["rabbitmq_version"].as_str().unwrap_or("?")
        );
        out!("\nAlarms\n");
        let alarms: Vec<&str> = [("mem_alarm", "memory"), ("disk_free_alarm", "disk")]
            .into_iter()
            .filter(|(k, _)| n[*k] == true)
            .map(|(_, what)| what)
            .collect();
        out!(
            "{}",
            if alarms.is_empty() {
                "(none)".to_string()
            } else {
                alarms.join(", ")
            }
        );
        out!("\nMemory\n");
        out!("Total memory used: {} bytes", n["mem_used"]);
        out!("Memory high watermark: {} bytes", n["mem_limit"]);
        out!("\nFree Disk Space\n");
        out!(
            "Low free disk space watermark: {} bytes",
            n["disk_free_limit"]
        );
        out!("Free disk space: {} bytes", n["disk_free"]);
        out!("\nFile Descriptors\n");
        out!("Used: {}, limit: {}", n["fd_used"], n["fd_total"]);
        out!("\nListeners\n");
        for l in o["listeners"].as_array().cloned().unwrap_or_default() {
            out!(
                "Interface: {}, port: {}, protocol: {}",
                l["ip_address"].as_str().unwrap_or("?"),
                l["port"],
                l["protocol"].as_str().unwrap_or("?")
            );
        }
        out!("\nTotals\n");
        let t = &o["object_totals"];
        out!("Connection count: {}", t["connections"]);
        out!("Queue count: {}", t["queues"]);
        out!(
            "Virtual host count: {}",
            self.list("/api/vhosts").await?.len()
        );
        Ok(())
    }
}
