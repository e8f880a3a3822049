/**
 * Structured logs: pino, JSON lines on stderr (stdout stays for command output). Every module asks for a
 * child logger named after itself, so one filter on `component` follows a subsystem. Fields named
 * `password` (and librdkafka's `sasl.password`) are redacted down to the depth of the config's deepest one
 * (config.kafka.security.password), so logging the config or a section of it cannot leak a secret.
 */
import { type Logger, pino } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

const root = pino(
  {
    level: process.env.ENCORE_LOG_LEVEL ?? 'info',
    base: { app: 'encore' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'password',
        '*.password',
        '*.*.password',
        '*.*.*.password',
        '["sasl.password"]',
        '*["sasl.password"]',
      ],
      censor: '[redacted]',
    },
  },
  pino.destination(2),
);

// pino children copy their level when created, so a level set from the config file must reach them too.
const children = new Set<Logger>();

export function logger(component: string): Logger {
  const child = root.child({ component });
  children.add(child);
  return child;
}

export function setLogLevel(level: Config['log']['level']) {
  root.level = level;
  for (const child of children) child.level = level;
}
