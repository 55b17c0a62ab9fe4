package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jakarta.jms.DeliveryMode;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import org.junit.jupiter.api.Test;

/** Time-to-live: the client sends it as the AMQP expiration; the broker drops expired messages. */
class TimeToLiveTest extends JmsTestBase {

    @Test
    void expiredMessageIsNotReceived() throws Exception {
        Session tx = connect().createSession(true, Session.SESSION_TRANSACTED);
        Queue queue = tx.createQueue(queueName("ttl"));
        MessageProducer producer = tx.createProducer(queue);
        Message shortLived = tx.createTextMessage("short-lived");
        producer.send(shortLived, DeliveryMode.NON_PERSISTENT, 4, 200);
        producer.send(tx.createTextMessage("long-lived"), DeliveryMode.NON_PERSISTENT, 4, 60_000);
        producer.send(tx.createTextMessage("immortal"));
        tx.commit();
        long expiresAt = shortLived.getJMSExpiration();
        assertTrue(expiresAt > 0, "send sets JMSExpiration");

        // Time-to-live is about time passing: wait until the short-lived message has expired
        // (this waits for the clock, not for the broker).
        long margin = 100;
        while (System.currentTimeMillis() < expiresAt + margin) {
            Thread.sleep(Math.max(1, expiresAt + margin - System.currentTimeMillis()));
        }

        MessageConsumer consumer = connect().createSession(false, Session.AUTO_ACKNOWLEDGE).createConsumer(queue);
        Message longLived = receive(consumer, "the long-lived message");
        assertText("long-lived", longLived);
        assertTrue(longLived.getJMSExpiration() > System.currentTimeMillis(),
                "JMSExpiration of the long-lived message is in the future");
        Message immortal = receive(consumer, "the message without time-to-live");
        assertText("immortal", immortal);
        assertEquals(0, immortal.getJMSExpiration());
        assertNothingArrives(consumer, "the expired message is gone");
    }

    @Test
    void messageReceivedBeforeItsTimeToLiveRunsOut() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("ttl-ok"));
        MessageProducer producer = session.createProducer(queue);
        producer.setTimeToLive(30_000);
        producer.send(session.createTextMessage("in time"));
        Message message = receive(session.createConsumer(queue), "the message");
        assertText("in time", message);
        assertTrue(message.getJMSExpiration() > System.currentTimeMillis());
    }
}
