// Drains a queue with one auto-ack consumer and reports how long it took, for benches/backlog.
//
//   java -cp 'benches/.cache/perf-test-VERSION/lib/*' benches/BacklogDrain.java URI QUEUE COUNT TIMEOUT_S
//
// Uses the RabbitMQ Java client that PerfTest already brings. Timing starts just before
// basic.consume is sent and stops at the COUNT-th delivery. Prints one JSON object on stdout.
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

public class BacklogDrain {
  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: BacklogDrain URI QUEUE COUNT TIMEOUT_SECONDS");
      System.exit(2);
    }
    String uri = args[0];
    String queue = args[1];
    final long want = Long.parseLong(args[2]);
    double timeout = Double.parseDouble(args[3]);

    ConnectionFactory factory = new ConnectionFactory();
    factory.setUri(uri);
    factory.setAutomaticRecoveryEnabled(false);
    factory.setRequestedHeartbeat(0);
    Connection conn = factory.newConnection("backlog-drain");
    Channel ch = conn.createChannel();
    long before = ch.queueDeclarePassive(queue).getMessageCount();

    final CountDownLatch done = new CountDownLatch(1);
    final long[] state = new long[5]; // count, bytes, redelivered, end nanos, first-delivery nanos
    DefaultConsumer consumer = new DefaultConsumer(ch) {
      @Override
      public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) {
        long n = ++state[0];
        if (n == 1) {
          state[4] = System.nanoTime();
        }
        state[1] += body.length;
        if (env.isRedeliver()) {
          state[2]++;
        }
        if (n == want) {
          state[3] = System.nanoTime();
          done.countDown();
        }
      }
    };
    long t0 = System.nanoTime();
    String tag = ch.basicConsume(queue, true, consumer);
    boolean finished = done.await((long) (timeout * 1000), TimeUnit.MILLISECONDS);
    long tEnd = finished ? state[3] : System.nanoTime();
    try {
      ch.basicCancel(tag);
    } catch (Exception e) {
      // reported through the counts below
    }
    Thread.sleep(200);
    long after = -1;
    try {
      after = ch.queueDeclarePassive(queue).getMessageCount();
    } catch (Exception e) {
      System.err.println("passive declare after the drain failed: " + e);
    }
    long count;
    synchronized (state) {
      count = state[0];
    }
    double seconds = (tEnd - t0) / 1e9;
    double firstMs = state[4] == 0 ? -1 : (state[4] - t0) / 1e6;
    System.out.printf(
        "{\"finished\": %s, \"received\": %d, \"bytes\": %d, \"redelivered\": %d, \"seconds\": %.3f, "
            + "\"first_delivery_ms\": %.1f, \"rate\": %.0f, \"before\": %d, \"after\": %d}%n",
        finished, count, state[1], state[2], seconds, firstMs, count / seconds, before, after);
    try {
      conn.close(5000);
    } catch (Exception e) {
      // ignore
    }
    System.exit(finished ? 0 : 1);
  }
}
