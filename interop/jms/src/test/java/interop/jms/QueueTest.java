package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jakarta.jms.CompletionListener;
import jakarta.jms.Connection;
import jakarta.jms.JMSConsumer;
import jakarta.jms.JMSContext;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/** Point-to-point: queues, receive variants, competing consumers, the simplified API. */
class QueueTest extends JmsTestBase {

    @Test
    void messagesArriveInSendOrder() throws Exception {
        Connection connection = connect();
        Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("orders"));
        MessageProducer producer = session.createProducer(queue);
        for (int i = 0; i < 20; i++) {
            producer.send(session.createTextMessage("m" + i));
        }
        // Another connection receives them, in order, exactly once.
        Session other = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer consumer = other.createConsumer(other.createQueue(queue.getQueueName()));
        for (int i = 0; i < 20; i++) {
            assertEquals("m" + i, receiveText(consumer, "message " + i));
        }
        assertNothingArrives(consumer, "each message is received once");
    }

    @Test
    void receiveWithoutTimeoutWaitsForAMessage() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("blocking"));
        MessageConsumer consumer = session.createConsumer(queue);
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try {
            Future<Message> pending = executor.submit(() -> consumer.receive());
            // Nothing to receive yet: receive() keeps waiting.
            assertThrows(TimeoutException.class, () -> pending.get(NOTHING.toMillis(), TimeUnit.MILLISECONDS));
            Session producerSession = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
            producerSession.createProducer(producerSession.createQueue(queue.getQueueName()))
                    .send(producerSession.createTextMessage("worth the wait"));
            assertText("worth the wait", pending.get(WAIT.toMillis(), TimeUnit.MILLISECONDS));
        } finally {
            executor.shutdownNow();
        }
    }

    @Test
    void receiveWithTimeoutReturnsNullWhenEmptyAndTheMessageOtherwise() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("timeout"));
        MessageConsumer consumer = session.createConsumer(queue);
        long start = System.nanoTime();
        assertNull(consumer.receive(300), "an empty queue gives null");
        long waitedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(waitedMs >= 250, "receive(300) waited for its timeout, not " + waitedMs + " ms");
        session.createProducer(queue).send(session.createTextMessage("here"));
        assertText("here", consumer.receive(WAIT.toMillis()));
    }

    @Test
    void receiveNoWaitTakesWhatIsThereAndOtherwiseReturnsNull() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("nowait"));
        MessageConsumer consumer = session.createConsumer(queue);
        assertNull(consumer.receiveNoWait(), "an empty queue gives null at once");
        MessageProducer producer = session.createProducer(queue);
        producer.send(session.createTextMessage("first"));
        producer.send(session.createTextMessage("second"));
        // Once the first is here, the second (sent after it on the same session) is queued too.
        assertEquals("first", receiveText(consumer, "the first message"));
        assertText("second", consumer.receiveNoWait());
        assertNull(consumer.receiveNoWait(), "the queue is empty again");
    }

    @Test
    void competingListenersShareTheQueueMessages() throws Exception {
        Connection connection = connect();
        String name = queueName("work");
        BlockingQueue<String> received = new LinkedBlockingQueue<>();
        Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        List<Session> sessions = new ArrayList<>();
        for (int c = 0; c < 2; c++) {
            String worker = "worker" + c;
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            sessions.add(session);
            session.createConsumer(session.createQueue(name)).setMessageListener(message -> {
                try {
                    threads.add(worker);
                    received.add(((TextMessage) message).getText());
                } catch (Exception e) {
                    received.add("unexpected: " + e);
                }
            });
        }
        Session producerSession = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = producerSession.createProducer(producerSession.createQueue(name));
        Set<String> sent = new HashSet<>();
        for (int i = 0; i < 20; i++) {
            producer.send(producerSession.createTextMessage("task" + i));
            sent.add("task" + i);
        }
        Set<String> got = new HashSet<>();
        for (int i = 0; i < 20; i++) {
            String text = take(received, "task " + i);
            assertTrue(got.add(text), "delivered twice: " + text);
        }
        assertEquals(sent, got);
        assertEquals(Set.of("worker0", "worker1"), threads, "both listeners got work");
        assertNull(received.poll(NOTHING.toMillis(), TimeUnit.MILLISECONDS), "nothing more");
    }

    @Test
    void asynchronousSendCompletes() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("async"));
        MessageProducer producer = session.createProducer(queue);
        List<CompletableFuture<Message>> completions = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            CompletableFuture<Message> done = new CompletableFuture<>();
            completions.add(done);
            producer.send(session.createTextMessage("async" + i), new CompletionListener() {
                @Override
                public void onCompletion(Message message) {
                    done.complete(message);
                }

                @Override
                public void onException(Message message, Exception exception) {
                    done.completeExceptionally(exception);
                }
            });
        }
        for (int i = 0; i < 5; i++) {
            Message message = completions.get(i).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            assertText("async" + i, message);
        }
        MessageConsumer consumer = session.createConsumer(queue);
        for (int i = 0; i < 5; i++) {
            assertEquals("async" + i, receiveText(consumer, "async message " + i));
        }
    }

    @Test
    void simplifiedApiJmsContext() throws Exception {
        String name = queueName("context");
        try (JMSContext context = factory().createContext(JMSContext.AUTO_ACKNOWLEDGE)) {
            Queue queue = context.createQueue(name);
            context.createProducer().setProperty("n", 1).send(queue, "via JMSContext");
            try (JMSConsumer consumer = context.createConsumer(queue)) {
                Message message = consumer.receive(WAIT.toMillis());
                assertNotNull(message, "the message sent through the JMSContext");
                assertEquals("via JMSContext", message.getBody(String.class));
                assertEquals(1, message.getIntProperty("n"));
                assertFalse(message.getJMSRedelivered());
                assertNull(consumer.receiveBody(String.class, NOTHING.toMillis()), "nothing more");
            }
        }
    }
}
