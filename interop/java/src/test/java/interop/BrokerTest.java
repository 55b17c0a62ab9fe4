package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.function.Executable;

/**
 * Shared plumbing for the Java client tests.
 *
 * <p>Every test gets unique, self-cleaning queue and exchange names (a uuid suffix, deleted
 * after the test from a fresh connection) and its connections are closed after it, so the
 * suite can share a broker with anything else. Every wait has a deadline: a broker that stops
 * answering fails the test instead of hanging it.
 */
abstract class BrokerTest {

    static final String AMQP_URL =
            envOr("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F");

    /** How long any single expected event may take. */
    static final Duration WAIT = Duration.ofSeconds(10);

    /** How long to watch for something that must NOT happen (a delivery beyond prefetch, ...). */
    static final Duration QUIET = Duration.ofMillis(300);

    protected String testName;
    private String runId;
    private final List<Connection> connections = new ArrayList<>();
    private final List<String> queues = new ArrayList<>();
    private final List<String> exchanges = new ArrayList<>();

    static String envOr(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }

    @BeforeEach
    void nameTheTest(TestInfo info) {
        testName = info.getTestMethod().map(m -> m.getName()).orElse("test");
        runId = UUID.randomUUID().toString().replace("-", "").substring(0, 10);
    }

    @AfterEach
    void closeConnectionsAndDeleteNames() {
        for (Connection c : connections) {
            // abort: close without throwing, whatever state the connection is in.
            c.abort(2000);
        }
        connections.clear();
        if (queues.isEmpty() && exchanges.isEmpty()) {
            return;
        }
        try (Connection c = factory().newConnection("interop-java-cleanup")) {
            Channel ch = c.createChannel();
            for (String q : queues) {
                if (!ch.isOpen()) {
                    ch = c.createChannel();
                }
                try {
                    ch.queueDelete(q);
                } catch (IOException | RuntimeException e) {
                    // Already gone with its connection, or locked by one that is closing.
                }
            }
            for (String x : exchanges) {
                if (!ch.isOpen()) {
                    ch = c.createChannel();
                }
                try {
                    ch.exchangeDelete(x);
                } catch (IOException | RuntimeException e) {
                    // Already gone.
                }
            }
        } catch (Exception e) {
            // Best effort: the broker may be the reason the test failed.
        }
    }

    /** A factory for AMQP_URL with deadlines on everything and no automatic recovery. */
    static ConnectionFactory factory() {
        ConnectionFactory cf = new ConnectionFactory();
        try {
            cf.setUri(AMQP_URL);
        } catch (Exception e) {
            throw new IllegalArgumentException("bad AMQP_URL: " + AMQP_URL, e);
        }
        cf.setConnectionTimeout(10_000);
        cf.setHandshakeTimeout(10_000);
        cf.setChannelRpcTimeout(10_000);
        cf.setShutdownTimeout(2_000);
        // Recovery is on by default in the 5.x client; only the recovery tests want it.
        cf.setAutomaticRecoveryEnabled(false);
        cf.setTopologyRecoveryEnabled(false);
        return cf;
    }

    /** Opens a connection that is closed after the test. */
    Connection connect() throws Exception {
        return track(factory().newConnection("interop-java-" + testName));
    }

    <C extends Connection> C track(C connection) {
        connections.add(connection);
        return connection;
    }

    /** A unique queue name, deleted after the test. */
    String queueName(String label) {
        String name = "interop.java." + testName + "." + label + "." + runId;
        queues.add(name);
        return name;
    }

    /** A unique exchange name, deleted after the test. */
    String exchangeName(String label) {
        String name = "interop.java." + testName + "." + label + "." + runId;
        exchanges.add(name);
        return name;
    }

    /** Registers a server-named queue for deletion after the test. */
    String forget(String queue) {
        queues.add(queue);
        return queue;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] body) {
        return new String(body, StandardCharsets.UTF_8);
    }

    static <T> T take(BlockingQueue<T> queue, String what) throws InterruptedException {
        return take(queue, WAIT, what);
    }

    static <T> T take(BlockingQueue<T> queue, Duration timeout, String what)
            throws InterruptedException {
        T item = queue.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (item == null) {
            fail("timed out after " + timeout.toMillis() + " ms waiting for " + what);
        }
        return item;
    }

    static void await(CountDownLatch latch, String what) throws InterruptedException {
        await(latch, WAIT, what);
    }

    static void await(CountDownLatch latch, Duration timeout, String what)
            throws InterruptedException {
        if (!latch.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            fail("timed out after " + timeout.toMillis() + " ms waiting for " + what);
        }
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

    /**
     * Runs an operation that the broker must answer with channel.close, and returns the
     * channel.close method (reply code and text) as the application sees it: an IOException
     * whose cause is a ShutdownSignalException.
     */
    static AMQP.Channel.Close channelClose(Executable operation) {
        IOException e = assertThrows(IOException.class, operation, "expected a channel error");
        ShutdownSignalException sse =
                assertInstanceOf(ShutdownSignalException.class, e.getCause(), "cause of " + e);
        assertEquals(false, sse.isHardError(), "a channel error, not a connection error: " + sse);
        return assertInstanceOf(AMQP.Channel.Close.class, sse.getReason(), "reason of " + sse);
    }

    /** True if a passive declare of the queue succeeds (on a throw-away channel). */
    static boolean queueExists(Connection c, String queue) throws IOException {
        Channel ch = c.createChannel();
        try {
            ch.queueDeclarePassive(queue);
            ch.close();
            return true;
        } catch (IOException e) {
            if (e.getCause() instanceof ShutdownSignalException sse
                    && sse.getReason() instanceof AMQP.Channel.Close close
                    && close.getReplyCode() == 404) {
                return false;
            }
            throw e;
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IOException(e);
        }
    }

    /** Ready messages in a queue, as queue.declare-ok reports them. */
    static int readyCount(Channel ch, String queue) throws IOException {
        return ch.queueDeclarePassive(queue).getMessageCount();
    }

    /**
     * Runs a broker hook: a shell command given in an environment variable (see
     * interop/java/README.md), with extra arguments appended. Fails the test if it fails.
     */
    static String runHook(String command, String... args) throws Exception {
        List<String> argv = new ArrayList<>(List.of("bash", "-c", command + " \"$@\"", "hook"));
        argv.addAll(List.of(args));
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (InputStream in = p.getInputStream()) {
            in.transferTo(out);
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("hook timed out: " + argv);
        }
        String output = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "hook " + argv + " failed:\n" + output);
        return output;
    }

    /** One delivery as a consumer saw it. */
    record Delivery(String consumerTag, Envelope envelope, AMQP.BasicProperties props, byte[] body) {
        String text() {
            return BrokerTest.text(body);
        }

        long tag() {
            return envelope.getDeliveryTag();
        }
    }

    /**
     * A DefaultConsumer that records what the client library hands it: deliveries, consume-ok,
     * cancel-ok and broker-initiated cancels.
     */
    static class Recorder extends DefaultConsumer {
        final BlockingQueue<Delivery> deliveries = new LinkedBlockingQueue<>();
        final BlockingQueue<String> consumeOks = new LinkedBlockingQueue<>();
        final BlockingQueue<String> cancelOks = new LinkedBlockingQueue<>();
        final BlockingQueue<String> brokerCancels = new LinkedBlockingQueue<>();

        Recorder(Channel channel) {
            super(channel);
        }

        @Override
        public void handleConsumeOk(String consumerTag) {
            super.handleConsumeOk(consumerTag);
            consumeOks.add(consumerTag);
        }

        @Override
        public void handleCancelOk(String consumerTag) {
            cancelOks.add(consumerTag);
        }

        @Override
        public void handleCancel(String consumerTag) {
            brokerCancels.add(consumerTag);
        }

        @Override
        public void handleDelivery(
                String consumerTag, Envelope envelope, AMQP.BasicProperties properties, byte[] body) {
            deliveries.add(new Delivery(consumerTag, envelope, properties, body));
        }

        Delivery next() throws InterruptedException {
            return take(deliveries, "a delivery");
        }

        /** Asserts that nothing is delivered for a short while. */
        void assertQuiet(String why) throws InterruptedException {
            Delivery d = deliveries.poll(QUIET.toMillis(), TimeUnit.MILLISECONDS);
            if (d != null) {
                fail(why + ": unexpected delivery '" + d.text() + "' (tag " + d.tag() + ")");
            }
        }
    }
}
