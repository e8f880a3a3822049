/**
 * Avro values in the Confluent wire format: one magic byte (0), the writer schema's registry id (4 bytes,
 * big-endian), then the Avro binary body. Reading resolves the writer schema against this build's reader
 * schema (the contract), so data written by an older or newer producer is read as long as the two are
 * compatible: a field added with a default is filled in, an unknown enum symbol becomes the default.
 */
import avro from 'avsc';
import { DeserializationError, EncoreError, ErrorCodes } from '../core/errors.ts';
import type { Contract } from './contracts.ts';
import type { SchemaRegistry } from './registry.ts';

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

export class AvroSerde<T> {
  private readonly registry: SchemaRegistry;
  private readonly subject: string;
  private readonly contract: Contract<T>;
  private readonly validate: ((value: T) => T) | undefined;
  private writerId: Promise<number> | undefined;
  /** Per writer id: how to turn its bytes into a reader value, or why it cannot be done. */
  private readonly readers = new Map<number, Promise<avro.Resolver | DeserializationError>>();
  /** The settled ones, read without awaiting (decoding runs once per record). */
  private readonly resolved = new Map<number, avro.Resolver | DeserializationError>();

  /**
   * `validate` checks what Avro cannot express (ranges, plausible timestamps) after decoding; it throws a
   * DeserializationError (INVALID_VALUE) so such a record is rejected like any other unreadable one.
   */
  constructor(
    registry: SchemaRegistry,
    subject: string,
    contract: Contract<T>,
    options: { validate?: (value: T) => T } = {},
  ) {
    this.registry = registry;
    this.subject = subject;
    this.contract = contract;
    this.validate = options.validate;
  }

  /** Registers the contract's schema (once) and returns its id; subsequent calls are free. */
  register(): Promise<number> {
    this.writerId ??= this.registry.register(this.subject, this.contract.schema).catch((error: unknown) => {
      this.writerId = undefined;
      throw error;
    });
    return this.writerId;
  }

  async serialize(value: T): Promise<Buffer> {
    const problems: string[] = [];
    if (
      !this.contract.type.isValid(value, { errorHook: (path) => problems.push(path.join('.') || '(root)') })
    ) {
      throw new EncoreError(
        ErrorCodes.SERIALIZATION_FAILED,
        `${this.contract.name}: invalid value at ${problems.join(', ')}`,
      );
    }
    const id = await this.register();
    const body = this.contract.type.toBuffer(value);
    const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
    out.writeUInt8(MAGIC_BYTE, 0);
    out.writeInt32BE(id, 1);
    body.copy(out, HEADER_BYTES);
    return out;
  }

  /** Decodes a wire-format value, or throws DeserializationError saying why it cannot be read. */
  async deserialize(bytes: Buffer | null): Promise<T> {
    if (!bytes || bytes.length === 0)
      throw new DeserializationError('EMPTY_PAYLOAD', 'the record has no value');
    if (bytes.length < HEADER_BYTES || bytes.readUInt8(0) !== MAGIC_BYTE) {
      throw new DeserializationError(
        'BAD_MAGIC_BYTE',
        `not in the Confluent wire format: first byte is ${bytes.length ? `0x${bytes.readUInt8(0).toString(16)}` : 'missing'}, expected 0x00 followed by a 4-byte schema id`,
      );
    }
    const id = bytes.readInt32BE(1);
    const resolver = this.resolved.get(id) ?? (await this.resolverFor(id));
    if (resolver instanceof DeserializationError) throw resolver;
    let value: T;
    try {
      // fromBuffer also rejects trailing bytes, so a truncated or padded body cannot pass as valid.
      value = this.contract.type.fromBuffer(bytes.subarray(HEADER_BYTES), resolver) as T;
    } catch (error) {
      throw new DeserializationError(
        'MALFORMED_AVRO',
        `the body does not decode with writer schema id ${id}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return this.validate ? this.validate(value) : value;
  }

  private resolverFor(id: number): Promise<avro.Resolver | DeserializationError> {
    let reader = this.readers.get(id);
    if (!reader) {
      reader = this.buildResolver(id);
      this.readers.set(id, reader);
      reader.then((settled) => this.resolved.set(id, settled)).catch(() => undefined);
      // A registry outage must not be remembered as "unknown id": only settled answers stay cached.
      reader.catch(() => this.readers.delete(id));
    }
    return reader;
  }

  private async buildResolver(id: number): Promise<avro.Resolver | DeserializationError> {
    const writerSchema = await this.registry.schemaById(this.subject, id);
    if (writerSchema === undefined) {
      return new DeserializationError(
        'UNKNOWN_SCHEMA_ID',
        `schema id ${id} is not known to the schema registry`,
      );
    }
    try {
      const writer = avro.Type.forSchema(writerSchema);
      return this.contract.type.createResolver(writer);
    } catch (error) {
      return new DeserializationError(
        'SCHEMA_MISMATCH',
        `writer schema id ${id} cannot be read as ${this.contract.name}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
}
