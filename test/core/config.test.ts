import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configLeaves, endpoints, envName, loadConfig } from '../../core/config.ts';
import { ErrorCodes, isEncoreError } from '../../core/errors.ts';

function configFile(content: unknown): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'encore-config-')), 'encore.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function invalid(message: RegExp) {
  return (error: unknown) => {
    assert.ok(
      isEncoreError(error, ErrorCodes.CONFIG_INVALID),
      `expected CONFIG_INVALID, got ${String(error)}`,
    );
    assert.match(error.message, message);
    return true;
  };
}

describe('loadConfig', () => {
  it('gives the local stack defaults with no file and no environment', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.appId, 'encore');
    assert.equal(config.kafka.port, 9092);
    assert.deepEqual(endpoints(config), {
      kafkaBootstrap: '127.0.0.1:9092',
      schemaRegistryUrl: 'http://127.0.0.1:8081/apis/ccompat/v7',
      clickhouseUrl: 'http://127.0.0.1:8123',
    });
  });

  it('layers file values under environment values', () => {
    const file = configFile({ appId: 'from-file', kafka: { port: 19092, partitions: 8 } });
    const config = loadConfig({ file, env: { ENCORE_KAFKA_PORT: '29092' } });
    assert.equal(config.appId, 'from-file');
    assert.equal(config.kafka.port, 29092);
    assert.equal(config.kafka.partitions, 8);
  });

  it('reads the file named by ENCORE_CONFIG', () => {
    const file = configFile({ clickhouse: { database: 'analytics' } });
    assert.equal(loadConfig({ env: { ENCORE_CONFIG: file } }).clickhouse.database, 'analytics');
  });

  it('rejects an unknown key in the file, naming it', () => {
    const file = configFile({ kafka: { prot: 1 } });
    assert.throws(() => loadConfig({ file, env: {} }), invalid(/unknown config key kafka\.prot/));
  });

  it('rejects an unknown ENCORE_ variable and suggests the closest one', () => {
    assert.throws(
      () => loadConfig({ env: { ENCORE_CLICKHOUSE_HTTP_PROT: '1' } }),
      invalid(
        /Unknown environment variable ENCORE_CLICKHOUSE_HTTP_PROT \(did you mean ENCORE_CLICKHOUSE_HTTP_PORT\?\)/,
      ),
    );
  });

  it('names the key and the variable when a value is invalid', () => {
    assert.throws(
      () => loadConfig({ env: { ENCORE_KAFKA_PORT: 'ninety' } }),
      invalid(/config key kafka\.port \(from ENCORE_KAFKA_PORT="ninety"\)/),
    );
    assert.throws(() => loadConfig({ env: { ENCORE_KAFKA_PORT: '70000' } }), invalid(/kafka\.port/));
    assert.throws(() => loadConfig({ env: { ENCORE_APP_ID: 'Bad Id' } }), invalid(/config key appId/));
  });

  it('rejects a file that is not a JSON object', () => {
    assert.throws(() => loadConfig({ file: configFile('[1,2]'), env: {} }), invalid(/not a JSON object/));
    assert.throws(() => loadConfig({ file: '/nonexistent/encore.json', env: {} }), invalid(/Cannot read/));
  });
});

describe('envName', () => {
  it('derives one upper-snake variable per key path', () => {
    assert.equal(envName(['clickhouse', 'httpPort']), 'ENCORE_CLICKHOUSE_HTTP_PORT');
    assert.equal(envName(['schemaRegistry', 'managementPort']), 'ENCORE_SCHEMA_REGISTRY_MANAGEMENT_PORT');
    assert.equal(envName(['appId']), 'ENCORE_APP_ID');
  });

  it('maps every leaf to a distinct variable', () => {
    const names = configLeaves().map((leaf) => envName(leaf.path));
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.includes('ENCORE_STACK_CACHE_DIR'), 'bin/encore reads ENCORE_STACK_CACHE_DIR');
  });
});
