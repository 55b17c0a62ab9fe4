package interop.spring;

import static org.junit.jupiter.api.Assertions.fail;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * Every test class runs against one application context (Spring caches it), connected to the
 * broker in AMQP_URL. Every wait has a deadline.
 */
@SpringBootTest
abstract class BrokerTestBase {

    static final String AMQP_URL = System.getenv().getOrDefault(
            "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F");

    static final Duration WAIT = Duration.ofSeconds(10);

    /** AMQP_URL onto spring.rabbitmq.* (its "addresses" would not decode a %2F vhost). */
    @DynamicPropertySource
    static void broker(DynamicPropertyRegistry registry) {
        URI uri = URI.create(AMQP_URL);
        registry.add("spring.rabbitmq.host", uri::getHost);
        registry.add("spring.rabbitmq.port", () -> uri.getPort() == -1 ? 5672 : uri.getPort());
        String userInfo = uri.getRawUserInfo();
        if (userInfo != null) {
            String[] parts = userInfo.split(":", 2);
            registry.add("spring.rabbitmq.username", () -> decode(parts[0]));
            if (parts.length > 1) {
                registry.add("spring.rabbitmq.password", () -> decode(parts[1]));
            }
        }
        String path = uri.getRawPath();
        String vhost = path == null || path.length() <= 1 ? "/" : decode(path.substring(1));
        registry.add("spring.rabbitmq.virtual-host", () -> vhost);
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    static <T> T take(BlockingQueue<T> queue, String what) throws InterruptedException {
        T item = queue.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        if (item == null) {
            fail("timed out after " + WAIT.toMillis() + " ms waiting for " + what);
        }
        return item;
    }

    static void awaitCondition(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + WAIT.toMillis() + " ms waiting for " + what);
            }
            Thread.sleep(20);
        }
    }
}
