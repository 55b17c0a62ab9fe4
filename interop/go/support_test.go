// Helpers shared by the amqp091-go interop tests.
//
// Every test talks to $AMQP_URL (default: a local broker on 5672), names its
// queues and exchanges with a random suffix and deletes them afterwards, so
// the suite can share a broker with other suites. Every wait has a deadline.
package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// How long any single wait for the broker may take before the test fails.
const deadline = 10 * time.Second

func amqpURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/%2F"
}

func randomSuffix() string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// dial opens a connection that is closed when the test ends. The connection
// name (a client property) carries the test name and a random suffix, so that
// the broker's own tools can find it.
func dial(t *testing.T) *amqp.Connection {
	t.Helper()
	conn, _ := dialNamed(t, "interop.go."+t.Name()+"."+randomSuffix())
	return conn
}

func dialNamed(t *testing.T, name string) (*amqp.Connection, string) {
	t.Helper()
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	conn, err := amqp.DialConfig(amqpURL(), amqp.Config{
		Dial:       amqp.DefaultDial(deadline),
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: props,
	})
	if err != nil {
		t.Fatalf("dial %s: %v", amqpURL(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, name
}

func channel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// names hands out unique queue/exchange names for one test and deletes them
// (on a connection of its own) when the test ends.
type names struct {
	t         *testing.T
	prefix    string
	queues    []string
	exchanges []string
}

func newNames(t *testing.T) *names {
	n := &names{t: t, prefix: "interop.go." + t.Name() + "." + randomSuffix()}
	t.Cleanup(n.cleanup)
	return n
}

func (n *names) queue(what string) string {
	q := n.prefix + ".q." + what
	n.queues = append(n.queues, q)
	return q
}

func (n *names) exchange(what string) string {
	x := n.prefix + ".x." + what
	n.exchanges = append(n.exchanges, x)
	return x
}

func (n *names) cleanup() {
	if len(n.queues)+len(n.exchanges) == 0 {
		return
	}
	conn, err := amqp.DialConfig(amqpURL(), amqp.Config{Dial: amqp.DefaultDial(deadline), Locale: "en_US"})
	if err != nil {
		n.t.Logf("cleanup: dial: %v", err)
		return
	}
	defer conn.Close()
	for _, q := range n.queues {
		// A channel per delete: deleting something that is already gone
		// is fine on RabbitMQ, but a failed delete closes the channel.
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(q, false, false, false)
			_ = ch.Close()
		}
	}
	for _, x := range n.exchanges {
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(x, false, false)
			_ = ch.Close()
		}
	}
}

// declareQueue declares a plain (non-durable, non-exclusive) queue.
func declareQueue(t *testing.T, ch *amqp.Channel, name string) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, false, false, false, false, nil); err != nil {
		t.Fatalf("declare queue %s: %v", name, err)
	}
}

// readyCount returns the number of ready (not unacknowledged) messages in a
// queue, as a passive declare reports it, using a fresh channel so that a
// failure cannot disturb the caller's channel.
func readyCount(t *testing.T, conn *amqp.Connection, queue string) int {
	t.Helper()
	ch := channel(t, conn)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare %s: %v", queue, err)
	}
	return q.Messages
}

// confirmChannel opens a channel in confirm mode.
func confirmChannel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch := channel(t, conn)
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	return ch
}

// publishConfirmed publishes on a confirm channel and waits for the broker's ack.
func publishConfirmed(t *testing.T, ch *amqp.Channel, exchange, key string, msg amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, msg)
	if err != nil {
		t.Fatalf("publish to %q/%q: %v", exchange, key, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		t.Fatalf("waiting for the confirm of a publish to %q/%q: %v", exchange, key, err)
	}
	if !acked {
		t.Fatalf("publish to %q/%q was nacked", exchange, key)
	}
}

func text(body string) amqp.Publishing {
	return amqp.Publishing{ContentType: "text/plain", Body: []byte(body)}
}

// next receives one delivery or fails the test after the deadline.
func next(t *testing.T, deliveries <-chan amqp.Delivery, what string) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatalf("delivery channel closed while waiting for %s", what)
		}
		return d
	case <-time.After(deadline):
		t.Fatalf("timed out after %s waiting for %s", deadline, what)
	}
	panic("unreachable")
}

// consumeUntilMarker collects message bodies until the end marker arrives
// (auto-ack). The caller publishes with confirms and then sends the marker
// straight to the queue, so once the marker is seen nothing routed earlier
// is still in flight.
func consumeUntilMarker(t *testing.T, ch *amqp.Channel, queue, marker string) []string {
	t.Helper()
	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	var got []string
	for {
		d := next(t, deliveries, "the end marker on "+queue)
		if string(d.Body) == marker {
			return got
		}
		got = append(got, string(d.Body))
	}
}

// amqpError asserts that err is an *amqp.Error with the given code and a
// reason starting with prefix.
func amqpError(t *testing.T, err error, code int, prefix string) *amqp.Error {
	t.Helper()
	var e *amqp.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *amqp.Error %d, got %T: %v", code, err, err)
	}
	if e.Code != code || !strings.HasPrefix(e.Reason, prefix) {
		t.Fatalf("want error %d %q..., got %d %q", code, prefix, e.Code, e.Reason)
	}
	if !e.Server {
		t.Fatalf("error %d %q was raised by the client, not the server", e.Code, e.Reason)
	}
	return e
}
