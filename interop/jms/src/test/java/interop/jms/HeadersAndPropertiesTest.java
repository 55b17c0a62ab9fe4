package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jakarta.jms.DeliveryMode;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;
import java.util.Collections;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** JMS header fields and application properties survive the trip through the broker. */
class HeadersAndPropertiesTest extends JmsTestBase {

    @Test
    void jmsHeadersRoundTrip() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("headers"));
        MessageProducer producer = session.createProducer(queue);
        TextMessage sent = session.createTextMessage("with headers");
        sent.setJMSCorrelationID("corr-" + suffix);
        sent.setJMSType("invoice");
        long before = System.currentTimeMillis();
        producer.send(sent, DeliveryMode.PERSISTENT, 7, 0);
        long after = System.currentTimeMillis();
        assertNotNull(sent.getJMSMessageID(), "send sets JMSMessageID");
        assertTrue(sent.getJMSMessageID().startsWith("ID:"), sent.getJMSMessageID());

        TextMessage second = session.createTextMessage("non-persistent");
        producer.send(second, DeliveryMode.NON_PERSISTENT, 2, 0);

        MessageConsumer consumer = session.createConsumer(queue);
        Message received = receive(consumer, "the message");
        assertEquals("with headers", ((TextMessage) received).getText());
        assertEquals("corr-" + suffix, received.getJMSCorrelationID());
        assertEquals("invoice", received.getJMSType());
        assertEquals(sent.getJMSMessageID(), received.getJMSMessageID());
        assertEquals(DeliveryMode.PERSISTENT, received.getJMSDeliveryMode());
        assertEquals(7, received.getJMSPriority());
        assertEquals(0, received.getJMSExpiration());
        assertTrue(received.getJMSTimestamp() >= before && received.getJMSTimestamp() <= after,
                "JMSTimestamp " + received.getJMSTimestamp() + " within [" + before + ", " + after + "]");
        assertEquals(queue, received.getJMSDestination());
        assertFalse(received.getJMSRedelivered());
        assertNull(received.getJMSReplyTo());

        Message other = receive(consumer, "the second message");
        assertEquals(DeliveryMode.NON_PERSISTENT, other.getJMSDeliveryMode());
        assertEquals(2, other.getJMSPriority());
        assertNotEquals(received.getJMSMessageID(), other.getJMSMessageID());
        assertNull(other.getJMSCorrelationID());
        assertNull(other.getJMSType());
    }

    @Test
    void applicationPropertiesRoundTrip() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("properties"));
        Message sent = session.createTextMessage("with properties");
        sent.setStringProperty("colour", "red");
        sent.setStringProperty("empty", "");
        sent.setIntProperty("count", -17);
        sent.setLongProperty("big", 1L << 40);
        sent.setDoubleProperty("ratio", 0.125);
        sent.setFloatProperty("f", 1.5f);
        sent.setBooleanProperty("urgent", true);
        sent.setShortProperty("s", (short) 300);
        sent.setByteProperty("b", (byte) -2);
        sent.setObjectProperty("obj", "object string");
        session.createProducer(queue).send(sent);

        Message received = receive(session.createConsumer(queue), "the message");
        assertEquals("red", received.getStringProperty("colour"));
        assertEquals("", received.getStringProperty("empty"));
        assertEquals(-17, received.getIntProperty("count"));
        assertEquals(1L << 40, received.getLongProperty("big"));
        assertEquals(0.125, received.getDoubleProperty("ratio"));
        assertEquals(1.5f, received.getFloatProperty("f"));
        assertTrue(received.getBooleanProperty("urgent"));
        assertEquals((short) 300, received.getShortProperty("s"));
        assertEquals((byte) -2, received.getByteProperty("b"));
        assertEquals("object string", received.getObjectProperty("obj"));
        // Types are kept: an int property is an Integer, a long a Long, ...
        assertInstanceOf(Integer.class, received.getObjectProperty("count"));
        assertInstanceOf(Long.class, received.getObjectProperty("big"));
        assertInstanceOf(Double.class, received.getObjectProperty("ratio"));
        assertInstanceOf(Boolean.class, received.getObjectProperty("urgent"));
        // ... and convert as JMS says.
        assertEquals("-17", received.getStringProperty("count"));
        assertEquals(-17L, received.getLongProperty("count"));
        assertTrue(received.propertyExists("urgent"));
        assertFalse(received.propertyExists("missing"));
        assertNull(received.getStringProperty("missing"));
        Set<String> names = new TreeSet<>();
        for (Object name : Collections.list(received.getPropertyNames())) {
            names.add((String) name);
        }
        assertTrue(names.containsAll(Set.of("colour", "empty", "count", "big", "ratio", "f", "urgent", "s", "b", "obj")),
                "property names: " + names);
    }
}
