package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.PossibleAuthenticationFailureException;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * A non-guest user in its own vhost with narrow permissions (issue #13), as the RabbitMQ Java
 * client sees it. TENANT_URL: vhost interop-tenant, user interop-user (interop/tenancy.json).
 */
class TenancyTest {

    static final String TENANT_URL = System.getenv().getOrDefault(
            "TENANT_URL", "amqp://interop-user:interop-pass@127.0.0.1:5672/interop-tenant");

    private static ConnectionFactory factory(String url) throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(url);
        f.setAutomaticRecoveryEnabled(false);
        return f;
    }

    @Test
    void theUserWorksInItsVhostAndGetsRabbitMqsRefusals() throws Exception {
        try (Connection conn = factory(TENANT_URL).newConnection("interop-java-tenancy")) {
            Channel ch = conn.createChannel();
            String queue = "it-java-" + UUID.randomUUID().toString().substring(0, 8);
            ch.queueDeclare(queue, false, false, true, null);
            ch.basicPublish("", queue, null, "tenant message".getBytes(StandardCharsets.UTF_8));
            GetResponse got = null;
            for (int i = 0; i < 100 && got == null; i++) {
                got = ch.basicGet(queue, true);
                if (got == null) {
                    Thread.sleep(20);
                }
            }
            assertNotNull(got, "the message arrives");
            assertEquals("tenant message", new String(got.getBody(), StandardCharsets.UTF_8));
            ch.queueDelete(queue);

            Channel other = conn.createChannel();
            IOException e = assertThrows(IOException.class,
                    () -> other.queueDeclare("not-mine", false, false, false, null));
            ShutdownSignalException sse =
                    assertInstanceOf(ShutdownSignalException.class, e.getCause());
            AMQP.Channel.Close close = assertInstanceOf(AMQP.Channel.Close.class, sse.getReason());
            assertEquals(403, close.getReplyCode());
            assertEquals("ACCESS_REFUSED - access to queue 'not-mine' in vhost 'interop-tenant' "
                    + "refused for user 'interop-user'", close.getReplyText());
        }
    }

    @Test
    void anotherVhostIsRefusedAtConnectionOpen() throws Exception {
        String other = TENANT_URL.substring(0, TENANT_URL.lastIndexOf('/')) + "/%2F";
        IOException e = assertThrows(IOException.class,
                () -> factory(other).newConnection("interop-java-tenancy-other").close());
        ShutdownSignalException sse = assertInstanceOf(ShutdownSignalException.class, e.getCause());
        AMQP.Connection.Close close =
                assertInstanceOf(AMQP.Connection.Close.class, sse.getReason());
        assertEquals(530, close.getReplyCode());
        assertEquals("NOT_ALLOWED - access to vhost '/' refused for user 'interop-user'",
                close.getReplyText());
    }

    @Test
    void aWrongPasswordIsAnAuthenticationFailure() throws Exception {
        String wrong = TENANT_URL.replace("interop-pass", "wrong-pass");
        assertThrows(PossibleAuthenticationFailureException.class,
                () -> factory(wrong).newConnection("interop-java-tenancy-wrong").close());
    }
}
