package interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.BuiltinExchangeType;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConfirmListener;
import com.rabbitmq.client.Return;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Publisher confirms (blocking and asynchronous) and mandatory returns. */
class ConfirmsTest extends BrokerTest {

    @Test
    void waitForConfirmsOrDieAfterABatch() throws Exception {
        Channel ch = connect().createChannel();
        String queue = queueName("batch");
        ch.queueDeclare(queue, false, false, false, null);
        ch.confirmSelect();
        assertEquals(1, ch.getNextPublishSeqNo());
        for (int i = 0; i < 200; i++) {
            ch.basicPublish("", queue, null, utf8("m" + i));
        }
        // Unroutable but not mandatory: dropped, and still confirmed.
        ch.basicPublish("amq.direct", "no-binding-" + queue, null, utf8("dropped"));
        ch.waitForConfirmsOrDie(WAIT.toMillis());
        assertEquals(202, ch.getNextPublishSeqNo());
        assertEquals(200, readyCount(ch, queue));
    }

    @Test
    void confirmListenerIsToldOfEveryPublish() throws Exception {
        Channel ch = connect().createChannel();
        String queue = queueName("async");
        ch.queueDeclare(queue, false, false, false, null);
        ch.confirmSelect();

        // Outstanding publishes by sequence number; acks (possibly "multiple") remove them.
        ConcurrentSkipListMap<Long, String> outstanding = new ConcurrentSkipListMap<>();
        AtomicInteger acked = new AtomicInteger();
        AtomicInteger nacked = new AtomicInteger();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        ch.addConfirmListener(new ConfirmListener() {
            @Override
            public void handleAck(long seqNo, boolean multiple) {
                settle(seqNo, multiple, acked);
            }

            @Override
            public void handleNack(long seqNo, boolean multiple) {
                settle(seqNo, multiple, nacked);
            }

            private void settle(long seqNo, boolean multiple, AtomicInteger counter) {
                if (multiple) {
                    var settled = outstanding.headMap(seqNo, true);
                    counter.addAndGet(settled.size());
                    settled.clear();
                } else if (outstanding.remove(seqNo) != null) {
                    counter.incrementAndGet();
                } else {
                    problems.add("confirm for unknown or already settled seqNo " + seqNo);
                }
            }
        });

        int total = 1000;
        for (int i = 0; i < total; i++) {
            outstanding.put(ch.getNextPublishSeqNo(), "m" + i);
            ch.basicPublish("", queue, null, utf8("m" + i));
        }
        awaitCondition(outstanding::isEmpty, "every publish to be confirmed");
        assertEquals(total, acked.get());
        assertEquals(0, nacked.get());
        assertEquals(List.of(), problems);
        assertEquals(total, readyCount(ch, queue));
    }

    @Test
    void mandatoryUnroutableMessageIsReturnedBeforeItsConfirm() throws Exception {
        Channel ch = connect().createChannel();
        String exchange = exchangeName("direct");
        String queue = queueName("bound");
        ch.exchangeDeclare(exchange, BuiltinExchangeType.DIRECT, false, false, null);
        ch.queueDeclare(queue, false, false, false, null);
        ch.queueBind(queue, exchange, "bound");
        ch.confirmSelect();

        // Both listeners run on the connection's reader thread, in the order the frames came.
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        BlockingQueue<Return> returns = new LinkedBlockingQueue<>();
        ch.addReturnListener(r -> {
            events.add("return:" + text(r.getBody()));
            returns.add(r);
        });
        ch.addConfirmListener(
                (seqNo, multiple) -> events.add("ack:" + seqNo + (multiple ? "+" : "")),
                (seqNo, multiple) -> events.add("nack:" + seqNo));

        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .contentType("application/json")
                .messageId("lost-1")
                .headers(Map.of("attempt", 1))
                .build();
        byte[] body = utf8("{\"lost\":true}");
        ch.basicPublish(exchange, "unbound", true, props, body); // seqNo 1: returned
        ch.basicPublish(exchange, "bound", true, null, utf8("routed")); // seqNo 2: delivered
        ch.waitForConfirmsOrDie(WAIT.toMillis());

        Return r = take(returns, "basic.return");
        assertEquals(312, r.getReplyCode());
        assertEquals("NO_ROUTE", r.getReplyText());
        assertEquals(exchange, r.getExchange());
        assertEquals("unbound", r.getRoutingKey());
        assertArrayEquals(body, r.getBody());
        assertEquals("application/json", r.getProperties().getContentType());
        assertEquals("lost-1", r.getProperties().getMessageId());
        assertEquals(1, r.getProperties().getHeaders().get("attempt"));
        assertEquals(0, returns.size(), "only the unroutable message comes back");

        List<String> seen = List.copyOf(events);
        assertEquals("return:{\"lost\":true}", seen.get(0),
                "basic.return arrives before the basic.ack of the same message: " + seen);
        assertTrue(seen.stream().skip(1).allMatch(e -> e.startsWith("ack:")), "all acked: " + seen);
        assertEquals(1, readyCount(ch, queue));
    }
}
