/**
 * docker-compose.yml and the Dockerfile against the config schema: the encore service may only set
 * ENCORE_* variables that are config keys (any other stops the job at start), must point the job at the
 * three servers of the file, and the servers' published ports must be the config defaults, so host tools
 * with the default config reach the same servers. No Docker engine is needed: the files are parsed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { configLeaves, envName, loadConfig } from '../../core/config.ts';

const root = new URL('../../', import.meta.url);
const repoRoot = fileURLToPath(root);
const composeText = readFileSync(new URL('docker-compose.yml', root), 'utf8');
const compose = asRecord(parse(composeText) as unknown, 'docker-compose.yml');
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');

const SERVERS = ['kafka', 'schema-registry', 'clickhouse'] as const;
const configEnvNames = new Set(configLeaves().map((leaf) => envName(leaf.path)));
const defaults = loadConfig({ env: {} });

function asRecord(value: unknown, what: string): Record<string, unknown> {
  assert.ok(
    typeof value === 'object' && value !== null && !Array.isArray(value),
    `${what} should be a mapping, got ${JSON.stringify(value)}`,
  );
  return value as Record<string, unknown>;
}

function service(name: string): Record<string, unknown> {
  return asRecord(asRecord(compose.services, 'services')[name], `service ${name}`);
}

/** A service's environment as written (map or KEY=VALUE list); `undefined`: passed through from the shell. */
function environment(name: string): Map<string, string | undefined> {
  const raw = service(name).environment;
  const env = new Map<string, string | undefined>();
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const text = String(entry);
      const eq = text.indexOf('=');
      if (eq === -1) env.set(text, undefined);
      else env.set(text.slice(0, eq), text.slice(eq + 1));
    }
  } else if (raw !== undefined) {
    for (const [key, value] of Object.entries(asRecord(raw, `${name}.environment`))) {
      env.set(key, value === null ? undefined : String(value));
    }
  }
  return env;
}

// Compose interpolation: $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err},
// ${NAME?err}, ${NAME:+alt}, ${NAME+alt} and $NAME.
const INTERPOLATION = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

function referencedVariables(text: string): string[] {
  return [...text.matchAll(INTERPOLATION)].map((m) => m[1] ?? m[4]).filter((name) => name !== undefined);
}

/** The value compose gives `text` when none of the variables it names is set. */
function withDefaults(text: string): string {
  return text.replace(INTERPOLATION, (match, braced?: string, operator?: string, argument?: string) => {
    if (match === '$$') return '$';
    if (operator?.endsWith('-')) return argument ?? '';
    if (operator?.endsWith('?')) {
      assert.fail(`\${${braced}} is required (${argument}); the file should give it a default`);
    }
    return '';
  });
}

function resolvedEnvironment(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of environment(name)) {
    if (value !== undefined) env[key] = withDefaults(value);
  }
  return env;
}

type PortMapping = { hostIp?: string; published: number; target: number };

/** The ports a service publishes on the host, from the short ("[ip:]published:target[/proto]") or long syntax. */
function publishedPorts(name: string): PortMapping[] {
  const raw = service(name).ports ?? [];
  assert.ok(Array.isArray(raw), `${name}.ports should be a list`);
  const mappings: PortMapping[] = [];
  for (const entry of raw) {
    if (typeof entry === 'object' && entry !== null) {
      const long = entry as Record<string, unknown>;
      if (long.published === undefined) continue;
      const mapping: PortMapping = { published: Number(long.published), target: Number(long.target) };
      if (typeof long.host_ip === 'string') mapping.hostIp = long.host_ip;
      mappings.push(mapping);
      continue;
    }
    const text = withDefaults(String(entry)).replace(/\/(tcp|udp)$/, '');
    const ipv6 = /^\[([^\]]+)\]:(.*)$/.exec(text);
    const parts = ipv6 ? [ipv6[1]!, ...ipv6[2]!.split(':')] : text.split(':');
    assert.ok(
      parts.every((part) => !part.includes('-')),
      `${name}: port ranges are not checked here (${text})`,
    );
    if (parts.length === 1) continue; // a container port only: published on a random host port
    const [target, published, hostIp] = [parts.at(-1)!, parts.at(-2)!, parts.at(-3)];
    const mapping: PortMapping = { published: Number(published), target: Number(target) };
    if (hostIp) mapping.hostIp = hostIp;
    mappings.push(mapping);
  }
  for (const m of mappings) {
    assert.ok(
      Number.isInteger(m.published) && Number.isInteger(m.target),
      `${name}: bad port ${JSON.stringify(m)}`,
    );
  }
  return mappings;
}

/** Kafka listeners "NAME://host:port,..." as a map from listener name to host and port. */
function listeners(value: string | undefined): Map<string, { host: string; port: number }> {
  const out = new Map<string, { host: string; port: number }>();
  for (const item of (value ?? '').split(',').filter((s) => s.trim() !== '')) {
    const match = /^([A-Za-z0-9_]+):\/\/(.*):(\d+)$/.exec(item.trim());
    assert.ok(match, `unreadable listener ${item}`);
    out.set(match[1]!, { host: match[2]!, port: Number(match[3]) });
  }
  return out;
}

/** The instructions of the Dockerfile's last stage, with line continuations joined. */
function finalStage(): { instruction: string; args: string }[] {
  const lines = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const parsed = lines.map((line) => {
    const space = line.search(/\s/);
    return { instruction: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() };
  });
  const lastFrom = parsed.findLastIndex((p) => p.instruction === 'FROM');
  assert.notEqual(lastFrom, -1, 'the Dockerfile has no FROM');
  return parsed.slice(lastFrom);
}

describe('docker-compose.yml', () => {
  it('defines kafka, schema-registry, clickhouse and encore', () => {
    for (const name of [...SERVERS, 'encore']) service(name);
  });

  it('gives the encore service only ENCORE_* variables that are config keys', () => {
    const named = new Set<string>();
    for (const [key, value] of environment('encore')) {
      if (key.startsWith('ENCORE_')) named.add(key);
      for (const ref of referencedVariables(value ?? '')) if (ref.startsWith('ENCORE_')) named.add(ref);
    }
    assert.ok(named.size > 0, 'the encore service sets no ENCORE_* variable');
    assert.deepEqual(
      [...named].filter((name) => !configEnvNames.has(name)),
      [],
      'not config keys (see configLeaves() in core/config.ts)',
    );
  });

  it('names only ENCORE_* variables that are config keys anywhere in the file', () => {
    const unknown = referencedVariables(composeText).filter(
      (name) => name.startsWith('ENCORE_') && !configEnvNames.has(name),
    );
    assert.deepEqual(unknown, []);
  });

  it('sets the host and port of Kafka, the schema registry and ClickHouse for the job', () => {
    const env = resolvedEnvironment('encore');
    const required = [
      'ENCORE_KAFKA_HOST',
      'ENCORE_KAFKA_PORT',
      'ENCORE_SCHEMA_REGISTRY_HOST',
      'ENCORE_SCHEMA_REGISTRY_PORT',
      'ENCORE_CLICKHOUSE_HOST',
      'ENCORE_CLICKHOUSE_HTTP_PORT',
    ];
    assert.deepEqual(
      required.filter((name) => !env[name]),
      [],
      'missing or empty in the encore service',
    );
    // Each host is the service of this file that runs that server.
    assert.equal(env.ENCORE_KAFKA_HOST, 'kafka');
    assert.equal(env.ENCORE_SCHEMA_REGISTRY_HOST, 'schema-registry');
    assert.equal(env.ENCORE_CLICKHOUSE_HOST, 'clickhouse');
  });

  it('points the job at ports the servers listen on inside the network', () => {
    const env = resolvedEnvironment('encore');
    // Kafka: the job's bootstrap address is advertised by a listener the broker binds on that port,
    // so the broker's metadata sends the job back to an address it can reach.
    const kafkaEnv = resolvedEnvironment('kafka');
    const bound = listeners(kafkaEnv.KAFKA_LISTENERS);
    const advertised = listeners(kafkaEnv.KAFKA_ADVERTISED_LISTENERS);
    const internal = [...advertised].find(
      ([, a]) => a.host === env.ENCORE_KAFKA_HOST && a.port === Number(env.ENCORE_KAFKA_PORT),
    );
    assert.ok(internal, `no advertised listener is ${env.ENCORE_KAFKA_HOST}:${env.ENCORE_KAFKA_PORT}`);
    assert.equal(bound.get(internal[0])?.port, Number(env.ENCORE_KAFKA_PORT));
    assert.equal(kafkaEnv.KAFKA_INTER_BROKER_LISTENER_NAME, internal[0]);

    // The registry and ClickHouse: the job's port is the container side of their published ports.
    const registryTargets = publishedPorts('schema-registry').map((m) => m.target);
    assert.ok(registryTargets.includes(Number(env.ENCORE_SCHEMA_REGISTRY_PORT)));
    assert.equal(resolvedEnvironment('schema-registry').QUARKUS_HTTP_PORT, env.ENCORE_SCHEMA_REGISTRY_PORT);
    const clickhouseTargets = publishedPorts('clickhouse').map((m) => m.target);
    assert.ok(clickhouseTargets.includes(Number(env.ENCORE_CLICKHOUSE_HTTP_PORT)));
  });

  it('publishes the servers on the config default ports', () => {
    const published = (name: string) =>
      publishedPorts(name)
        .map((m) => m.published)
        .sort((a, b) => a - b);
    assert.deepEqual(published('kafka'), [defaults.kafka.port]);
    assert.deepEqual(published('schema-registry'), [defaults.schemaRegistry.port]);
    assert.deepEqual(
      published('clickhouse'),
      [defaults.clickhouse.httpPort, defaults.clickhouse.tcpPort].sort((a, b) => a - b),
    );
  });

  it('advertises the published Kafka port to host clients on the listener behind it', () => {
    const kafkaEnv = resolvedEnvironment('kafka');
    const bound = listeners(kafkaEnv.KAFKA_LISTENERS);
    const advertised = listeners(kafkaEnv.KAFKA_ADVERTISED_LISTENERS);
    const [mapping] = publishedPorts('kafka');
    assert.ok(mapping, 'kafka publishes no port');
    const behind = [...bound].find(([, l]) => l.port === mapping.target);
    assert.ok(behind, `no Kafka listener binds the published port's target ${mapping.target}`);
    const external = advertised.get(behind[0]);
    assert.ok(external, `listener ${behind[0]} is not advertised`);
    assert.equal(external.port, mapping.published);
    assert.equal(external.host, mapping.hostIp ?? defaults.kafka.host);
  });

  it('loads as a valid config from the encore service environment, with defaults for unset variables', () => {
    const env = resolvedEnvironment('encore');
    const config = loadConfig({ env });
    assert.equal(config.kafka.host, env.ENCORE_KAFKA_HOST);
    assert.equal(config.kafka.port, Number(env.ENCORE_KAFKA_PORT));
    assert.equal(config.schemaRegistry.host, env.ENCORE_SCHEMA_REGISTRY_HOST);
    assert.equal(config.schemaRegistry.port, Number(env.ENCORE_SCHEMA_REGISTRY_PORT));
    assert.equal(config.clickhouse.host, env.ENCORE_CLICKHOUSE_HOST);
    assert.equal(config.clickhouse.httpPort, Number(env.ENCORE_CLICKHOUSE_HTTP_PORT));
  });

  it('gives ClickHouse the same user and password as the job, from ENCORE_CLICKHOUSE_USERNAME/PASSWORD', () => {
    const clickhouse = environment('clickhouse');
    const job = resolvedEnvironment('encore');
    const server = resolvedEnvironment('clickhouse');
    assert.deepEqual(referencedVariables(clickhouse.get('CLICKHOUSE_USER') ?? ''), [
      'ENCORE_CLICKHOUSE_USERNAME',
    ]);
    assert.deepEqual(referencedVariables(clickhouse.get('CLICKHOUSE_PASSWORD') ?? ''), [
      'ENCORE_CLICKHOUSE_PASSWORD',
    ]);
    assert.equal(server.CLICKHOUSE_USER, job.ENCORE_CLICKHOUSE_USERNAME);
    assert.equal(server.CLICKHOUSE_PASSWORD, job.ENCORE_CLICKHOUSE_PASSWORD);
  });

  it('starts the job only once the three servers are healthy', () => {
    const dependsOn = asRecord(service('encore').depends_on, 'encore.depends_on');
    for (const name of SERVERS) {
      assert.equal(asRecord(dependsOn[name], `encore.depends_on.${name}`).condition, 'service_healthy', name);
    }
  });

  it('gives every service a healthcheck', () => {
    for (const name of [...SERVERS, 'encore']) {
      const healthcheck = asRecord(service(name).healthcheck, `${name}.healthcheck`);
      assert.notEqual(healthcheck.disable, true, name);
      const test = healthcheck.test;
      assert.ok(Array.isArray(test) && test.length > 1 && test[0] !== 'NONE', `${name}: no healthcheck test`);
    }
  });

  it('builds the encore service from the Dockerfile and runs `cli/encore.ts run`', () => {
    const encore = service('encore');
    const build =
      typeof encore.build === 'string' ? { context: encore.build } : asRecord(encore.build, 'build');
    assert.equal(build.context, '.');
    assert.equal(build.dockerfile ?? 'Dockerfile', 'Dockerfile');
    assert.deepEqual(encore.command, ['node', 'cli/encore.ts', 'run']);
  });
});

describe('Dockerfile', () => {
  it('runs `node cli/encore.ts run` as the node user', () => {
    const stage = finalStage();
    const cmd = stage.findLast((p) => p.instruction === 'CMD');
    assert.ok(cmd, 'the final stage has no CMD');
    assert.deepEqual(JSON.parse(cmd.args), ['node', 'cli/encore.ts', 'run']);
    assert.equal(stage.findLast((p) => p.instruction === 'USER')?.args, 'node');
  });

  it('copies every folder the job imports into the final stage', () => {
    const copied = finalStage()
      .filter((p) => p.instruction === 'COPY' && !p.args.startsWith('--from'))
      .map((p) => p.args.split(/\s+/)[0]);
    const needed = ['package.json', ...importedFolders('cli/encore.ts')];
    assert.ok(needed.includes('topology'), 'the import walk found the job');
    for (const folder of needed) assert.ok(copied.includes(folder), `${folder} is not copied into the image`);
  });
});

/** Top-level folders reached from `entry` through relative imports, i.e. what the image must contain. */
function importedFolders(entry: string): Set<string> {
  const folders = new Set<string>();
  const queue = [path.join(repoRoot, entry)];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    folders.add(path.relative(repoRoot, file).split(path.sep)[0]!);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+\.ts)'/g)) {
      queue.push(path.resolve(path.dirname(file), match[1]!));
    }
  }
  return folders;
}
