/**
 * Every error Encore raises on purpose carries one of these codes, so callers (and operators reading logs)
 * can tell a bad config from a dead broker from a poison message without parsing messages.
 */
export const ErrorCodes = {
  /** A config file, an ENCORE_* variable or a CLI option is invalid; the message names the key. */
  CONFIG_INVALID: 'ENCORE_CONFIG_INVALID',
  /** A local-stack component (kafka, schema-registry, clickhouse) could not be installed or started. */
  STACK_COMPONENT_FAILED: 'ENCORE_STACK_COMPONENT_FAILED',
  /** A port the stack needs is held by a process the stack did not start. */
  STACK_PORT_IN_USE: 'ENCORE_STACK_PORT_IN_USE',
  /** No suitable Java runtime was found for a JVM component. */
  STACK_JAVA_MISSING: 'ENCORE_STACK_JAVA_MISSING',
  /** The schema registry refused a schema as incompatible with the subject's earlier versions. */
  SCHEMA_INCOMPATIBLE: 'ENCORE_SCHEMA_INCOMPATIBLE',
  /** A record's bytes could not be decoded; the reason says why (see DeserializationReason). */
  DESERIALIZATION_FAILED: 'ENCORE_DESERIALIZATION_FAILED',
  /** A value could not be encoded with its schema. */
  SERIALIZATION_FAILED: 'ENCORE_SERIALIZATION_FAILED',
  /** Kafka refused or failed an operation (produce, commit, admin). */
  KAFKA_FAILED: 'ENCORE_KAFKA_FAILED',
  /** The schema registry could not be reached or refused a request (other than an incompatible schema). */
  REGISTRY_FAILED: 'ENCORE_REGISTRY_FAILED',
  /**
   * A server refused the configured credentials (a Kafka SASL login, a ClickHouse user and password), or the
   * client did not trust Kafka's TLS certificate; the message names the config keys to check.
   */
  AUTHENTICATION_FAILED: 'ENCORE_AUTHENTICATION_FAILED',
  /** ClickHouse refused or failed a query or insert. */
  CLICKHOUSE_FAILED: 'ENCORE_CLICKHOUSE_FAILED',
  /** A record failed in a topology processor and `streams.onProcessingError` is `stop`. */
  PROCESSING_FAILED: 'ENCORE_PROCESSING_FAILED',
  /** An output record could not be produced (serde failed, too large) and `streams.onProductionError` is `stop`. */
  PRODUCTION_FAILED: 'ENCORE_PRODUCTION_FAILED',
  /** A model version folder cannot be served: files missing, metadata invalid, or a feature spec the job does not compute. */
  MODEL_INVALID: 'ENCORE_MODEL_INVALID',
  /** onnxruntime failed to run a model. */
  INFERENCE_FAILED: 'ENCORE_INFERENCE_FAILED',
  /** Waiting for something (a server, a record) took longer than allowed. */
  TIMEOUT: 'ENCORE_TIMEOUT',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class EncoreError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EncoreError';
    this.code = code;
  }
}

/** Why a record's bytes could not be decoded; dead-letter records carry it. */
export type DeserializationReason =
  | 'EMPTY_PAYLOAD'
  | 'BAD_MAGIC_BYTE'
  | 'UNKNOWN_SCHEMA_ID'
  | 'SCHEMA_MISMATCH'
  | 'MALFORMED_AVRO'
  | 'INVALID_VALUE';

export class DeserializationError extends EncoreError {
  readonly reason: DeserializationReason;

  constructor(reason: DeserializationReason, message: string, options?: ErrorOptions) {
    super(ErrorCodes.DESERIALIZATION_FAILED, message, options);
    this.name = 'DeserializationError';
    this.reason = reason;
  }
}

export function isEncoreError(error: unknown, code?: ErrorCode): error is EncoreError {
  return error instanceof EncoreError && (code === undefined || error.code === code);
}
