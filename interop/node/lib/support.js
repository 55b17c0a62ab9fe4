'use strict';
// Helpers shared by the amqplib interop tests.

const amqp = require('amqplib');
const { randomUUID } = require('node:crypto');

const AMQP_URL = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672/%2F';
const DEFAULT_WAIT_MS = 10000;

// Rejects with a descriptive error if `promise` has not settled within `ms`,
// so a broker that never answers fails the test instead of hanging it.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Records deliveries (or anything else) and lets a test await a condition on
// them, with a deadline. Usable directly as a consume callback.
class Inbox {
  constructor() {
    this.items = [];
    this.cancelled = false;
    this.waiters = [];
    this.push = this.push.bind(this);
  }

  push(item) {
    if (item === null) {
      // amqplib's consume callback gets null when the broker cancels the consumer.
      this.cancelled = true;
      this.check();
      return;
    }
    this.items.push(item);
    this.check();
  }

  check() {
    this.waiters = this.waiters.filter((w) => {
      if (!w.predicate(this.items)) return true;
      w.resolve(this.items);
      return false;
    });
  }

  get length() {
    return this.items.length;
  }

  texts() {
    return this.items.map((m) => m.content.toString());
  }

  until(predicate, what, ms = DEFAULT_WAIT_MS) {
    if (predicate(this.items)) return Promise.resolve(this.items);
    const p = new Promise((resolve) => this.waiters.push({ predicate, resolve }));
    return withTimeout(p, ms, what);
  }

  untilCount(n, what, ms = DEFAULT_WAIT_MS) {
    return this.until((items) => items.length >= n, what || `${n} deliveries`, ms);
  }
}

// The reply text of a channel/connection error raised by amqplib, e.g.
// "NOT_FOUND - no queue 'x' in vhost '/'".
function replyText(err) {
  const m = /with message "([\s\S]*)"$/.exec(err.message);
  return m ? m[1] : err.message;
}

// A message published straight to a queue (default exchange) after the real
// ones. Publishes are confirmed before it is sent, so when it arrives the
// consumer has seen everything routed to that queue: the exact set, without
// waiting "long enough" for stragglers.
const END_MARKER = '--end-of-test--';

function beforeMarker(inbox) {
  const texts = inbox.texts();
  const i = texts.indexOf(END_MARKER);
  return i === -1 ? null : texts.slice(0, i);
}

function untilMarker(inbox, what) {
  return inbox.until((items) => items.some((m) => m.content.toString() === END_MARKER), `end marker on ${what}`);
}

// Per-test context: unique names, tracked connections, cleanup at the end.
class Ctx {
  constructor(t) {
    this.id = randomUUID().slice(0, 8);
    this.prefix = `interop.node.${t.name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.${this.id}`;
    this.connections = [];
    this.queues = [];
    this.exchanges = [];
    this.channelErrors = [];
    t.after(() => this.cleanup());
  }

  queue(label) {
    const name = `${this.prefix}.${label}`;
    this.queues.push(name);
    return name;
  }

  exchange(label) {
    const name = `${this.prefix}.${label}`;
    this.exchanges.push(name);
    return name;
  }

  async connect() {
    let conn;
    try {
      conn = await withTimeout(amqp.connect(AMQP_URL, { timeout: 10000 }), 10000, 'connection');
    } catch (err) {
      this.connectFailed = true;
      throw err;
    }
    conn.on('error', () => {});
    this.connections.push(conn);
    return conn;
  }

  // A channel whose server-side closure is recorded instead of crashing the
  // process; the failed operation's promise still rejects.
  watch(ch) {
    ch.on('error', (err) => this.channelErrors.push(err));
    return ch;
  }

  async channel(conn) {
    return this.watch(await (conn || (await this.connect())).createChannel());
  }

  async confirmChannel(conn) {
    return this.watch(await (conn || (await this.connect())).createConfirmChannel());
  }

  async cleanup() {
    // If this test could not even connect, do not spend another timeout on cleanup.
    if ((this.queues.length || this.exchanges.length) && !this.connectFailed) {
      const conn = await this.connect();
      for (const [kind, names] of [
        ['queue', this.queues],
        ['exchange', this.exchanges],
      ]) {
        for (const name of names) {
          // A fresh channel each time: a failed delete closes the channel.
          try {
            const ch = await conn.createChannel();
            ch.on('error', () => {});
            if (kind === 'queue') await ch.deleteQueue(name);
            else await ch.deleteExchange(name);
            await ch.close();
          } catch {
            // already gone
          }
        }
      }
    }
    for (const conn of this.connections) {
      try {
        await withTimeout(conn.close(), 5000, 'connection close');
      } catch {
        // already closed
      }
    }
  }
}

module.exports = {
  AMQP_URL,
  END_MARKER,
  Ctx,
  Inbox,
  beforeMarker,
  replyText,
  untilMarker,
  withTimeout,
};
