package interop.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.core.AmqpAdmin;
import org.springframework.amqp.core.AnonymousQueue;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.core.QueueInformation;
import org.springframework.amqp.rabbit.connection.CachingConnectionFactory;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.beans.factory.annotation.Autowired;

/** Topology declared by RabbitAdmin from beans, as another client of the broker sees it. */
class TopologyTest extends BrokerTestBase {

    @Autowired AmqpAdmin admin;
    @Autowired RabbitTemplate template;
    @Autowired CachingConnectionFactory connectionFactory;
    @Autowired Queue ordersQueue;
    @Autowired AnonymousQueue anonymousQueue;
    @Autowired Received received;

    /** A plain client connection of its own, separate from Spring's. */
    private Connection otherConnection() throws Exception {
        return connectionFactory.getRabbitConnectionFactory().newConnection("interop-spring-other");
    }

    private static AMQP.Channel.Close channelError(IOException e) {
        ShutdownSignalException sse = assertInstanceOf(ShutdownSignalException.class, e.getCause());
        return assertInstanceOf(AMQP.Channel.Close.class, sse.getReason());
    }

    @Test
    void rabbitAdminDeclaresQueuesWithTheirArguments() throws Exception {
        QueueInformation info = admin.getQueueInfo(ordersQueue.getName());
        assertNotNull(info, "declared by RabbitAdmin");
        awaitCondition(() -> admin.getQueueInfo(ordersQueue.getName()).getConsumerCount() == 1,
                "its @RabbitListener to consume from it");

        Map<String, Object> args = new HashMap<>();
        args.put("x-dead-letter-exchange", Names.of("dlx"));
        args.put("x-dead-letter-routing-key", "orders");
        args.put("x-message-ttl", 60_000);
        args.put("x-max-length", 1_000);
        try (Connection conn = otherConnection()) {
            // The broker kept the arguments: the same declaration is accepted ...
            Channel ch = conn.createChannel();
            AMQP.Queue.DeclareOk ok = ch.queueDeclare(ordersQueue.getName(), false, false, false, args);
            assertEquals(ordersQueue.getName(), ok.getQueue());
            ch.exchangeDeclarePassive(Names.of("orders"));
            ch.exchangeDeclarePassive(Names.of("dlx"));

            // ... and a different x-max-length is not.
            Map<String, Object> changed = new HashMap<>(args);
            changed.put("x-max-length", 5);
            Channel ch2 = conn.createChannel();
            AMQP.Channel.Close close = channelError(assertThrows(IOException.class,
                    () -> ch2.queueDeclare(ordersQueue.getName(), false, false, false, changed)));
            assertEquals(406, close.getReplyCode());
            assertTrue(close.getReplyText().startsWith(
                    "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '"
                            + ordersQueue.getName() + "'"), close.getReplyText());
        }
    }

    @Test
    void anonymousQueueIsExclusiveAndReceivesBroadcasts() throws Exception {
        String name = anonymousQueue.getName();
        assertTrue(name.startsWith("spring.gen-"), name);
        assertTrue(anonymousQueue.isExclusive() && anonymousQueue.isAutoDelete()
                && !anonymousQueue.isDurable());
        assertNotNull(admin.getQueueInfo(name), "declared on Spring's connection");

        try (Connection conn = otherConnection()) {
            Channel ch = conn.createChannel();
            AMQP.Channel.Close close = channelError(assertThrows(IOException.class,
                    () -> ch.basicConsume(name, true, new com.rabbitmq.client.DefaultConsumer(ch))));
            assertEquals(405, close.getReplyCode(), "exclusive to Spring's connection");
            assertTrue(close.getReplyText().startsWith("RESOURCE_LOCKED"), close.getReplyText());
            assertFalse(ch.isOpen());
        }

        template.convertAndSend(Names.of("broadcast"), "", "hello, anonymous");
        assertEquals("hello, anonymous", take(received.broadcasts, "the broadcast"));
    }
}
