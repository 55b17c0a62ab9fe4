package interop.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import interop.spring.Messages.Order;
import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.core.AmqpAdmin;
import org.springframework.amqp.core.Message;
import org.springframework.amqp.rabbit.connection.CorrelationData;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.beans.factory.annotation.Autowired;

/** Queue arguments at work: dead-lettering (rejects, TTL) and length limits. */
class DeadLetterTest extends BrokerTestBase {

    @Autowired RabbitTemplate template;
    @Autowired AmqpAdmin admin;
    @Autowired Received received;

    /** Dead-lettering takes milliseconds; a broker without it should not cost much time. */
    static final long DEAD_LETTER_WAIT_MS = 5_000;

    private static Order order(String id) {
        return new Order(id, "widget", 1, BigDecimal.ONE, List.of());
    }

    /** The first x-death entry of a dead-lettered message. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> firstDeath(Message m) {
        Object deaths = m.getMessageProperties().getHeaders().get("x-death");
        List<Map<String, Object>> list = assertInstanceOf(List.class, deaths, "x-death header");
        return list.get(0);
    }

    @Test
    void messageRejectedByAFailingListenerIsDeadLettered() throws Exception {
        String id = UUID.randomUUID().toString();
        template.convertAndSend("", Names.of("failing"), order(id));
        assertEquals(id, take(received.failing, "the failing listener to be called"));

        Message dead = template.receive(Names.of("dead.failed"), DEAD_LETTER_WAIT_MS);
        assertNotNull(dead, "the rejected message reaches the dead-letter queue");
        assertEquals(order(id), template.getMessageConverter().fromMessage(dead));
        Map<String, Object> death = firstDeath(dead);
        assertEquals("rejected", String.valueOf(death.get("reason")));
        assertEquals(Names.of("failing"), String.valueOf(death.get("queue")));
        assertEquals(1L, ((Number) death.get("count")).longValue());
        assertEquals(Names.of("dlx"), dead.getMessageProperties().getReceivedExchange());
        assertEquals("failed", dead.getMessageProperties().getReceivedRoutingKey());
        assertNull(received.failing.poll(), "rejected without requeue: the listener ran once");
    }

    @Test
    void expiredMessageIsDeadLettered() throws Exception {
        String id = UUID.randomUUID().toString();
        template.convertAndSend("", Names.of("expiring"), order(id));
        Message dead = template.receive(Names.of("dead.expired"), DEAD_LETTER_WAIT_MS);
        assertNotNull(dead, "the message expires (x-message-ttl 200 ms) into the dead-letter queue");
        assertEquals(order(id), template.getMessageConverter().fromMessage(dead));
        Map<String, Object> death = firstDeath(dead);
        assertEquals("expired", String.valueOf(death.get("reason")));
        assertEquals(Names.of("expiring"), String.valueOf(death.get("queue")));
    }

    @Test
    void maxLengthQueueDropsItsOldestMessage() throws Exception {
        String queue = Names.of("limited");
        for (String body : List.of("first", "second", "third")) {
            CorrelationData cd = new CorrelationData(body);
            template.convertAndSend("", queue, body, cd);
            assertTrue(cd.getFuture().get(WAIT.toMillis(), TimeUnit.MILLISECONDS).isAck());
        }
        assertEquals(2, admin.getQueueInfo(queue).getMessageCount(), "x-max-length 2");
        assertEquals("second", template.receiveAndConvert(queue, WAIT.toMillis()));
        assertEquals("third", template.receiveAndConvert(queue, WAIT.toMillis()));
    }
}
