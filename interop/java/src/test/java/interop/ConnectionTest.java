package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.BuiltinExchangeType;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.Recoverable;
import com.rabbitmq.client.RecoveryListener;
import com.rabbitmq.client.ShutdownSignalException;
import com.rabbitmq.client.impl.NetworkConnection;
import com.rabbitmq.client.impl.recovery.AutorecoveringConnection;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Connection-level behaviour: connection.blocked (memory alarms) and automatic connection
 * recovery with topology recovery.
 *
 * <p>Some of these need the broker to do something no client can ask for (raise a memory
 * alarm, drop a connection, restart). interop/run provides shell hooks for that in environment
 * variables (see interop/java/README.md); a test whose hook is missing is skipped and says so.
 */
class ConnectionTest extends BrokerTest {

    /** Raises ("on") or clears ("off") a memory alarm on the broker under test. */
    static final String MEMORY_ALARM_HOOK = System.getenv("INTEROP_MEMORY_ALARM_CMD");
    /** Force-closes the broker's connection whose client-side port is given (320 CONNECTION_FORCED). */
    static final String CLOSE_CONNECTION_HOOK = System.getenv("INTEROP_CLOSE_CONNECTION_CMD");
    /** Restarts the broker at INTEROP_RESTART_URL (default AMQP_URL). */
    static final String RESTART_HOOK = System.getenv("INTEROP_RESTART_CMD");
    static final String RESTART_URL = envOr("INTEROP_RESTART_URL", AMQP_URL);
    /**
     * Warren's binary (interop/run passes it when it started Warren itself): without a memory
     * alarm hook, the connection.blocked test starts a private Warren of it whose alarm is on.
     */
    static final String WARREN_BIN = System.getenv("INTEROP_WARREN_BIN");

    static boolean present(String hook) {
        return hook != null && !hook.isBlank();
    }

    /**
     * connection.blocked during a memory alarm reaches the BlockedListener. The broker must
     * advertise the connection.blocked capability (checked everywhere). The alarm is raised
     * <ul>
     *   <li>through INTEROP_MEMORY_ALARM_CMD when it is set (RabbitMQ on this machine, through
     *       rabbitmqctl): blocked, then unblocked once the alarm is cleared, then the publish
     *       made during the alarm goes through;
     *   <li>otherwise, when the broker under test is Warren and INTEROP_WARREN_BIN names its
     *       binary (interop/run sets it when it started Warren itself), in a private Warren
     *       started with a 1-byte memory watermark: blocked only, since its alarm is on from
     *       the start and cannot be cleared at run time.
     * </ul>
     * Otherwise the test is skipped with the reason.
     */
    @Test
    void blockedListenerIsToldAboutAMemoryAlarm() throws Exception {
        Connection conn = connect();
        @SuppressWarnings("unchecked")
        Map<String, Object> caps = (Map<String, Object>) conn.getServerProperties().get("capabilities");
        assertEquals(true, caps.get("connection.blocked"),
                "the broker advertises the connection.blocked capability: " + caps);
        if (present(MEMORY_ALARM_HOOK)) {
            blockedByTheAlarmHook(conn);
            return;
        }
        String why = "INTEROP_MEMORY_ALARM_CMD is not set: interop/run sets it only when it can "
                + "raise a memory alarm on the broker under test (RabbitMQ on this machine, "
                + "through rabbitmqctl)";
        Object product = conn.getServerProperties().get("product");
        if (product != null && "Warren".equals(product.toString())) {
            assumeTrue(present(WARREN_BIN), why + "; INTEROP_WARREN_BIN is not set (interop/run "
                    + "sets it when it started Warren itself; the test then starts a private "
                    + "Warren with a 1-byte memory watermark)");
            blockedInAPrivateWarren(WARREN_BIN);
            return;
        }
        assumeTrue(false, why);
    }

    private void blockedByTheAlarmHook(Connection conn) throws Exception {
        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        conn.addBlockedListener(reason -> events.add("blocked: " + reason), () -> events.add("unblocked"));
        Channel ch = conn.createChannel();
        String queue = queueName("held");
        ch.queueDeclare(queue, false, false, false, null);
        ch.confirmSelect();
        Channel observer = connect().createChannel();

        Duration alarmWait = Duration.ofSeconds(30);
        try {
            runHook(MEMORY_ALARM_HOOK, "on");
            // The broker tells a connection that it is blocked once it publishes.
            ch.basicPublish("", queue, null, utf8("held back"));
            String blocked = take(events, alarmWait, "connection.blocked");
            assertTrue(blocked.startsWith("blocked: ") && blocked.length() > "blocked: ".length(),
                    "connection.blocked carries a reason: " + blocked);
            assertEquals(0, readyCount(observer, queue), "a blocked publisher's message is held");
        } finally {
            runHook(MEMORY_ALARM_HOOK, "off");
        }
        assertEquals("unblocked", take(events, alarmWait, "connection.unblocked"));
        ch.waitForConfirmsOrDie(alarmWait.toMillis());
        assertEquals(1, readyCount(observer, queue), "the held message goes through");
    }

    /**
     * Starts WARREN_BIN on a free loopback port with a fresh data dir and
     * WARREN_MEMORY_HIGH_WATERMARK_BYTES=1 (its memory alarm is on from the start), and checks
     * that a connection that publishes is told it is blocked, with a reason. Unblocked is not
     * checked: the alarm cannot be cleared at run time. The private Warren is killed and its
     * directory removed afterwards; its log is part of any failure message.
     */
    private void blockedInAPrivateWarren(String bin) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Path tmp = Files.createTempDirectory("interop-java-warren-");
        Path data = Files.createDirectory(tmp.resolve("data"));
        Path log = tmp.resolve("warren.log");
        ProcessBuilder pb = new ProcessBuilder(bin, "--listen", "127.0.0.1", "--port",
                String.valueOf(port), "--data-dir", data.toString());
        pb.environment().put("WARREN_MEMORY_HIGH_WATERMARK_BYTES", "1");
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        Supplier<String> warrenLog = () -> {
            try {
                return "\n----- private warren log -----\n" + Files.readString(log);
            } catch (IOException e) {
                return "\n(no private warren log: " + e + ")";
            }
        };

        Process warren = pb.start();
        Thread killer = new Thread(warren::destroyForcibly, "interop-java-private-warren-killer");
        Runtime.getRuntime().addShutdownHook(killer);
        Connection conn = null;
        try {
            warren.getOutputStream().close();
            Duration startWait = Duration.ofSeconds(30);
            long ready = System.nanoTime() + startWait.toNanos();
            while (!accepts(port)) {
                if (!warren.isAlive()) {
                    fail("the private Warren exited (code " + warren.exitValue()
                            + ") before accepting connections" + warrenLog.get());
                }
                if (System.nanoTime() > ready) {
                    fail("the private Warren did not accept connections on port " + port
                            + " within " + startWait.toSeconds() + " s" + warrenLog.get());
                }
                Thread.sleep(50);
            }

            ConnectionFactory cf = factory();
            cf.setUri("amqp://guest:guest@127.0.0.1:" + port + "/%2F");
            conn = cf.newConnection("interop-java-" + testName + "-private-warren");
            BlockingQueue<String> events = new LinkedBlockingQueue<>();
            conn.addBlockedListener(reason -> events.add("blocked: " + reason), () -> events.add("unblocked"));
            Channel ch = conn.createChannel();
            String queue = ch.queueDeclare().getQueue();
            // The broker tells a connection that it is blocked once it publishes.
            ch.basicPublish("", queue, null, utf8("during the alarm"));

            Duration alarmWait = Duration.ofSeconds(30);
            String blocked = events.poll(alarmWait.toMillis(), TimeUnit.MILLISECONDS);
            if (blocked == null) {
                fail("timed out after " + alarmWait.toMillis() + " ms waiting for "
                        + "connection.blocked from the private Warren" + warrenLog.get());
            }
            assertTrue(blocked.startsWith("blocked: ") && blocked.length() > "blocked: ".length(),
                    "connection.blocked carries a reason: " + blocked);
            assertTrue(blocked.toLowerCase(Locale.ROOT).contains("memory"),
                    "the reason mentions memory: " + blocked);
        } finally {
            // A throwaway broker goes first: a blocked connection is not read from, so a polite
            // close would only wait out its timeout.
            warren.destroyForcibly();
            warren.waitFor(10, TimeUnit.SECONDS);
            try {
                Runtime.getRuntime().removeShutdownHook(killer);
            } catch (IllegalStateException e) {
                // The JVM is already shutting down.
            }
            if (conn != null) {
                conn.abort(2000);
            }
            deleteTree(tmp);
        }
    }

    /** True if something accepts TCP connections on the loopback port. */
    private static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static void deleteTree(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // Best effort: it is under the temp dir.
        }
    }

    /** What a recovery test observes. */
    private static final class Watched {
        final CountDownLatch recovered = new CountDownLatch(1);
        final AtomicReference<ShutdownSignalException> cause = new AtomicReference<>();
        final BlockingQueue<String> renamedQueues = new LinkedBlockingQueue<>();
    }

    private Connection recoveringConnection(String url, Watched watched) throws Exception {
        ConnectionFactory cf = factory();
        cf.setUri(url);
        cf.setAutomaticRecoveryEnabled(true);
        cf.setTopologyRecoveryEnabled(true);
        cf.setNetworkRecoveryInterval(200);
        Connection conn = track(cf.newConnection("interop-java-" + testName));
        // The first shutdown is the one under test (the test closes the connection at the end).
        conn.addShutdownListener(cause -> watched.cause.compareAndSet(null, cause));
        ((Recoverable) conn).addRecoveryListener(new RecoveryListener() {
            @Override
            public void handleRecovery(Recoverable recoverable) {
                watched.recovered.countDown();
            }

            @Override
            public void handleRecoveryStarted(Recoverable recoverable) {}
        });
        ((AutorecoveringConnection) conn).addQueueRecoveryListener(
                (oldName, newName) -> watched.renamedQueues.add(oldName + " -> " + newName));
        return conn;
    }

    /** Topology the client must put back after recovery. */
    private record Topology(String exchange, String named, String serverNamed, Recorder consumer) {}

    private Topology declareTopology(Channel ch) throws Exception {
        String exchange = exchangeName("events");
        String named = queueName("durable-ish");
        ch.exchangeDeclare(exchange, BuiltinExchangeType.DIRECT, false, false, null);
        ch.queueDeclare(named, false, false, false, null);
        ch.queueBind(named, exchange, "k");
        // A server-named exclusive queue dies with the connection; recovery declares a new one
        // and moves its binding and consumer over.
        String serverNamed = ch.queueDeclare().getQueue();
        ch.queueBind(serverNamed, exchange, "k");
        Recorder consumer = new Recorder(ch);
        ch.basicConsume(serverNamed, true, consumer);
        ch.basicPublish(exchange, "k", null, utf8("before"));
        assertEquals("before", consumer.next().text());
        return new Topology(exchange, named, serverNamed, consumer);
    }

    private void assertRecovered(Connection conn, Channel ch, Topology t, Watched w)
            throws Exception {
        await(w.recovered, Duration.ofSeconds(30), "automatic connection recovery");
        assertTrue(conn.isOpen());
        assertTrue(ch.isOpen(), "the channel object is recovered too");

        // The listener hears of every recovered queue; find the server-named one.
        String newName = null;
        for (String renamed : w.renamedQueues) {
            if (renamed.startsWith(t.serverNamed() + " -> ")) {
                newName = renamed.substring(renamed.indexOf(" -> ") + 4);
            }
        }
        assertNotNull(newName, "the server-named queue was redeclared: " + w.renamedQueues);
        assertNotEquals(t.serverNamed(), newName);
        assertTrue(newName.startsWith("amq.gen-"), newName);

        // Exchange, bindings and consumer are back: a publish reaches both queues.
        ch.confirmSelect();
        ch.basicPublish(t.exchange(), "k", null, utf8("after"));
        ch.waitForConfirmsOrDie(WAIT.toMillis());
        Delivery d = t.consumer().next();
        assertEquals("after", d.text());
        assertEquals("k", d.envelope().getRoutingKey());
        List<String> named = new ArrayList<>();
        GetResponse r;
        while ((r = ch.basicGet(t.named(), true)) != null) {
            named.add(text(r.getBody()));
        }
        assertFalse(named.isEmpty());
        assertEquals("after", named.get(named.size() - 1), "named queue got: " + named);
        conn.close();
    }

    @Test
    void automaticRecoveryAfterTheBrokerClosesTheConnectionOnAnError() throws Exception {
        // Portable: any broker closes the connection (504 CHANNEL_ERROR) when a client opens a
        // channel that is already open; the client did not ask for that close, so it recovers.
        Watched w = new Watched();
        Connection conn = recoveringConnection(AMQP_URL, w);
        Channel ch = conn.createChannel();
        Topology t = declareTopology(ch);

        Channel victim = conn.createChannel();
        victim.asyncRpc(new AMQP.Channel.Open.Builder().build());

        assertRecovered(conn, ch, t, w);
        ShutdownSignalException cause = w.cause.get();
        assertNotNull(cause);
        assertTrue(cause.isHardError(), "a connection error: " + cause);
        AMQP.Connection.Close close = assertInstanceOf(AMQP.Connection.Close.class, cause.getReason());
        assertEquals(504, close.getReplyCode(), close.getReplyText());
    }

    @Test
    void automaticRecoveryAfterTheBrokerForceClosesTheConnection() throws Exception {
        assumeTrue(present(CLOSE_CONNECTION_HOOK), "INTEROP_CLOSE_CONNECTION_CMD is not set: "
                + "interop/run sets it only when it can force-close a connection on the broker "
                + "under test (RabbitMQ on this machine, through rabbitmqctl)");
        Watched w = new Watched();
        Connection conn = recoveringConnection(AMQP_URL, w);
        Channel ch = conn.createChannel();
        Topology t = declareTopology(ch);

        runHook(CLOSE_CONNECTION_HOOK, String.valueOf(((NetworkConnection) conn).getLocalPort()));

        assertRecovered(conn, ch, t, w);
        AMQP.Connection.Close close =
                assertInstanceOf(AMQP.Connection.Close.class, w.cause.get().getReason());
        assertEquals(320, close.getReplyCode(), close.getReplyText());
        assertTrue(close.getReplyText().startsWith("CONNECTION_FORCED"), close.getReplyText());
    }

    @Test
    void automaticRecoveryAfterABrokerRestart() throws Exception {
        assumeTrue(present(RESTART_HOOK), "INTEROP_RESTART_CMD is not set: interop/run sets it "
                + "only when it started Warren itself (it then runs a private Warren for this "
                + "test); a shared broker is never restarted");
        Watched w = new Watched();
        Connection conn = recoveringConnection(RESTART_URL, w);
        Channel ch = conn.createChannel();
        Topology t = declareTopology(ch);

        runHook(RESTART_HOOK);

        // Nothing survives the restart of a broker without durable state but what the client
        // recovers; with durable state the named queue may also hold "before".
        assertRecovered(conn, ch, t, w);
        AMQP.Connection.Close close =
                assertInstanceOf(AMQP.Connection.Close.class, w.cause.get().getReason());
        assertEquals(320, close.getReplyCode(), close.getReplyText());
    }
}
