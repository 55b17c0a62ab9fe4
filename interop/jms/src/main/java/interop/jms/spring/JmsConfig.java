package interop.jms.spring;

import com.rabbitmq.jms.admin.RMQConnectionFactory;
import interop.jms.BrokerAddress;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

@Configuration(proxyBeanMethods = false)
public class JmsConfig {

    /**
     * The JMS ConnectionFactory: the RabbitMQ JMS client's, pointed at AMQP_URL. Spring Boot's
     * JMS auto-configuration builds the JmsTemplate and the listener containers on it.
     */
    @Bean
    public RMQConnectionFactory jmsConnectionFactory(
            @Value("${AMQP_URL:" + BrokerAddress.DEFAULT_URL + "}") String amqpUrl) {
        RMQConnectionFactory factory = BrokerAddress.parse(amqpUrl).connectionFactory();
        // The client's RPC documentation: a listener replying to the temporary queue that
        // JmsTemplate.sendAndReceive made must not declare it again (it is exclusive to the
        // template's connection).
        factory.setDeclareReplyToDestination(false);
        return factory;
    }
}
