package interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultSaslConfig;
import com.rabbitmq.client.GetResponse;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;

/**
 * AMQPS with the RabbitMQ Java client (issue #13): a password login over TLS, SASL EXTERNAL
 * with a client certificate, and EXTERNAL refused without one. The runner sets AMQPS_URL
 * (guest over TLS) and INTEROP_TLS_DIR (the PKI from interop/lib/make-pki).
 */
class TlsTest {

    static final String AMQPS_URL = System.getenv().getOrDefault("AMQPS_URL", "");
    static final String TLS_DIR = System.getenv().getOrDefault("INTEROP_TLS_DIR", "");

    /** A factory for AMQPS_URL trusting the test CA, with the client certificate if asked. */
    private static ConnectionFactory factory(boolean clientCert) throws Exception {
        assumeTrue(!AMQPS_URL.isEmpty() && !TLS_DIR.isEmpty(),
                "no TLS listener given: set AMQPS_URL and INTEROP_TLS_DIR (interop/run does)");
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(Path.of(TLS_DIR, "ca.pem"))) {
            trust.setCertificateEntry("ca",
                    CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf =
                TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        KeyManagerFactory kmf = null;
        if (clientCert) {
            KeyStore keys = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(Path.of(TLS_DIR, "client.p12"))) {
                keys.load(in, "interop".toCharArray());
            }
            kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, "interop".toCharArray());
        }
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(),
                new SecureRandom());
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(AMQPS_URL);
        f.useSslProtocol(context);
        f.enableHostnameVerification();
        f.setAutomaticRecoveryEnabled(false);
        return f;
    }

    private static void roundTrip(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        String queue = ch.queueDeclare().getQueue();
        byte[] big = new byte[300_000]; // many TLS records
        new SecureRandom().nextBytes(big);
        byte[] small = "small".getBytes(StandardCharsets.UTF_8);
        ch.basicPublish("", queue, null, big);
        ch.basicPublish("", queue, null, small);
        // Publishes and gets on one channel are handled in order: the messages are there.
        for (byte[] want : new byte[][] {big, small}) {
            GetResponse got = ch.basicGet(queue, true);
            assertNotNull(got, "a message");
            assertArrayEquals(want, got.getBody());
        }
    }

    @Test
    void aPasswordLoginOverTls() throws Exception {
        try (Connection conn = factory(false).newConnection("interop-java-tls")) {
            roundTrip(conn);
        }
    }

    @Test
    void externalLogsInAsTheUserTheCertificateNames() throws Exception {
        ConnectionFactory f = factory(true);
        f.setSaslConfig(DefaultSaslConfig.EXTERNAL);
        try (Connection conn = f.newConnection("interop-java-tls-external")) {
            roundTrip(conn);
        }
    }

    @Test
    void externalIsNotOfferedWithoutAClientCertificate() throws Exception {
        ConnectionFactory f = factory(false);
        f.setSaslConfig(DefaultSaslConfig.EXTERNAL);
        // The client finds no EXTERNAL among the server's mechanisms.
        assertThrows(java.io.IOException.class, () -> f.newConnection("interop-java-no-cert"));
    }
}
