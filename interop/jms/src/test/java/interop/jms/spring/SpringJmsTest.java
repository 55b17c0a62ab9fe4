package interop.jms.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import com.rabbitmq.jms.admin.RMQConnectionFactory;
import jakarta.jms.ConnectionFactory;
import jakarta.jms.Message;
import jakarta.jms.TextMessage;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.jms.core.JmsTemplate;

/** The Spring Boot application: JmsTemplate sends, @JmsListener methods receive (and reply). */
@SpringBootTest
class SpringJmsTest {

    @Autowired JmsTemplate template;
    @Autowired ConnectionFactory connectionFactory;
    @Autowired Names names;
    @Autowired Received received;

    private static <T> T take(BlockingQueue<T> queue, String what) throws InterruptedException {
        T item = queue.poll(10, TimeUnit.SECONDS);
        if (item == null) {
            fail("timed out after 10 s waiting for " + what);
        }
        return item;
    }

    @Test
    void connectionFactoryIsTheRabbitMqOne() {
        assertInstanceOf(RMQConnectionFactory.class, connectionFactory);
    }

    @Test
    void convertAndSendReachesTheJmsListener() throws Exception {
        template.convertAndSend(names.greetings(), "hello from JmsTemplate");
        assertEquals("hello from JmsTemplate", take(received.greetings, "the greeting at its @JmsListener"));
        template.convertAndSend(names.greetings(), "and another");
        assertEquals("and another", take(received.greetings, "the second greeting"));
    }

    @Test
    void mapMessageWithAPropertyReachesTheJmsListener() throws Exception {
        template.convertAndSend(names.orders(), Map.of("item", "teapot", "quantity", 3), message -> {
            message.setStringProperty("source", "spring-test");
            return message;
        });
        Received.Order order = take(received.orders, "the order at its @JmsListener");
        assertEquals(Map.of("item", "teapot", "quantity", 3), order.body());
        assertEquals("spring-test", order.source());
        assertFalse(order.redelivered());
    }

    @Test
    void sendAndReceiveGetsTheListenersReply() throws Exception {
        // JmsTemplate makes a temporary reply queue; the listener's return value goes to it.
        Message reply = template.sendAndReceive(names.quotes(), session -> session.createTextMessage("teapot"));
        assertNotNull(reply, "a reply within spring.jms.template.receive-timeout");
        assertEquals("quote for teapot: 42", ((TextMessage) reply).getText());
    }
}
