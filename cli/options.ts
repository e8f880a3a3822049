/**
 * What every command line (the job's, the benchmarks') shares: the program with its `--config` option,
 * loading the config, parsing numbers, and reporting a failure.
 */
import { Command, Option } from 'commander';
import { type Config, loadConfig } from '../core/config.ts';
import { isEncoreError } from '../core/errors.ts';
import { logger, setLogLevel } from '../core/log.ts';

const log = logger('config');

/** The effective config, logged at debug level for whoever wonders what a command ran with (secrets redacted). */
export function config(options: { config?: string }): Config {
  const loaded = loadConfig({ file: options.config });
  setLogLevel(loaded.log.level);
  log.debug({ config: loaded }, 'config loaded');
  return loaded;
}

export const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${value}"`);
  return n;
};

export function newProgram(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .addOption(new Option('-c, --config <file>', 'JSON config file (also ENCORE_CONFIG)'))
    .showHelpAfterError();
}

/** Runs the command the arguments name; a failure is printed (with its code, if Encore's) and exits 1. */
export async function runProgram(program: Command): Promise<void> {
  try {
    await program.parseAsync();
  } catch (error) {
    console.error(isEncoreError(error) ? `${program.name()}: [${error.code}] ${error.message}` : error);
    process.exitCode = 1;
  }
}
