package interop.spring;

import org.springframework.amqp.core.AnonymousQueue;
import org.springframework.amqp.core.Binding;
import org.springframework.amqp.core.BindingBuilder;
import org.springframework.amqp.core.DirectExchange;
import org.springframework.amqp.core.FanoutExchange;
import org.springframework.amqp.core.Queue;
import org.springframework.amqp.core.QueueBuilder;
import org.springframework.amqp.rabbit.config.SimpleRabbitListenerContainerFactory;
import org.springframework.amqp.rabbit.connection.ConnectionFactory;
import org.springframework.amqp.rabbit.core.RabbitTemplate;
import org.springframework.amqp.rabbit.listener.SimpleMessageListenerContainer;
import org.springframework.amqp.support.converter.Jackson2JsonMessageConverter;
import org.springframework.amqp.support.converter.MessageConverter;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.autoconfigure.amqp.RabbitTemplateConfigurer;
import org.springframework.boot.autoconfigure.amqp.SimpleRabbitListenerContainerFactoryConfigurer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;

/**
 * Exchanges, queues and bindings as beans: Spring's RabbitAdmin declares them when the first
 * connection opens (and again after a reconnect). Non-durable, so nothing outlives a broker
 * restart even if {@link Cleanup} never ran.
 */
@Configuration
public class Topology {

    // ---------------------------------------------------------------- exchanges

    @Bean
    DirectExchange ordersExchange() {
        return new DirectExchange(Names.of("orders"), false, false);
    }

    @Bean
    DirectExchange deadLetterExchange() {
        return new DirectExchange(Names.of("dlx"), false, false);
    }

    @Bean
    FanoutExchange broadcastExchange() {
        return new FanoutExchange(Names.of("broadcast"), false, false);
    }

    @Bean
    DirectExchange rpcExchange() {
        return new DirectExchange(Names.of("rpc"), false, false);
    }

    // ---------------------------------------------------------------- queues

    /** JSON orders, with the usual safety net of arguments. */
    @Bean
    Queue ordersQueue() {
        return QueueBuilder.nonDurable(Names.of("orders"))
                .deadLetterExchange(Names.of("dlx"))
                .deadLetterRoutingKey("orders")
                .ttl(60_000)
                .maxLength(1_000)
                .build();
    }

    @Bean
    Binding ordersBinding() {
        return BindingBuilder.bind(ordersQueue()).to(ordersExchange()).with("order.created");
    }

    /** Its listener always throws: rejected messages go to the dead-letter exchange. */
    @Bean
    Queue failingQueue() {
        return QueueBuilder.nonDurable(Names.of("failing"))
                .deadLetterExchange(Names.of("dlx"))
                .deadLetterRoutingKey("failed")
                .build();
    }

    /** No consumer: messages expire after 200 ms and go to the dead-letter exchange. */
    @Bean
    Queue expiringQueue() {
        return QueueBuilder.nonDurable(Names.of("expiring"))
                .ttl(200)
                .deadLetterExchange(Names.of("dlx"))
                .deadLetterRoutingKey("expired")
                .build();
    }

    /** No consumer: holds at most two messages (the oldest is dropped). */
    @Bean
    Queue limitedQueue() {
        return QueueBuilder.nonDurable(Names.of("limited")).maxLength(2).build();
    }

    @Bean
    Queue rejectedDeadLetters() {
        return QueueBuilder.nonDurable(Names.of("dead.failed")).build();
    }

    @Bean
    Queue expiredDeadLetters() {
        return QueueBuilder.nonDurable(Names.of("dead.expired")).build();
    }

    @Bean
    Binding rejectedDeadLettersBinding() {
        return BindingBuilder.bind(rejectedDeadLetters()).to(deadLetterExchange()).with("failed");
    }

    @Bean
    Binding expiredDeadLettersBinding() {
        return BindingBuilder.bind(expiredDeadLetters()).to(deadLetterExchange()).with("expired");
    }

    /** Manual-ack listener. */
    @Bean
    Queue manualQueue() {
        return QueueBuilder.nonDurable(Names.of("manual")).build();
    }

    /** Auto-ack listener with two consumers and prefetch 1. */
    @Bean
    Queue workQueue() {
        return QueueBuilder.nonDurable(Names.of("work")).build();
    }

    /** Publisher confirm tests publish here (no listener). */
    @Bean
    Queue confirmedQueue() {
        return QueueBuilder.nonDurable(Names.of("confirmed")).build();
    }

    @Bean
    Queue rpcQueue() {
        return QueueBuilder.nonDurable(Names.of("rpc.requests")).build();
    }

    @Bean
    Binding rpcBinding() {
        return BindingBuilder.bind(rpcQueue()).to(rpcExchange()).with("quote");
    }

    /** Replies for {@link #fixedReplyTemplate}. */
    @Bean
    Queue fixedRepliesQueue() {
        return QueueBuilder.nonDurable(Names.of("rpc.replies")).build();
    }

    /** Client-named ("spring.gen-..."), exclusive, auto-delete, non-durable. */
    @Bean
    AnonymousQueue anonymousQueue() {
        return new AnonymousQueue();
    }

    @Bean
    Binding anonymousBinding() {
        return BindingBuilder.bind(anonymousQueue()).to(broadcastExchange());
    }

    // ---------------------------------------------------------------- messaging

    /** Picked up by Boot for its RabbitTemplate and listener container factory. */
    @Bean
    MessageConverter jsonMessageConverter() {
        return new Jackson2JsonMessageConverter();
    }

    /**
     * The application's template, configured by Boot from spring.rabbitmq.template.* (mandatory,
     * JSON converter, reply timeout); returned (unroutable mandatory) messages are reported to
     * the ReturnsCallback. Declared here because the RPC templates below would otherwise make
     * Boot back off from creating it.
     */
    @Bean
    @Primary
    RabbitTemplate rabbitTemplate(
            RabbitTemplateConfigurer configurer, ConnectionFactory cf, Received received) {
        RabbitTemplate template = new RabbitTemplate();
        configurer.configure(template, cf);
        template.setReturnsCallback(received.returns::add);
        return template;
    }

    /** Listener containers with one unacked message per consumer. */
    @Bean
    SimpleRabbitListenerContainerFactory prefetchOneFactory(
            SimpleRabbitListenerContainerFactoryConfigurer configurer, ConnectionFactory cf) {
        SimpleRabbitListenerContainerFactory factory = new SimpleRabbitListenerContainerFactory();
        configurer.configure(factory, cf);
        factory.setPrefetchCount(1);
        return factory;
    }

    /** RPC with replies to a fixed, named queue, correlated by correlation id. */
    @Bean
    RabbitTemplate fixedReplyTemplate(ConnectionFactory cf, MessageConverter converter) {
        RabbitTemplate template = new RabbitTemplate(cf);
        template.setMessageConverter(converter);
        template.setReplyAddress(fixedRepliesQueue().getName());
        template.setReplyTimeout(10_000);
        return template;
    }

    @Bean
    SimpleMessageListenerContainer fixedReplyContainer(
            ConnectionFactory cf, @Qualifier("fixedReplyTemplate") RabbitTemplate template) {
        SimpleMessageListenerContainer container = new SimpleMessageListenerContainer(cf);
        container.setQueueNames(fixedRepliesQueue().getName());
        container.setMessageListener(template);
        return container;
    }

    /** RPC with a new server-named, exclusive reply queue per request. */
    @Bean
    RabbitTemplate temporaryReplyTemplate(ConnectionFactory cf, MessageConverter converter) {
        RabbitTemplate template = new RabbitTemplate(cf);
        template.setMessageConverter(converter);
        template.setUseTemporaryReplyQueues(true);
        template.setReplyTimeout(10_000);
        return template;
    }
}
