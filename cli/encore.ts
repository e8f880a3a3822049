/**
 * `encore`: the command line. bin/encore brings Node 24 and the dependencies, then runs this file.
 *   encore demo                 the main job on the local stack, with a live summary
 *   encore run                  the job alone, against the servers the config names (deployments)
 *   encore test [--unit]        lint, type-check, start the stack, run the test suites
 *   encore stack up|down|status [components...]
 */
import { Command, Option } from 'commander';
import { type Config, loadConfig } from '../core/config.ts';
import { isEncoreError } from '../core/errors.ts';
import { setLogLevel } from '../core/log.ts';
import { COMPONENTS, down, status, up } from '../stack/stack.ts';

function config(options: { config?: string }): Config {
  const loaded = loadConfig({ file: options.config });
  setLogLevel(loaded.log.level);
  return loaded;
}

function pickComponents(names: string[]) {
  if (names.length === 0) return COMPONENTS;
  return names.map((name) => {
    const component = COMPONENTS.find((c) => c.name === name);
    if (!component) {
      throw new Error(`unknown component "${name}"; choose from ${COMPONENTS.map((c) => c.name).join(', ')}`);
    }
    return component;
  });
}

const program = new Command('encore')
  .description('Real-time, disengagement-aware music recommendations on Kafka')
  .addOption(new Option('-c, --config <file>', 'JSON config file (also ENCORE_CONFIG)'))
  .showHelpAfterError();

const stack = program.command('stack').description('the local Kafka, schema registry and ClickHouse');

stack
  .command('up')
  .description('install what is missing and start the servers (idempotent)')
  .argument('[components...]', COMPONENTS.map((c) => c.name).join(' | '))
  .action(async (names: string[]) => {
    const began = Date.now();
    const results = await up(config(program.opts()), pickComponents(names));
    for (const r of results) console.log(`${r.name.padEnd(16)} ${r.action.padEnd(16)} ${r.ms} ms`);
    console.log(`stack up in ${Date.now() - began} ms`);
  });

stack
  .command('down')
  .description('stop the servers that `stack up` started')
  .argument('[components...]', COMPONENTS.map((c) => c.name).join(' | '))
  .action(async (names: string[]) => {
    for (const r of await down(config(program.opts()), pickComponents(names))) {
      console.log(`${r.name.padEnd(16)} ${r.action}`);
    }
  });

stack
  .command('status')
  .description('health of each server; exits 1 unless all are healthy')
  .option('--json', 'machine-readable output')
  .action(async (options: { json?: boolean }) => {
    const statuses = await status(config(program.opts()));
    if (options.json) console.log(JSON.stringify(statuses, null, 2));
    else {
      for (const s of statuses) {
        const memory = s.memoryMb === undefined ? '' : `${s.memoryMb} MiB`;
        console.log(
          `${s.name.padEnd(16)} ${s.state.padEnd(10)} ${String(s.pid ?? '').padEnd(8)} ${memory.padEnd(9)} ${s.ports}  ${s.logFile}`,
        );
      }
    }
    process.exitCode = statuses.every((s) => s.state === 'healthy') ? 0 : 1;
  });

try {
  await program.parseAsync();
} catch (error) {
  if (isEncoreError(error)) {
    console.error(`encore: [${error.code}] ${error.message}`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
}
