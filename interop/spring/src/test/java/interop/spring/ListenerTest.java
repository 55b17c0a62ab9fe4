package interop.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import interop.spring.Messages.Order;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.core.AmqpAdmin;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.beans.factory.annotation.Autowired;

/** @RabbitListener consumers: JSON POJOs, manual acks, auto acks with concurrency and prefetch. */
class ListenerTest extends BrokerTestBase {

    @Autowired RabbitTemplate template;
    @Autowired AmqpAdmin admin;
    @Autowired Received received;
    @Autowired Queue manualQueue;
    @Autowired Queue workQueue;

    @Test
    void jsonMessageArrivesAsAPojo() throws Exception {
        Order sent = new Order(UUID.randomUUID().toString(), "teapot", 3,
                new BigDecimal("19.90"), List.of("kitchen", "gift"));
        template.convertAndSend(Names.of("orders"), "order.created", sent);
        assertEquals(sent, take(received.orders, "the order at its @RabbitListener"));
    }

    @Test
    void manualAckListenerNacksThenAcks() throws Exception {
        template.convertAndSend("", manualQueue.getName(), "try twice");
        assertEquals(new Received.Manual("try twice", false), take(received.manual, "first delivery"));
        assertEquals(new Received.Manual("try twice", true), take(received.manual, "redelivery after nack"));
        // Anything before the end marker has been delivered by the time the marker is.
        template.convertAndSend("", manualQueue.getName(), "end");
        assertEquals(new Received.Manual("end", false), take(received.manual, "the end marker"));
        awaitCondition(() -> admin.getQueueInfo(manualQueue.getName()).getMessageCount() == 0,
                "an empty queue");
    }

    @Test
    void autoAckListenerWithConcurrencyTwoAndPrefetchOne() throws Exception {
        List<String> bodies = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            bodies.add("task-" + i);
            template.convertAndSend("", workQueue.getName(), "task-" + i);
        }
        // Each consumer holds one message in its listener (the gate is closed) ...
        Received.Work a = take(received.workStarted, "a first task");
        Received.Work b = take(received.workStarted, "a second task");
        assertNotEquals(a.thread(), b.thread(), "two consumers work at once");
        assertEquals(2, admin.getQueueInfo(workQueue.getName()).getConsumerCount());
        // ... and prefetch 1 keeps the rest in the queue.
        awaitCondition(() -> admin.getQueueInfo(workQueue.getName()).getMessageCount() == 8,
                "8 messages ready (2 unacked)");

        received.workGate.countDown();
        Set<String> done = new HashSet<>();
        Set<String> threads = new HashSet<>();
        for (int i = 0; i < 10; i++) {
            Received.Work w = take(received.workDone, "task " + i + " done");
            assertEquals(true, done.add(w.body()), "processed twice: " + w.body());
            threads.add(w.thread());
        }
        assertEquals(new HashSet<>(bodies), done);
        assertEquals(2, threads.size(), "both consumers did work: " + threads);
        awaitCondition(() -> admin.getQueueInfo(workQueue.getName()).getMessageCount() == 0,
                "an empty queue");
    }
}
