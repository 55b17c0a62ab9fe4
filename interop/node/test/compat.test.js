'use strict';
// Behaviours real clients tripped on (issue #11), as an amqplib application sees them.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Ctx, withTimeout } = require('../lib/support');

test('updateSecret with the current password is accepted and the connection carries on', async (t) => {
  const ctx = new Ctx(t);
  const conn = await ctx.connect();
  const password = new URL(process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672/%2F').password;
  await withTimeout(conn.updateSecret(Buffer.from(decodeURIComponent(password)), 'token refresh'), 10000, 'update-secret-ok');
  const ch = await ctx.channel(conn);
  const queue = ctx.queue('after-update');
  await ch.assertQueue(queue, { durable: false });
  const ok = await ch.checkQueue(queue);
  assert.equal(ok.messageCount, 0);
});
