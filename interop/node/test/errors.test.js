'use strict';
// Acknowledgement and error behaviour as an amqplib application sees it.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Ctx, Inbox, replyText, withTimeout } = require('../lib/support');

test('prefetch 1 with nack requeue: redelivered in place, one unacked at a time', async (t) => {
  const ctx = new Ctx(t);
  const queue = ctx.queue('nack');
  const pub = await ctx.confirmChannel();
  await pub.assertQueue(queue, { durable: false });
  for (const body of ['m1', 'm2', 'm3']) pub.sendToQueue(queue, Buffer.from(body));
  await pub.waitForConfirms();

  const ch = await ctx.channel();
  await ch.prefetch(1);
  const inbox = new Inbox();
  await ch.consume(queue, inbox.push, { noAck: false });

  await inbox.untilCount(1, 'first delivery');
  const first = inbox.items[0];
  assert.equal(first.content.toString(), 'm1');
  assert.equal(first.fields.redelivered, false);
  // One unacked message: the other two are still ready in the queue.
  const q1 = await pub.checkQueue(queue);
  assert.equal(q1.messageCount, 2);
  assert.equal(q1.consumerCount, 1);
  assert.equal(inbox.length, 1);

  // nack with requeue: the same message comes back, before m2, flagged redelivered.
  ch.nack(first, false, true);
  await inbox.untilCount(2, 'redelivery after nack');
  const again = inbox.items[1];
  assert.equal(again.content.toString(), 'm1');
  assert.equal(again.fields.redelivered, true);
  assert.notEqual(again.fields.deliveryTag, first.fields.deliveryTag);
  assert.equal(inbox.length, 2);
  ch.ack(again);

  await inbox.untilCount(3, 'm2');
  assert.equal(inbox.items[2].content.toString(), 'm2');
  assert.equal(inbox.items[2].fields.redelivered, false);
  // nack without requeue: dropped.
  ch.nack(inbox.items[2], false, false);

  await inbox.untilCount(4, 'm3');
  assert.equal(inbox.items[3].content.toString(), 'm3');
  ch.ack(inbox.items[3]);

  // Nothing else arrives: the queue is empty (m2 was discarded, not requeued).
  const deadline = Date.now() + 5000;
  let q;
  do {
    q = await pub.checkQueue(queue);
  } while (q.messageCount !== 0 && Date.now() < deadline);
  assert.equal(q.messageCount, 0);
  assert.equal(inbox.length, 4);
  assert.deepEqual(inbox.texts(), ['m1', 'm1', 'm2', 'm3']);
});

test('reject with requeue redelivers with redelivered=true', async (t) => {
  const ctx = new Ctx(t);
  const queue = ctx.queue('reject');
  const ch = await ctx.confirmChannel();
  await ch.assertQueue(queue, { durable: false });
  ch.sendToQueue(queue, Buffer.from('payload'), { contentType: 'text/plain', headers: { k: 'v' }, messageId: 'm-1' });
  await ch.waitForConfirms();

  const ch2 = await ctx.channel();
  const got = await ch2.get(queue, { noAck: false });
  assert.equal(got.content.toString(), 'payload');
  assert.equal(got.fields.redelivered, false);
  assert.equal(got.fields.messageCount, 0);
  assert.equal(got.properties.contentType, 'text/plain');
  assert.deepEqual(got.properties.headers, { k: 'v' });
  assert.equal(got.properties.messageId, 'm-1');
  ch2.reject(got, true);

  const again = await ch2.get(queue, { noAck: true });
  assert.equal(again.content.toString(), 'payload');
  assert.equal(again.fields.redelivered, true);
  assert.deepEqual(again.properties.headers, { k: 'v' });
  assert.equal(await ch2.get(queue), false); // get-empty
});

test('passive declare of a missing queue: 404 NOT_FOUND, channel closed, connection fine', async (t) => {
  const ctx = new Ctx(t);
  const conn = await ctx.connect();
  const ch = await ctx.channel(conn);
  const missing = ctx.queue('does-not-exist');
  const err = await ch.checkQueue(missing).then(
    () => assert.fail('checkQueue of a missing queue succeeded'),
    (e) => e,
  );
  assert.equal(err.code, 404);
  // channel.close names the method that failed (queue.declare = 50/10); amqplib
  // then reports "Operation failed: QueueDeclare; ..." rather than a bare close.
  assert.equal(err.classId, 50);
  assert.equal(err.methodId, 10);
  assert.match(err.message, /^Operation failed: QueueDeclare;/);
  assert.match(replyText(err), /^NOT_FOUND - no queue/);
  assert.ok(replyText(err).includes(`'${missing}'`));
  // The channel is gone, the connection is not.
  const ch2 = await ctx.channel(conn);
  await ch2.assertQueue(missing, { durable: false });
  assert.equal((await ch2.checkQueue(missing)).queue, missing);
});

test('mandatory publish to an unroutable key on a confirm channel is returned, then confirmed', async (t) => {
  const ctx = new Ctx(t);
  const ch = await ctx.confirmChannel();
  const returned = new Inbox();
  ch.on('return', returned.push);
  const nowhere = ctx.queue('nobody-home');

  const acked = new Promise((resolve, reject) =>
    ch.publish('', nowhere, Buffer.from('lost?'), { mandatory: true }, (err) => (err ? reject(err) : resolve())),
  );
  await withTimeout(acked, 10000, 'publisher confirm');
  // basic.return precedes the basic.ack for the same message.
  assert.equal(returned.length, 1);
  const [r] = returned.items;
  assert.equal(r.fields.replyCode, 312);
  assert.equal(r.fields.replyText, 'NO_ROUTE');
  assert.equal(r.fields.exchange, '');
  assert.equal(r.fields.routingKey, nowhere);
  assert.equal(r.content.toString(), 'lost?');

  // Not mandatory: silently dropped, still confirmed, nothing returned.
  ch.publish('', nowhere, Buffer.from('dropped'));
  await ch.waitForConfirms();
  assert.equal(returned.length, 1);
});

test('redeclaring a queue with a different durable flag: 406 PRECONDITION_FAILED', async (t) => {
  const ctx = new Ctx(t);
  const queue = ctx.queue('durable');
  const conn = await ctx.connect();
  const ch = await ctx.channel(conn);
  await ch.assertQueue(queue, { durable: true });
  await ch.assertQueue(queue, { durable: true });
  const err = await ch.assertQueue(queue, { durable: false }).then(
    () => assert.fail('inequivalent redeclare succeeded'),
    (e) => e,
  );
  assert.equal(err.code, 406);
  assert.equal(err.classId, 50);
  assert.equal(err.methodId, 10);
  assert.match(replyText(err), /^PRECONDITION_FAILED - inequivalent arg 'durable'/);
  const ch2 = await ctx.channel(conn);
  await ch2.assertQueue(queue, { durable: true });
});
