/**
 * The local stack's job user, configured as a deployment would configure Encore: Kafka over SASL_SSL with
 * SCRAM and the stack's CA, ClickHouse with the job user's password, each password read from its file.
 */
import type { ChildSettings } from '../../cli/child.ts';
import type { Config } from '../../core/config.ts';
import { clickhouseSecrets, JOB_USER, kafkaSecrets } from '../../stack/secrets.ts';
import { stackContext } from '../../stack/stack.ts';

export function stackJobUser(config: Config): ChildSettings {
  const { dataDir } = stackContext(config);
  const kafka = kafkaSecrets(dataDir);
  return {
    'kafka.security.protocol': 'SASL_SSL',
    'kafka.security.username': JOB_USER,
    'kafka.security.passwordFile': kafka.jobPasswordFile,
    'kafka.security.caFile': kafka.caFile,
    'clickhouse.username': JOB_USER,
    'clickhouse.passwordFile': clickhouseSecrets(dataDir).jobPasswordFile,
  };
}
