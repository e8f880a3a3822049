/**
 * ClickHouse from Debian's clickhouse-server package (18.16), started on a config of our own in the data
 * folder: the package's service cannot start without systemd, and its config points at /var/lib.
 * Two users, passwords stored hashed: the config's (clickhouse.username / clickhouse.password; `default`
 * with no password unless set, what the tests and tools use) and the job user the stack makes, whose random
 * password lives in `secrets/` (see stack/secrets.ts and docs/SECURITY.md).
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { endpoints } from '../core/config.ts';
import type { Component } from './component.ts';
import { ensureDebianPackages } from './install.ts';
import { clickhouseSecrets, ensurePassword, JOB_USER } from './secrets.ts';

/** Debian puts it in /usr/sbin, which a non-root user's PATH lacks there: the daemon is started by path. */
const serverBinary = () =>
  ensureDebianPackages('clickhouse', 'clickhouse-server', ['clickhouse-server', 'clickhouse-client']);

const xml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * A user who logs in from this machine only, with the password stored as its SHA-256. ClickHouse 18.16 has
 * no SQL grants (they came in 20.5): the `default` profile lets a user create its database and tables,
 * insert and query, which is what the job does.
 */
const userXml = (name: string, password: string) => `
    <${name}>
      <password_sha256_hex>${createHash('sha256').update(password).digest('hex')}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${name}>`;

export const clickhouse: Component = {
  name: 'clickhouse',

  ports: (config) => [
    { key: 'clickhouse.httpPort', host: config.clickhouse.host, port: config.clickhouse.httpPort },
    { key: 'clickhouse.tcpPort', host: config.clickhouse.host, port: config.clickhouse.tcpPort },
    {
      key: 'clickhouse.interserverPort',
      host: config.clickhouse.host,
      port: config.clickhouse.interserverPort,
    },
  ],

  async install() {
    await serverBinary();
  },

  async prepare(ctx, home) {
    const c = ctx.config.clickhouse;
    const dirs = ['data', 'tmp', 'user_files', 'format_schemas', 'logs'].map((d) => path.join(home, d));
    for (const dir of dirs) mkdirSync(dir, { recursive: true });
    const [data, tmp, userFiles, formatSchemas, logs] = dirs as [string, string, string, string, string];
    const configFile = path.join(home, 'config.xml');
    writeFileSync(
      configFile,
      `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>${xml(path.join(logs, 'clickhouse-server.log'))}</log>
    <errorlog>${xml(path.join(logs, 'clickhouse-server.err.log'))}</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>${xml(c.host)}</listen_host>
  <http_port>${c.httpPort}</http_port>
  <tcp_port>${c.tcpPort}</tcp_port>
  <interserver_http_port>${c.interserverPort}</interserver_http_port>
  <path>${xml(data)}/</path>
  <tmp_path>${xml(tmp)}/</tmp_path>
  <user_files_path>${xml(userFiles)}/</user_files_path>
  <format_schema_path>${xml(formatSchemas)}/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
`,
    );
    const usersFile = path.join(home, 'users.xml');
    // A config naming the job user itself gets it once, with the stack's password (in users.d below).
    const configUser = c.username === JOB_USER ? '' : userXml(c.username, c.password);
    writeFileSync(
      usersFile,
      `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>${configUser}
  </users>
  <quotas><default></default></quotas>
</yandex>
`,
    );
    chmodSync(usersFile, 0o600);
    // ClickHouse merges users.d/*.xml into users.xml.
    const jobUserFile = path.join(home, 'users.d', `${JOB_USER}.xml`);
    mkdirSync(path.dirname(jobUserFile), { recursive: true });
    const jobPassword = ensurePassword(clickhouseSecrets(ctx.dataDir).jobPasswordFile);
    writeFileSync(
      jobUserFile,
      `<?xml version="1.0"?>
<yandex>
  <users>${userXml(JOB_USER, jobPassword)}
  </users>
</yandex>
`,
      { mode: 0o600 },
    );
    chmodSync(jobUserFile, 0o600);
    return { command: await serverBinary(), args: [`--config-file=${configFile}`], cwd: home };
  },

  async healthy(ctx) {
    try {
      const response = await fetch(`${endpoints(ctx.config).clickhouseUrl}/ping`, {
        signal: AbortSignal.timeout(3000),
      });
      return response.ok && (await response.text()).startsWith('Ok');
    } catch {
      return false;
    }
  },
};
