/** What every command line (the job's, the benchmarks') shares: loading the config, parsing numbers. */
import { type Config, loadConfig } from '../core/config.ts';
import { setLogLevel } from '../core/log.ts';

export function config(options: { config?: string }): Config {
  const loaded = loadConfig({ file: options.config });
  setLogLevel(loaded.log.level);
  return loaded;
}

export const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${value}"`);
  return n;
};
