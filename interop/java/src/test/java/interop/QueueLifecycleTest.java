package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.GetResponse;
import org.junit.jupiter.api.Test;

/** Exclusive and auto-delete queues, and consumers told that their queue went away. */
class QueueLifecycleTest extends BrokerTest {

    private static void assertLocked(AMQP.Channel.Close close, String queue) {
        assertEquals(405, close.getReplyCode(), close.getReplyText());
        assertEquals("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"
                + queue + "' in vhost '/'", close.getReplyText().split("\\. It could")[0]);
    }

    @Test
    void exclusiveQueueIsLockedForOtherConnections() throws Exception {
        Connection owner = connect();
        Channel mine = owner.createChannel();
        String queue = queueName("private");
        mine.queueDeclare(queue, false, true, false, null);

        Connection other = connect();
        Channel declare = other.createChannel();
        assertLocked(channelClose(() -> declare.queueDeclare(queue, false, true, false, null)), queue);
        assertFalse(declare.isOpen(), "the channel is closed by the error");
        assertTrue(other.isOpen(), "a channel error leaves the connection open");

        Channel consume = other.createChannel();
        assertLocked(channelClose(() -> consume.basicConsume(queue, true, new Recorder(consume))),
                queue);
        Channel get = other.createChannel();
        assertLocked(channelClose(() -> get.basicGet(queue, true)), queue);

        // The owner is unaffected.
        mine.basicPublish("", queue, null, utf8("still mine"));
        GetResponse r = mine.basicGet(queue, true);
        assertEquals("still mine", r == null ? null : text(r.getBody()));

        // The queue goes away with its owner's connection.
        owner.close();
        awaitCondition(() -> {
            try {
                return !queueExists(other, queue);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, "the exclusive queue to be deleted with its connection");
    }

    @Test
    void autoDeleteQueueIsDeletedWhenItsLastConsumerCancels() throws Exception {
        Connection conn = connect();
        Channel a = conn.createChannel();
        Channel b = conn.createChannel();
        String queue = queueName("transient");
        a.queueDeclare(queue, false, false, true, null);
        assertTrue(queueExists(conn, queue), "no consumer yet: an auto-delete queue stays");

        String tagA = a.basicConsume(queue, true, new Recorder(a));
        String tagB = b.basicConsume(queue, true, new Recorder(b));
        a.basicCancel(tagA);
        AMQP.Queue.DeclareOk ok = conn.createChannel().queueDeclarePassive(queue);
        assertEquals(1, ok.getConsumerCount(), "one consumer left: the queue stays");

        b.basicCancel(tagB);
        awaitCondition(() -> {
            try {
                return !queueExists(conn, queue);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, "the auto-delete queue to be deleted after its last consumer cancelled");
    }

    @Test
    void consumerIsToldWhenAnotherConnectionDeletesItsQueue() throws Exception {
        Connection conn = connect();
        Channel ch = conn.createChannel();
        String queue = queueName("doomed");
        ch.queueDeclare(queue, false, false, false, null);
        Recorder consumer = new Recorder(ch);
        String tag = ch.basicConsume(queue, false, consumer);

        Channel admin = connect().createChannel();
        admin.basicPublish("", queue, null, utf8("before"));
        assertEquals("before", consumer.next().text());
        admin.queueDelete(queue);

        assertEquals(tag, take(consumer.brokerCancels, "handleCancel (basic.cancel from the broker)"));
        assertEquals(0, consumer.cancelOks.size(), "handleCancelOk is for client-side cancels");
        assertTrue(ch.isOpen(), "the consumer's channel stays open");

        // ... and usable.
        String next = queueName("next");
        ch.queueDeclare(next, false, false, false, null);
        ch.basicPublish("", next, null, utf8("after"));
        GetResponse r = ch.basicGet(next, true);
        assertEquals("after", r == null ? null : text(r.getBody()));
    }
}
