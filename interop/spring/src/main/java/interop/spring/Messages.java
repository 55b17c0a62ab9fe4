package interop.spring;

import java.math.BigDecimal;
import java.util.List;

/** The application's message types, sent as JSON by Jackson2JsonMessageConverter. */
public final class Messages {
    private Messages() {}

    public record Order(String id, String item, int quantity, BigDecimal price, List<String> tags) {}

    public record Quote(String symbol) {}

    public record Price(String symbol, long cents, String pricedBy) {}
}
