package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Prefetch, acks, nacks and rejects as a consumer sees them. */
class AckQosTest extends BrokerTest {

    /** Publishes the bodies on a confirm channel and waits until all are enqueued. */
    static void publishConfirmed(Connection conn, String queue, List<String> bodies)
            throws Exception {
        Channel pub = conn.createChannel();
        pub.confirmSelect();
        for (String b : bodies) {
            pub.basicPublish("", queue, null, utf8(b));
        }
        pub.waitForConfirmsOrDie(WAIT.toMillis());
        pub.close();
    }

    static List<String> numbered(String prefix, int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(prefix + i);
        }
        return out;
    }

    @Test
    void basicQosLimitsUnackedDeliveries() throws Exception {
        Connection conn = connect();
        Channel ch = conn.createChannel();
        String queue = queueName("work");
        ch.queueDeclare(queue, false, false, false, null);
        publishConfirmed(conn, queue, numbered("m", 10));

        ch.basicQos(3);
        Recorder consumer = new Recorder(ch);
        ch.basicConsume(queue, false, consumer);

        List<String> got = new ArrayList<>();
        Delivery first = consumer.next();
        got.add(first.text());
        got.add(consumer.next().text());
        Delivery third = consumer.next();
        got.add(third.text());
        consumer.assertQuiet("prefetch 3 with 3 unacked");
        assertEquals(7, readyCount(conn.createChannel(), queue), "the rest waits in the queue");

        // One ack frees one slot.
        ch.basicAck(first.tag(), false);
        Delivery fourth = consumer.next();
        got.add(fourth.text());
        consumer.assertQuiet("prefetch 3 after one ack");

        // A multiple ack of the three outstanding frees three slots.
        ch.basicAck(fourth.tag(), true);
        got.add(consumer.next().text());
        got.add(consumer.next().text());
        Delivery seventh = consumer.next();
        got.add(seventh.text());
        consumer.assertQuiet("prefetch 3 after a multiple ack");

        ch.basicAck(seventh.tag(), true);
        got.add(consumer.next().text());
        got.add(consumer.next().text());
        Delivery last = consumer.next();
        got.add(last.text());
        ch.basicAck(last.tag(), true);

        assertEquals(numbered("m", 10), got, "delivered once each, in order");
        assertEquals(0, readyCount(ch, queue));
    }

    @Test
    void basicNackWithRequeueRedeliversInOriginalOrder() throws Exception {
        Connection conn = connect();
        Channel ch = conn.createChannel();
        String queue = queueName("retry");
        ch.queueDeclare(queue, false, false, false, null);
        publishConfirmed(conn, queue, numbered("m", 5));

        ch.basicQos(10);
        Recorder consumer = new Recorder(ch);
        ch.basicConsume(queue, false, consumer);
        Delivery last = null;
        for (int i = 0; i < 5; i++) {
            last = consumer.next();
            assertEquals("m" + i, last.text());
            assertFalse(last.envelope().isRedeliver());
        }
        ch.basicNack(last.tag(), true, true); // all five back to the queue

        List<String> again = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            Delivery d = consumer.next();
            assertTrue(d.envelope().isRedeliver(), "redelivered flag on " + d.text());
            again.add(d.text());
            last = d;
        }
        assertEquals(numbered("m", 5), again, "requeued messages keep their order");
        ch.basicAck(last.tag(), true);
        consumer.assertQuiet("everything acked");
        assertEquals(0, readyCount(ch, queue));
    }

    @Test
    void basicRejectWithoutRequeueDropsTheMessage() throws Exception {
        Connection conn = connect();
        Channel ch = conn.createChannel();
        String queue = queueName("poison");
        ch.queueDeclare(queue, false, false, false, null);
        publishConfirmed(conn, queue, List.of("poison", "good"));

        ch.basicQos(1);
        Recorder consumer = new Recorder(ch);
        ch.basicConsume(queue, false, consumer);
        Delivery poison = consumer.next();
        assertEquals("poison", poison.text());
        ch.basicReject(poison.tag(), false);

        Delivery good = consumer.next();
        assertEquals("good", good.text());
        assertFalse(good.envelope().isRedeliver());
        ch.basicAck(good.tag(), false);

        // Anything routed before the end marker has arrived by the time the marker does.
        publishConfirmed(conn, queue, List.of("end"));
        Delivery end = consumer.next();
        assertEquals("end", end.text(), "the rejected message is gone, not redelivered");
        ch.basicAck(end.tag(), false);
        assertEquals(0, readyCount(ch, queue));
    }
}
