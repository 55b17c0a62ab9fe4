package interop.jms.spring;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConnectionFactory;
import interop.jms.BrokerAddress;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/**
 * Deletes this run's queues when the application stops (after the listener containers have
 * stopped). JMS has no API for that, so this uses the AMQP client underneath the JMS client.
 */
@Component
public class Cleanup implements DisposableBean {

    private final Names names;
    private final BrokerAddress broker;

    public Cleanup(Names names, @Value("${AMQP_URL:" + BrokerAddress.DEFAULT_URL + "}") String amqpUrl) {
        this.names = names;
        this.broker = BrokerAddress.parse(amqpUrl);
    }

    @Override
    public void destroy() throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        factory.setHost(broker.host());
        factory.setPort(broker.port());
        factory.setUsername(broker.username());
        factory.setPassword(broker.password());
        factory.setVirtualHost(broker.virtualHost());
        try (com.rabbitmq.client.Connection connection = factory.newConnection("interop-jms-cleanup")) {
            for (String queue : names.all()) {
                try (Channel channel = connection.createChannel()) {
                    channel.queueDelete(queue);
                } catch (Exception e) {
                    // best effort
                }
            }
        }
    }
}
