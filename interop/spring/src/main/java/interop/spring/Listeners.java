package interop.spring;

import com.rabbitmq.client.Channel;
import interop.spring.Messages.Order;
import interop.spring.Messages.Price;
import interop.spring.Messages.Quote;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.springframework.amqp.rabbit.annotation.RabbitListener;
import org.springframework.amqp.support.AmqpHeaders;
import org.springframework.messaging.handler.annotation.Header;
import org.springframework.stereotype.Component;

/** The application's consumers. */
@Component
public class Listeners {

    private final Received received;

    public Listeners(Received received) {
        this.received = received;
    }

    /** JSON in, POJO out: the converter picks the type from the message. */
    @RabbitListener(queues = "#{ordersQueue.name}")
    public void order(Order order) {
        received.orders.add(order);
    }

    /** Manual acks: the first delivery of each message is nacked back onto the queue. */
    @RabbitListener(queues = "#{manualQueue.name}", ackMode = "MANUAL")
    public void manual(
            String body,
            Channel channel,
            @Header(AmqpHeaders.DELIVERY_TAG) long tag,
            @Header(AmqpHeaders.REDELIVERED) boolean redelivered)
            throws IOException {
        received.manual.add(new Received.Manual(body, redelivered));
        if (redelivered || body.startsWith("end")) {
            channel.basicAck(tag, false);
        } else {
            channel.basicNack(tag, false, true);
        }
    }

    /** Auto acks (after the method returns), two consumers, one unacked message each. */
    @RabbitListener(queues = "#{workQueue.name}", concurrency = "2",
            containerFactory = "prefetchOneFactory")
    public void work(String body) throws InterruptedException {
        String thread = Thread.currentThread().getName();
        received.workStarted.add(new Received.Work(body, thread));
        received.workGate.await(30, TimeUnit.SECONDS);
        received.workDone.add(new Received.Work(body, thread));
    }

    /** Always fails; with default-requeue-rejected=false the message is rejected, not requeued. */
    @RabbitListener(queues = "#{failingQueue.name}")
    public void failing(Order order) {
        received.failing.add(order.id());
        throw new IllegalStateException("cannot process order " + order.id());
    }

    /** RPC server: the return value is sent to the request's reply-to address. */
    @RabbitListener(queues = "#{rpcQueue.name}")
    public Price quote(Quote quote, @Header(AmqpHeaders.REPLY_TO) String replyTo) {
        received.rpcReplyTo.add(replyTo);
        return new Price(quote.symbol(), quote.symbol().length() * 100L, "interop-spring");
    }

    @RabbitListener(queues = "#{anonymousQueue.name}")
    public void broadcast(String text) {
        received.broadcasts.add(text);
    }
}
