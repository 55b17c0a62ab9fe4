package interop.spring;

import jakarta.annotation.PreDestroy;
import java.util.List;
import org.springframework.amqp.core.AmqpAdmin;
import org.springframework.amqp.core.Exchange;
import org.springframework.amqp.core.Queue;
import org.springframework.stereotype.Component;

/**
 * Deletes the run's queues and exchanges when the application stops (after its listener
 * containers have stopped, before its connection factory is closed), so that a shared broker
 * is left as it was found.
 */
@Component
public class Cleanup {

    private final AmqpAdmin admin;
    private final List<Queue> queues;
    private final List<Exchange> exchanges;

    public Cleanup(AmqpAdmin admin, List<Queue> queues, List<Exchange> exchanges) {
        this.admin = admin;
        this.queues = queues;
        this.exchanges = exchanges;
    }

    @PreDestroy
    void deleteEverything() {
        for (Queue q : queues) {
            try {
                admin.deleteQueue(q.getName());
            } catch (RuntimeException e) {
                // Best effort: the broker may be gone already.
            }
        }
        for (Exchange x : exchanges) {
            try {
                admin.deleteExchange(x.getName());
            } catch (RuntimeException e) {
                // Best effort.
            }
        }
    }
}
