// Warren's management UI: one page, plain JavaScript, talking to the same /api that
// rabbitmqadmin and the CLI use. Credentials stay in sessionStorage for this tab only.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const enc = encodeURIComponent;
let auth = sessionStorage.getItem("warren-auth");
let timer = null;

// ---------------------------------------------------------------------------- helpers ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(text, bad) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 3500);
}

const num = (n) => (n === undefined || n === null ? "" : Number(n).toLocaleString("en-US"));
const rate = (r) => (r === undefined || r === null ? "" : `${Number(r).toFixed(1)}/s`);
function bytes(n) {
  if (!n && n !== 0) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
const get = (o, path) => path.split(".").reduce((v, k) => (v == null ? undefined : v[k]), o);
// "1,234 (5.0/s)": a count and, once sampled, its rate.
const countAndRate = (o, path) => {
  const r = get(o, path + "_details.rate");
  return num(get(o, path) || 0) + (r === undefined ? "" : ` (${rate(r)})`);
};

async function api(method, path, body, headers = {}) {
  const r = await fetch("/api" + path, {
    method,
    headers: { Authorization: "Basic " + auth, "content-type": "application/json", "x-requested-with": "XMLHttpRequest", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  if (r.status === 401 && path === "/whoami") throw new Error("Login failed");
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error((data && data.reason) || `HTTP ${r.status}`);
  return data;
}

// Runs an action from a button or form, reports its outcome, then re-renders.
async function act(what, fn) {
  try {
    await fn();
    toast(what);
    render();
  } catch (e) {
    toast(e.message, true);
  }
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function json(text, fallback) {
  if (!text || !text.trim()) return fallback;
  return JSON.parse(text);
}

// A table: columns are [title, value function, {num: true, sort: "field"}].
function table(columns, rows, sort) {
  const head = h("tr", {}, columns.map(([title, , o = {}]) => {
    const classes = [o.num ? "num" : "", o.sort ? "sortable" : "",
      sort && o.sort === sort.field ? "sorted" + (sort.reverse ? " reverse" : "") : ""].join(" ").trim();
    return h("th", { class: classes || null, onclick: o.sort && sort ? () => sort.by(o.sort) : null }, title);
  }));
  const body = rows.map((r) => h("tr", {}, columns.map(([, f, o = {}]) => h("td", { class: o.num ? "num" : null }, f(r)))));
  if (!rows.length) body.push(h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "Nothing here yet.")));
  return h("table", {}, h("thead", {}, head), h("tbody", {}, body));
}

async function vhostOptions(selected) {
  const vhosts = await api("GET", "/vhosts");
  return vhosts.map((v) => h("option", { value: v.name, selected: v.name === selected }, v.name));
}

// ---------------------------------------------------------------------------- charts ----

function lineChart(canvas, series, points) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, ht = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = ht * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, ht);
  const pad = { l: 56, r: 10, t: 10, b: 20 };
  // A round top for the axis: 1, 2 or 5 times a power of ten, at least 4.
  const peak = Math.max(...points.flatMap((p) => series.map((s) => p[s.key] || 0)), 0);
  const step = 10 ** Math.floor(Math.log10(Math.max(peak, 4)));
  const max = [1, 2, 5, 10].map((m) => m * step).find((m) => m >= peak) || 4;
  g.strokeStyle = "#dde1ea"; g.fillStyle = "#6b7385"; g.font = "11px system-ui";
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ((ht - pad.t - pad.b) * i) / 4;
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(w - pad.r, y); g.stroke();
    g.fillText(num(+((max * (4 - i)) / 4).toFixed(1)), 4, y + 4);
  }
  const n = Math.max(points.length - 1, 1);
  for (const s of series) {
    g.strokeStyle = s.color; g.lineWidth = 2; g.beginPath();
    points.forEach((p, i) => {
      const x = pad.l + ((w - pad.l - pad.r) * i) / n;
      const y = pad.t + (ht - pad.t - pad.b) * (1 - (p[s.key] || 0) / max);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
}

function chartCard(title, series, points) {
  const canvas = h("canvas", { "data-chart": title });
  const card = h("div", { class: "card" }, h("h2", {}, title), canvas,
    h("div", { class: "legend" }, series.map((s) => h("span", {}, h("i", { style: `background:${s.color}` }), s.label))));
  requestAnimationFrame(() => lineChart(canvas, series, points));
  return card;
}

// ----------------------------------------------------------------------------- pages ----

const pages = {};

pages.overview = async () => {
  const [o, nodes] = await Promise.all([api("GET", "/overview"), api("GET", "/nodes")]);
  const node = nodes[0] || {};
  $("#version").textContent = `${o.product_version} · RabbitMQ ${o.rabbitmq_version} compatible`;
  const t = o.object_totals, q = o.queue_totals, m = o.message_stats || {};
  const tile = (label, value, id) => h("div", { class: "tile", "data-tile": id }, h("div", { class: "n" }, value), h("div", { class: "l" }, label));
  const history = o.sample_history || [];
  return [
    h("h1", {}, "Overview"),
    h("div", { class: "tiles" },
      tile("Connections", num(t.connections), "connections"), tile("Channels", num(t.channels), "channels"),
      tile("Queues", num(t.queues), "queues"), tile("Consumers", num(t.consumers), "consumers"),
      tile("Ready", num(q.messages_ready), "ready"), tile("Unacked", num(q.messages_unacknowledged), "unacked"),
      tile("Publish", rate(get(m, "publish_details.rate")), "publish-rate"),
      tile("Deliver", rate(get(m, "deliver_get_details.rate")), "deliver-rate")),
    h("div", { class: "charts" },
      chartCard("Queued messages", [
        { key: "messages_ready", label: "Ready", color: "#d9480f" },
        { key: "messages_unacknowledged", label: "Unacked", color: "#1c5fb8" }], history),
      chartCard("Message rates", [
        { key: "publish", label: "Publish", color: "#d9480f" },
        { key: "deliver_get", label: "Deliver / get", color: "#2b8a3e" },
        { key: "ack", label: "Ack", color: "#1c5fb8" }], history)),
    h("div", { class: "grid2" },
      h("div", { class: "card" }, h("h2", {}, "Node"), h("dl", { class: "kv" },
        h("dt", {}, "Name"), h("dd", {}, node.name),
        h("dt", {}, "Uptime"), h("dd", {}, `${Math.floor((node.uptime || 0) / 1000)} s`),
        h("dt", {}, "Memory"), h("dd", {}, `${bytes(node.mem_used)} of ${bytes(node.mem_limit)}`, node.mem_alarm ? " — alarm" : ""),
        h("dt", {}, "Free disk"), h("dd", {}, `${bytes(node.disk_free)} (limit ${bytes(node.disk_free_limit)})`, node.disk_free_alarm ? " — alarm" : ""),
        h("dt", {}, "File descriptors"), h("dd", {}, `${num(node.fd_used)} of ${num(node.fd_total)}`))),
      h("div", { class: "card" }, h("h2", {}, "Listeners"),
        table([["Protocol", (l) => l.protocol], ["Address", (l) => l.ip_address], ["Port", (l) => l.port, { num: true }]], o.listeners))),
  ];
};

const queueList = { page: 1, size: 100, name: "", regex: false, sort: "name", reverse: false };

pages.queues = async () => {
  const s = queueList;
  const columns = ["vhost", "name", "type", "state", "consumers", "messages_ready", "messages_unacknowledged", "messages",
    "message_stats.publish_details.rate", "message_stats.deliver_get_details.rate", "message_stats.ack_details.rate"];
  const query = `?page=${s.page}&page_size=${s.size}&name=${enc(s.name)}&use_regex=${s.regex}` +
    `&sort=${enc(s.sort)}&sort_reverse=${s.reverse}&columns=${columns.join(",")}`;
  let data;
  try {
    data = await api("GET", "/queues" + query);
  } catch (e) {
    if (s.page === 1) throw e;
    s.page = 1;
    return pages.queues();
  }
  const sort = { field: s.sort, reverse: s.reverse, by: (f) => { s.reverse = s.sort === f ? !s.reverse : false; s.sort = f; render(); } };
  const link = (q) => h("a", { href: `#/queues/${enc(q.vhost)}/${enc(q.name)}` }, q.name);
  const filter = h("input", { placeholder: "Filter by name", value: s.name, id: "queue-filter" });
  const regex = h("input", { type: "checkbox", checked: s.regex });
  const apply = () => { s.name = filter.value; s.regex = regex.checked; s.page = 1; render(); };
  filter.addEventListener("keydown", (e) => e.key === "Enter" && apply());
  const addForm = h("form", { class: "form-row", id: "add-queue", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act(`Queue ${v.name} declared`, () => api("PUT", `/queues/${enc(v.vhost)}/${enc(v.name)}`, {
      durable: v.durable === "true", auto_delete: false, arguments: json(v.arguments, {}),
    }));
  } },
  h("label", {}, "Virtual host", h("select", { name: "vhost" })),
  h("label", {}, "Name", h("input", { name: "name", required: true })),
  h("label", {}, "Durability", h("select", { name: "durable" }, h("option", { value: "true" }, "Durable"), h("option", { value: "false" }, "Transient"))),
  h("label", { class: "grow" }, "Arguments (JSON)", h("input", { name: "arguments", placeholder: '{"x-max-length": 1000}' })),
  h("button", { type: "submit" }, "Add queue"));
  vhostOptions("/").then((opts) => $("select[name=vhost]", addForm).append(...opts));
  return [
    h("h1", {}, "Queues"),
    h("div", { class: "toolbar" }, h("label", { class: "grow" }, "Filter", filter),
      h("label", {}, "Regex", regex), h("button", { class: "secondary", onclick: apply }, "Apply")),
    table([
      ["Virtual host", (q) => q.vhost, { sort: "vhost" }], ["Name", link, { sort: "name" }],
      ["Type", (q) => q.type], ["State", (q) => h("span", { class: "pill" }, q.state)],
      ["Consumers", (q) => num(q.consumers), { num: true, sort: "consumers" }],
      ["Ready", (q) => num(q.messages_ready), { num: true, sort: "messages_ready" }],
      ["Unacked", (q) => num(q.messages_unacknowledged), { num: true, sort: "messages_unacknowledged" }],
      ["Total", (q) => num(q.messages), { num: true, sort: "messages" }],
      ["Incoming", (q) => rate(get(q, "message_stats.publish_details.rate")), { num: true, sort: "message_stats.publish_details.rate" }],
      ["Deliver / get", (q) => rate(get(q, "message_stats.deliver_get_details.rate")), { num: true }],
      ["Ack", (q) => rate(get(q, "message_stats.ack_details.rate")), { num: true }],
    ], data.items, sort),
    h("div", { class: "pager" },
      h("button", { class: "secondary", disabled: s.page <= 1, onclick: () => { s.page--; render(); } }, "‹ Previous"),
      h("span", { id: "queue-page" }, `Page ${data.page} of ${data.page_count} · ${num(data.filtered_count)} of ${num(data.total_count)} queues`),
      h("button", { class: "secondary", disabled: s.page >= data.page_count, onclick: () => { s.page++; render(); } }, "Next ›")),
    h("div", { class: "card" }, h("h2", {}, "Add a queue"), addForm),
  ];
};

function publishForm(vhost, exchange, routingKey) {
  return h("form", { id: "publish", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act("Message published", async () => {
      const r = await api("POST", `/exchanges/${enc(vhost)}/${enc(exchange || "amq.default")}/publish`, {
        routing_key: v.routing_key, payload: v.payload, payload_encoding: "string",
        properties: { delivery_mode: Number(v.delivery_mode), headers: json(v.headers, {}) },
      });
      if (!r.routed) throw new Error("Message published, but not routed");
    });
  } },
  h("div", { class: "form-row" },
    h("label", {}, "Routing key", h("input", { name: "routing_key", value: routingKey || "" })),
    h("label", {}, "Delivery mode", h("select", { name: "delivery_mode" }, h("option", { value: "1" }, "1 - Non-persistent"), h("option", { value: "2" }, "2 - Persistent"))),
    h("label", { class: "grow" }, "Headers (JSON)", h("input", { name: "headers", placeholder: "{}" }))),
  h("label", {}, "Payload", h("textarea", { name: "payload" })),
  h("p", {}, h("button", { type: "submit" }, "Publish message")));
}

pages.queue = async (vhost, name) => {
  const base = `/queues/${enc(vhost)}/${enc(name)}`;
  const [q, bindings, consumers] = await Promise.all([
    api("GET", base), api("GET", base + "/bindings"), api("GET", `/consumers/${enc(vhost)}`)]);
  const mine = consumers.filter((c) => c.queue.name === name);
  const got = h("div", { id: "got" });
  const getForm = h("form", { class: "form-row", id: "get-messages", onsubmit: async (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    try {
      const msgs = await api("POST", base + "/get", { count: Number(v.count), ackmode: v.ackmode, encoding: v.encoding, truncate: 50000 });
      got.replaceChildren(...(msgs.length ? msgs.map((m, i) => h("div", { class: "msg" },
        h("strong", {}, `Message ${i + 1}`), ` · exchange "${m.exchange}" · routing key "${m.routing_key}" · redelivered ${m.redelivered} · ${m.message_count} left`,
        h("div", { class: "muted" }, `properties ${JSON.stringify(m.properties)}`),
        h("pre", {}, m.payload))) : [h("p", { class: "muted" }, "Queue is empty")]));
    } catch (err) { toast(err.message, true); }
  } },
  h("label", {}, "Ack mode", h("select", { name: "ackmode" },
    h("option", { value: "ack_requeue_true" }, "Nack message requeue true"),
    h("option", { value: "ack_requeue_false" }, "Automatic ack"),
    h("option", { value: "reject_requeue_true" }, "Reject requeue true"),
    h("option", { value: "reject_requeue_false" }, "Reject requeue false"))),
  h("label", {}, "Encoding", h("select", { name: "encoding" }, h("option", { value: "auto" }, "Auto string / base64"), h("option", { value: "base64" }, "base64"))),
  h("label", {}, "Messages", h("input", { name: "count", value: "1", size: 4 })),
  h("button", { type: "submit" }, "Get messages"));
  const bindForm = h("form", { class: "form-row", id: "bind", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act("Binding added", () => api("POST", `/bindings/${enc(vhost)}/e/${enc(v.exchange)}/q/${enc(name)}`, { routing_key: v.routing_key, arguments: json(v.arguments, {}) }));
  } },
  h("label", {}, "From exchange", h("input", { name: "exchange", required: true })),
  h("label", {}, "Routing key", h("input", { name: "routing_key" })),
  h("label", { class: "grow" }, "Arguments (JSON)", h("input", { name: "arguments", placeholder: "{}" })),
  h("button", { type: "submit" }, "Bind"));
  const unbind = (b) => b.source === "" ? h("span", { class: "muted" }, "(default)") :
    h("button", { class: "secondary", onclick: () => act("Binding removed", () => api("DELETE", `/bindings/${enc(vhost)}/e/${enc(b.source)}/q/${enc(name)}/${enc(b.properties_key)}`)) }, "Unbind");
  return [
    h("h1", {}, `Queue ${name}`, h("span", { class: "muted" }, ` in ${vhost}`)),
    h("div", { class: "tiles" },
      ...[["Ready", q.messages_ready, "ready"], ["Unacked", q.messages_unacknowledged, "unacked"], ["Total", q.messages, "total"], ["Consumers", q.consumers, "consumers"]]
        .map(([l, v, id]) => h("div", { class: "tile", "data-tile": id }, h("div", { class: "n" }, num(v)), h("div", { class: "l" }, l))),
      h("div", { class: "tile" }, h("div", { class: "n" }, rate(get(q, "message_stats.publish_details.rate"))), h("div", { class: "l" }, "Incoming"))),
    h("div", { class: "grid2" },
      h("div", { class: "card" }, h("h2", {}, "Details"), h("dl", { class: "kv" },
        h("dt", {}, "Type"), h("dd", {}, q.type), h("dt", {}, "Durable"), h("dd", {}, String(q.durable)),
        h("dt", {}, "Auto delete"), h("dd", {}, String(q.auto_delete)), h("dt", {}, "Exclusive"), h("dd", {}, String(q.exclusive)),
        h("dt", {}, "Arguments"), h("dd", {}, JSON.stringify(q.arguments)), h("dt", {}, "Policy"), h("dd", {}, q.policy || ""),
        h("dt", {}, "Bytes"), h("dd", {}, bytes(q.message_bytes)))),
      h("div", { class: "card" }, h("h2", {}, "Consumers"), table([
        ["Tag", (c) => c.consumer_tag], ["Channel", (c) => get(c, "channel_details.name") || ""],
        ["Ack required", (c) => String(c.ack_required)], ["Prefetch", (c) => num(c.prefetch_count), { num: true }]], mine))),
    h("div", { class: "card" }, h("h2", {}, "Bindings"), table([
      ["From", (b) => b.source || "(AMQP default)"], ["Routing key", (b) => b.routing_key], ["Arguments", (b) => JSON.stringify(b.arguments)], ["", unbind]], bindings), h("p"), bindForm),
    h("div", { class: "card" }, h("h2", {}, "Publish message"), h("p", { class: "muted" }, "Through the default exchange, with the queue's name as routing key."), publishForm(vhost, "", name)),
    h("div", { class: "card" }, h("h2", {}, "Get messages"), h("p", { class: "muted" }, "Getting messages is destructive unless they are requeued (the default)."), getForm, got),
    h("div", { class: "card" }, h("h2", {}, "Purge and delete"), h("div", { class: "form-row" },
      h("button", { class: "secondary", id: "purge", onclick: () => act("Queue purged", () => api("DELETE", base + "/contents")) }, "Purge messages"),
      h("button", { class: "danger", id: "delete-queue", onclick: () => confirm(`Delete queue ${name}?`) &&
        act("Queue deleted", async () => { await api("DELETE", base); location.hash = "#/queues"; }) }, "Delete queue"))),
  ];
};

pages.exchanges = async () => {
  const list = await api("GET", "/exchanges");
  const addForm = h("form", { class: "form-row", id: "add-exchange", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act(`Exchange ${v.name} declared`, () => api("PUT", `/exchanges/${enc(v.vhost)}/${enc(v.name)}`, { type: v.type, durable: v.durable === "true", auto_delete: false, internal: false, arguments: json(v.arguments, {}) }));
  } },
  h("label", {}, "Virtual host", h("select", { name: "vhost" })),
  h("label", {}, "Name", h("input", { name: "name", required: true })),
  h("label", {}, "Type", h("select", { name: "type" }, ["direct", "fanout", "headers", "topic", "x-delayed-message", "x-jms-topic", "x-message-deduplication"].map((t) => h("option", { value: t }, t)))),
  h("label", {}, "Durability", h("select", { name: "durable" }, h("option", { value: "true" }, "Durable"), h("option", { value: "false" }, "Transient"))),
  h("label", { class: "grow" }, "Arguments (JSON)", h("input", { name: "arguments", placeholder: "{}" })),
  h("button", { type: "submit" }, "Add exchange"));
  vhostOptions("/").then((opts) => $("select[name=vhost]", addForm).append(...opts));
  const link = (x) => h("a", { href: `#/exchanges/${enc(x.vhost)}/${enc(x.name || "amq.default")}` }, x.name || "(AMQP default)");
  return [h("h1", {}, "Exchanges"),
    table([["Virtual host", (x) => x.vhost], ["Name", link], ["Type", (x) => x.type], ["Durable", (x) => String(x.durable)], ["Arguments", (x) => JSON.stringify(x.arguments)],
      ["Message rate in", (x) => rate(get(x, "message_stats.publish_in_details.rate")), { num: true }],
      ["Message rate out", (x) => rate(get(x, "message_stats.publish_out_details.rate")), { num: true }]], list),
    h("p"), h("div", { class: "card" }, h("h2", {}, "Add an exchange"), addForm)];
};

pages.exchange = async (vhost, name) => {
  const x = await api("GET", `/exchanges/${enc(vhost)}/${enc(name)}`);
  const real = name !== "amq.default";
  const bindings = real ? await api("GET", `/exchanges/${enc(vhost)}/${enc(name)}/bindings/source`) : [];
  return [h("h1", {}, `Exchange ${x.name || "(AMQP default)"}`, h("span", { class: "muted" }, ` in ${vhost}`)),
    h("div", { class: "card" }, h("dl", { class: "kv" }, h("dt", {}, "Type"), h("dd", {}, x.type), h("dt", {}, "Durable"), h("dd", {}, String(x.durable)), h("dt", {}, "Arguments"), h("dd", {}, JSON.stringify(x.arguments)),
      h("dt", {}, "Published in"), h("dd", {}, countAndRate(x, "message_stats.publish_in")),
      h("dt", {}, "Routed out"), h("dd", {}, countAndRate(x, "message_stats.publish_out")))),
    h("div", { class: "card" }, h("h2", {}, "Bindings from this exchange"), table([["To", (b) => `${b.destination_type} ${b.destination}`], ["Routing key", (b) => b.routing_key], ["Arguments", (b) => JSON.stringify(b.arguments)]], bindings)),
    h("div", { class: "card" }, h("h2", {}, "Publish message"), publishForm(vhost, x.name, "")),
    real && !x.name.startsWith("amq.") ? h("div", { class: "card" }, h("button", { class: "danger", onclick: () => confirm(`Delete exchange ${name}?`) &&
      act("Exchange deleted", async () => { await api("DELETE", `/exchanges/${enc(vhost)}/${enc(name)}`); location.hash = "#/exchanges"; }) }, "Delete exchange")) : null];
};

pages.connections = async () => {
  const list = await api("GET", "/connections");
  const close = (c) => h("button", { class: "secondary", "data-close": c.name, onclick: () => {
    const reason = prompt(`Close connection ${c.name}? Reason:`, "Closed via management UI");
    if (reason !== null) act("Connection closed", () => api("DELETE", `/connections/${enc(c.name)}`, undefined, { "X-Reason": reason }));
  } }, "Close");
  return [h("h1", {}, "Connections"), table([
    ["Name", (c) => c.name], ["User", (c) => c.user], ["Virtual host", (c) => c.vhost], ["Client", (c) => get(c, "client_properties.connection_name") || get(c, "client_properties.product") || ""],
    ["Protocol", (c) => c.protocol + (c.ssl ? " (TLS)" : "")], ["Channels", (c) => num(c.channels), { num: true }], ["State", (c) => h("span", { class: "pill" }, c.state)],
    ["Received", (c) => bytes(c.recv_oct), { num: true }], ["Sent", (c) => bytes(c.send_oct), { num: true }], ["", close]], list)];
};

pages.channels = async () => {
  const list = await api("GET", "/channels");
  return [h("h1", {}, "Channels"), table([
    ["Channel", (c) => c.name], ["User", (c) => c.user], ["Virtual host", (c) => c.vhost], ["Mode", (c) => (c.confirm ? "C" : "") + (c.transactional ? "T" : "")],
    ["Prefetch", (c) => num(c.prefetch_count), { num: true }], ["Consumers", (c) => num(c.consumer_count), { num: true }],
    ["Unacked", (c) => num(c.messages_unacknowledged), { num: true }], ["Published", (c) => num(get(c, "message_stats.publish")), { num: true }]], list)];
};

pages.admin = async () => {
  const [users, vhosts, permissions, policies] = await Promise.all([
    api("GET", "/users"), api("GET", "/vhosts"), api("GET", "/permissions"), api("GET", "/policies")]);
  const userForm = h("form", { class: "form-row", id: "add-user", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act(`User ${v.name} saved`, () => api("PUT", `/users/${enc(v.name)}`, { password: v.password, tags: v.tags }));
  } }, h("label", {}, "Username", h("input", { name: "name", required: true })), h("label", {}, "Password", h("input", { name: "password", type: "password", required: true })),
  h("label", {}, "Tags", h("input", { name: "tags", placeholder: "management, monitoring" })), h("button", { type: "submit" }, "Add user"));
  const vhostForm = h("form", { class: "form-row", id: "add-vhost", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act(`Virtual host ${v.name} added`, () => api("PUT", `/vhosts/${enc(v.name)}`, { description: v.description }));
  } }, h("label", {}, "Name", h("input", { name: "name", required: true })), h("label", { class: "grow" }, "Description", h("input", { name: "description" })), h("button", { type: "submit" }, "Add virtual host"));
  const permForm = h("form", { class: "form-row", id: "set-permission", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act("Permission set", () => api("PUT", `/permissions/${enc(v.vhost)}/${enc(v.user)}`, { configure: v.configure, write: v.write, read: v.read }));
  } }, h("label", {}, "User", h("select", { name: "user" }, users.map((u) => h("option", {}, u.name)))),
  h("label", {}, "Virtual host", h("select", { name: "vhost" }, vhosts.map((v) => h("option", {}, v.name)))),
  h("label", {}, "Configure", h("input", { name: "configure", value: ".*" })), h("label", {}, "Write", h("input", { name: "write", value: ".*" })),
  h("label", {}, "Read", h("input", { name: "read", value: ".*" })), h("button", { type: "submit" }, "Set permission"));
  const policyForm = h("form", { class: "form-row", id: "add-policy", onsubmit: (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    act(`Policy ${v.name} saved`, () => api("PUT", `/policies/${enc(v.vhost)}/${enc(v.name)}`, { pattern: v.pattern, "apply-to": v.apply_to, priority: Number(v.priority || 0), definition: json(v.definition, {}) }));
  } }, h("label", {}, "Virtual host", h("select", { name: "vhost" }, vhosts.map((v) => h("option", {}, v.name)))),
  h("label", {}, "Name", h("input", { name: "name", required: true })), h("label", {}, "Pattern", h("input", { name: "pattern", required: true })),
  h("label", {}, "Apply to", h("select", { name: "apply_to" }, ["all", "queues", "exchanges", "classic_queues", "quorum_queues"].map((t) => h("option", {}, t)))),
  h("label", {}, "Priority", h("input", { name: "priority", value: "0", size: 3 })), h("label", { class: "grow" }, "Definition (JSON)", h("input", { name: "definition", placeholder: '{"max-length": 1000}', required: true })),
  h("button", { type: "submit" }, "Add policy"));
  const download = () => act("Definitions downloaded", async () => {
    const defs = await api("GET", "/definitions");
    const a = h("a", { href: URL.createObjectURL(new Blob([JSON.stringify(defs, null, 2)], { type: "application/json" })), download: "warren-definitions.json" });
    document.body.append(a); a.click(); a.remove();
  });
  const upload = h("input", { type: "file", id: "definitions-file", accept: "application/json,.json" });
  const del = (what, path) => h("button", { class: "secondary", onclick: () => confirm(`Delete ${what}?`) && act(`${what} deleted`, () => api("DELETE", path)) }, "Delete");
  return [h("h1", {}, "Admin"),
    h("div", { class: "card" }, h("h2", {}, "Users"), table([["Name", (u) => u.name], ["Tags", (u) => u.tags.join(", ")], ["", (u) => del(`user ${u.name}`, `/users/${enc(u.name)}`)]], users), h("p"), userForm),
    h("div", { class: "card" }, h("h2", {}, "Virtual hosts"), table([["Name", (v) => v.name], ["Description", (v) => v.description || ""], ["", (v) => del(`virtual host ${v.name}`, `/vhosts/${enc(v.name)}`)]], vhosts), h("p"), vhostForm),
    h("div", { class: "card" }, h("h2", {}, "Permissions"), table([["User", (p) => p.user], ["Virtual host", (p) => p.vhost], ["Configure", (p) => p.configure], ["Write", (p) => p.write], ["Read", (p) => p.read],
      ["", (p) => del(`permission of ${p.user} in ${p.vhost}`, `/permissions/${enc(p.vhost)}/${enc(p.user)}`)]], permissions), h("p"), permForm),
    h("div", { class: "card" }, h("h2", {}, "Policies"), table([["Virtual host", (p) => p.vhost], ["Name", (p) => p.name], ["Pattern", (p) => p.pattern], ["Apply to", (p) => p["apply-to"]],
      ["Definition", (p) => JSON.stringify(p.definition)], ["Priority", (p) => p.priority, { num: true }], ["", (p) => del(`policy ${p.name}`, `/policies/${enc(p.vhost)}/${enc(p.name)}`)]], policies), h("p"), policyForm),
    h("div", { class: "card" }, h("h2", {}, "Definitions"), h("div", { class: "form-row" },
      h("button", { id: "download-definitions", onclick: download }, "Download broker definitions"), upload,
      h("button", { class: "secondary", id: "upload-definitions", onclick: () => upload.files[0] &&
        act("Definitions imported", async () => api("POST", "/definitions", await upload.files[0].text())) }, "Upload definitions")))];
};

// ---------------------------------------------------------------------------- router ----

async function render() {
  clearTimeout(timer);
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [page, vhost, name] = parts;
  const route = { "": "overview", queues: vhost !== undefined ? "queue" : "queues", exchanges: vhost !== undefined ? "exchange" : "exchanges" }[page || ""] || page;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === (page || "overview"));
  const fn = pages[route];
  if (!fn) { $("#page").replaceChildren(h("p", {}, "Not found")); return; }
  try {
    const content = await fn(vhost, name);
    // Do not replace a form the user is typing in: refresh only when nothing has focus.
    $("#page").replaceChildren(...[content].flat().filter(Boolean));
    $("#page").dataset.page = route;
  } catch (e) {
    $("#page").replaceChildren(h("p", { class: "error" }, e.message));
  }
  if (["overview", "queues", "connections", "channels"].includes(route)) {
    timer = setTimeout(function again() {
      const typing = document.activeElement && ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
      if (typing) timer = setTimeout(again, 5000); else render();
    }, 5000);
  }
}

function showLogin(message) {
  auth = null;
  sessionStorage.removeItem("warren-auth");
  $("#nav").hidden = true; $("#who").hidden = true;
  $("#page").replaceChildren();
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function start() {
  try {
    const me = await api("GET", "/whoami");
    $("#login").hidden = true; $("#nav").hidden = false; $("#who").hidden = false;
    $("#user").textContent = `User ${me.name}`;
    render();
  } catch (e) {
    showLogin(e.message === "Login failed" && auth ? "Login failed" : "");
  }
}

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = formValues(e.target);
  auth = btoa(unescape(encodeURIComponent(`${v.username}:${v.password}`)));
  sessionStorage.setItem("warren-auth", auth);
  start();
});
$("#logout").addEventListener("click", () => showLogin());
window.addEventListener("hashchange", render);
if (auth) start(); else showLogin();
