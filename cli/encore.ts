/**
 * `encore`: the command line. bin/encore brings Node 24 and the dependencies, then runs this file.
 *   encore demo                 the main job on the local stack, with a live summary
 *   encore run                  the job alone, against the servers the config names (deployments)
 *   encore test [--unit]        lint, type-check, start the stack, run the test suites
 *   encore stack up|down|status [components...]
 *   encore config               every config key, its ENCORE_* variable and its effective value
 *   encore bench ...            benchmarks: bin/encore hands these to bench/cli.ts (not part of the job)
 */
import { configLeaves, envName } from '../core/config.ts';
import { serveMetrics } from '../core/metrics.ts';
import { startCollector } from '../ingest/collector.ts';
import { COMPONENTS, down, status, up } from '../stack/stack.ts';
import { runJob } from '../topology/job.ts';
import { demo } from './demo.ts';
import { config, newProgram, positiveInt, runProgram } from './options.ts';
import { registerServingCommands } from './serving.ts';
import { runTests } from './test-suite.ts';
import { registerTrainingCommands } from './training.ts';

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

const program = newProgram(
  'encore',
  'Real-time, disengagement-aware music recommendations on Kafka',
).addHelpText('after', '\nBenchmarks (not part of the job): encore bench --help');

/** Aborts on the first SIGINT/SIGTERM so jobs stop gracefully (commit, disconnect); a second one kills. */
function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.once(name, () => {
      console.error(`\nencore: ${name} received, stopping gracefully (again to force)`);
      controller.abort();
      process.once(name, () => process.exit(130));
    });
  }
  return controller.signal;
}

program
  .command('demo')
  .description('the pipeline on the local stack, with synthetic listeners and a live summary')
  .option('--seconds <n>', 'how long to produce events', positiveInt('seconds'), 30)
  .option('--rate <n>', 'events per second', positiveInt('rate'), 500)
  .option('--users <n>', 'synthetic listeners', positiveInt('users'), 1000)
  .option('--seed <n>', 'random seed (same seed, same events)', positiveInt('seed'), 42)
  .option('--no-train', 'without models in serving.modelsDir, skip the quick training (the fallbacks serve)')
  .action(async (options: { seconds: number; rate: number; users: number; seed: number; train: boolean }) => {
    await demo(config(program.opts()), { ...options, signal: shutdownSignal() });
  });

program
  .command('run')
  .description('the job alone, against the Kafka, registry and ClickHouse the config names (deployments)')
  .action(async () => {
    const loaded = config(program.opts());
    const metrics = loaded.metrics.port
      ? await serveMetrics(loaded.metrics.host, loaded.metrics.port)
      : undefined;
    try {
      await runJob(loaded, shutdownSignal());
    } finally {
      metrics?.close();
    }
  });

program
  .command('collect')
  .description(
    'the HTTP event collector: apps POST listening events (JSON), it produces them to Kafka (Avro)',
  )
  .action(async () => {
    const loaded = config(program.opts());
    const signal = shutdownSignal();
    const metrics = loaded.metrics.port
      ? await serveMetrics(loaded.metrics.host, loaded.metrics.port)
      : undefined;
    const collector = await startCollector(loaded);
    console.log(`collector on http://${loaded.collector.host}:${collector.port}/v1/events`);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    await collector.close();
    metrics?.close();
  });

program
  .command('test')
  .description('lint, type-check, start the local stack and run every test suite')
  .option('--unit', 'unit tests only (no stack)')
  .option('--down', 'stop the stack afterwards (default under CI=true)')
  .argument('[filters...]', 'only test files whose path contains one of these')
  .action(async (filters: string[], options: { unit?: boolean; down?: boolean }) => {
    await runTests(config(program.opts()), { ...options, filter: filters });
  });

program
  .command('config')
  .description('every config key with its environment variable and effective value (secrets hidden)')
  .action(() => {
    const loaded = config(program.opts());
    for (const leaf of configLeaves()) {
      const value = leaf.path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], loaded);
      const shown = leaf.path.at(-1) === 'password' ? (value ? '[set]' : '[empty]') : JSON.stringify(value);
      console.log(`${leaf.path.join('.').padEnd(32)} ${envName(leaf.path).padEnd(40)} ${shown}`);
    }
  });

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

registerTrainingCommands(program);
registerServingCommands(program);

await runProgram(program);
