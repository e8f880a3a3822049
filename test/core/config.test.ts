import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configLeaves, endpoints, envName, loadConfig } from '../../core/config.ts';
import { ErrorCodes, isEncoreError } from '../../core/errors.ts';

function configFile(content: unknown, mode = 0o644): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'encore-config-')), 'encore.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  chmodSync(file, mode);
  return file;
}

function secretFile(content: string, mode: number): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'encore-secret-')), 'password');
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

const SECRET = 'tr0ub4dor-and-3';

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

describe('loadConfig secrets', () => {
  it('reads a password from a file of mode 600, without its trailing newline', () => {
    const config = loadConfig({
      env: {
        ENCORE_CLICKHOUSE_PASSWORD_FILE: secretFile(`${SECRET}\n`, 0o600),
        ENCORE_KAFKA_SECURITY_PASSWORD_FILE: secretFile(SECRET, 0o600),
      },
    });
    assert.equal(config.clickhouse.password, SECRET);
    assert.equal(config.kafka.security.password, SECRET);
  });

  it('takes a password from the environment', () => {
    const config = loadConfig({
      env: { ENCORE_CLICKHOUSE_PASSWORD: SECRET, ENCORE_KAFKA_SECURITY_PASSWORD: SECRET },
    });
    assert.equal(config.clickhouse.password, SECRET);
    assert.equal(config.kafka.security.password, SECRET);
  });

  it('rejects a password file that other users can read, naming the key, the file and the fix', () => {
    const file = secretFile(SECRET, 0o644);
    for (const [variable, key] of [
      ['ENCORE_CLICKHOUSE_PASSWORD_FILE', 'clickhouse\\.passwordFile'],
      ['ENCORE_KAFKA_SECURITY_PASSWORD_FILE', 'kafka\\.security\\.passwordFile'],
    ] as const) {
      assert.throws(
        () => loadConfig({ env: { [variable]: file } }),
        invalid(
          new RegExp(`config key ${key} \\(from ${variable}=.*\\): ${file} is readable .* chmod 600 ${file}`),
        ),
      );
    }
  });

  it('rejects a missing or empty password file, naming the key', () => {
    assert.throws(
      () => loadConfig({ env: { ENCORE_CLICKHOUSE_PASSWORD_FILE: '/nonexistent/password' } }),
      invalid(/config key clickhouse\.passwordFile .*cannot read \/nonexistent\/password/),
    );
    assert.throws(
      () => loadConfig({ env: { ENCORE_CLICKHOUSE_PASSWORD_FILE: secretFile('\n', 0o600) } }),
      invalid(/config key clickhouse\.passwordFile .* is empty/),
    );
  });

  it('rejects a password given both directly and by file, without showing it', () => {
    assert.throws(
      () =>
        loadConfig({
          env: {
            ENCORE_CLICKHOUSE_PASSWORD: SECRET,
            ENCORE_CLICKHOUSE_PASSWORD_FILE: secretFile(SECRET, 0o600),
          },
        }),
      (error: unknown) => {
        invalid(/clickhouse\.password is set too; give the password one way only/)(error);
        assert.ok(!(error as Error).message.includes(SECRET), (error as Error).message);
        return true;
      },
    );
  });

  it('rejects a config file holding a password that other users can read, naming the key and the file', () => {
    const file = configFile({ clickhouse: { password: SECRET } }, 0o644);
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (error: unknown) => {
        invalid(new RegExp(`config key clickhouse\\.password is set in ${file}, .* chmod 600 ${file}`))(
          error,
        );
        assert.ok(!(error as Error).message.includes(SECRET), (error as Error).message);
        return true;
      },
    );
    assert.throws(
      () => loadConfig({ file: configFile({ kafka: { security: { password: SECRET } } }, 0o604), env: {} }),
      invalid(/config key kafka\.security\.password is set in .*chmod 600/),
    );
  });

  it('accepts a config file holding a password at mode 600, and one without passwords at any mode', () => {
    const file = configFile({ clickhouse: { username: 'encore', password: SECRET } }, 0o600);
    assert.equal(loadConfig({ file, env: {} }).clickhouse.password, SECRET);
    assert.equal(loadConfig({ file: configFile({ appId: 'open' }, 0o644), env: {} }).appId, 'open');
  });

  it('does not quote a config file that is not valid JSON (the text may hold a password)', () => {
    const file = configFile(`{"clickhouse": {"password": "${SECRET}" oops}}`, 0o600);
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (error: unknown) => {
        invalid(/is not a JSON object: invalid JSON at position \d+/)(error);
        assert.ok(!(error as Error).message.includes(SECRET), (error as Error).message);
        return true;
      },
    );
  });

  it('bootstraps from the secure port over SASL_SSL, and requires a user and a password for it', () => {
    const ca = secretFile('-----BEGIN CERTIFICATE-----\n', 0o644);
    const secure = {
      ENCORE_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      ENCORE_KAFKA_SECURITY_USERNAME: 'encore',
      ENCORE_KAFKA_SECURITY_PASSWORD: SECRET,
      ENCORE_KAFKA_SECURITY_CA_FILE: ca,
    };
    const config = loadConfig({ env: secure });
    assert.equal(endpoints(config).kafkaBootstrap, '127.0.0.1:9094');
    assert.equal(config.kafka.security.saslMechanism, 'SCRAM-SHA-512');
    assert.throws(
      () => loadConfig({ env: { ENCORE_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' } }),
      invalid(/kafka\.security\.username: required .*; config key kafka\.security\.password: required/),
    );
    assert.throws(
      () => loadConfig({ env: { ...secure, ENCORE_KAFKA_SECURITY_CA_FILE: '/nonexistent/ca.pem' } }),
      invalid(/config key kafka\.security\.caFile .*\/nonexistent\/ca\.pem does not exist/),
    );
  });
});
