package interop.spring;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * A small Spring Boot application that uses Spring AMQP the way applications do: topology
 * declared as beans, JSON messages, annotated listeners, publisher confirms and returns, RPC.
 * The tests under src/test drive it against the broker in AMQP_URL.
 */
@SpringBootApplication
public class InteropApplication {
    public static void main(String[] args) {
        SpringApplication.run(InteropApplication.class, args);
    }
}
