/**
 * The local stack itself: health, idempotence, and failing fast with the key or component named.
 * Runs against the stack `encore test` started; the failure cases use a data folder of their own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type Config, loadConfig } from '../../core/config.ts';
import { ErrorCodes, isEncoreError } from '../../core/errors.ts';
import { clickhouse } from '../../stack/clickhouse.ts';
import { isAlive } from '../../stack/daemon.ts';
import { kafka } from '../../stack/kafka.ts';
import { schemaRegistry } from '../../stack/registry.ts';
import { down, status, up } from '../../stack/stack.ts';

const config = loadConfig();

/** A config with its own data folder and free ports, so failures never touch the running stack. */
async function scratchConfig(stack: Partial<Config['stack']> = {}): Promise<Config> {
  const [port, securePort, controllerPort] = [await freePort(), await freePort(), await freePort()];
  return {
    ...config,
    kafka: { ...config.kafka, port, securePort, controllerPort },
    stack: { ...config.stack, dataDir: mkdtempSync(path.join(tmpdir(), 'encore-stack-')), ...stack },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function failsWith(code: string, ...patterns: RegExp[]) {
  return (error: unknown) => {
    assert.ok(isEncoreError(error), String(error));
    assert.equal(error.code, code, error.message);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  };
}

describe('local stack', () => {
  it('reports Kafka, the schema registry and ClickHouse healthy, each with its pid and memory', async () => {
    const statuses = await status(config);
    assert.deepEqual(
      statuses.map((s) => [s.name, s.state]),
      [
        ['kafka', 'healthy'],
        ['schema-registry', 'healthy'],
        ['clickhouse', 'healthy'],
      ],
    );
    for (const s of statuses) {
      assert.ok(s.pid && isAlive(s.pid), `${s.name} has a live pid`);
      assert.ok((s.memoryMb ?? 0) > 10, `${s.name} reports its resident memory`);
    }
  });

  it('leaves healthy servers alone on a second up', async () => {
    const before = await status(config);
    const results = await up(config);
    assert.deepEqual(
      results.map((r) => r.action),
      ['already-running', 'already-running', 'already-running'],
    );
    assert.deepEqual(
      (await status(config)).map((s) => s.pid),
      before.map((s) => s.pid),
    );
  });

  it('refuses a port held by another process, naming the config key', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const scratch = await scratchConfig();
      scratch.kafka.port = port;
      await assert.rejects(
        up(scratch, [kafka]),
        failsWith(ErrorCodes.STACK_PORT_IN_USE, /^kafka: /, new RegExp(`port ${port}`), /kafka\.port/),
      );
    } finally {
      blocker.close();
    }
  });

  it('fails fast when the configured Java is missing, naming the component and the key', async () => {
    await assert.rejects(
      up(await scratchConfig({ javaHome: '/nonexistent/jdk' }), [kafka]),
      failsWith(ErrorCodes.STACK_JAVA_MISSING, /^kafka: /, /stack\.javaHome/),
    );
    await assert.rejects(
      up(await scratchConfig({ registryJavaHome: '/nonexistent/jdk' }), [schemaRegistry]),
      failsWith(ErrorCodes.STACK_JAVA_MISSING, /^schema-registry: /, /stack\.registryJavaHome/),
    );
  });

  it('names the component and its log file when a server dies during start', async () => {
    const scratch = await scratchConfig();
    // A broker whose storage belongs to another node id refuses to start.
    const storage = path.join(scratch.stack.dataDir, 'kafka', 'data');
    mkdirSync(storage, { recursive: true });
    writeFileSync(
      path.join(storage, 'meta.properties'),
      'version=1\nnode.id=7\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAA\n',
    );
    await assert.rejects(
      up(scratch, [kafka]),
      failsWith(
        ErrorCodes.STACK_COMPONENT_FAILED,
        /^kafka: the server exited during start/,
        new RegExp(path.join(scratch.stack.dataDir, 'kafka', 'server.log').replaceAll('/', '\\/')),
      ),
    );
  });

  it('stops only processes it started, even when a pid file names another live process', async () => {
    const scratch = await scratchConfig();
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const home = path.join(scratch.stack.dataDir, 'clickhouse');
      mkdirSync(home, { recursive: true });
      writeFileSync(path.join(home, 'server.pid'), `${stranger.pid}\n`);
      const results = await down(scratch, [clickhouse]);
      assert.deepEqual(results, [{ name: 'clickhouse', action: 'not-running' }]);
      assert.ok(isAlive(stranger.pid!), 'the unrelated process is still running');
    } finally {
      stranger.kill();
    }
  });
});
