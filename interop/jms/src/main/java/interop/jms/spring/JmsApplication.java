package interop.jms.spring;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * A small Spring Boot application using Spring JMS on the RabbitMQ JMS client: the
 * ConnectionFactory bean is an RMQConnectionFactory ({@link JmsConfig}), Boot configures the
 * JmsTemplate and the @JmsListener container factory around it, {@link Listeners} holds the
 * listeners. The tests under src/test drive it against the broker in AMQP_URL.
 */
@SpringBootApplication
public class JmsApplication {
    public static void main(String[] args) {
        SpringApplication.run(JmsApplication.class, args);
    }
}
