package interop.jms.spring;

import java.util.Map;
import org.springframework.jms.annotation.JmsListener;
import org.springframework.jms.support.JmsHeaders;
import org.springframework.messaging.handler.annotation.Header;
import org.springframework.stereotype.Component;

/** @JmsListener methods, on queues named by {@link Names}. */
@Component
public class Listeners {

    private final Received received;

    public Listeners(Received received) {
        this.received = received;
    }

    /** A TextMessage body, converted to a String. */
    @JmsListener(destination = "#{@names.greetings()}")
    public void greeting(String text) {
        received.greetings.add(text);
    }

    /** A MapMessage body, converted to a Map, with a message property as a header. */
    @JmsListener(destination = "#{@names.orders()}")
    public void order(Map<String, Object> order, @Header("source") String source,
            @Header(JmsHeaders.REDELIVERED) boolean redelivered) {
        received.orders.add(new Received.Order(order, source, redelivered));
    }

    /** Request/reply: the return value goes to the request's JMSReplyTo. */
    @JmsListener(destination = "#{@names.quotes()}")
    public String quote(String product) {
        return "quote for " + product + ": 42";
    }
}
