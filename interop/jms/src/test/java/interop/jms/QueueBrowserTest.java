package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.QueueBrowser;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** QueueBrowser: look at the messages in a queue without consuming them. */
class QueueBrowserTest extends JmsTestBase {

    private static List<String> browse(QueueBrowser browser) throws Exception {
        List<String> texts = new ArrayList<>();
        Enumeration<?> messages = browser.getEnumeration();
        while (messages.hasMoreElements()) {
            texts.add(((TextMessage) messages.nextElement()).getText());
        }
        return texts;
    }

    /** Sends in a transaction, so that the messages are in the queue when this returns. */
    private Queue fill(String base, String... texts) throws Exception {
        Session tx = connect().createSession(true, Session.SESSION_TRANSACTED);
        Queue queue = tx.createQueue(queueName(base));
        MessageProducer producer = tx.createProducer(queue);
        for (int i = 0; i < texts.length; i++) {
            Message message = tx.createTextMessage(texts[i]);
            message.setIntProperty("n", i);
            producer.send(message);
        }
        tx.commit();
        return queue;
    }

    @Test
    void browsingLeavesMessagesInTheQueue() throws Exception {
        Queue queue = fill("browse", "one", "two", "three");
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        QueueBrowser browser = session.createBrowser(queue);
        assertEquals(List.of("one", "two", "three"), browse(browser));
        // A second enumeration is a new snapshot: still all there.
        assertEquals(List.of("one", "two", "three"), browse(browser));
        browser.close();

        MessageConsumer consumer = session.createConsumer(queue);
        assertEquals("one", receiveText(consumer, "one, after browsing"));
        assertEquals("two", receiveText(consumer, "two, after browsing"));
        assertEquals("three", receiveText(consumer, "three, after browsing"));
        assertNothingArrives(consumer, "three messages");
        assertFalse(session.createBrowser(queue).getEnumeration().hasMoreElements(), "browsing an empty queue");
    }

    @Test
    void browsingWithASelector() throws Exception {
        Queue queue = fill("browse-selector", "zero", "one", "two", "three", "four");
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        assertEquals(List.of("zero", "two", "four"), browse(session.createBrowser(queue, "n = 0 OR n = 2 OR n = 4")));
        assertEquals(List.of("three", "four"), browse(session.createBrowser(queue, "n > 2")));
        MessageConsumer consumer = session.createConsumer(queue);
        for (String text : List.of("zero", "one", "two", "three", "four")) {
            assertEquals(text, receiveText(consumer, text + ", after browsing"));
        }
    }
}
