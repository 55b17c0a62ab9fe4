package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jakarta.jms.Connection;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;
import jakarta.jms.Topic;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Publish/subscribe: topics, durable and shared subscriptions. */
class TopicTest extends JmsTestBase {

    @Test
    void everySubscriberGetsEveryMessage() throws Exception {
        String name = topicName("news");
        Session s1 = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Session s2 = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer sub1 = s1.createConsumer(s1.createTopic(name));
        MessageConsumer sub2 = s2.createConsumer(s2.createTopic(name));
        Session pub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = pub.createProducer(pub.createTopic(name));
        for (int i = 0; i < 5; i++) {
            producer.send(pub.createTextMessage("news" + i));
        }
        for (int i = 0; i < 5; i++) {
            assertEquals("news" + i, receiveText(sub1, "news " + i + " at subscriber 1"));
            assertEquals("news" + i, receiveText(sub2, "news " + i + " at subscriber 2"));
        }
        assertNothingArrives(sub1, "each message once at subscriber 1");
        assertNothingArrives(sub2, "each message once at subscriber 2");
    }

    @Test
    void topicWithoutSubscribersDropsMessages() throws Exception {
        String name = topicName("void");
        Session pub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = pub.createProducer(pub.createTopic(name));
        producer.send(pub.createTextMessage("nobody listens"));
        // A subscriber that arrives later gets only what is published after it subscribed.
        Session sub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer consumer = sub.createConsumer(sub.createTopic(name));
        producer.send(pub.createTextMessage("for the subscriber"));
        assertEquals("for the subscriber", receiveText(consumer, "the message published after subscribing"));
        assertNothingArrives(consumer, "the earlier message was not kept");
    }

    @Test
    void listenerSubscriberGetsTopicMessages() throws Exception {
        String name = topicName("listened");
        BlockingQueue<String> received = new LinkedBlockingQueue<>();
        Session sub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        sub.createConsumer(sub.createTopic(name)).setMessageListener(message -> {
            try {
                received.add(((TextMessage) message).getText());
            } catch (Exception e) {
                received.add("unexpected: " + e);
            }
        });
        Session pub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = pub.createProducer(pub.createTopic(name));
        producer.send(pub.createTextMessage("one"));
        producer.send(pub.createTextMessage("two"));
        assertEquals("one", take(received, "the first message at the listener"));
        assertEquals("two", take(received, "the second message at the listener"));
    }

    @Test
    void durableSubscriptionKeepsMessagesWhileOffline() throws Exception {
        String name = topicName("durable");
        String subscription = subscriptionName("keeper");
        Session pub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = pub.createProducer(pub.createTopic(name));

        Connection subscriber = connect();
        Session session = subscriber.createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer consumer = session.createDurableConsumer(session.createTopic(name), subscription);
        producer.send(pub.createTextMessage("while online"));
        assertEquals("while online", receiveText(consumer, "a message while subscribed"));
        subscriber.close();

        // The subscriber is offline (its connection closed): messages are kept for it ...
        producer.send(pub.createTextMessage("while offline 1"));
        producer.send(pub.createTextMessage("while offline 2"));

        // ... and a new connection resuming the subscription gets them.
        Session back = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer resumed = back.createDurableConsumer(back.createTopic(name), subscription);
        assertEquals("while offline 1", receiveText(resumed, "the first message kept while offline"));
        assertEquals("while offline 2", receiveText(resumed, "the second message kept while offline"));
        assertNothingArrives(resumed, "only the kept messages");
        resumed.close();
        back.unsubscribe(subscription);
    }

    @Test
    void unsubscribeEndsADurableSubscription() throws Exception {
        String name = topicName("unsubscribe");
        String subscription = subscriptionName("leaver");
        Session pub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = pub.createProducer(pub.createTopic(name));

        Session session = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Topic topic = session.createTopic(name);
        MessageConsumer consumer = session.createDurableConsumer(topic, subscription);
        consumer.close();
        producer.send(pub.createTextMessage("kept, then dropped by unsubscribe"));
        session.unsubscribe(subscription);
        producer.send(pub.createTextMessage("published with no subscription"));

        // Subscribing again under the same name starts a new, empty subscription.
        MessageConsumer again = session.createDurableConsumer(topic, subscription);
        producer.send(pub.createTextMessage("after resubscribing"));
        assertEquals("after resubscribing", receiveText(again, "the message published after resubscribing"));
        assertNothingArrives(again, "nothing from before the unsubscribe");
        again.close();
        session.unsubscribe(subscription);
    }

    @Test
    void sharedSubscriptionGivesEachMessageToOneConsumer() throws Exception {
        String name = topicName("shared");
        Connection connection = connect();
        Map<String, List<String>> byConsumer = new HashMap<>();
        BlockingQueue<String> received = new LinkedBlockingQueue<>();
        for (String who : List.of("a", "b")) {
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            List<String> mine = java.util.Collections.synchronizedList(new ArrayList<>());
            byConsumer.put(who, mine);
            session.createSharedConsumer(session.createTopic(name), "workers-" + suffix).setMessageListener(message -> {
                try {
                    String text = ((TextMessage) message).getText();
                    mine.add(text);
                    received.add(text);
                } catch (Exception e) {
                    received.add("unexpected: " + e);
                }
            });
        }
        // A plain subscriber on the same topic still gets everything.
        Session plain = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer everything = plain.createConsumer(plain.createTopic(name));

        Session pub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = pub.createProducer(pub.createTopic(name));
        Set<String> sent = new HashSet<>();
        for (int i = 0; i < 10; i++) {
            producer.send(pub.createTextMessage("job" + i));
            sent.add("job" + i);
        }
        Set<String> got = new HashSet<>();
        for (int i = 0; i < 10; i++) {
            String text = take(received, "shared message " + i);
            assertTrue(got.add(text), "a shared subscription delivered twice: " + text);
        }
        assertEquals(sent, got);
        assertTrue(received.poll(NOTHING.toMillis(), TimeUnit.MILLISECONDS) == null, "nothing more");
        assertFalse(byConsumer.get("a").isEmpty(), "consumer a got some: " + byConsumer);
        assertFalse(byConsumer.get("b").isEmpty(), "consumer b got some: " + byConsumer);
        for (int i = 0; i < 10; i++) {
            assertEquals("job" + i, receiveText(everything, "job " + i + " at the plain subscriber"));
        }
    }

    @Test
    void sharedDurableSubscriptionKeepsMessagesAndSharesThem() throws Exception {
        String name = topicName("shared-durable");
        String subscription = subscriptionName("pool");
        Session pub = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer producer = pub.createProducer(pub.createTopic(name));

        Connection connection = connect();
        Session s1 = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        Session s2 = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer c1 = s1.createSharedDurableConsumer(s1.createTopic(name), subscription);
        MessageConsumer c2 = s2.createSharedDurableConsumer(s2.createTopic(name), subscription);
        c1.close();
        c2.close();
        // No consumer is active: the subscription keeps what is published.
        for (int i = 0; i < 4; i++) {
            producer.send(pub.createTextMessage("kept" + i));
        }
        MessageConsumer r1 = s1.createSharedDurableConsumer(s1.createTopic(name), subscription);
        MessageConsumer r2 = s2.createSharedDurableConsumer(s2.createTopic(name), subscription);
        Set<String> got = new HashSet<>();
        assertTrue(got.add(receiveText(r1, "a kept message at consumer 1")));
        assertTrue(got.add(receiveText(r2, "a kept message at consumer 2")));
        assertTrue(got.add(receiveText(r1, "another kept message at consumer 1")));
        assertTrue(got.add(receiveText(r2, "another kept message at consumer 2")));
        assertEquals(Set.of("kept0", "kept1", "kept2", "kept3"), got);
        assertNothingArrives(r1, "each kept message once");
        r1.close();
        r2.close();
        s1.unsubscribe(subscription);
    }
}
