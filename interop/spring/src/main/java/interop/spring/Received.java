package interop.spring;

import interop.spring.Messages.Order;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import org.springframework.amqp.core.ReturnedMessage;
import org.springframework.stereotype.Component;

/** What the application's listeners and callbacks saw, for the tests to inspect. */
@Component
public class Received {

    /** One delivery to a manual-ack listener. */
    public record Manual(String body, boolean redelivered) {}

    /** A work item: which consumer thread started or finished it. */
    public record Work(String body, String thread) {}

    public final BlockingQueue<Order> orders = new LinkedBlockingQueue<>();
    public final BlockingQueue<Manual> manual = new LinkedBlockingQueue<>();
    public final BlockingQueue<Work> workStarted = new LinkedBlockingQueue<>();
    public final BlockingQueue<Work> workDone = new LinkedBlockingQueue<>();
    public final BlockingQueue<String> failing = new LinkedBlockingQueue<>();
    public final BlockingQueue<String> rpcReplyTo = new LinkedBlockingQueue<>();
    public final BlockingQueue<String> broadcasts = new LinkedBlockingQueue<>();
    public final BlockingQueue<ReturnedMessage> returns = new LinkedBlockingQueue<>();

    /** Work listeners hold their message until the test opens the gate. */
    public final CountDownLatch workGate = new CountDownLatch(1);
}
