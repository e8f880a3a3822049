package dev.encore.bench;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.SessionStore;

/**
 * The bench/streams job on Kafka Streams (see bench/streams/README.md): listening events joined with the
 * user-profile table, counted per 30-minute session, one JSON output record per input event.
 *
 * <p>Usage: {@code java -jar session-count.jar <listening-event.avsc> <user-profile.avsc>}, configured by
 * the BENCH_* environment variables.
 */
public final class SessionCount {
  private static final Duration INACTIVITY_GAP = Duration.ofMinutes(30);

  private SessionCount() {}

  /** The running state of one session; {@code country} is the profile's, as of the session's last event. */
  record Session(long count, String country) {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: session-count <listening-event.avsc> <user-profile.avsc>");
      System.exit(2);
    }
    Schema eventSchema = parseSchema(args[0]);
    Schema profileSchema = parseSchema(args[1]);

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, env("BENCH_APPLICATION_ID"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, env("BENCH_BOOTSTRAP"));
    props.put(
        StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        "exactly-once".equals(env("BENCH_GUARANTEE"))
            ? StreamsConfig.EXACTLY_ONCE_V2
            : StreamsConfig.AT_LEAST_ONCE);
    // The contract asks for one output record per input event: a record cache would collapse updates.
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
    // EOS's default. At-least-once defaults to 30 s, which would hide progress from the harness's 200 ms
    // offset sampling, and Encore's runtime commits every 100 ms under both guarantees.
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.STATE_DIR_CONFIG, env("BENCH_STATE_DIR"));
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    // Lets the profile table use its compacted source topic as changelog instead of copying every profile
    // into a second topic, as Encore's runtime does for tables.
    props.put(StreamsConfig.TOPOLOGY_OPTIMIZATION_CONFIG, StreamsConfig.OPTIMIZE);

    Topology topology =
        topology(
            env("BENCH_EVENTS_TOPIC"),
            env("BENCH_PROFILES_TOPIC"),
            env("BENCH_OUTPUT_TOPIC"),
            eventSchema,
            profileSchema,
            props);
    KafkaStreams streams = new KafkaStreams(topology, props);

    AtomicInteger exitStatus = new AtomicInteger(0);
    CountDownLatch failed = new CountDownLatch(1);
    streams.setUncaughtExceptionHandler(
        error -> {
          System.err.println("session-count: stream thread failed: " + error);
          error.printStackTrace();
          return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.setStateListener(
        (now, before) -> {
          if (now == KafkaStreams.State.ERROR) failed.countDown();
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  boolean closed = streams.close(Duration.ofSeconds(60));
                  // After SIGTERM the JVM would exit with 143; halting here is the only way to report
                  // a clean close (exit from inside a hook blocks forever).
                  Runtime.getRuntime().halt(closed ? exitStatus.get() : 1);
                },
                "close-streams"));

    streams.start();
    failed.await();
    System.err.println("session-count: Kafka Streams is in state ERROR, exiting");
    exitStatus.set(1);
    System.exit(1);
  }

  static Topology topology(
      String eventsTopic,
      String profilesTopic,
      String outputTopic,
      Schema eventSchema,
      Schema profileSchema,
      Properties props) {
    Serde<GenericRecord> eventSerde = wireFormatSerde(eventSchema);
    Serde<GenericRecord> profileSerde = wireFormatSerde(profileSchema);
    Serde<Session> sessionSerde = Serdes.serdeFrom(new SessionSerializer(), new SessionDeserializer());

    StreamsBuilder builder = new StreamsBuilder();
    KTable<String, GenericRecord> profiles =
        builder.table(
            profilesTopic,
            Consumed.with(Serdes.String(), profileSerde).withTimestampExtractor(new BeforeAnyEvent()),
            Materialized.<String, GenericRecord, KeyValueStore<Bytes, byte[]>>as("profiles")
                .withKeySerde(Serdes.String())
                .withValueSerde(profileSerde));

    builder.stream(
            eventsTopic,
            Consumed.with(Serdes.String(), eventSerde).withTimestampExtractor(new EventTime()))
        // The joined value is the event's contribution to its session; a null would be dropped by the
        // aggregation, so a profile without a country still yields a Session.
        .join(
            profiles,
            (event, profile) -> new Session(1, string(profile.get("country"))),
            Joined.with(Serdes.String(), eventSerde, profileSerde))
        .groupByKey(Grouped.with(Serdes.String(), sessionSerde))
        .windowedBy(SessionWindows.ofInactivityGapAndGrace(INACTIVITY_GAP, Duration.ZERO))
        .aggregate(
            () -> new Session(0, null),
            (user, event, session) -> new Session(session.count() + event.count(), event.country()),
            (user, older, newer) -> new Session(older.count() + newer.count(), newer.country()),
            Materialized.<String, Session, SessionStore<Bytes, byte[]>>as("sessions")
                .withKeySerde(Serdes.String())
                .withValueSerde(sessionSerde))
        .toStream()
        // When an event extends or bridges sessions, the replaced sessions are forwarded as null values
        // (deletions) besides the new one: dropped, so each event yields exactly one record.
        .filter((window, session) -> session != null)
        .map((window, session) -> KeyValue.pair(window.key(), json(window, session)))
        .to(outputTopic, Produced.with(Serdes.String(), Serdes.String()));
    return builder.build(props);
  }

  /** Event time is the Avro {@code timestamp} field, not the record timestamp. */
  static final class EventTime implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      return (Long) ((GenericRecord) record.value()).get("timestamp");
    }
  }

  /**
   * Kafka Streams hands a task its records lowest timestamp first across the task's partitions. Profiles
   * are pre-filled before any event and every event must find its user's profile, but their record
   * timestamps (produce time) or updatedAt may be later than the events' timestamps, which would run the
   * events first against an empty table. Timestamp 0 makes the table load first: it is "the profile now",
   * not a versioned table.
   */
  static final class BeforeAnyEvent implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      return 0L;
    }
  }

  /**
   * Values in the Confluent wire format: magic byte 0, 4-byte schema id, Avro binary. The id is skipped:
   * the harness writes with exactly the schemas in schemas/avro, so the reader schema is the writer's.
   */
  static Serde<GenericRecord> wireFormatSerde(Schema schema) {
    GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(schema);
    GenericDatumWriter<GenericRecord> writer = new GenericDatumWriter<>(schema);
    Deserializer<GenericRecord> deserializer =
        (topic, data) -> {
          if (data == null) return null;
          if (data.length < 5 || data[0] != 0) {
            throw new SerializationException(
                "value in " + topic + " is not in the Confluent wire format (" + data.length + " bytes)");
          }
          try {
            // A fresh record per value: Kafka Streams buffers deserialized records before processing them.
            return reader.read(null, DecoderFactory.get().binaryDecoder(data, 5, data.length - 5, null));
          } catch (IOException | RuntimeException e) {
            throw new SerializationException("malformed " + schema.getName() + " in " + topic, e);
          }
        };
    // Only the local state store sees these bytes (its changelog is the source topic), so the schema id
    // written here is never looked up.
    Serializer<GenericRecord> serializer =
        (topic, value) -> {
          if (value == null) return null;
          try {
            ByteArrayOutputStream out = new ByteArrayOutputStream(128);
            out.write(new byte[5]);
            BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
            writer.write(value, encoder);
            encoder.flush();
            return out.toByteArray();
          } catch (IOException e) {
            throw new SerializationException("cannot encode " + schema.getName(), e);
          }
        };
    return Serdes.serdeFrom(serializer, deserializer);
  }

  /** count (8 bytes), 1 if there is a country (else 0), the country as UTF-8. */
  static final class SessionSerializer implements Serializer<Session> {
    @Override
    public byte[] serialize(String topic, Session session) {
      if (session == null) return null;
      byte[] country =
          session.country() == null ? new byte[0] : session.country().getBytes(StandardCharsets.UTF_8);
      return ByteBuffer.allocate(9 + country.length)
          .putLong(session.count())
          .put((byte) (session.country() == null ? 0 : 1))
          .put(country)
          .array();
    }
  }

  static final class SessionDeserializer implements Deserializer<Session> {
    @Override
    public Session deserialize(String topic, byte[] data) {
      if (data == null) return null;
      ByteBuffer buffer = ByteBuffer.wrap(data);
      long count = buffer.getLong();
      String country =
          buffer.get() == 0 ? null : new String(data, 9, data.length - 9, StandardCharsets.UTF_8);
      return new Session(count, country);
    }
  }

  static String json(Windowed<String> window, Session session) {
    StringBuilder out = new StringBuilder(96).append("{\"user\":");
    quote(out, window.key());
    out.append(",\"start\":")
        .append(window.window().start())
        .append(",\"end\":")
        .append(window.window().end())
        .append(",\"count\":")
        .append(session.count())
        .append(",\"country\":");
    if (session.country() == null) out.append("null");
    else quote(out, session.country());
    return out.append('}').toString();
  }

  private static void quote(StringBuilder out, String s) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
        }
      }
    }
    out.append('"');
  }

  /** Avro strings decode as Utf8, not String. */
  private static String string(Object value) {
    return value == null ? null : value.toString();
  }

  private static Schema parseSchema(String path) throws IOException {
    return new Schema.Parser().parse(new File(path));
  }

  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      System.err.println("session-count: environment variable " + name + " is not set");
      System.exit(2);
    }
    return value;
  }
}
