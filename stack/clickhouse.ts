/**
 * ClickHouse from Debian's clickhouse-server package (18.16), started on a config of our own in the data
 * folder: the package's service cannot start without systemd, and its config points at /var/lib.
 * The user Encore connects as is the one in the config (clickhouse.username / clickhouse.password); its
 * password is stored hashed.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { endpoints } from '../core/config.ts';
import type { Component } from './component.ts';
import { ensureDebianPackages } from './install.ts';

const xml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

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
    await ensureDebianPackages('clickhouse', 'clickhouse-server', ['clickhouse-server', 'clickhouse-client']);
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
    const passwordHash = createHash('sha256').update(c.password).digest('hex');
    writeFileSync(
      usersFile,
      `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <${c.username}>
      <password_sha256_hex>${passwordHash}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${c.username}>
  </users>
  <quotas><default></default></quotas>
</yandex>
`,
    );
    chmodSync(usersFile, 0o600);
    return { command: 'clickhouse-server', args: [`--config-file=${configFile}`], cwd: home };
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
