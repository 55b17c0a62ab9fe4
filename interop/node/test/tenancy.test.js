'use strict';
// A non-guest user in its own vhost with narrow permissions (issue #13), as amqplib sees it.
// The runner sets TENANT_URL (vhost interop-tenant, user interop-user; see interop/tenancy.json).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const amqp = require('amqplib');

const TENANT_URL =
  process.env.TENANT_URL || 'amqp://interop-user:interop-pass@127.0.0.1:5672/interop-tenant';

test('the user declares, publishes and gets within its permissions', async () => {
  const conn = await amqp.connect(TENANT_URL);
  try {
    const ch = await conn.createChannel();
    const queue = `it-node-${Math.random().toString(16).slice(2, 10)}`;
    await ch.assertQueue(queue, { autoDelete: true });
    ch.sendToQueue(queue, Buffer.from('tenant message'));
    let got = false;
    for (let i = 0; i < 100 && !got; i++) {
      got = await ch.get(queue, { noAck: true });
      if (!got) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(got, 'the message arrives');
    assert.equal(got.content.toString(), 'tenant message');
    await ch.deleteQueue(queue);
  } finally {
    await conn.close();
  }
});

test('a queue outside the permissions is refused with 403 and RabbitMQ\'s text', async () => {
  const conn = await amqp.connect(TENANT_URL);
  conn.on('error', () => {});
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await assert.rejects(ch.assertQueue('not-mine'), (e) => {
      assert.equal(e.code, 403);
      assert.match(
        e.message,
        /ACCESS_REFUSED - access to queue 'not-mine' in vhost 'interop-tenant' refused for user 'interop-user'/,
      );
      return true;
    });
  } finally {
    await conn.close();
  }
});

test('another vhost is refused at connection.open', async () => {
  const other = TENANT_URL.replace(/\/[^/]*$/, '/%2F');
  // amqplib reports a refused connection.open without the reply text (with RabbitMQ too):
  // the broker answered connection.close where open-ok was due.
  await assert.rejects(amqp.connect(other), (e) => {
    assert.match(e.message, /Expected ConnectionOpenOk; got <ConnectionClose channel:0>/);
    return true;
  });
});
