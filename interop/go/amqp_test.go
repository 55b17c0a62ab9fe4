package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Publisher confirms through DeferredConfirmation: one per publish, delivery
// tags 1..n, every Wait() returns true (acked), and the queue holds them all.
func TestPublishWithDeferredConfirms(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	q := n.queue("confirms")
	declareQueue(t, ch, q)

	const count = 50
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var pending []*amqp.DeferredConfirmation
	for i := 1; i <= count; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false, text(fmt.Sprintf("m%d", i)))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if dc == nil {
			t.Fatalf("publish %d: no DeferredConfirmation although the channel is in confirm mode", i)
		}
		if dc.DeliveryTag != uint64(i) {
			t.Fatalf("publish %d: delivery tag %d", i, dc.DeliveryTag)
		}
		pending = append(pending, dc)
	}
	for _, dc := range pending {
		acked := make(chan bool, 1)
		go func() { acked <- dc.Wait() }()
		select {
		case ok := <-acked:
			if !ok {
				t.Fatalf("publish with tag %d was nacked", dc.DeliveryTag)
			}
		case <-time.After(deadline):
			t.Fatalf("no confirm for tag %d within %s", dc.DeliveryTag, deadline)
		}
		if !dc.Acked() {
			t.Fatalf("tag %d: Wait() returned true but Acked() is false", dc.DeliveryTag)
		}
	}
	if got := readyCount(t, conn, q); got != count {
		t.Fatalf("queue holds %d messages after %d confirmed publishes", got, count)
	}
}

// Consume with manual acks: deliveries arrive in order with increasing
// delivery tags, and acked messages (single and multiple) are gone for good.
func TestConsumeManualAck(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	pub := confirmChannel(t, conn)
	q := n.queue("work")
	declareQueue(t, pub, q)
	for i := 1; i <= 6; i++ {
		publishConfirmed(t, pub, "", q, amqp.Publishing{
			Body: []byte(fmt.Sprintf("task %d", i)), DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(i),
		})
	}

	ch := channel(t, conn)
	tag := "ctag." + randomSuffix()
	deliveries, err := ch.Consume(q, tag, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	var last amqp.Delivery
	for i := 1; i <= 6; i++ {
		d := next(t, deliveries, fmt.Sprintf("task %d", i))
		if string(d.Body) != fmt.Sprintf("task %d", i) || d.MessageId != fmt.Sprint(i) {
			t.Fatalf("delivery %d: body %q message id %q", i, d.Body, d.MessageId)
		}
		if d.DeliveryTag != uint64(i) || d.Redelivered || d.ConsumerTag != tag || d.Exchange != "" || d.RoutingKey != q {
			t.Fatalf("delivery %d: tag %d redelivered %v consumer %q exchange %q key %q",
				i, d.DeliveryTag, d.Redelivered, d.ConsumerTag, d.Exchange, d.RoutingKey)
		}
		if d.DeliveryMode != amqp.Persistent {
			t.Fatalf("delivery %d: delivery mode %d", i, d.DeliveryMode)
		}
		// Ack the first three one by one, the rest with one multiple ack.
		if i <= 3 {
			if err := d.Ack(false); err != nil {
				t.Fatalf("ack %d: %v", i, err)
			}
		}
		last = d
	}
	if err := last.Ack(true); err != nil {
		t.Fatalf("ack multiple: %v", err)
	}
	// Closing the channel would return unacked messages to the queue.
	if err := ch.Close(); err != nil {
		t.Fatalf("close channel: %v", err)
	}
	if got := readyCount(t, conn, q); got != 0 {
		t.Fatalf("%d messages back in the queue after acking all of them", got)
	}
}

// basic.qos prefetch: a consumer that acks nothing holds exactly prefetch
// messages; each ack lets exactly as many more through.
func TestQosPrefetchLimitsUnacked(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	pub := confirmChannel(t, conn)
	q := n.queue("prefetch")
	declareQueue(t, pub, q)
	for i := 1; i <= 10; i++ {
		publishConfirmed(t, pub, "", q, text(fmt.Sprintf("m%d", i)))
	}

	ch := channel(t, conn)
	if err := ch.Qos(3, 0, false); err != nil {
		t.Fatalf("qos: %v", err)
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	var held []amqp.Delivery
	for i := 1; i <= 3; i++ {
		held = append(held, next(t, deliveries, fmt.Sprintf("m%d", i)))
	}
	// The broker counts what it has sent: with 3 unacked, 7 are still ready.
	if got := readyCount(t, conn, q); got != 7 {
		t.Fatalf("prefetch 3: %d messages ready after 3 deliveries, want 7", got)
	}
	select {
	case d := <-deliveries:
		t.Fatalf("prefetch 3: a 4th delivery %q arrived with 3 unacked", d.Body)
	default:
	}

	// One ack frees one slot.
	if err := held[0].Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if d := next(t, deliveries, "m4"); string(d.Body) != "m4" {
		t.Fatalf("after one ack got %q, want m4", d.Body)
	} else {
		held = append(held, d)
	}
	if got := readyCount(t, conn, q); got != 6 {
		t.Fatalf("after one ack: %d ready, want 6", got)
	}

	// A multiple ack of everything held frees all three slots.
	if err := held[len(held)-1].Ack(true); err != nil {
		t.Fatalf("ack multiple: %v", err)
	}
	for i := 5; i <= 7; i++ {
		if d := next(t, deliveries, fmt.Sprintf("m%d", i)); string(d.Body) != fmt.Sprintf("m%d", i) {
			t.Fatalf("got %q, want m%d", d.Body, i)
		}
	}
	if got := readyCount(t, conn, q); got != 3 {
		t.Fatalf("after the multiple ack: %d ready, want 3", got)
	}
}

// basic.qos with global=true (RabbitMQ: shared by all consumers of the
// channel): two consumers on two queues hold at most that many in total.
func TestQosGlobalSharedByConsumers(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	pub := confirmChannel(t, conn)
	q1, q2 := n.queue("a"), n.queue("b")
	declareQueue(t, pub, q1)
	declareQueue(t, pub, q2)
	for i := 1; i <= 5; i++ {
		publishConfirmed(t, pub, "", q1, text(fmt.Sprintf("a%d", i)))
		publishConfirmed(t, pub, "", q2, text(fmt.Sprintf("b%d", i)))
	}

	ch := channel(t, conn)
	if err := ch.Qos(4, 0, true); err != nil {
		t.Fatalf("qos global: %v", err)
	}
	d1, err := ch.Consume(q1, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", q1, err)
	}
	d2, err := ch.Consume(q2, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", q2, err)
	}
	got := 0
	timeout := time.After(deadline)
	for got < 4 {
		select {
		case <-d1:
		case <-d2:
		case <-timeout:
			t.Fatalf("global prefetch 4: only %d deliveries within %s", got, deadline)
		}
		got++
	}
	if ready := readyCount(t, conn, q1) + readyCount(t, conn, q2); ready != 6 {
		t.Fatalf("global prefetch 4: %d of 10 messages still ready after 4 deliveries, want 6", ready)
	}
}

// A mandatory publish that no queue gets comes back through NotifyReturn with
// 312 NO_ROUTE, before the publish is confirmed; a routable one does not.
func TestMandatoryUnroutableReturn(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	returns := ch.NotifyReturn(make(chan amqp.Return, 4))
	x := n.exchange("direct")
	if err := ch.ExchangeDeclare(x, amqp.ExchangeDirect, false, false, false, false, nil); err != nil {
		t.Fatalf("declare exchange: %v", err)
	}
	q := n.queue("bound")
	declareQueue(t, ch, q)
	if err := ch.QueueBind(q, "bound-key", x, false, nil); err != nil {
		t.Fatalf("bind: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, x, "no-such-key", true, false, amqp.Publishing{
		MessageId: "lost-1", CorrelationId: "corr-1", Headers: amqp.Table{"k": "v"}, Body: []byte("nobody wants me"),
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil || !acked {
		t.Fatalf("unroutable mandatory publish: acked=%v err=%v, want an ack", acked, err)
	}
	// The client hands a basic.return to NotifyReturn as it reads it, so if
	// the broker sent it before the ack it is already there.
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" {
			t.Fatalf("return %d %q, want 312 NO_ROUTE", r.ReplyCode, r.ReplyText)
		}
		if r.Exchange != x || r.RoutingKey != "no-such-key" {
			t.Fatalf("return names exchange %q key %q", r.Exchange, r.RoutingKey)
		}
		if string(r.Body) != "nobody wants me" || r.MessageId != "lost-1" || r.CorrelationId != "corr-1" || r.Headers["k"] != "v" {
			t.Fatalf("returned message differs: body %q id %q corr %q headers %v", r.Body, r.MessageId, r.CorrelationId, r.Headers)
		}
	default:
		t.Fatalf("publish was confirmed but no basic.return arrived before the confirm")
	}

	// Routable mandatory publish: confirmed, nothing returned.
	dc, err = ch.PublishWithDeferredConfirmWithContext(ctx, x, "bound-key", true, false, text("routable"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if acked, err := dc.WaitContext(ctx); err != nil || !acked {
		t.Fatalf("routable mandatory publish: acked=%v err=%v", acked, err)
	}
	select {
	case r := <-returns:
		t.Fatalf("routable publish was returned: %d %s", r.ReplyCode, r.ReplyText)
	default:
	}
	if got := readyCount(t, conn, q); got != 1 {
		t.Fatalf("bound queue holds %d messages, want 1", got)
	}
}

// A channel error (passive declare of a missing queue) surfaces as an
// *amqp.Error 404 from the call and on NotifyClose; only the channel closes,
// and the connection goes on working.
func TestChannelErrorNotifyClose(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := channel(t, conn)
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))

	missing := n.queue("missing")
	_, err := ch.QueueDeclarePassive(missing, false, false, false, false, nil)
	amqpError(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", missing))

	select {
	case e, ok := <-chClosed:
		if !ok || e == nil {
			t.Fatalf("NotifyClose channel closed without an error")
		}
		if e.Code != amqp.NotFound || !e.Server || !strings.HasPrefix(e.Reason, "NOT_FOUND - no queue") {
			t.Fatalf("NotifyClose got %d %q (server=%v)", e.Code, e.Reason, e.Server)
		}
	case <-time.After(deadline):
		t.Fatalf("nothing on the channel's NotifyClose within %s", deadline)
	}
	if !ch.IsClosed() {
		t.Fatalf("channel still open after a channel error")
	}
	if _, err := ch.QueueDeclare(n.queue("after"), false, false, false, false, nil); err != amqp.ErrClosed {
		t.Fatalf("declare on the closed channel: %v, want ErrClosed", err)
	}

	// The connection is unaffected.
	if conn.IsClosed() {
		t.Fatalf("connection closed by a channel error")
	}
	select {
	case e := <-connClosed:
		t.Fatalf("connection NotifyClose fired: %v", e)
	default:
	}
	ch2 := confirmChannel(t, conn)
	q := n.queue("after")
	declareQueue(t, ch2, q)
	publishConfirmed(t, ch2, "", q, text("still works"))
	d, ok, err := ch2.Get(q, true)
	if err != nil || !ok || string(d.Body) != "still works" {
		t.Fatalf("get after the channel error: ok=%v err=%v body=%q", ok, err, d.Body)
	}
}

// Several goroutines publish on one channel while one of them causes a channel
// error (publish to a missing exchange). Publishes already on the wire when the
// broker closes the channel are discarded until close-ok (spec 4.2.2): the
// channel closes with 404, the connection stays open and keeps working.
func TestChannelErrorWhileGoroutinesPublish(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := channel(t, conn)
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	q := n.queue("busy")
	declareQueue(t, ch, q)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	const publishers = 4
	done := make(chan int, publishers)
	for p := 0; p < publishers; p++ {
		go func() {
			sent := 0
			for i := 0; i < 20000; i++ {
				if ch.PublishWithContext(ctx, "", q, false, false, text("busy")) != nil {
					break
				}
				sent++
			}
			done <- sent
		}()
	}
	missing := n.exchange("missing")
	if err := ch.PublishWithContext(ctx, missing, "k", false, false, text("doomed")); err != nil {
		t.Fatalf("publish to the missing exchange failed on the client side: %v", err)
	}
	select {
	case e, ok := <-chClosed:
		if !ok || e == nil {
			t.Fatalf("NotifyClose channel closed without an error")
		}
		want := fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", missing)
		if e.Code != amqp.NotFound || !e.Server || e.Reason != want {
			t.Fatalf("channel closed with %d %q (server=%v), want 404 %q", e.Code, e.Reason, e.Server, want)
		}
	case <-time.After(deadline):
		t.Fatalf("the channel was not closed within %s", deadline)
	}
	for p := 0; p < publishers; p++ {
		select {
		case <-done:
		case <-time.After(deadline):
			t.Fatalf("a publishing goroutine did not stop within %s", deadline)
		}
	}
	if conn.IsClosed() {
		t.Fatalf("the connection was closed by a channel error")
	}
	select {
	case e := <-connClosed:
		t.Fatalf("connection NotifyClose fired: %v", e)
	default:
	}
	ch2 := confirmChannel(t, conn)
	publishConfirmed(t, ch2, "", q, text("after"))
	if _, err := ch2.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		t.Fatalf("passive declare after the channel error: %v", err)
	}
}

// rabbitmqctl runs a rabbitmqctl command with a deadline.
func rabbitmqctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	return string(out), err
}

// connection.blocked / unblocked (memory alarm) reach NotifyBlocked. The
// broker must advertise the connection.blocked capability. The alarm is raised
//   - on RabbitMQ with rabbitmqctl, only when the broker under test is the
//     node that rabbitmqctl controls (set_vm_memory_high_watermark 0.0000001,
//     restored to 0.4): blocked, then unblocked, then the publish made during
//     the alarm is confirmed;
//   - on Warren, when INTEROP_WARREN_BIN names its binary (interop/run sets it
//     when it started Warren itself), in a private Warren whose watermark is
//     1 byte: blocked (its alarm cannot be cleared at run time).
//
// Otherwise the test is skipped with the reason.
func TestNotifyBlocked(t *testing.T) {
	conn, connName := dialNamed(t, "interop.go.blocked."+randomSuffix())
	caps, _ := conn.Properties["capabilities"].(amqp.Table)
	if caps["connection.blocked"] != true {
		t.Fatalf("the broker does not advertise the connection.blocked capability (server properties: product %v, capabilities %v)",
			conn.Properties["product"], caps)
	}
	var why []string
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		why = append(why, "rabbitmqctl is not installed")
	} else if out, err := rabbitmqctl("list_connections", "client_properties"); err != nil {
		why = append(why, fmt.Sprintf("rabbitmqctl cannot reach a node (%v): %s", err, strings.TrimSpace(out)))
	} else if !strings.Contains(out, connName) {
		why = append(why, "the broker at AMQP_URL is not the node that rabbitmqctl controls")
	} else {
		blockedByRabbitmqctl(t, conn)
		return
	}
	if conn.Properties["product"] == "Warren" {
		if bin := os.Getenv("INTEROP_WARREN_BIN"); bin != "" {
			blockedInPrivateWarren(t, bin)
			return
		}
		why = append(why, "INTEROP_WARREN_BIN is not set (interop/run sets it when it starts Warren)")
	}
	t.Skipf("no way to raise a memory alarm on the broker under test: %s", strings.Join(why, "; "))
}

func blockedByRabbitmqctl(t *testing.T, conn *amqp.Connection) {
	n := newNames(t)
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	ch := confirmChannel(t, conn)
	q := n.queue("blocked")
	declareQueue(t, ch, q)

	if out, err := rabbitmqctl("set_vm_memory_high_watermark", "0.0000001"); err != nil {
		t.Fatalf("rabbitmqctl set_vm_memory_high_watermark 0.0000001: %v: %s", err, out)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if out, err := rabbitmqctl("set_vm_memory_high_watermark", "0.4"); err != nil {
			t.Errorf("restoring the memory watermark to 0.4 failed: %v: %s", err, out)
		}
	}
	t.Cleanup(restore)

	// RabbitMQ blocks a connection once it publishes during an alarm, so
	// publish (the confirm will only come after the alarm clears).
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false, text("during the alarm"))
	if err != nil {
		t.Fatalf("publish during the alarm: %v", err)
	}
	expectBlocked(t, blocked)

	restore()
	select {
	case b := <-blocked:
		if b.Active {
			t.Fatalf("second notification is blocked again (%q), want unblocked", b.Reason)
		}
	case <-time.After(3 * deadline):
		t.Fatalf("no connection.unblocked within %s of clearing the memory alarm", 3*deadline)
	}
	if acked, err := dc.WaitContext(ctx); err != nil || !acked {
		t.Fatalf("publish made during the alarm: acked=%v err=%v", acked, err)
	}
	if got := readyCount(t, conn, q); got != 1 {
		t.Fatalf("queue holds %d messages after the alarm, want 1", got)
	}
}

func expectBlocked(t *testing.T, blocked <-chan amqp.Blocking) {
	t.Helper()
	select {
	case b := <-blocked:
		if !b.Active {
			t.Fatalf("first notification is unblocked, want blocked")
		}
		if !strings.Contains(b.Reason, "memory") {
			t.Fatalf("blocked with reason %q, want it to mention memory", b.Reason)
		}
	case <-time.After(3 * deadline):
		t.Fatalf("no connection.blocked within %s of raising the memory alarm", 3*deadline)
	}
}

// blockedInPrivateWarren starts bin on a free port with a 1-byte memory
// watermark (the alarm is on from the start) and checks that a publishing
// connection is told it is blocked.
func blockedInPrivateWarren(t *testing.T, bin string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	tmp := t.TempDir()
	logPath := tmp + "/warren.log"
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("creating %s: %v", logPath, err)
	}
	defer logFile.Close()
	if err := os.Mkdir(tmp+"/data", 0o755); err != nil {
		t.Fatalf("creating the data dir: %v", err)
	}
	warrenLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	cmd := exec.Command(bin, "--listen", "127.0.0.1", "--port", fmt.Sprint(port), "--management-port", "0", "--prometheus-port", "0", "--data-dir", tmp+"/data")
	cmd.Env = append(os.Environ(), "WARREN_MEMORY_HIGH_WATERMARK_BYTES=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// A throwaway broker: no graceful shutdown (which would wait out its
		// grace period for the blocked connection, which it does not read).
		_ = cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(stop)

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ready := time.Now().Add(3 * deadline)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("private Warren exited before accepting connections:\n%s", warrenLog())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(ready) {
			t.Fatalf("private Warren did not accept connections on %s within %s:\n%s", addr, 3*deadline, warrenLog())
		}
	}

	conn, err := amqp.DialConfig(fmt.Sprintf("amqp://guest:guest@%s/%%2F", addr),
		amqp.Config{Dial: amqp.DefaultDial(deadline), Locale: "en_US"})
	if err != nil {
		t.Fatalf("dial the private Warren: %v", err)
	}
	// A blocked connection is not read from, so the broker goes first.
	t.Cleanup(func() { stop(); _ = conn.Close() })
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	ch := channel(t, conn)
	q := "interop.go.blocked." + randomSuffix()
	declareQueue(t, ch, q)
	if err := ch.Publish("", q, false, false, text("during the alarm")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	expectBlocked(t, blocked)
	t.Log("private Warren with a 1-byte watermark: blocked as expected (its alarm cannot be cleared at run time, so unblocked is not checked)")
}

// Topic exchange: '*' is exactly one word, '#' zero or more; a message that
// matches two bindings of one queue arrives once; unbind stops routing.
func TestTopicExchangeBindings(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	x := n.exchange("topic")
	if err := ch.ExchangeDeclare(x, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		t.Fatalf("declare: %v", err)
	}
	if err := ch.ExchangeDeclarePassive(x, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		t.Fatalf("passive declare: %v", err)
	}
	audit, db := n.queue("audit"), n.queue("db")
	declareQueue(t, ch, audit)
	declareQueue(t, ch, db)
	for _, b := range [][2]string{{audit, "audit.*"}, {db, "db.#"}, {db, "#.error"}} {
		if err := ch.QueueBind(b[0], b[1], x, false, nil); err != nil {
			t.Fatalf("bind %s %s: %v", b[0], b[1], err)
		}
	}
	for _, key := range []string{"audit.login", "audit.login.failed", "audit", "db.error", "db", "error", "app.db.error", "app.warn"} {
		publishConfirmed(t, ch, x, key, text(key))
	}
	if err := ch.QueueUnbind(db, "db.#", x, nil); err != nil {
		t.Fatalf("unbind: %v", err)
	}
	for _, key := range []string{"db.pool", "db.pool.error"} {
		publishConfirmed(t, ch, x, key, text(key))
	}

	marker := "end." + randomSuffix()
	for _, q := range []string{audit, db} {
		publishConfirmed(t, ch, "", q, text(marker))
	}
	c := channel(t, conn)
	if got, want := consumeUntilMarker(t, c, audit, marker), []string{"audit.login"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("audit.* got %v, want %v", got, want)
	}
	if got, want := consumeUntilMarker(t, c, db, marker), []string{"db.error", "db", "error", "app.db.error", "db.pool.error"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("db.# + #.error got %v, want %v", got, want)
	}
}

// Headers exchange: x-match all / any over header values; the routing key
// plays no part.
func TestHeadersExchangeBindings(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	x := n.exchange("headers")
	if err := ch.ExchangeDeclare(x, amqp.ExchangeHeaders, false, false, false, false, nil); err != nil {
		t.Fatalf("declare: %v", err)
	}
	all, anyq := n.queue("all"), n.queue("any")
	declareQueue(t, ch, all)
	declareQueue(t, ch, anyq)
	if err := ch.QueueBind(all, "", x, false, amqp.Table{"x-match": "all", "format": "pdf", "type": "report"}); err != nil {
		t.Fatalf("bind all: %v", err)
	}
	if err := ch.QueueBind(anyq, "ignored", x, false, amqp.Table{"x-match": "any", "format": "pdf", "type": "log"}); err != nil {
		t.Fatalf("bind any: %v", err)
	}
	cases := []struct {
		name    string
		headers amqp.Table
	}{
		{"pdf-report", amqp.Table{"format": "pdf", "type": "report"}},
		{"pdf-only", amqp.Table{"format": "pdf"}},
		{"log-only", amqp.Table{"type": "log"}},
		{"zip-report", amqp.Table{"format": "zip", "type": "report"}},
		{"none", nil},
		{"pdf-report-extra", amqp.Table{"format": "pdf", "type": "report", "pages": int32(3)}},
		{"pdf-as-number", amqp.Table{"format": int32(1), "type": "report"}},
	}
	for i, c := range cases {
		publishConfirmed(t, ch, x, fmt.Sprintf("rk%d", i), amqp.Publishing{Headers: c.headers, Body: []byte(c.name)})
	}
	marker := "end." + randomSuffix()
	publishConfirmed(t, ch, "", all, text(marker))
	publishConfirmed(t, ch, "", anyq, text(marker))
	c := channel(t, conn)
	if got, want := consumeUntilMarker(t, c, all, marker), []string{"pdf-report", "pdf-report-extra"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("x-match all got %v, want %v", got, want)
	}
	if got, want := consumeUntilMarker(t, c, anyq, marker), []string{"pdf-report", "pdf-only", "log-only", "pdf-report-extra"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("x-match any got %v, want %v", got, want)
	}
}

// Exchange-to-exchange binding: a topic exchange feeds a fanout exchange for
// the keys its binding matches.
func TestExchangeToExchangeBinding(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	src, dst := n.exchange("src"), n.exchange("dst")
	if err := ch.ExchangeDeclare(src, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		t.Fatalf("declare src: %v", err)
	}
	if err := ch.ExchangeDeclare(dst, amqp.ExchangeFanout, false, false, false, false, nil); err != nil {
		t.Fatalf("declare dst: %v", err)
	}
	if err := ch.ExchangeBind(dst, "orders.*", src, false, nil); err != nil {
		t.Fatalf("exchange bind: %v", err)
	}
	q := n.queue("sink")
	declareQueue(t, ch, q)
	if err := ch.QueueBind(q, "", dst, false, nil); err != nil {
		t.Fatalf("bind: %v", err)
	}
	for _, key := range []string{"orders.new", "payments.new", "orders.new.eu", "orders.paid"} {
		publishConfirmed(t, ch, src, key, text(key))
	}
	if err := ch.ExchangeUnbind(dst, "orders.*", src, false, nil); err != nil {
		t.Fatalf("exchange unbind: %v", err)
	}
	publishConfirmed(t, ch, src, "orders.late", text("orders.late"))
	marker := "end." + randomSuffix()
	publishConfirmed(t, ch, "", q, text(marker))
	if got, want := consumeUntilMarker(t, channel(t, conn), q, marker), []string{"orders.new", "orders.paid"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Nack with requeue puts messages back in their original order, and they
// come again with Redelivered set.
func TestNackRequeueRedeliversInOrder(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	pub := confirmChannel(t, conn)
	q := n.queue("nack")
	declareQueue(t, pub, q)
	for i := 1; i <= 5; i++ {
		publishConfirmed(t, pub, "", q, text(fmt.Sprintf("m%d", i)))
	}
	ch := channel(t, conn)
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	var last amqp.Delivery
	for i := 1; i <= 5; i++ {
		last = next(t, deliveries, fmt.Sprintf("m%d", i))
		if string(last.Body) != fmt.Sprintf("m%d", i) || last.Redelivered {
			t.Fatalf("first round, delivery %d: %q redelivered=%v", i, last.Body, last.Redelivered)
		}
	}
	if err := last.Nack(true, true); err != nil {
		t.Fatalf("nack multiple requeue: %v", err)
	}
	for i := 1; i <= 5; i++ {
		last = next(t, deliveries, fmt.Sprintf("redelivered m%d", i))
		if string(last.Body) != fmt.Sprintf("m%d", i) || !last.Redelivered {
			t.Fatalf("after nack, delivery %d: %q redelivered=%v, want m%d redelivered", i, last.Body, last.Redelivered, i)
		}
	}
	// Single nack of the head with requeue: it comes straight back.
	if err := ch.Nack(last.DeliveryTag-4, false, true); err != nil {
		t.Fatalf("nack single: %v", err)
	}
	if d := next(t, deliveries, "m1 again"); string(d.Body) != "m1" || !d.Redelivered {
		t.Fatalf("after single nack got %q redelivered=%v, want m1", d.Body, d.Redelivered)
	} else if err := d.Ack(true); err != nil {
		t.Fatalf("ack multiple: %v", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := readyCount(t, conn, q); got != 0 {
		t.Fatalf("%d messages left after acking all", got)
	}
}

// basic.get: empty queue, message count, manual and automatic ack, reject.
func TestGet(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	q := n.queue("get")
	declareQueue(t, ch, q)

	if _, ok, err := ch.Get(q, false); err != nil || ok {
		t.Fatalf("get on an empty queue: ok=%v err=%v", ok, err)
	}
	for i := 1; i <= 3; i++ {
		publishConfirmed(t, ch, "", q, amqp.Publishing{Type: "greeting", AppId: "interop", Body: []byte(fmt.Sprintf("m%d", i))})
	}
	d, ok, err := ch.Get(q, false)
	if err != nil || !ok {
		t.Fatalf("get: ok=%v err=%v", ok, err)
	}
	if string(d.Body) != "m1" || d.MessageCount != 2 || d.Redelivered || d.Type != "greeting" || d.AppId != "interop" || d.RoutingKey != q {
		t.Fatalf("first get: body %q count %d redelivered %v type %q app %q key %q", d.Body, d.MessageCount, d.Redelivered, d.Type, d.AppId, d.RoutingKey)
	}
	if err := d.Reject(true); err != nil {
		t.Fatalf("reject requeue: %v", err)
	}
	d, ok, err = ch.Get(q, false)
	if err != nil || !ok || string(d.Body) != "m1" || !d.Redelivered || d.MessageCount != 2 {
		t.Fatalf("get after reject: ok=%v err=%v body %q redelivered %v count %d", ok, err, d.Body, d.Redelivered, d.MessageCount)
	}
	if err := d.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	d, ok, err = ch.Get(q, true)
	if err != nil || !ok || string(d.Body) != "m2" || d.MessageCount != 1 {
		t.Fatalf("auto-ack get: ok=%v err=%v body %q count %d", ok, err, d.Body, d.MessageCount)
	}
	d, ok, err = ch.Get(q, false)
	if err != nil || !ok || string(d.Body) != "m3" || d.MessageCount != 0 {
		t.Fatalf("last get: ok=%v err=%v body %q count %d", ok, err, d.Body, d.MessageCount)
	}
	if err := d.Reject(false); err != nil {
		t.Fatalf("reject without requeue: %v", err)
	}
	if _, ok, err := ch.Get(q, false); err != nil || ok {
		t.Fatalf("get on the drained queue: ok=%v err=%v", ok, err)
	}
}

// Cancel stops a consumer: its delivery channel closes and later messages
// stay in the queue. Deleting a queue cancels its consumers from the server
// side (NotifyCancel).
func TestCancel(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	pub := confirmChannel(t, conn)
	q := n.queue("cancel")
	declareQueue(t, pub, q)

	ch := channel(t, conn)
	tag := "ctag." + randomSuffix()
	deliveries, err := ch.Consume(q, tag, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	publishConfirmed(t, pub, "", q, text("before"))
	if d := next(t, deliveries, "before"); string(d.Body) != "before" {
		t.Fatalf("got %q", d.Body)
	} else if err := d.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := ch.Cancel(tag, false); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	select {
	case d, ok := <-deliveries:
		if ok {
			t.Fatalf("delivery %q after cancel", d.Body)
		}
	case <-time.After(deadline):
		t.Fatalf("delivery channel not closed within %s of cancel", deadline)
	}
	publishConfirmed(t, pub, "", q, text("after 1"))
	publishConfirmed(t, pub, "", q, text("after 2"))
	info, err := pub.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare: %v", err)
	}
	if info.Messages != 2 || info.Consumers != 0 {
		t.Fatalf("after cancel: %d messages, %d consumers; want 2, 0", info.Messages, info.Consumers)
	}

	// Server-side cancel when the queue goes away.
	q2 := n.queue("deleted")
	declareQueue(t, pub, q2)
	cancels := ch.NotifyCancel(make(chan string, 1))
	tag2 := "ctag2." + randomSuffix()
	deliveries2, err := ch.Consume(q2, tag2, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", q2, err)
	}
	if _, err := pub.QueueDelete(q2, false, false, false); err != nil {
		t.Fatalf("delete %s: %v", q2, err)
	}
	select {
	case got := <-cancels:
		if got != tag2 {
			t.Fatalf("server cancelled %q, want %q", got, tag2)
		}
	case <-time.After(deadline):
		t.Fatalf("no basic.cancel from the server within %s of deleting the queue", deadline)
	}
	select {
	case _, ok := <-deliveries2:
		if ok {
			t.Fatalf("delivery on a consumer whose queue was deleted")
		}
	case <-time.After(deadline):
		t.Fatalf("delivery channel not closed after the server's cancel")
	}
	// The channel itself is still fine.
	if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		t.Fatalf("channel unusable after a server-side cancel: %v", err)
	}
}

// Transactions: publishes and acks take effect at commit, not before, and a
// rollback discards them.
func TestTx(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	setup := channel(t, conn)
	q := n.queue("tx")
	declareQueue(t, setup, q)

	ch := channel(t, conn)
	if err := ch.Tx(); err != nil {
		t.Fatalf("tx.select: %v", err)
	}
	for i := 1; i <= 2; i++ {
		if err := ch.Publish("", q, false, false, text(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	// A synchronous call on the tx channel, so both publishes have been
	// received by the broker before we look.
	if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		t.Fatalf("passive declare: %v", err)
	}
	if got := readyCount(t, conn, q); got != 0 {
		t.Fatalf("%d messages visible before commit", got)
	}
	if err := ch.TxCommit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := readyCount(t, conn, q); got != 2 {
		t.Fatalf("%d messages after commit, want 2", got)
	}
	if err := ch.Publish("", q, false, false, text("rolled back")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := ch.TxRollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got := readyCount(t, conn, q); got != 2 {
		t.Fatalf("%d messages after rollback, want 2", got)
	}

	// An ack inside a rolled-back transaction does not count: m1 stays
	// unacked and comes back when the channel closes.
	d, ok, err := ch.Get(q, false)
	if err != nil || !ok || string(d.Body) != "m1" {
		t.Fatalf("get: ok=%v err=%v body %q", ok, err, d.Body)
	}
	if err := d.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := ch.TxRollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := readyCount(t, conn, q); got != 2 {
		t.Fatalf("after a rolled-back ack and close: %d ready, want 2", got)
	}

	// A committed ack does count.
	ch2 := channel(t, conn)
	if err := ch2.Tx(); err != nil {
		t.Fatalf("tx.select: %v", err)
	}
	d, ok, err = ch2.Get(q, false)
	if err != nil || !ok || string(d.Body) != "m1" || !d.Redelivered {
		t.Fatalf("get: ok=%v err=%v body %q redelivered %v", ok, err, d.Body, d.Redelivered)
	}
	if err := d.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := ch2.TxCommit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := ch2.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := readyCount(t, conn, q); got != 1 {
		t.Fatalf("after a committed ack and close: %d ready, want 1", got)
	}
}

// Message properties and a header table of every field type amqp091-go
// writes come back unchanged.
func TestPropertiesRoundTrip(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	q := n.queue("props")
	declareQueue(t, ch, q)
	ts := time.Unix(1700000000, 0)
	headers := amqp.Table{
		"string":  "héllo",
		"bool":    true,
		"int8":    int8(-8),
		"byte":    byte(200),
		"int16":   int16(-1600),
		"uint16":  uint16(60000),
		"int32":   int32(-320000),
		"uint32":  uint32(4000000000),
		"int64":   int64(-6400000000000),
		"float32": float32(1.5),
		"float64": float64(-2.25),
		"decimal": amqp.Decimal{Scale: 2, Value: 12345},
		"time":    ts,
		"bytes":   []byte{0, 1, 2, 255},
		"void":    nil,
		"array":   []any{"a", int32(1), true, amqp.Table{"in": "array"}},
		"table":   amqp.Table{"nested": amqp.Table{"deep": int64(7)}},
	}
	sent := amqp.Publishing{
		Headers: headers, ContentType: "application/json", ContentEncoding: "identity",
		DeliveryMode: amqp.Persistent, Priority: 0, CorrelationId: "corr", ReplyTo: "reply.here",
		Expiration: "600000", MessageId: "msg-1", Timestamp: ts, Type: "kind", UserId: "guest", AppId: "interop-go",
		Body: []byte(`{"x":1}`),
	}
	publishConfirmed(t, ch, "", q, sent)
	d, ok, err := ch.Get(q, true)
	if err != nil || !ok {
		t.Fatalf("get: ok=%v err=%v", ok, err)
	}
	for k, want := range headers {
		got, present := d.Headers[k]
		if !present {
			t.Errorf("header %q missing", k)
			continue
		}
		if wt, ok := want.(time.Time); ok {
			if gt, ok := got.(time.Time); !ok || !gt.Equal(wt) {
				t.Errorf("header %q: got %#v, want %v", k, got, wt)
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("header %q: got %#v (%T), want %#v (%T)", k, got, got, want, want)
		}
	}
	if len(d.Headers) != len(headers) {
		t.Errorf("got %d headers, want %d: %v", len(d.Headers), len(headers), d.Headers)
	}
	if d.ContentType != sent.ContentType || d.ContentEncoding != sent.ContentEncoding || d.DeliveryMode != sent.DeliveryMode ||
		d.CorrelationId != sent.CorrelationId || d.ReplyTo != sent.ReplyTo || d.Expiration != sent.Expiration ||
		d.MessageId != sent.MessageId || !d.Timestamp.Equal(ts) || d.Type != sent.Type || d.UserId != sent.UserId ||
		d.AppId != sent.AppId || string(d.Body) != string(sent.Body) {
		t.Errorf("properties differ: got %+v", d)
	}
}

// A body far larger than frame_max is split into many body frames and comes
// back byte for byte, through a consumer and through basic.get.
func TestLargeMessage(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	q := n.queue("large")
	declareQueue(t, ch, q)
	body := make([]byte, 3*1024*1024+17)
	for i := range body {
		body[i] = byte(i*7 + i/251)
	}
	publishConfirmed(t, ch, "", q, amqp.Publishing{Body: body})
	publishConfirmed(t, ch, "", q, amqp.Publishing{Body: body[:conn.Config.FrameSize]})
	d, ok, err := ch.Get(q, true)
	if err != nil || !ok {
		t.Fatalf("get: ok=%v err=%v", ok, err)
	}
	if !reflect.DeepEqual(d.Body, body) {
		t.Fatalf("large body differs: got %d bytes, want %d", len(d.Body), len(body))
	}
	deliveries, err := ch.Consume(q, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	if d := next(t, deliveries, "the frame-sized message"); !reflect.DeepEqual(d.Body, body[:conn.Config.FrameSize]) {
		t.Fatalf("frame-sized body differs: got %d bytes, want %d", len(d.Body), conn.Config.FrameSize)
	}
}

// queue.purge and queue.delete report how many messages they removed.
func TestPurgeAndDeleteCounts(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	ch := confirmChannel(t, conn)
	q := n.queue("purge")
	declareQueue(t, ch, q)
	for i := 0; i < 7; i++ {
		publishConfirmed(t, ch, "", q, text("x"))
	}
	if purged, err := ch.QueuePurge(q, false); err != nil || purged != 7 {
		t.Fatalf("purge: %d, %v; want 7", purged, err)
	}
	for i := 0; i < 3; i++ {
		publishConfirmed(t, ch, "", q, text("y"))
	}
	if deleted, err := ch.QueueDelete(q, false, false, false); err != nil || deleted != 3 {
		t.Fatalf("delete: %d, %v; want 3", deleted, err)
	}
	ch2 := channel(t, conn)
	_, err := ch2.QueueDeclarePassive(q, false, false, false, false, nil)
	amqpError(t, err, amqp.NotFound, "NOT_FOUND - no queue")
}

// Several goroutines, each with a confirm channel of its own on one
// connection, publish at once: every publish is confirmed and arrives.
func TestConcurrentConfirmChannels(t *testing.T) {
	n := newNames(t)
	conn := dial(t)
	setup := channel(t, conn)
	q := n.queue("concurrent")
	declareQueue(t, setup, q)

	const publishers, each = 8, 250
	errs := make(chan error, publishers)
	for p := 0; p < publishers; p++ {
		go func(p int) {
			ch, err := conn.Channel()
			if err != nil {
				errs <- err
				return
			}
			defer ch.Close()
			if err := ch.Confirm(false); err != nil {
				errs <- err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
			defer cancel()
			var pending []*amqp.DeferredConfirmation
			for i := 0; i < each; i++ {
				dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false, text(fmt.Sprintf("p%d-%d", p, i)))
				if err != nil {
					errs <- err
					return
				}
				pending = append(pending, dc)
			}
			for _, dc := range pending {
				if ok, err := dc.WaitContext(ctx); err != nil || !ok {
					errs <- fmt.Errorf("publisher %d tag %d: acked=%v err=%v", p, dc.DeliveryTag, ok, err)
					return
				}
			}
			errs <- nil
		}(p)
	}
	for p := 0; p < publishers; p++ {
		if err := <-errs; err != nil {
			t.Fatalf("publisher: %v", err)
		}
	}
	if got := readyCount(t, conn, q); got != publishers*each {
		t.Fatalf("queue holds %d messages, want %d", got, publishers*each)
	}

	// One consumer gets them all, each publisher's messages in its order.
	ch := channel(t, conn)
	deliveries, err := ch.Consume(q, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	nextSeq := make([]int, publishers)
	for k := 0; k < publishers*each; k++ {
		d := next(t, deliveries, fmt.Sprintf("delivery %d of %d", k+1, publishers*each))
		var p, i int
		if _, err := fmt.Sscanf(string(d.Body), "p%d-%d", &p, &i); err != nil || p < 0 || p >= publishers {
			t.Fatalf("unexpected body %q", d.Body)
		}
		if i != nextSeq[p] {
			t.Fatalf("publisher %d: got message %d, want %d (per-channel order lost)", p, i, nextSeq[p])
		}
		nextSeq[p]++
	}
}
