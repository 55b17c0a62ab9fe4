package interop.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URI;
import java.nio.file.Path;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.springframework.amqp.core.AmqpAdmin;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.rabbit.connection.CachingConnectionFactory;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.amqp.RabbitAutoConfiguration;
import org.springframework.boot.autoconfigure.ssl.SslAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Configuration;

/**
 * A Spring Boot application over AMQPS (issue #13): spring.rabbitmq.ssl.enabled with an SSL
 * bundle that trusts the test CA (PEM files from interop/lib/make-pki), guest's password.
 * AMQPS_URL and INTEROP_TLS_DIR come from the runner.
 */
class TlsTest {

    static final String AMQPS_URL = System.getenv().getOrDefault("AMQPS_URL", "");
    static final String TLS_DIR = System.getenv().getOrDefault("INTEROP_TLS_DIR", "");

    /** RabbitMQ's and the SSL bundles' auto-configuration: what a Boot app gets. */
    @Configuration
    @ImportAutoConfiguration({RabbitAutoConfiguration.class, SslAutoConfiguration.class})
    static class TlsApp {}

    @Test
    void theAppTalksToTheBrokerOverTls() {
        assumeTrue(!AMQPS_URL.isEmpty() && !TLS_DIR.isEmpty(),
                "no TLS listener given: set AMQPS_URL and INTEROP_TLS_DIR (interop/run does)");
        URI uri = URI.create(AMQPS_URL);
        String[] user = uri.getUserInfo().split(":", 2);
        try (ConfigurableApplicationContext ctx = new SpringApplicationBuilder(TlsApp.class)
                .web(WebApplicationType.NONE)
                .properties(
                        "spring.rabbitmq.host=" + uri.getHost(),
                        "spring.rabbitmq.port=" + uri.getPort(),
                        "spring.rabbitmq.username=" + user[0],
                        "spring.rabbitmq.password=" + user[1],
                        "spring.rabbitmq.ssl.enabled=true",
                        "spring.rabbitmq.ssl.bundle=interop",
                        "spring.rabbitmq.ssl.verify-hostname=true",
                        "spring.ssl.bundle.pem.interop.truststore.certificate=file:"
                                + Path.of(TLS_DIR, "ca.pem"))
                .run()) {
            AmqpAdmin admin = ctx.getBean(AmqpAdmin.class);
            RabbitTemplate template = ctx.getBean(RabbitTemplate.class);
            String queue = "spring-tls-" + UUID.randomUUID().toString().substring(0, 8);
            admin.declareQueue(new Queue(queue, false, false, true));
            template.convertAndSend(queue, "over tls");
            assertEquals("over tls", template.receiveAndConvert(queue, BrokerTestBase.WAIT.toMillis()));
            CachingConnectionFactory cf = ctx.getBean(CachingConnectionFactory.class);
            assertTrue(cf.getRabbitConnectionFactory().isSSL(), "the connection factory uses TLS");
            admin.deleteQueue(queue);
        }
    }
}
