package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import jakarta.jms.Connection;
import jakarta.jms.DeliveryMode;
import jakarta.jms.InvalidSelectorException;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Session;
import jakarta.jms.Topic;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Message selectors on topic subscribers. The client compiles the selector and binds the
 * subscriber's queue to a per-session exchange of type x-jms-topic (RabbitMQ's
 * rabbitmq_jms_topic_exchange plugin) with it; the broker filters.
 *
 * <p>Every test publishes the same seven messages (below), then an "end" message that
 * matches the selector under test; once "end" arrives, every earlier message routed to the
 * subscriber has arrived too, so the test knows exactly which messages the selector let
 * through.
 */
class SelectorTest extends JmsTestBase {

    private record Item(String id, String jmsType, int priority, Map<String, Object> properties) {
    }

    private static Map<String, Object> props(Object... keysAndValues) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            map.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return map;
    }

    private static final List<Item> ITEMS = List.of(
            new Item("a", null, 4, props("colour", "red", "weight", 5, "price", 1.5, "urgent", true)),
            new Item("b", "special", 6, props("colour", "red", "weight", 20, "price", 10.0)),
            new Item("c", null, 4, props("colour", "blue", "weight", 30, "price", 2.5, "urgent", false)),
            new Item("d", null, 4, props("colour", "green", "weight", 12, "price", 4.0)),
            new Item("e", null, 4, props("colour", "reddish", "weight", 25, "price", 1.0)),
            new Item("f", null, 4, props("weight", 8, "price", 6.0)),
            new Item("g", "special", 3, props("colour", "Red", "weight", 50, "price", 0.5)));

    private Connection subscriberConnection;
    private Session subscriberSession;
    private Session publisherSession;
    private int topics;

    @BeforeEach
    void sessions() throws Exception {
        subscriberConnection = connect();
        subscriberSession = subscriberConnection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        publisherSession = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
    }

    private static void setProperties(Message message, Map<String, Object> properties) throws Exception {
        for (Map.Entry<String, Object> p : properties.entrySet()) {
            message.setObjectProperty(p.getKey(), p.getValue());
        }
    }

    private void publishItemsAndEnd(Topic topic, Item end) throws Exception {
        MessageProducer producer = publisherSession.createProducer(topic);
        List<Item> all = new ArrayList<>(ITEMS);
        all.add(end);
        for (Item item : all) {
            Message message = publisherSession.createTextMessage(item.id());
            message.setStringProperty("id", item.id());
            message.setJMSType(item.jmsType());
            setProperties(message, item.properties());
            producer.send(message, DeliveryMode.NON_PERSISTENT, item.priority(), 0);
        }
    }

    private static List<String> receiveUntilEnd(MessageConsumer consumer, String selector) throws Exception {
        List<String> ids = new ArrayList<>();
        while (true) {
            Message message = receive(consumer, "the end message, for selector " + selector + " (got " + ids + ")");
            String id = message.getStringProperty("id");
            if ("end".equals(id)) {
                return ids;
            }
            ids.add(id);
        }
    }

    /** Subscribes with the selector, publishes the items and an end message, checks what arrived. */
    private void assertSelects(String selector, Item end, String... expectedIds) throws Exception {
        // A session of its own: the client gives each session one x-jms-topic exchange, shared
        // by all of that session's selector subscribers.
        Session session = subscriberConnection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        Topic topic = session.createTopic(topicName("selector" + (++topics)));
        MessageConsumer consumer = session.createConsumer(topic, selector);
        publishItemsAndEnd(topic, end);
        assertEquals(List.of(expectedIds), receiveUntilEnd(consumer, selector), "messages selected by " + selector);
        assertNothingArrives(consumer, "nothing after the end message");
        session.close();
    }

    private static Item end(Object... keysAndValues) {
        return new Item("end", null, 4, props(keysAndValues));
    }

    @Test
    void comparisonAndConjunction() throws Exception {
        assertSelects("colour = 'red' AND weight > 10", end("colour", "red", "weight", 11), "b");
    }

    @Test
    void like() throws Exception {
        assertSelects("colour LIKE 'red%' OR colour LIKE 'bl_e'", end("colour", "red"), "a", "b", "c", "e");
    }

    @Test
    void notLikeLeavesOutMissingProperties() throws Exception {
        assertSelects("colour NOT LIKE 'red%'", end("colour", "purple"), "c", "d", "g");
    }

    @Test
    void in() throws Exception {
        assertSelects("colour IN ('red', 'green')", end("colour", "green"), "a", "b", "d");
    }

    @Test
    void notIn() throws Exception {
        assertSelects("colour NOT IN ('red', 'green')", end("colour", "black"), "c", "e", "g");
    }

    @Test
    void betweenIsInclusive() throws Exception {
        assertSelects("weight BETWEEN 12 AND 25", end("weight", 12), "b", "d", "e");
    }

    @Test
    void isNullAndIsNotNull() throws Exception {
        assertSelects("colour IS NULL", end("weight", 1), "f");
        assertSelects("colour IS NOT NULL AND weight < 10", end("colour", "x", "weight", 0), "a");
    }

    @Test
    void arithmetic() throws Exception {
        assertSelects("weight * price > 40 AND weight + 2 <= 30", end("weight", 10, "price", 10.0), "b", "d", "f");
        assertSelects("-weight < -40 OR weight / 4 = 3", end("weight", 12), "d", "g");
    }

    @Test
    void booleanPropertyAndNot() throws Exception {
        assertSelects("urgent = TRUE", end("urgent", true), "a");
        assertSelects("NOT urgent", end("urgent", false), "c");
    }

    @Test
    void jmsHeaderFields() throws Exception {
        assertSelects("JMSType = 'special' AND JMSPriority >= 5",
                new Item("end", "special", 9, props()), "b");
    }

    @Test
    void invalidSelectorIsRefused() throws Exception {
        Topic topic = subscriberSession.createTopic(topicName("invalid"));
        for (String selector : List.of("colour = ", "weight >> 2", "colour LIKE 5", "AND colour = 'red'")) {
            assertThrows(InvalidSelectorException.class, () -> subscriberSession.createConsumer(topic, selector),
                    "selector " + selector);
        }
        // The session is still usable.
        MessageConsumer consumer = subscriberSession.createConsumer(topic, "colour = 'red'");
        MessageProducer producer = publisherSession.createProducer(topic);
        Message message = publisherSession.createTextMessage("still works");
        message.setStringProperty("colour", "red");
        producer.send(message);
        assertEquals("still works", receiveText(consumer, "a message after the refused selectors"));
    }

    @Test
    void durableSubscriptionWithSelectorKeepsOnlyMatchingMessages() throws Exception {
        String subscription = subscriptionName("selective");
        Connection connection = connect();
        Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        Topic topic = session.createTopic(topicName("selector-durable"));
        String selector = "colour IN ('red', 'green') AND weight >= 12";
        session.createDurableConsumer(topic, subscription, selector, false).close();
        connection.close();

        // Offline: the subscription keeps what matches.
        publishItemsAndEnd(topic, end("colour", "green", "weight", 100));

        Session back = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer consumer = back.createDurableConsumer(back.createTopic(topic.getTopicName()), subscription, selector, false);
        assertEquals(List.of("b", "d"), receiveUntilEnd(consumer, selector));
        assertNothingArrives(consumer, "nothing after the end message");
        consumer.close();
        back.unsubscribe(subscription);
    }
}
