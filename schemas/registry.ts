/**
 * The one module that talks to the schema registry: any server with the Confluent REST API (the local stack
 * runs Apicurio Registry's ccompat API), through @confluentinc/schemaregistry's client.
 */
import { Compatibility, RestError, SchemaRegistryClient } from '@confluentinc/schemaregistry';
import type avro from 'avsc';
import { type Config, endpoints } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';

/** Levels under which every reader can read all data written with the previous schema. */
const AT_LEAST_BACKWARD = new Set<Compatibility>([
  Compatibility.BACKWARD,
  Compatibility.BACKWARD_TRANSITIVE,
  Compatibility.FULL,
  Compatibility.FULL_TRANSITIVE,
]);

export class SchemaRegistry {
  private readonly client: SchemaRegistryClient;
  private readonly url: string;
  private readonly compatibleSubjects = new Set<string>();

  constructor(config: Config) {
    this.url = endpoints(config).schemaRegistryUrl;
    this.client = new SchemaRegistryClient({ baseURLs: [this.url], maxRetries: 3, retriesWaitMs: 200 });
  }

  /**
   * Registers `schema` under `subject` (a no-op when already registered) and returns its global id.
   * The subject is held to at least BACKWARD compatibility first (a stricter level an operator chose is
   * kept), so a change that would break readers of the existing data is refused with SCHEMA_INCOMPATIBLE
   * instead of being registered.
   */
  async register(subject: string, schema: avro.Schema): Promise<number> {
    await this.ensureBackwardCompatible(subject);
    try {
      return await this.client.register(
        subject,
        { schemaType: 'AVRO', schema: JSON.stringify(schema) },
        false,
      );
    } catch (error) {
      if (error instanceof RestError && error.status === 409) {
        throw new EncoreError(
          ErrorCodes.SCHEMA_INCOMPATIBLE,
          `Schema registry refused the schema for ${subject} as incompatible with its earlier versions: ${error.message}`,
          { cause: error },
        );
      }
      throw registryError(`register ${subject}`, this.url, error);
    }
  }

  /** The writer schema behind a global id; undefined when the registry does not know the id. */
  async schemaById(subject: string, id: number): Promise<avro.Schema | undefined> {
    try {
      const info = await this.client.getBySubjectAndId(subject, id);
      return JSON.parse(info.schema) as avro.Schema;
    } catch (error) {
      if (error instanceof RestError && error.status === 404) return undefined;
      throw registryError(`look up schema id ${id}`, this.url, error);
    }
  }

  async compatibility(subject: string): Promise<Compatibility | undefined> {
    try {
      const config = await this.client.getConfig(subject);
      return config.compatibilityLevel ?? config.compatibility;
    } catch (error) {
      if (error instanceof RestError && error.status === 404) return undefined;
      throw registryError(`read the compatibility of ${subject}`, this.url, error);
    }
  }

  private async ensureBackwardCompatible(subject: string) {
    if (this.compatibleSubjects.has(subject)) return;
    const current = await this.compatibility(subject);
    if (current === undefined || !AT_LEAST_BACKWARD.has(current)) {
      try {
        await this.client.updateConfig(subject, { compatibility: Compatibility.BACKWARD });
      } catch (error) {
        throw registryError(`set BACKWARD compatibility on ${subject}`, this.url, error);
      }
    }
    this.compatibleSubjects.add(subject);
  }

  close(): void {
    this.client.close();
  }
}

function registryError(action: string, url: string, cause: unknown): EncoreError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new EncoreError(
    ErrorCodes.REGISTRY_FAILED,
    `Schema registry at ${url}: could not ${action}: ${message}`,
    {
      cause,
    },
  );
}
