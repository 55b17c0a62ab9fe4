// A non-guest user in its own vhost with narrow permissions (issue #13), as amqp091-go sees
// it. The runner sets TENANT_URL (vhost interop-tenant, user interop-user; see
// interop/tenancy.json).
package interop

import (
	"errors"
	"os"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func tenantURL() string {
	if u := os.Getenv("TENANT_URL"); u != "" {
		return u
	}
	return "amqp://interop-user:interop-pass@127.0.0.1:5672/interop-tenant"
}

func TestTenantUserWorksWithinItsPermissions(t *testing.T) {
	conn, err := amqp.Dial(tenantURL())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	queue := "it-go-" + randomSuffix()
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", queue, err)
	}
	_, err = ch.QueueDeclare("not-mine", false, false, false, false, nil)
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) {
		t.Fatalf("declare not-mine: want an AMQP error, got %v", err)
	}
	want := "ACCESS_REFUSED - access to queue 'not-mine' in vhost 'interop-tenant' refused for user 'interop-user'"
	if amqpErr.Code != 403 || amqpErr.Reason != want {
		t.Fatalf("got %d %q, want 403 %q", amqpErr.Code, amqpErr.Reason, want)
	}
}

func TestTenantUserIsRefusedAnotherVhost(t *testing.T) {
	u := tenantURL()
	other := u[:strings.LastIndex(u, "/")] + "/%2F"
	_, err := amqp.Dial(other)
	if err == nil {
		t.Fatal("connected to / without a permission there")
	}
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) {
		t.Fatalf("want an AMQP error, got %v", err)
	}
	want := "NOT_ALLOWED - access to vhost '/' refused for user 'interop-user'"
	if amqpErr.Code != 530 || amqpErr.Reason != want {
		t.Fatalf("got %d %q, want 530 %q", amqpErr.Code, amqpErr.Reason, want)
	}
}
