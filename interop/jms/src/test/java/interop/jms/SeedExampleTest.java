package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;

import interop.jms.seed.Consumer;
import interop.jms.seed.Producer;
import jakarta.jms.Connection;
import jakarta.jms.TextMessage;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.junit.jupiter.api.Test;

/** The seed example (src/main/java/interop/jms/seed): Producer sends, Consumer's listener gets it. */
class SeedExampleTest extends JmsTestBase {

    @Test
    void producerSendsAndListenerReceives() throws Exception {
        String queue = queueName("example.queue");
        BlockingQueue<String> received = new LinkedBlockingQueue<>();
        try (Connection consumer = Consumer.start(factory(), queue, message -> {
            try {
                received.add(((TextMessage) message).getText());
            } catch (Exception e) {
                received.add("unexpected message: " + message + " (" + e + ")");
            }
        })) {
            Producer.send(factory(), queue, "Hello, JMS");
            assertEquals("Hello, JMS", take(received, "the message at the listener"));
            Producer.send(factory(), queue, "and again");
            assertEquals("and again", take(received, "the second message at the listener"));
        }
    }
}
