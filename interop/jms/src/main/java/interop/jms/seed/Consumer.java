package interop.jms.seed;

import interop.jms.BrokerAddress;
import jakarta.jms.Connection;
import jakarta.jms.ConnectionFactory;
import jakarta.jms.JMSException;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageListener;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The seed example, consumer side: a MessageListener on the queue "example.queue" on the
 * broker in AMQP_URL. {@link #start} returns the started connection; closing it stops the
 * listener.
 */
public final class Consumer {

    public static void main(String[] args) throws Exception {
        String queueName = args.length > 0 ? args[0] : "example.queue";
        BlockingQueue<String> received = new ArrayBlockingQueue<>(1);
        try (Connection connection = start(BrokerAddress.fromEnvironment().connectionFactory(), queueName,
                message -> {
                    try {
                        received.offer(((TextMessage) message).getText());
                    } catch (JMSException e) {
                        throw new RuntimeException(e);
                    }
                })) {
            String text = received.poll(30, TimeUnit.SECONDS);
            System.out.println(text == null ? "nothing received in 30 s" : "received: " + text);
        }
    }

    public static Connection start(ConnectionFactory factory, String queueName, MessageListener listener)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Queue queue = session.createQueue(queueName);
            MessageConsumer consumer = session.createConsumer(queue);
            consumer.setMessageListener(listener);
            connection.start();
            return connection;
        } catch (JMSException | RuntimeException e) {
            connection.close();
            throw e;
        }
    }

    private Consumer() {
    }
}
