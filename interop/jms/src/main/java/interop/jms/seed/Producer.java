package interop.jms.seed;

import interop.jms.BrokerAddress;
import jakarta.jms.Connection;
import jakarta.jms.ConnectionFactory;
import jakarta.jms.JMSException;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;

/**
 * The seed example, producer side: a plain JMS producer that sends one TextMessage to the
 * queue "example.queue" on the broker in AMQP_URL.
 */
public final class Producer {

    public static void main(String[] args) throws JMSException {
        String queueName = args.length > 0 ? args[0] : "example.queue";
        String text = args.length > 1 ? args[1] : "Hello, JMS";
        send(BrokerAddress.fromEnvironment().connectionFactory(), queueName, text);
        System.out.println("sent: " + text);
    }

    public static void send(ConnectionFactory factory, String queueName, String text) throws JMSException {
        try (Connection connection = factory.createConnection()) {
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Queue queue = session.createQueue(queueName);
            MessageProducer producer = session.createProducer(queue);
            TextMessage message = session.createTextMessage(text);
            producer.send(message);
        }
    }

    private Producer() {
    }
}
