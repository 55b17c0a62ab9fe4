// AMQPS with amqp091-go (issue #13): a password login over TLS (DialTLS), SASL EXTERNAL with a
// client certificate (DialTLS_ExternalAuth), and a certificate from an unknown CA refused.
// The runner sets AMQPS_URL (guest over TLS) and INTEROP_TLS_DIR (interop/lib/make-pki's PKI).
package interop

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// tlsSetup gives AMQPS_URL and a TLS config trusting the test CA, presenting cert ("client",
// "stranger") unless it is empty; the test is skipped, saying why, without a TLS listener.
func tlsSetup(t *testing.T, cert string) (string, *tls.Config) {
	t.Helper()
	u, dir := os.Getenv("AMQPS_URL"), os.Getenv("INTEROP_TLS_DIR")
	if u == "" || dir == "" {
		t.Skip("no TLS listener given: set AMQPS_URL and INTEROP_TLS_DIR (interop/run does)")
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatalf("CA: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatal("CA: no certificate in ca.pem")
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("AMQPS_URL: %v", err)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: parsed.Hostname()}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, cert+".pem"), filepath.Join(dir, cert+".key"))
		if err != nil {
			t.Fatalf("client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return u, cfg
}

// roundTrip publishes a large and a small message to a fresh queue and gets them back.
func roundTrip(t *testing.T, conn *amqp.Connection) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("declare: %v", err)
	}
	big := make([]byte, 300_000) // many TLS records
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{big, []byte("small")} {
		if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: body}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for i, want := range [][]byte{big, []byte("small")} {
		// Publishes and gets on one channel are handled in order: the messages are there.
		got, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if !ok || !bytes.Equal(got.Body, want) {
			t.Fatalf("message %d: got %d bytes (ok=%v), want %d", i, len(got.Body), ok, len(want))
		}
	}
}

func TestTLSPasswordLogin(t *testing.T) {
	u, cfg := tlsSetup(t, "")
	conn, err := amqp.DialTLS(u, cfg)
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	defer conn.Close()
	roundTrip(t, conn)
}

func TestTLSExternalLoginFromTheClientCertificate(t *testing.T) {
	u, cfg := tlsSetup(t, "client")
	conn, err := amqp.DialTLS_ExternalAuth(u, cfg)
	if err != nil {
		t.Fatalf("DialTLS_ExternalAuth: %v", err)
	}
	defer conn.Close()
	roundTrip(t, conn)
}

func TestTLSCertificateFromAnUnknownCAIsRefused(t *testing.T) {
	u, cfg := tlsSetup(t, "stranger")
	if conn, err := amqp.DialTLS_ExternalAuth(u, cfg); err == nil {
		conn.Close()
		t.Fatal("a certificate from an unknown CA was accepted")
	}
}
