package interop.jms;

import java.io.Serializable;
import java.util.List;

/** An application class sent in an ObjectMessage. */
public record Parcel(String id, int weight, List<String> labels) implements Serializable {
}
