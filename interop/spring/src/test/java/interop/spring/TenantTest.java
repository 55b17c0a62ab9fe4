package interop.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.ShutdownSignalException;
import java.net.URI;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.AmqpException;
import org.springframework.amqp.core.AmqpAdmin;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.amqp.RabbitAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Configuration;

/**
 * A Spring Boot application configured for a non-guest user in its own vhost (issue #13):
 * spring.rabbitmq.virtual-host, username and password, from TENANT_URL (vhost
 * interop-tenant, user interop-user; see interop/tenancy.json).
 */
class TenantTest {

    static final URI TENANT = URI.create(System.getenv().getOrDefault(
            "TENANT_URL", "amqp://interop-user:interop-pass@127.0.0.1:5672/interop-tenant"));

    /** Only RabbitMQ's auto-configuration: what spring-boot-starter-amqp gives an app. */
    @Configuration
    @ImportAutoConfiguration(RabbitAutoConfiguration.class)
    static class TenantApp {}

    private static ConfigurableApplicationContext start() {
        String[] user = TENANT.getUserInfo().split(":", 2);
        return new SpringApplicationBuilder(TenantApp.class)
                .web(WebApplicationType.NONE)
                .properties(
                        "spring.rabbitmq.host=" + TENANT.getHost(),
                        "spring.rabbitmq.port=" + (TENANT.getPort() == -1 ? 5672 : TENANT.getPort()),
                        "spring.rabbitmq.username=" + user[0],
                        "spring.rabbitmq.password=" + user[1],
                        "spring.rabbitmq.virtual-host=" + TENANT.getPath().substring(1))
                .run();
    }

    @Test
    void theAppWorksInItsVhostAndIsRefusedOutsideItsPermissions() {
        try (ConfigurableApplicationContext ctx = start()) {
            AmqpAdmin admin = ctx.getBean(AmqpAdmin.class);
            RabbitTemplate template = ctx.getBean(RabbitTemplate.class);
            String queue = "it-spring-" + UUID.randomUUID().toString().substring(0, 8);
            admin.declareQueue(new Queue(queue, false, false, true));
            template.convertAndSend(queue, "tenant message");
            Object got = template.receiveAndConvert(queue, BrokerTestBase.WAIT.toMillis());
            assertNotNull(got, "the message comes back");
            assertEquals("tenant message", got);
            admin.deleteQueue(queue);

            AmqpException e = assertThrows(AmqpException.class,
                    () -> admin.declareQueue(new Queue("not-mine", false, false, false)));
            Throwable cause = e;
            while (cause != null && !(cause instanceof ShutdownSignalException)) {
                cause = cause.getCause();
            }
            ShutdownSignalException sse = assertInstanceOf(ShutdownSignalException.class, cause);
            AMQP.Channel.Close close = assertInstanceOf(AMQP.Channel.Close.class, sse.getReason());
            assertEquals(403, close.getReplyCode());
            assertEquals("ACCESS_REFUSED - access to queue 'not-mine' in vhost 'interop-tenant' "
                    + "refused for user 'interop-user'", close.getReplyText());
        }
    }
}
