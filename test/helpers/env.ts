/**
 * Test configuration: the stack's servers as the environment configures them, with an application id and
 * a ClickHouse database of the test's own, so tests running side by side never share a topic or a table.
 */
import { randomUUID } from 'node:crypto';
import { type Config, loadConfig } from '../../core/config.ts';

export function isolatedConfig(
  name: string,
  overrides: { kafka?: Partial<Config['kafka']>; env?: NodeJS.ProcessEnv } = {},
): Config {
  const base = loadConfig({ env: overrides.env ?? process.env });
  const suffix = randomUUID().slice(0, 8);
  return {
    ...base,
    appId: `test-${name}-${suffix}`,
    clickhouse: { ...base.clickhouse, database: `test_${name.replaceAll('-', '_')}_${suffix}` },
    kafka: { ...base.kafka, partitions: 2, ...overrides.kafka },
    metrics: { ...base.metrics, port: 0 },
  };
}
