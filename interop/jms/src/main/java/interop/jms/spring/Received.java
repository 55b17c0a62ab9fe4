package interop.jms.spring;

import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.springframework.stereotype.Component;

/** What the listeners got, for the tests to take. */
@Component
public class Received {

    public record Order(Map<String, Object> body, String source, boolean redelivered) {
    }

    public final BlockingQueue<String> greetings = new LinkedBlockingQueue<>();
    public final BlockingQueue<Order> orders = new LinkedBlockingQueue<>();
}
