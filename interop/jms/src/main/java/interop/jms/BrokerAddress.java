package interop.jms;

import com.rabbitmq.jms.admin.RMQConnectionFactory;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

/**
 * The broker under test, from an AMQP URL (amqp://user:password@host:port/vhost, the vhost
 * percent-encoded: %2F is "/"), and the plain way to point the RabbitMQ JMS client at it:
 * an {@link RMQConnectionFactory} with host, port, username, password and virtual host set.
 */
public record BrokerAddress(String host, int port, String username, String password, String virtualHost) {

    public static final String DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F";

    /** The AMQP_URL environment variable (or the local default). */
    public static BrokerAddress fromEnvironment() {
        String url = System.getenv("AMQP_URL");
        return parse(url == null || url.isBlank() ? DEFAULT_URL : url);
    }

    public static BrokerAddress parse(String amqpUrl) {
        URI uri = URI.create(amqpUrl);
        String username = "guest";
        String password = "guest";
        String userInfo = uri.getRawUserInfo();
        if (userInfo != null) {
            String[] parts = userInfo.split(":", 2);
            username = decode(parts[0]);
            if (parts.length > 1) {
                password = decode(parts[1]);
            }
        }
        String path = uri.getRawPath();
        String vhost = path == null || path.length() <= 1 ? "/" : decode(path.substring(1));
        return new BrokerAddress(uri.getHost(), uri.getPort() == -1 ? 5672 : uri.getPort(),
                username, password, vhost);
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    /** A JMS connection factory for this broker, configured the way the client's docs show. */
    public RMQConnectionFactory connectionFactory() {
        RMQConnectionFactory factory = new RMQConnectionFactory();
        factory.setHost(host);
        factory.setPort(port);
        factory.setUsername(username);
        factory.setPassword(password);
        factory.setVirtualHost(virtualHost);
        return factory;
    }
}
