package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.fail;

import com.rabbitmq.client.Channel;
import com.rabbitmq.jms.admin.RMQConnectionFactory;
import jakarta.jms.Connection;
import jakarta.jms.JMSException;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.TextMessage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;

/**
 * Plain JMS against the broker in AMQP_URL, through {@link RMQConnectionFactory}. Every queue,
 * topic and subscription name carries a random suffix; connections opened with
 * {@link #connect} are closed after each test, and the durable AMQP queues behind JMS queues
 * and durable subscriptions named with {@link #queueName} / {@link #subscriptionName} are
 * deleted (JMS has no API for that, so the AMQP client underneath is used). Every wait has a
 * deadline; "nothing arrives" is a receive with the short {@link #NOTHING} timeout.
 */
public abstract class JmsTestBase {

    protected static final BrokerAddress BROKER = BrokerAddress.fromEnvironment();

    /** How long to wait for something that should happen. */
    protected static final Duration WAIT = Duration.ofSeconds(10);

    /** How long to wait before concluding that nothing arrives. */
    protected static final Duration NOTHING = Duration.ofMillis(500);

    private final List<Connection> connections = new ArrayList<>();
    private final List<String> amqpQueues = new ArrayList<>();

    protected final String suffix = UUID.randomUUID().toString().substring(0, 8);

    protected RMQConnectionFactory factory() {
        return BROKER.connectionFactory();
    }

    /** A started connection from {@link #factory()}, closed after the test. */
    protected Connection connect() throws JMSException {
        return connect(factory());
    }

    /** A started connection from the given factory, closed after the test. */
    protected Connection connect(RMQConnectionFactory factory) throws JMSException {
        Connection connection = factory.createConnection();
        connections.add(connection);
        connection.start();
        return connection;
    }

    /** A JMS queue name for this test; its AMQP queue is deleted afterwards. */
    protected String queueName(String base) {
        String name = base + "." + suffix;
        amqpQueues.add(name);
        return name;
    }

    /** A JMS topic name for this test (the AMQP queues behind subscribers are not named by it). */
    protected String topicName(String base) {
        return base + "." + suffix;
    }

    /** A durable subscription name for this test; the client names its AMQP queue after it. */
    protected String subscriptionName(String base) {
        String name = base + "-" + suffix;
        amqpQueues.add(name);
        return name;
    }

    @AfterEach
    void closeConnectionsAndDeleteQueues() throws Exception {
        for (Connection connection : connections) {
            try {
                connection.close();
            } catch (Exception e) {
                // the test may have closed it
            }
        }
        connections.clear();
        if (amqpQueues.isEmpty()) {
            return;
        }
        com.rabbitmq.client.ConnectionFactory amqp = new com.rabbitmq.client.ConnectionFactory();
        amqp.setHost(BROKER.host());
        amqp.setPort(BROKER.port());
        amqp.setUsername(BROKER.username());
        amqp.setPassword(BROKER.password());
        amqp.setVirtualHost(BROKER.virtualHost());
        try (com.rabbitmq.client.Connection connection = amqp.newConnection("interop-jms-cleanup")) {
            for (String queue : amqpQueues) {
                try (Channel channel = connection.createChannel()) {
                    channel.queueDelete(queue);
                } catch (Exception e) {
                    // best effort
                }
            }
        }
        amqpQueues.clear();
    }

    /** receive(WAIT), failing if nothing arrives. */
    protected static Message receive(MessageConsumer consumer, String what) throws JMSException {
        Message message = consumer.receive(WAIT.toMillis());
        assertNotNull(message, "timed out after " + WAIT.toMillis() + " ms waiting for " + what);
        return message;
    }

    /** receive(WAIT) of a TextMessage, returning its text. */
    protected static String receiveText(MessageConsumer consumer, String what) throws JMSException {
        Message message = receive(consumer, what);
        if (!(message instanceof TextMessage text)) {
            return fail("expected a TextMessage for " + what + ", got " + message);
        }
        return text.getText();
    }

    /** Asserts that a receive with the short timeout gets nothing. */
    protected static void assertNothingArrives(MessageConsumer consumer, String why) throws JMSException {
        Message message = consumer.receive(NOTHING.toMillis());
        assertNull(message, why);
    }

    protected static void assertText(String expected, Message message) throws JMSException {
        assertNotNull(message, "expected a message with text " + expected);
        if (!(message instanceof TextMessage text)) {
            fail("expected a TextMessage, got " + message);
            return;
        }
        assertEquals(expected, text.getText());
    }

    protected static <T> T take(BlockingQueue<T> queue, String what) throws InterruptedException {
        T item = queue.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        if (item == null) {
            fail("timed out after " + WAIT.toMillis() + " ms waiting for " + what);
        }
        return item;
    }
}
