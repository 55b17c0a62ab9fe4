package interop.jms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.jms.admin.RMQConnectionFactory;
import jakarta.jms.BytesMessage;
import jakarta.jms.MapMessage;
import jakarta.jms.Message;
import jakarta.jms.MessageEOFException;
import jakarta.jms.MessageProducer;
import jakarta.jms.ObjectMessage;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import jakarta.jms.StreamMessage;
import jakarta.jms.TextMessage;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Each JMS message type arrives as the same type with the same body. */
class MessageTypesTest extends JmsTestBase {

    private Session session;
    private Queue queue;

    private Message roundTrip(String base, Message message) throws Exception {
        return roundTrip(factory(), base, message);
    }

    private Message roundTrip(RMQConnectionFactory factory, String base, Message message) throws Exception {
        session = connect(factory).createSession(false, Session.AUTO_ACKNOWLEDGE);
        queue = session.createQueue(queueName(base));
        MessageProducer producer = session.createProducer(queue);
        producer.send(message);
        return receive(session.createConsumer(queue), "the " + base);
    }

    private Session newSession() throws Exception {
        return connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
    }

    @Test
    void textMessage() throws Exception {
        String text = "héllo wörld ✓ — " + "x".repeat(10_000);
        Message received = roundTrip("types.text", newSession().createTextMessage(text));
        TextMessage message = assertInstanceOf(TextMessage.class, received);
        assertEquals(text, message.getText());
    }

    @Test
    void emptyAndNullTextMessages() throws Exception {
        Session s = newSession();
        Queue q = s.createQueue(queueName("types.text-empty"));
        MessageProducer producer = s.createProducer(q);
        producer.send(s.createTextMessage(""));
        producer.send(s.createTextMessage());
        var consumer = s.createConsumer(q);
        assertEquals("", assertInstanceOf(TextMessage.class, receive(consumer, "the empty text")).getText());
        assertEquals(null, assertInstanceOf(TextMessage.class, receive(consumer, "the null text")).getText());
    }

    @Test
    void bytesMessage() throws Exception {
        byte[] payload = new byte[70_000];
        for (int i = 0; i < payload.length; i++) {
            payload[i] = (byte) (i * 31);
        }
        BytesMessage sent = newSession().createBytesMessage();
        sent.writeBytes(payload);
        sent.writeInt(-42);
        sent.writeUTF("tail");
        BytesMessage message = assertInstanceOf(BytesMessage.class, roundTrip("types.bytes", sent));
        assertEquals(payload.length + 4 + 2 + 4, message.getBodyLength());
        byte[] read = new byte[payload.length];
        assertEquals(payload.length, message.readBytes(read));
        assertArrayEquals(payload, read);
        assertEquals(-42, message.readInt());
        assertEquals("tail", message.readUTF());
        assertEquals(-1, message.readBytes(new byte[1]), "end of the body");
    }

    @Test
    void mapMessage() throws Exception {
        MapMessage sent = newSession().createMapMessage();
        sent.setString("name", "widget");
        sent.setInt("count", 7);
        sent.setLong("big", Long.MAX_VALUE);
        sent.setDouble("price", 19.99);
        sent.setBoolean("fragile", true);
        sent.setBytes("raw", new byte[] {1, 2, 3});
        sent.setObject("short", (short) 12);
        MapMessage message = assertInstanceOf(MapMessage.class, roundTrip("types.map", sent));
        assertEquals("widget", message.getString("name"));
        assertEquals(7, message.getInt("count"));
        assertEquals(Long.MAX_VALUE, message.getLong("big"));
        assertEquals(19.99, message.getDouble("price"));
        assertTrue(message.getBoolean("fragile"));
        assertArrayEquals(new byte[] {1, 2, 3}, message.getBytes("raw"));
        assertEquals((short) 12, message.getShort("short"));
        assertEquals("7", message.getString("count"), "a map value converts as JMS says");
        assertEquals(List.of("big", "count", "fragile", "name", "price", "raw", "short"),
                Collections.list(message.getMapNames()).stream().map(Object::toString).sorted().toList());
        assertFalse(message.itemExists("missing"));
    }

    @Test
    void objectMessage() throws Exception {
        // ObjectMessage bodies are Java-serialised; the factory lists the packages it trusts to
        // deserialise.
        RMQConnectionFactory factory = factory();
        // The whole message is deserialised through that filter, including the JMSDestination
        // (an RMQDestination) the client stores in the body, so the client's own package is
        // needed too.
        factory.setTrustedPackages(List.of("interop.jms", "java.util", "java.lang", "com.rabbitmq.jms"));
        Parcel parcel = new Parcel("p-1", 1200, List.of("fragile", "this way up"));
        Session s = connect(factory).createSession(false, Session.AUTO_ACKNOWLEDGE);
        Message received = roundTrip(factory, "types.object", s.createObjectMessage(parcel));
        ObjectMessage message = assertInstanceOf(ObjectMessage.class, received);
        assertEquals(parcel, message.getObject());
        assertEquals(parcel, message.getBody(Parcel.class));
    }

    @Test
    void streamMessage() throws Exception {
        StreamMessage sent = newSession().createStreamMessage();
        sent.writeString("first");
        sent.writeInt(42);
        sent.writeLong(-7L);
        sent.writeDouble(2.5);
        sent.writeBoolean(false);
        sent.writeBytes(new byte[] {9, 8, 7});
        sent.writeChar('z');
        StreamMessage message = assertInstanceOf(StreamMessage.class, roundTrip("types.stream", sent));
        assertEquals("first", message.readString());
        assertEquals(42, message.readInt());
        assertEquals(-7L, message.readLong());
        assertEquals(2.5, message.readDouble());
        assertFalse(message.readBoolean());
        byte[] bytes = new byte[3];
        assertEquals(3, message.readBytes(bytes));
        assertArrayEquals(new byte[] {9, 8, 7}, bytes);
        assertEquals(-1, message.readBytes(bytes), "end of the byte array field");
        assertEquals('z', message.readChar());
        assertThrows(MessageEOFException.class, message::readString);
    }

    @Test
    void messageWithoutBody() throws Exception {
        // Session.createMessage(): this client makes it a TextMessage without text.
        Message sent = newSession().createMessage();
        sent.setStringProperty("only", "properties");
        Message received = roundTrip("types.plain", sent);
        assertEquals("properties", received.getStringProperty("only"));
        assertEquals(null, received.getBody(Object.class));
    }
}
