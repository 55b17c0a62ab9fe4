package interop.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import interop.spring.Messages.Price;
import interop.spring.Messages.Quote;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Qualifier;

/** convertSendAndReceive against a @RabbitListener that returns its reply. */
class RpcTest extends BrokerTestBase {

    @Autowired RabbitTemplate template;
    @Autowired @Qualifier("fixedReplyTemplate") RabbitTemplate fixedReplyTemplate;
    @Autowired @Qualifier("temporaryReplyTemplate") RabbitTemplate temporaryReplyTemplate;
    @Autowired Received received;

    private Price ask(RabbitTemplate t, String symbol) {
        Object reply = t.convertSendAndReceive(Names.of("rpc"), "quote", new Quote(symbol));
        return (Price) reply;
    }

    @Test
    void rpcWithDirectReplyTo() throws Exception {
        // The default: replies come back on the pseudo-queue amq.rabbitmq.reply-to.
        assertEquals(new Price("ACME", 400, "interop-spring"), ask(template, "ACME"));
        String replyTo = take(received.rpcReplyTo, "the request at the server");
        assertTrue(replyTo.startsWith("amq.rabbitmq.reply-to."), "direct reply-to used: " + replyTo);
    }

    @Test
    void rpcWithAFixedReplyQueue() throws Exception {
        assertEquals(new Price("WARREN", 600, "interop-spring"), ask(fixedReplyTemplate, "WARREN"));
        assertEquals(Names.of("rpc.replies"), take(received.rpcReplyTo, "the request at the server"));
    }

    @Test
    void rpcWithATemporaryReplyQueue() throws Exception {
        assertEquals(new Price("TMP", 300, "interop-spring"), ask(temporaryReplyTemplate, "TMP"));
        String replyTo = take(received.rpcReplyTo, "the request at the server");
        assertTrue(replyTo.startsWith("amq.gen-"), "a server-named reply queue: " + replyTo);
    }
}
