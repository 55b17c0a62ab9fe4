package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.rabbitmq.jms.admin.RMQDestination;
import jakarta.jms.DeliveryMode;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * JMSPriority. The client sends it as the AMQP priority (and a JMSPriority header); a queue
 * orders by it when declared with x-max-priority, which the client passes through
 * RMQDestination's queue declare arguments.
 */
class PriorityTest extends JmsTestBase {

    @Test
    void higherPriorityFirstFromABacklog() throws Exception {
        // Messages are sent in a transaction, so that all of them are in the queue when the
        // commit returns.
        Session tx = connect().createSession(true, Session.SESSION_TRANSACTED);
        Queue queue = new RMQDestination(queueName("priority"), true, false, Map.of("x-max-priority", 9));
        MessageProducer producer = tx.createProducer(queue);
        int[] priorities = {1, 4, 9, 0, 4, 7};
        for (int i = 0; i < priorities.length; i++) {
            Message message = tx.createTextMessage("p" + priorities[i] + "-" + i);
            producer.send(message, DeliveryMode.PERSISTENT, priorities[i], 0);
        }
        tx.commit();

        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer consumer = session.createConsumer(queue);
        // Highest first; equal priorities in send order.
        for (String expected : new String[] {"p9-2", "p7-5", "p4-1", "p4-4", "p1-0", "p0-3"}) {
            Message message = receive(consumer, expected);
            assertText(expected, message);
            assertEquals(Integer.parseInt(expected.substring(1, 2)), message.getJMSPriority());
        }
        assertNothingArrives(consumer, "six messages");
    }

    @Test
    void priorityRoundTripsOnAPlainQueue() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("priority-plain"));
        MessageProducer producer = session.createProducer(queue);
        producer.setPriority(8);
        producer.send(session.createTextMessage("eight"));
        producer.send(session.createTextMessage("two"), DeliveryMode.NON_PERSISTENT, 2, 0);
        MessageConsumer consumer = session.createConsumer(queue);
        // Without x-max-priority the queue is FIFO; the priority still arrives.
        Message eight = receive(consumer, "eight");
        assertText("eight", eight);
        assertEquals(8, eight.getJMSPriority());
        Message two = receive(consumer, "two");
        assertText("two", two);
        assertEquals(2, two.getJMSPriority());
    }
}
