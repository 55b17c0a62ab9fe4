package interop.jms.spring;

import java.util.UUID;
import org.springframework.stereotype.Component;

/** Queue names with a per-run suffix, so runs can share a broker (see {@link Cleanup}). */
@Component("names")
public class Names {

    private final String suffix = UUID.randomUUID().toString().substring(0, 8);

    public String greetings() {
        return "spring.greetings." + suffix;
    }

    public String orders() {
        return "spring.orders." + suffix;
    }

    public String quotes() {
        return "spring.quotes." + suffix;
    }

    public String[] all() {
        return new String[] {greetings(), orders(), quotes()};
    }
}
