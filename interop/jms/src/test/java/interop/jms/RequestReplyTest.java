package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.rabbitmq.jms.admin.RMQConnectionFactory;
import com.rabbitmq.jms.admin.RMQDestination;
import jakarta.jms.Destination;
import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import jakarta.jms.TemporaryQueue;
import jakarta.jms.TextMessage;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.junit.jupiter.api.Test;

/** Request/reply: temporary reply queues with JMSReplyTo, and RabbitMQ's direct reply-to. */
class RequestReplyTest extends JmsTestBase {

    /**
     * The responder: replies "reply to <text>" to each request's JMSReplyTo, with the request's
     * JMSCorrelationID. As the client's RPC documentation says, a responder must not declare
     * the reply destination itself (a temporary queue is exclusive to the requester's connection).
     */
    private void startResponder(String requestQueue) throws Exception {
        RMQConnectionFactory factory = factory();
        factory.setDeclareReplyToDestination(false);
        Session session = connect(factory).createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer replies = session.createProducer(null);
        session.createConsumer(session.createQueue(requestQueue)).setMessageListener(request -> {
            try {
                Destination replyTo = request.getJMSReplyTo();
                if (replyTo == null) {
                    return;
                }
                TextMessage reply = session.createTextMessage("reply to " + ((TextMessage) request).getText());
                reply.setJMSCorrelationID(request.getJMSCorrelationID());
                replies.send(replyTo, reply);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
    }

    @Test
    void temporaryQueueCarriesTheReply() throws Exception {
        String requests = queueName("rpc.requests");
        startResponder(requests);

        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        TemporaryQueue replyQueue = session.createTemporaryQueue();
        MessageConsumer replies = session.createConsumer(replyQueue);
        MessageProducer producer = session.createProducer(session.createQueue(requests));
        for (int i = 0; i < 3; i++) {
            TextMessage request = session.createTextMessage("request " + i);
            request.setJMSReplyTo(replyQueue);
            request.setJMSCorrelationID("corr-" + i + "-" + suffix);
            producer.send(request);
            Message reply = receive(replies, "the reply to request " + i);
            assertText("reply to request " + i, reply);
            assertEquals("corr-" + i + "-" + suffix, reply.getJMSCorrelationID());
        }
        assertNothingArrives(replies, "one reply per request");
    }

    @Test
    void replyToSurvivesTheRoundTrip() throws Exception {
        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = session.createQueue(queueName("replyto"));
        Queue replyQueue = session.createQueue(queueName("replyto.answers"));
        TextMessage message = session.createTextMessage("answer me");
        message.setJMSReplyTo(replyQueue);
        session.createProducer(queue).send(message);
        Message received = receive(session.createConsumer(queue), "the request");
        assertEquals(replyQueue, received.getJMSReplyTo());
        assertEquals(replyQueue.getQueueName(), ((Queue) received.getJMSReplyTo()).getQueueName());
    }

    @Test
    void directReplyTo() throws Exception {
        String requests = queueName("rpc.direct");
        startResponder(requests);

        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        // The client's documented way to use amq.rabbitmq.reply-to.
        RMQDestination replyQueue = new RMQDestination(
                "amq.rabbitmq.reply-to", "", "amq.rabbitmq.reply-to", "amq.rabbitmq.reply-to");
        replyQueue.setDeclared(true);
        BlockingQueue<Message> replies = new LinkedBlockingQueue<>();
        MessageConsumer consumer = session.createConsumer(replyQueue);
        consumer.setMessageListener(replies::add);
        TextMessage request = session.createTextMessage("direct");
        request.setJMSReplyTo(replyQueue);
        request.setJMSCorrelationID("direct-" + suffix);
        session.createProducer(session.createQueue(requests)).send(request);
        Message reply = take(replies, "the reply through direct reply-to");
        // Direct reply-to is an "AMQP destination": the reply arrives as raw AMQP, a BytesMessage
        // unless the responder marks it as text.
        assertNotNull(reply);
        byte[] body = reply.getBody(byte[].class);
        assertTrue(body != null && new String(body, java.nio.charset.StandardCharsets.UTF_8).equals("reply to direct"),
                "reply body: " + (body == null ? null : new String(body, java.nio.charset.StandardCharsets.UTF_8)));
        assertEquals("direct-" + suffix, reply.getJMSCorrelationID());
    }
}
