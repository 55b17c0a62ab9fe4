package interop.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ShutdownSignalException;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.core.ReturnedMessage;
import org.springframework.amqp.rabbit.connection.CachingConnectionFactory;
import org.springframework.amqp.rabbit.connection.ChannelListener;
import org.springframework.amqp.rabbit.connection.CorrelationData;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.beans.factory.annotation.Autowired;

/** Correlated publisher confirms (CorrelationData futures) and returns (ReturnsCallback). */
class PublisherConfirmsTest extends BrokerTestBase {

    @Autowired RabbitTemplate template;
    @Autowired Received received;
    @Autowired CachingConnectionFactory connectionFactory;
    private volatile boolean recording;

    private static CorrelationData.Confirm confirm(CorrelationData cd) throws Exception {
        return cd.getFuture().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Test
    void routedMessageIsConfirmed() throws Exception {
        String queue = Names.of("confirmed");
        String payload = "confirmed " + UUID.randomUUID();
        CorrelationData cd = new CorrelationData("routed-" + UUID.randomUUID());
        template.convertAndSend("", queue, payload, cd);
        CorrelationData.Confirm c = confirm(cd);
        assertTrue(c.isAck(), "ack: " + c);
        assertNull(cd.getReturned(), "a routed message is not returned");
        assertEquals(payload, template.receiveAndConvert(queue, WAIT.toMillis()));
    }

    @Test
    void unroutableMandatoryMessageIsReturnedThenConfirmed() throws Exception {
        String payload = "lost " + UUID.randomUUID();
        String id = "unroutable-" + UUID.randomUUID();
        CorrelationData cd = new CorrelationData(id);
        template.convertAndSend(Names.of("orders"), "no.such.binding", payload, cd);

        CorrelationData.Confirm c = confirm(cd);
        assertTrue(c.isAck(), "an unroutable message is still acked: " + c);
        // The broker sends basic.return before basic.ack, so the future carries the return.
        ReturnedMessage returned = cd.getReturned();
        assertNotNull(returned, "basic.return arrived before the confirm");
        assertEquals(312, returned.getReplyCode());
        assertEquals("NO_ROUTE", returned.getReplyText());
        assertEquals(Names.of("orders"), returned.getExchange());
        assertEquals("no.such.binding", returned.getRoutingKey());
        assertEquals(payload, template.getMessageConverter().fromMessage(returned.getMessage()));

        ReturnedMessage callback = take(received.returns, "the ReturnsCallback");
        assertEquals(312, callback.getReplyCode());
        assertEquals(payload, template.getMessageConverter().fromMessage(callback.getMessage()));
    }

    @Test
    void publishToAMissingExchangeIsNackedWithTheChannelError() throws Exception {
        BlockingQueue<ShutdownSignalException> channelErrors = new LinkedBlockingQueue<>();
        ChannelListener listener = new ChannelListener() {
            @Override
            public void onCreate(Channel channel, boolean transactional) {}

            @Override
            public void onShutDown(ShutdownSignalException signal) {
                if (recording) {
                    channelErrors.add(signal);
                }
            }
        };
        // Channel listeners cannot be removed; this one records during this test only.
        connectionFactory.addChannelListener(listener);
        recording = true;
        try {
            String missing = Names.of("no-such-exchange");
            CorrelationData cd = new CorrelationData("missing-" + UUID.randomUUID());
            template.convertAndSend(missing, "k", "nowhere", cd);
            CorrelationData.Confirm c = confirm(cd);
            // Spring settles the pending confirm as a nack when the broker closes the channel.
            assertFalse(c.isAck(), "the channel was closed before a confirm: " + c);
            ShutdownSignalException sse = take(channelErrors, "the channel error");
            AMQP.Channel.Close close = assertInstanceOf(AMQP.Channel.Close.class, sse.getReason());
            assertEquals(404, close.getReplyCode());
            assertEquals("NOT_FOUND - no exchange '" + missing + "' in vhost '/'", close.getReplyText());
        } finally {
            recording = false;
        }

        // The template carries on with a new channel.
        CorrelationData next = new CorrelationData("after-" + UUID.randomUUID());
        template.convertAndSend("", Names.of("confirmed"), "after", next);
        assertTrue(confirm(next).isAck());
        assertEquals("after", template.receiveAndConvert(Names.of("confirmed"), WAIT.toMillis()));
    }
}
