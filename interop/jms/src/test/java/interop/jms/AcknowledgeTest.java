package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.jms.client.RMQSession;
import jakarta.jms.Connection;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import org.junit.jupiter.api.Test;

/** CLIENT_ACKNOWLEDGE: unacknowledged messages come back, redelivered. */
class AcknowledgeTest extends JmsTestBase {

    private Queue fill(String base, String... texts) throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName(base));
        MessageProducer producer = session.createProducer(queue);
        for (String text : texts) {
            producer.send(session.createTextMessage(text));
        }
        return queue;
    }

    @Test
    void recoverRedeliversUnacknowledgedMessages() throws Exception {
        Queue queue = fill("ack.recover", "one", "two");
        Session session = connect().createSession(false, Session.CLIENT_ACKNOWLEDGE);
        MessageConsumer consumer = session.createConsumer(queue);
        Message one = receive(consumer, "one");
        assertText("one", one);
        assertFalse(one.getJMSRedelivered());
        assertEquals(1, one.getIntProperty("JMSXDeliveryCount"));
        Message two = receive(consumer, "two");
        assertText("two", two);
        assertFalse(two.getJMSRedelivered());

        session.recover();

        Message again1 = receive(consumer, "one, redelivered after recover()");
        assertText("one", again1);
        assertTrue(again1.getJMSRedelivered(), "JMSRedelivered after recover()");
        assertTrue(again1.getIntProperty("JMSXDeliveryCount") >= 2, "JMSXDeliveryCount after recover()");
        Message again2 = receive(consumer, "two, redelivered after recover()");
        assertText("two", again2);
        assertTrue(again2.getJMSRedelivered(), "JMSRedelivered after recover()");
        again2.acknowledge();
        session.close();

        Session after = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        assertNothingArrives(after.createConsumer(queue), "acknowledged messages are gone");
    }

    @Test
    void closingTheSessionRedeliversUnacknowledgedMessages() throws Exception {
        Queue queue = fill("ack.close", "kept");
        Connection connection = connect();
        Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
        assertText("kept", receive(session.createConsumer(queue), "the message"));
        session.close(); // without acknowledging

        Session next = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
        MessageConsumer consumer = next.createConsumer(queue);
        Message again = receive(consumer, "the unacknowledged message, after its session closed");
        assertText("kept", again);
        assertTrue(again.getJMSRedelivered(), "JMSRedelivered after the session closed");
        again.acknowledge();
        assertNothingArrives(consumer, "nothing more");
    }

    @Test
    void closingTheConnectionRedeliversUnacknowledgedMessages() throws Exception {
        Queue queue = fill("ack.connection", "kept");
        Connection connection = connect();
        Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
        assertText("kept", receive(session.createConsumer(queue), "the message"));
        connection.close();

        Session next = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Message again = receive(next.createConsumer(queue), "the unacknowledged message, after its connection closed");
        assertText("kept", again);
        assertTrue(again.getJMSRedelivered(), "JMSRedelivered after the connection closed");
    }

    @Test
    void acknowledgeAcknowledgesEarlierMessagesOfTheSession() throws Exception {
        Queue queue = fill("ack.group", "a", "b", "c");
        Session session = connect().createSession(false, Session.CLIENT_ACKNOWLEDGE);
        MessageConsumer consumer = session.createConsumer(queue);
        receive(consumer, "a");
        Message b = receive(consumer, "b");
        receive(consumer, "c");
        b.acknowledge(); // a and b (this client acknowledges up to the message), not c
        session.recover();
        Message c = receive(consumer, "c, redelivered");
        assertText("c", c);
        assertTrue(c.getJMSRedelivered());
        c.acknowledge();
        assertNothingArrives(consumer, "a and b were acknowledged");
    }

    @Test
    void individualAcknowledgeAcknowledgesOneMessage() throws Exception {
        Queue queue = fill("ack.individual", "a", "b", "c");
        Session session = connect().createSession(false, RMQSession.CLIENT_INDIVIDUAL_ACKNOWLEDGE);
        MessageConsumer consumer = session.createConsumer(queue);
        receive(consumer, "a");
        Message b = receive(consumer, "b");
        receive(consumer, "c");
        b.acknowledge();
        session.recover();
        Message a = receive(consumer, "a, redelivered");
        assertText("a", a);
        assertTrue(a.getJMSRedelivered());
        Message c = receive(consumer, "c, redelivered");
        assertText("c", c);
        assertTrue(c.getJMSRedelivered());
        a.acknowledge();
        c.acknowledge();
        assertNothingArrives(consumer, "everything acknowledged");
    }

    @Test
    void autoAcknowledgeListenerMessagesAreNotRedelivered() throws Exception {
        Queue queue = fill("ack.auto", "once");
        Connection connection = connect();
        Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        java.util.concurrent.BlockingQueue<Message> received = new java.util.concurrent.LinkedBlockingQueue<>();
        MessageConsumer listener = session.createConsumer(queue);
        listener.setMessageListener(received::add);
        Message message = take(received, "the message at the listener");
        assertText("once", message);
        assertFalse(message.getJMSRedelivered());
        session.close();
        Session next = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        assertNothingArrives(next.createConsumer(queue), "an auto-acknowledged message is gone");
    }
}
