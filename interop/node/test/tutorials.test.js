'use strict';
// The six classic AMQP 0-9-1 tutorial scenarios, written with amqplib's
// promise API, each asserting what the application observes. Producers and
// consumers use separate connections, as separate programs would; every wait
// has a deadline (support.Inbox.until / withTimeout).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { randomUUID } = require('node:crypto');
const { Ctx, END_MARKER, Inbox, beforeMarker, untilMarker } = require('../lib/support');

async function publishConfirmed(ch, exchange, key, body, options = {}) {
  ch.publish(exchange, key, Buffer.from(body), options);
  await ch.waitForConfirms();
}

async function sendEndMarkers(ch, queues) {
  for (const q of queues) ch.sendToQueue(q, Buffer.from(END_MARKER));
  await ch.waitForConfirms();
}

// ------------------------------------------------------------- 1. hello ----

test('hello world', async (t) => {
  const ctx = new Ctx(t);
  const queue = ctx.queue('greetings');

  const sender = await ctx.channel();
  const ok = await sender.assertQueue(queue, { durable: false });
  assert.deepEqual(ok, { queue, messageCount: 0, consumerCount: 0 });
  assert.equal(sender.sendToQueue(queue, Buffer.from('hello from node')), true);

  const receiver = await ctx.channel();
  await receiver.assertQueue(queue, { durable: false });
  const inbox = new Inbox();
  const { consumerTag } = await receiver.consume(queue, inbox.push, { noAck: true });
  await inbox.untilCount(1, 'the greeting');

  const [msg] = inbox.items;
  assert.equal(msg.content.toString(), 'hello from node');
  assert.equal(msg.fields.exchange, '');
  assert.equal(msg.fields.routingKey, queue);
  assert.equal(msg.fields.consumerTag, consumerTag);
  assert.equal(msg.fields.redelivered, false);
  assert.equal(msg.fields.deliveryTag, 1);
  assert.equal((await receiver.checkQueue(queue)).messageCount, 0);
});

// ------------------------------------------------------- 2. work queues ----

// A consumer with prefetch 1 that records deliveries. In "busy" mode it holds
// them; otherwise it completes (acks) each one on the next turn of the event
// loop, so a broker ignoring the prefetch limit would show up as 2+ unacked.
class Worker {
  static async start(ctx, queue, progress, { busy = false } = {}) {
    const w = new Worker();
    w.progress = progress; // shared by all workers: woken on every delivery and ack
    w.ch = await ctx.channel();
    await w.ch.assertQueue(queue, { durable: true });
    await w.ch.prefetch(1);
    w.busy = busy;
    w.unacked = [];
    w.done = [];
    w.maxUnacked = 0;
    await w.ch.consume(queue, (msg) => w.onMessage(msg), { noAck: false });
    return w;
  }

  onMessage(msg) {
    if (msg === null) return; // consumer cancelled by the broker (queue deleted at cleanup)
    this.unacked.push(msg);
    this.maxUnacked = Math.max(this.maxUnacked, this.unacked.length);
    this.progress.push(msg);
    if (!this.busy) setImmediate(() => this.finishAll());
  }

  finishAll() {
    for (const msg of this.unacked.splice(0)) {
      assert.equal(msg.properties.deliveryMode, 2, 'persistence flag lost');
      assert.equal(msg.fields.redelivered, false);
      this.ch.ack(msg);
      this.done.push(msg.content.toString());
    }
    this.progress.check();
  }
}

test('work queues: durable queue, persistent tasks, fair dispatch with prefetch 1', async (t) => {
  const ctx = new Ctx(t);
  const queue = ctx.queue('tasks');
  const producer = await ctx.confirmChannel();
  await producer.assertQueue(queue, { durable: true });
  const publish = async (tasks) => {
    for (const task of tasks) producer.sendToQueue(queue, Buffer.from(task), { persistent: true });
    await producer.waitForConfirms();
  };

  const firstBatch = Array.from({ length: 6 }, (_, i) => `task ${i + 1} ${'.'.repeat((i + 1) % 4)}`);
  await publish(firstBatch);

  // Worker A takes one task and stays busy with it.
  const progress = new Inbox();
  const a = await Worker.start(ctx, queue, progress, { busy: true });
  await progress.until(() => a.unacked.length === 1, "worker A's first task");
  assert.equal(a.unacked[0].content.toString(), firstBatch[0]);
  // prefetch 1: the other five stay in the queue (ready), none go to A.
  assert.equal((await producer.checkQueue(queue)).messageCount, 5);

  // Worker B completes tasks one at a time and gets all the rest.
  const b = await Worker.start(ctx, queue, progress);
  await progress.until(() => b.done.length === 5, 'worker B to complete five tasks');
  assert.equal(a.unacked.length, 1, 'busy worker A was given more work despite prefetch 1');
  assert.deepEqual(b.done, firstBatch.slice(1), 'tasks should reach B in queue order');
  a.busy = false;
  a.finishAll();

  // Both idle: the second batch is spread over both workers.
  const secondBatch = Array.from({ length: 8 }, (_, i) => `job ${i + 1} ${'.'.repeat((i + 1) % 3)}`);
  await publish(secondBatch);
  const total = firstBatch.length + secondBatch.length;
  const allDone = () => a.done.length + b.done.length === total;
  await progress.until(allDone, 'both workers to finish the second batch');
  assert.equal(a.maxUnacked, 1);
  assert.equal(b.maxUnacked, 1);
  assert.ok(a.done.some((x) => secondBatch.includes(x)), 'worker A got none of the second batch');
  assert.ok(b.done.some((x) => secondBatch.includes(x)), 'worker B got none of the second batch');
  const everything = [...a.done, ...b.done];
  assert.deepEqual([...everything].sort(), [...firstBatch, ...secondBatch].sort(), 'each task exactly once');

  const after = await producer.checkQueue(queue);
  assert.equal(after.messageCount, 0);
  assert.equal(after.consumerCount, 2);
});

// ------------------------------------------------- 3. publish/subscribe ----

test('publish/subscribe: fanout to exclusive server-named queues', async (t) => {
  const ctx = new Ctx(t);
  const exchange = ctx.exchange('logs');
  const pub = await ctx.confirmChannel();
  await pub.assertExchange(exchange, 'fanout', { durable: false });
  // Nobody is subscribed yet: dropped, not kept for later subscribers.
  await publishConfirmed(pub, exchange, '', 'before anyone listened');

  const subscribers = [];
  for (let i = 0; i < 2; i++) {
    const conn = await ctx.connect();
    const ch = await ctx.channel(conn);
    await ch.assertExchange(exchange, 'fanout', { durable: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    assert.match(queue, /^amq\.gen-/);
    await ch.bindQueue(queue, exchange, '');
    const inbox = new Inbox();
    await ch.consume(queue, inbox.push, { noAck: true });
    subscribers.push({ conn, queue, inbox });
  }
  assert.notEqual(subscribers[0].queue, subscribers[1].queue);

  const lines = Array.from({ length: 10 }, (_, i) => `log line ${i}`);
  for (const line of lines) pub.publish(exchange, `ignored.${line}`, Buffer.from(line));
  await pub.waitForConfirms();
  await sendEndMarkers(
    pub,
    subscribers.map((s) => s.queue),
  );

  for (const s of subscribers) {
    await untilMarker(s.inbox, s.queue);
    assert.deepEqual(beforeMarker(s.inbox), lines);
    for (const m of s.inbox.items.slice(0, lines.length)) assert.equal(m.fields.exchange, exchange);
  }

  // Exclusive queues go away with their connection.
  await subscribers[0].conn.close();
  let gone = false;
  for (let i = 0; i < 50 && !gone; i++) {
    const probe = await ctx.channel();
    try {
      await probe.checkQueue(subscribers[0].queue);
      await probe.close();
      await new Promise((r) => setTimeout(r, 100)); // poll interval, bounded by the loop
    } catch (err) {
      assert.equal(err.code, 404);
      gone = true;
    }
  }
  assert.ok(gone, 'exclusive queue survived its connection');
});

// ----------------------------------------------------------- 4. routing ----

test('routing: direct exchange, bindings by severity', async (t) => {
  const ctx = new Ctx(t);
  const exchange = ctx.exchange('direct_logs');

  const subscribe = async (severities) => {
    const ch = await ctx.channel();
    await ch.assertExchange(exchange, 'direct', { durable: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    for (const sev of severities) await ch.bindQueue(queue, exchange, sev);
    const inbox = new Inbox();
    await ch.consume(queue, inbox.push, { noAck: true });
    return { queue, inbox };
  };
  const disk = await subscribe(['error']);
  const screen = await subscribe(['info', 'warning', 'error']);

  const pub = await ctx.confirmChannel();
  await pub.assertExchange(exchange, 'direct', { durable: false });
  const sent = [];
  ['info', 'error', 'debug', 'warning', 'error', 'info', 'debug', 'error'].forEach((sev, i) => {
    const body = `${sev}: event ${i}`;
    pub.publish(exchange, sev, Buffer.from(body));
    sent.push([sev, body]);
  });
  await pub.waitForConfirms();
  await sendEndMarkers(pub, [disk.queue, screen.queue]);

  await untilMarker(disk.inbox, 'disk queue');
  await untilMarker(screen.inbox, 'screen queue');
  assert.deepEqual(
    beforeMarker(disk.inbox),
    sent.filter(([s]) => s === 'error').map(([, b]) => b),
  );
  assert.deepEqual(
    beforeMarker(screen.inbox),
    sent.filter(([s]) => s !== 'debug').map(([, b]) => b),
  );
  for (const m of [...disk.inbox.items.slice(0, -1), ...screen.inbox.items.slice(0, -1)]) {
    assert.ok(m.content.toString().startsWith(`${m.fields.routingKey}:`));
  }
});

// ------------------------------------------------------------ 5. topics ----

const TOPIC_BINDINGS = {
  orange: ['*.orange.*'],
  rabbitsAndLazy: ['*.*.rabbit', 'lazy.#'],
  everything: ['#'],
  kern: ['kern.#'],
  aStar: ['a.*'],
  endsInB: ['#.b'],
  aHashC: ['a.#.c'],
  exact: ['a.b'],
};

const TOPIC_KEYS = [
  'quick.orange.rabbit',
  'lazy.orange.elephant',
  'quick.orange.fox',
  'lazy.brown.fox',
  'lazy.pink.rabbit',
  'quick.brown.fox',
  'orange',
  'quick.orange.male.rabbit',
  'lazy.orange.male.rabbit',
  'lazy',
  'kern',
  'kern.critical',
  'kern.disk.full',
  'kernel.panic',
  'a',
  'a.b',
  'a.b.c',
  'a.c',
  'a.x.y.c',
  'b',
  'x.y.b',
  '',
];

// Written out by hand (not computed) so the test does not share a matcher's bugs.
const TOPIC_EXPECTED = {
  orange: ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox'],
  // 'lazy.pink.rabbit' matches both bindings but is delivered once.
  rabbitsAndLazy: [
    'quick.orange.rabbit',
    'lazy.orange.elephant',
    'lazy.brown.fox',
    'lazy.pink.rabbit',
    'lazy.orange.male.rabbit',
    'lazy',
  ],
  everything: TOPIC_KEYS,
  // '#' matches zero words: 'kern' matches 'kern.#'; 'kernel.panic' does not.
  kern: ['kern', 'kern.critical', 'kern.disk.full'],
  // '*' is exactly one word: 'a' and 'a.b.c' do not match 'a.*'.
  aStar: ['a.b', 'a.c'],
  endsInB: ['a.b', 'b', 'x.y.b'],
  aHashC: ['a.b.c', 'a.c', 'a.x.y.c'],
  exact: ['a.b'],
};

test("topics: '*' is one word, '#' is zero or more", async (t) => {
  const ctx = new Ctx(t);
  const exchange = ctx.exchange('topic_logs');
  const ch = await ctx.channel();
  await ch.assertExchange(exchange, 'topic', { durable: false });
  const subs = {};
  for (const [label, patterns] of Object.entries(TOPIC_BINDINGS)) {
    const { queue } = await ch.assertQueue('', { exclusive: true });
    for (const p of patterns) await ch.bindQueue(queue, exchange, p);
    const inbox = new Inbox();
    await ch.consume(queue, inbox.push, { noAck: true });
    subs[label] = { queue, inbox };
  }

  const pub = await ctx.confirmChannel();
  for (const key of TOPIC_KEYS) pub.publish(exchange, key, Buffer.from(key));
  await pub.waitForConfirms();
  await sendEndMarkers(
    pub,
    Object.values(subs).map((s) => s.queue),
  );

  for (const [label, { inbox }] of Object.entries(subs)) {
    await untilMarker(inbox, label);
    assert.deepEqual(beforeMarker(inbox), TOPIC_EXPECTED[label], `binding(s) ${TOPIC_BINDINGS[label].join(', ')}`);
    for (const m of inbox.items.slice(0, -1)) assert.equal(m.fields.routingKey, m.content.toString());
  }
});

// --------------------------------------------------------------- 6. RPC ----

function fib(n) {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

test('RPC: request queue, exclusive callback queue, correlation ids', async (t) => {
  const ctx = new Ctx(t);
  const rpcQueue = ctx.queue('rpc');

  // Server.
  const server = await ctx.channel();
  await server.assertQueue(rpcQueue, { durable: false });
  await server.prefetch(1);
  let served = 0;
  await server.consume(rpcQueue, (msg) => {
    const n = Number.parseInt(msg.content.toString(), 10);
    server.sendToQueue(msg.properties.replyTo, Buffer.from(String(fib(n))), {
      correlationId: msg.properties.correlationId,
    });
    server.ack(msg);
    served++;
  });

  // Client.
  const client = await ctx.channel();
  const { queue: callbackQueue } = await client.assertQueue('', { exclusive: true });
  assert.match(callbackQueue, /^amq\.gen-/);
  const replies = new Inbox();
  await client.consume(callbackQueue, replies.push, { noAck: true });
  const send = (n) => {
    const correlationId = randomUUID();
    client.sendToQueue(rpcQueue, Buffer.from(String(n)), { correlationId, replyTo: callbackQueue });
    return correlationId;
  };
  const replyFor = (id) => replies.items.find((m) => m.properties.correlationId === id);
  const call = async (n) => {
    const id = send(n);
    await replies.until(() => replyFor(id) !== undefined, `fib(${n}) reply`);
    return Number(replyFor(id).content.toString());
  };

  assert.equal(await call(30), 832040);
  assert.equal(await call(0), 0);

  // Several calls in flight: replies are matched purely by correlation id.
  const ns = [1, 2, 10, 25, 50, 7];
  const pending = new Map(ns.map((n) => [send(n), n]));
  await replies.until(() => [...pending.keys()].every((id) => replyFor(id)), 'all in-flight replies');
  for (const [id, n] of pending) assert.equal(Number(replyFor(id).content.toString()), fib(n), `fib(${n})`);
  assert.equal(replies.length, 2 + ns.length);
  assert.equal(served, 2 + ns.length);
  for (const m of replies.items) {
    assert.equal(m.fields.exchange, '');
    assert.equal(m.fields.routingKey, callbackQueue);
  }
});
