package interop.jms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jakarta.jms.Message;
import jakarta.jms.MessageConsumer;
import jakarta.jms.MessageProducer;
import jakarta.jms.Queue;
import jakarta.jms.Session;
import org.junit.jupiter.api.Test;

/** Transacted sessions: sends and receives take effect on commit and are undone by rollback. */
class TransactionTest extends JmsTestBase {

    @Test
    void commitDeliversTransactedSends() throws Exception {
        Session tx = connect().createSession(true, Session.SESSION_TRANSACTED);
        assertTrue(tx.getTransacted());
        Queue queue = tx.createQueue(queueName("tx.commit"));
        MessageProducer producer = tx.createProducer(queue);
        producer.send(tx.createTextMessage("one"));
        producer.send(tx.createTextMessage("two"));

        Session reader = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer consumer = reader.createConsumer(queue);
        assertNothingArrives(consumer, "uncommitted sends are not delivered");

        tx.commit();
        assertEquals("one", receiveText(consumer, "the first committed message"));
        assertEquals("two", receiveText(consumer, "the second committed message"));
        assertNothingArrives(consumer, "nothing more");
    }

    @Test
    void rollbackDiscardsTransactedSends() throws Exception {
        Session tx = connect().createSession(true, Session.SESSION_TRANSACTED);
        Queue queue = tx.createQueue(queueName("tx.rollback-send"));
        MessageProducer producer = tx.createProducer(queue);
        producer.send(tx.createTextMessage("rolled back 1"));
        producer.send(tx.createTextMessage("rolled back 2"));
        tx.rollback();
        producer.send(tx.createTextMessage("committed"));
        tx.commit();

        Session reader = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer consumer = reader.createConsumer(queue);
        assertEquals("committed", receiveText(consumer, "the committed message"));
        assertNothingArrives(consumer, "rolled-back sends are discarded");
    }

    @Test
    void rollbackRedeliversTransactedReceives() throws Exception {
        Session sender = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue queue = sender.createQueue(queueName("tx.rollback-receive"));
        MessageProducer producer = sender.createProducer(queue);
        producer.send(sender.createTextMessage("a"));
        producer.send(sender.createTextMessage("b"));

        Session tx = connect().createSession(true, Session.SESSION_TRANSACTED);
        MessageConsumer consumer = tx.createConsumer(queue);
        Message a = receive(consumer, "a");
        assertText("a", a);
        assertFalse(a.getJMSRedelivered());
        assertText("b", receive(consumer, "b"));
        tx.rollback();

        Message again = receive(consumer, "a, redelivered after rollback");
        assertText("a", again);
        assertTrue(again.getJMSRedelivered(), "JMSRedelivered after rollback");
        Message againB = receive(consumer, "b, redelivered after rollback");
        assertText("b", againB);
        assertTrue(againB.getJMSRedelivered(), "JMSRedelivered after rollback");
        tx.commit();

        Session reader = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        assertNothingArrives(reader.createConsumer(queue), "committed receives are gone");
    }

    @Test
    void oneTransactionReceivesAndSends() throws Exception {
        Session sender = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        Queue in = sender.createQueue(queueName("tx.in"));
        Queue out = sender.createQueue(queueName("tx.out"));
        sender.createProducer(in).send(sender.createTextMessage("work"));

        Session tx = connect().createSession(true, Session.SESSION_TRANSACTED);
        MessageConsumer consumer = tx.createConsumer(in);
        MessageProducer producer = tx.createProducer(out);
        assertText("work", receive(consumer, "the input"));
        producer.send(tx.createTextMessage("result"));
        tx.rollback();
        // Rolled back: the input is back, no output.
        Message retry = receive(consumer, "the input again");
        assertText("work", retry);
        assertTrue(retry.getJMSRedelivered());
        producer.send(tx.createTextMessage("result"));
        tx.commit();

        Session reader = connect().createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageConsumer results = reader.createConsumer(out);
        assertEquals("result", receiveText(results, "the committed output"));
        assertNothingArrives(results, "one output");
        assertNothingArrives(reader.createConsumer(in), "the input was consumed");
    }
}
