package interop.spring;

import java.util.UUID;

/**
 * Every queue and exchange name carries a per-run suffix, so that the suite can share a broker
 * with anything else; {@link Cleanup} deletes them all when the application stops.
 */
public final class Names {
    public static final String PREFIX =
            "interop.spring." + UUID.randomUUID().toString().replace("-", "").substring(0, 10) + ".";

    private Names() {}

    public static String of(String label) {
        return PREFIX + label;
    }
}
