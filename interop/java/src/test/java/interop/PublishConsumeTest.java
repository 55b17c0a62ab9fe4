package interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.BuiltinExchangeType;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.GetResponse;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Publishing and consuming: push consumers, basic.get, exchange types, transactions. */
class PublishConsumeTest extends BrokerTest {

    @Test
    void defaultConsumerReceivesMessagesInOrderWithTheirProperties() throws Exception {
        Connection conn = connect();
        Channel ch = conn.createChannel();
        String queue = queueName("inbox");
        ch.queueDeclare(queue, false, false, false, null);

        Recorder consumer = new Recorder(ch);
        String tag = ch.basicConsume(queue, false, consumer);
        assertEquals(tag, take(consumer.consumeOks, "consume-ok"));
        assertTrue(tag.startsWith("amq.ctag-"), "server-generated consumer tag: " + tag);

        // AMQP timestamps carry whole seconds.
        Date timestamp = new Date(1_700_000_000_000L);
        for (int i = 0; i < 20; i++) {
            Map<String, Object> headers = new HashMap<>();
            headers.put("index", i);
            headers.put("label", "entry-" + i);
            headers.put("flag", true);
            AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                    .contentType("text/plain")
                    .contentEncoding("utf-8")
                    .deliveryMode(2)
                    .priority(3)
                    .correlationId("corr-" + i)
                    .replyTo("nobody")
                    .messageId("msg-" + i)
                    .timestamp(timestamp)
                    .type("greeting")
                    .userId("guest")
                    .appId("interop-java")
                    .headers(headers)
                    .build();
            ch.basicPublish("", queue, props, utf8("message " + i));
        }

        long lastTag = 0;
        for (int i = 0; i < 20; i++) {
            Delivery d = consumer.next();
            assertEquals("message " + i, d.text());
            assertEquals(tag, d.consumerTag());
            assertEquals("", d.envelope().getExchange());
            assertEquals(queue, d.envelope().getRoutingKey());
            assertFalse(d.envelope().isRedeliver());
            assertEquals(i + 1, d.tag(), "delivery tags count up from 1 on a channel");
            AMQP.BasicProperties p = d.props();
            assertEquals("text/plain", p.getContentType());
            assertEquals("utf-8", p.getContentEncoding());
            assertEquals(2, p.getDeliveryMode());
            assertEquals(3, p.getPriority());
            assertEquals("corr-" + i, p.getCorrelationId());
            assertEquals("nobody", p.getReplyTo());
            assertEquals("msg-" + i, p.getMessageId());
            assertEquals(timestamp, p.getTimestamp());
            assertEquals("greeting", p.getType());
            assertEquals("guest", p.getUserId());
            assertEquals("interop-java", p.getAppId());
            assertEquals(i, p.getHeaders().get("index"));
            assertEquals("entry-" + i, String.valueOf(p.getHeaders().get("label")));
            assertEquals(true, p.getHeaders().get("flag"));
            lastTag = d.tag();
        }
        ch.basicAck(lastTag, true);

        ch.basicCancel(tag);
        assertEquals(tag, take(consumer.cancelOks, "cancel-ok"));
        AMQP.Queue.DeclareOk ok = ch.queueDeclarePassive(queue);
        assertEquals(0, ok.getMessageCount(), "all acked");
        assertEquals(0, ok.getConsumerCount(), "consumer cancelled");
    }

    @Test
    void largeMessageSpansSeveralFrames() throws Exception {
        Channel ch = connect().createChannel();
        String queue = queueName("big");
        ch.queueDeclare(queue, false, false, false, null);
        byte[] body = new byte[1_000_000]; // several frame_max-sized body frames
        new Random(42).nextBytes(body);
        ch.confirmSelect();
        ch.basicPublish("", queue, null, body);
        ch.basicPublish("", queue, null, new byte[0]); // and an empty one: no body frame at all
        ch.waitForConfirmsOrDie(WAIT.toMillis());

        GetResponse big = ch.basicGet(queue, true);
        assertNotNull(big);
        assertArrayEquals(body, big.getBody());
        GetResponse empty = ch.basicGet(queue, true);
        assertNotNull(empty);
        assertEquals(0, empty.getBody().length);
    }

    @Test
    void basicGetTakesOneMessageAtATime() throws Exception {
        Connection conn = connect();
        Channel ch = conn.createChannel();
        String queue = queueName("pull");
        ch.queueDeclare(queue, false, false, false, null);
        ch.confirmSelect();
        for (String body : List.of("one", "two", "three", "four")) {
            ch.basicPublish("", queue, new AMQP.BasicProperties.Builder().messageId(body).build(),
                    utf8(body));
        }
        ch.waitForConfirmsOrDie(WAIT.toMillis());

        GetResponse one = ch.basicGet(queue, false);
        assertNotNull(one);
        assertEquals("one", text(one.getBody()));
        assertEquals(3, one.getMessageCount(), "messages left in the queue");
        assertEquals("", one.getEnvelope().getExchange());
        assertEquals(queue, one.getEnvelope().getRoutingKey());
        assertFalse(one.getEnvelope().isRedeliver());
        assertEquals("one", one.getProps().getMessageId());

        GetResponse two = ch.basicGet(queue, true); // auto-ack
        assertEquals("two", text(two.getBody()));
        assertEquals(2, two.getMessageCount());
        ch.basicAck(one.getEnvelope().getDeliveryTag(), false);

        // An unacked get goes back to the queue, marked redelivered, when its channel closes.
        GetResponse three = ch.basicGet(queue, false);
        assertEquals("three", text(three.getBody()));
        ch.close();
        Channel ch2 = conn.createChannel();
        GetResponse again = ch2.basicGet(queue, false);
        assertNotNull(again, "the unacked message is back in the queue");
        assertEquals("three", text(again.getBody()));
        assertTrue(again.getEnvelope().isRedeliver());
        assertEquals(1, again.getMessageCount());
        ch2.basicAck(again.getEnvelope().getDeliveryTag(), false);

        assertEquals("four", text(ch2.basicGet(queue, true).getBody()));
        assertNull(ch2.basicGet(queue, true), "basic.get-empty");
        assertEquals(0, readyCount(ch2, queue));
    }

    /** Empties the queues with basic.get; returns each queue's bodies in order. */
    private static Map<String, List<String>> drain(Channel ch, String... queues) throws Exception {
        Map<String, List<String>> out = new HashMap<>();
        for (String q : queues) {
            List<String> bodies = new ArrayList<>();
            GetResponse r;
            while ((r = ch.basicGet(q, true)) != null) {
                bodies.add(text(r.getBody()));
            }
            out.put(q, bodies);
        }
        return out;
    }

    @Test
    void headersExchangeMatchesAllOrAnyHeader() throws Exception {
        Channel ch = connect().createChannel();
        String exchange = exchangeName("headers");
        String all = queueName("all");
        String any = queueName("any");
        ch.exchangeDeclare(exchange, BuiltinExchangeType.HEADERS, false, false, null);
        ch.queueDeclare(all, false, false, false, null);
        ch.queueDeclare(any, false, false, false, null);
        ch.queueBind(all, exchange, "", Map.of("x-match", "all", "format", "pdf", "type", "report"));
        ch.queueBind(any, exchange, "", Map.of("x-match", "any", "format", "pdf", "type", "log"));

        ch.confirmSelect();
        publishWithHeaders(ch, exchange, "pdf-report", Map.of("format", "pdf", "type", "report"));
        publishWithHeaders(ch, exchange, "pdf-log", Map.of("format", "pdf", "type", "log"));
        publishWithHeaders(ch, exchange, "zip-log", Map.of("format", "zip", "type", "log"));
        publishWithHeaders(ch, exchange, "zip-report", Map.of("format", "zip", "type", "report"));
        publishWithHeaders(ch, exchange, "no-headers", null);
        publishWithHeaders(ch, exchange, "pdf-report-extra",
                Map.of("format", "pdf", "type", "report", "size", 10));
        publishWithHeaders(ch, exchange, "pdf-only", Map.of("format", "pdf"));
        ch.waitForConfirmsOrDie(WAIT.toMillis());

        Map<String, List<String>> got = drain(ch, all, any);
        assertEquals(List.of("pdf-report", "pdf-report-extra"), got.get(all),
                "x-match=all needs every bound header (extra headers do not matter)");
        assertEquals(List.of("pdf-report", "pdf-log", "zip-log", "pdf-report-extra", "pdf-only"),
                got.get(any), "x-match=any needs one bound header");
    }

    private static void publishWithHeaders(
            Channel ch, String exchange, String body, Map<String, Object> headers) throws Exception {
        // The routing key is ignored by a headers exchange.
        ch.basicPublish(exchange, "key-" + body,
                new AMQP.BasicProperties.Builder().headers(headers).build(), utf8(body));
    }

    @Test
    void topicExchangeMatchesWordPatterns() throws Exception {
        Channel ch = connect().createChannel();
        String exchange = exchangeName("topic");
        String colour = queueName("colour");
        String species = queueName("species");
        String everything = queueName("everything");
        ch.exchangeDeclare(exchange, BuiltinExchangeType.TOPIC, false, false, null);
        for (String q : List.of(colour, species, everything)) {
            ch.queueDeclare(q, false, false, false, null);
        }
        ch.queueBind(colour, exchange, "*.orange.*");
        ch.queueBind(species, exchange, "*.*.rabbit");
        ch.queueBind(species, exchange, "lazy.#");
        ch.queueBind(everything, exchange, "#");

        ch.confirmSelect();
        List<String> keys = List.of(
                "quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox",
                "lazy.brown.fox", "lazy.pink.rabbit", "quick.brown.fox", "orange",
                "quick.orange.male.rabbit", "lazy.orange.male.rabbit", "lazy", "");
        for (String key : keys) {
            ch.basicPublish(exchange, key, null, utf8(key));
        }
        ch.waitForConfirmsOrDie(WAIT.toMillis());

        Map<String, List<String>> got = drain(ch, colour, species, everything);
        assertEquals(List.of("quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"),
                got.get(colour), "'*' is exactly one word");
        assertEquals(List.of("quick.orange.rabbit", "lazy.orange.elephant", "lazy.brown.fox",
                        "lazy.pink.rabbit", "lazy.orange.male.rabbit", "lazy"),
                got.get(species), "'#' is zero or more words; two matching bindings deliver once");
        assertEquals(keys, got.get(everything), "'#' alone matches every key, even the empty one");
    }

    @Test
    void transactionCommitPublishesAndRollbackDiscards() throws Exception {
        Connection conn = connect();
        Channel tx = conn.createChannel();
        Channel observer = conn.createChannel();
        String queue = queueName("tx");
        observer.queueDeclare(queue, false, false, false, null);
        tx.txSelect();

        // Publishes wait for the commit.
        tx.basicPublish("", queue, null, utf8("a"));
        tx.basicPublish("", queue, null, utf8("b"));
        assertEquals(0, readyCount(observer, queue), "nothing is enqueued before tx.commit");
        tx.txCommit();
        assertEquals(2, readyCount(observer, queue), "both enqueued by tx.commit-ok");

        // A rolled-back publish is never enqueued.
        tx.basicPublish("", queue, null, utf8("rolled back"));
        tx.txRollback();
        assertEquals("a", text(observer.basicGet(queue, true).getBody()));
        assertEquals("b", text(observer.basicGet(queue, true).getBody()));
        assertNull(observer.basicGet(queue, true), "the rolled-back message never arrives");

        // Acks are transactional too: a rolled-back ack leaves the message unacked.
        observer.confirmSelect();
        observer.basicPublish("", queue, null, utf8("d"));
        observer.basicPublish("", queue, null, utf8("e"));
        observer.waitForConfirmsOrDie(WAIT.toMillis());
        GetResponse d = tx.basicGet(queue, false);
        GetResponse e = tx.basicGet(queue, false);
        assertEquals("d", text(d.getBody()));
        assertEquals("e", text(e.getBody()));
        tx.basicAck(d.getEnvelope().getDeliveryTag(), false);
        tx.txRollback();
        tx.basicAck(e.getEnvelope().getDeliveryTag(), false);
        tx.txCommit();
        tx.close(); // "d" is still unacked, so it goes back to the queue

        GetResponse back = observer.basicGet(queue, true);
        assertNotNull(back, "the message whose ack was rolled back is requeued");
        assertEquals("d", text(back.getBody()));
        assertTrue(back.getEnvelope().isRedeliver());
        assertNull(observer.basicGet(queue, true), "the committed ack removed 'e' for good");
    }
}
