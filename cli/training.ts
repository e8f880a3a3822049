/**
 * The training pipeline's commands, registered on the main program:
 *   encore simulate --users N --days D --seed S (--out DIR | --kafka [--rate R] [--limit N])
 *   encore train [--data DIR | --clickhouse] [--out DIR] [--seed S] [--device cpu|cuda] [-- trainer options]
 * `train` runs the Python trainer (training/) in the virtualenv bin/encore prepares (ENCORE_PYTHON); without
 * --data or --clickhouse it first simulates listening and builds the dataset through the streaming topology
 * (`encore dataset --simulate`), so features and labels come from the same code that serves.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import type { Config } from '../core/config.ts';
import { writeSimulation } from '../simulator/files.ts';
import { produceSimulation } from '../simulator/kafka.ts';
import { simulate } from '../simulator/model.ts';
import { buildDataset, readSimulation } from './dataset.ts';
import { config, positiveInt } from './options.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A fixed default start, so the default simulation (and model) is the same on every machine and day. */
const DEFAULT_START = '2026-09-01';

interface SimulateOptions {
  users: number;
  songs: number;
  days: number;
  seed: number;
  start: string;
  out?: string;
  kafka?: boolean;
  rate?: number;
  limit?: number;
}

function parseStart(value: string): number {
  const start = Date.parse(value);
  if (Number.isNaN(start)) throw new Error(`--start must be a date (YYYY-MM-DD or ISO 8601), got "${value}"`);
  return start;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(`${path.basename(command)} ${args[0] ?? ''} failed (${signal ?? `exit code ${code}`})`),
          ),
    );
  });
}

function progressBar(total: number, unit: string) {
  const bar = new cliProgress.SingleBar(
    { format: `{bar} {percentage}% | {value}/{total} ${unit} | {duration}s`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

/** The simulation's options, shared by the commands that simulate. */
function withSimulationOptions(command: Command): Command {
  return command
    .option('--users <n>', 'listeners', positiveInt('users'), 1_000)
    .option('--songs <n>', 'catalog size', positiveInt('songs'), 5_000)
    .option('--days <n>', 'simulated days', positiveInt('days'), 28)
    .option('--seed <n>', 'random seed (same seed, same data)', positiveInt('seed'), 7)
    .option('--start <date>', 'first simulated day (UTC)', DEFAULT_START);
}

export function registerTrainingCommands(program: Command): void {
  withSimulationOptions(
    program
      .command('dataset')
      .description('features, labels and sessions computed by the listening topology, as sink-table files')
      .requiredOption('--out <dir>', 'where the dataset files go'),
  )
    .addOption(
      new Option('--input <dir>', "events.jsonl, songs.jsonl, profiles.jsonl (an importer's output)"),
    )
    .option('--simulate', 'simulate listening instead of reading --input')
    .action(
      async (
        options: Omit<SimulateOptions, 'kafka' | 'rate' | 'limit'> & {
          input?: string;
          simulate?: boolean;
          out: string;
        },
      ) => {
        if (!options.input === !options.simulate)
          throw new Error('dataset needs exactly one of --input <dir> and --simulate');
        const source = options.input
          ? await readSimulation(options.input)
          : simulate({ ...options, start: parseStart(options.start) });
        const expected = options.input ? 0 : Math.round(options.users * options.days * 40);
        const bar = progressBar(expected, 'events');
        try {
          const report = await buildDataset(config(program.opts()), source, options.out, (n) =>
            bar.update(n, { total: Math.max(expected, n) }),
          );
          bar.stop();
          console.log(
            `${report.events} events (${report.invalidEvents} invalid, skipped) → ${report.features} scoring points, ` +
              `${report.labels} labels, ${report.sessions} sessions, ${report.songs} songs in ${options.out}`,
          );
        } finally {
          bar.stop();
        }
      },
    );

  withSimulationOptions(
    program
      .command('simulate')
      .description('seeded synthetic listening (catalog, profiles, events) into files or Kafka'),
  )
    .addOption(
      new Option('--out <dir>', 'write events.jsonl, songs.jsonl, profiles.jsonl here').conflicts('kafka'),
    )
    .option('--kafka', 'produce to the Kafka topics the config names (Avro through the schema registry)')
    .option(
      '--rate <n>',
      'with --kafka: events per second (default: as fast as possible)',
      positiveInt('rate'),
    )
    .option('--limit <n>', 'with --kafka: stop after this many events', positiveInt('limit'))
    .action(async (options: SimulateOptions) => {
      if (!options.out && !options.kafka) throw new Error('simulate needs --out <dir> or --kafka');
      const simulation = simulate({ ...options, start: parseStart(options.start) });
      // About 40 events per listener-day: enough for a progress bar, not a promise.
      const expected = options.limit ?? Math.round(options.users * options.days * 40);
      const bar = progressBar(expected, 'events');
      const onProgress = (n: number) => bar.update(Math.min(n, expected));
      try {
        if (options.kafka) {
          const produced = await produceSimulation(config(program.opts()), simulation, {
            rate: options.rate,
            limit: options.limit,
            onProgress,
          });
          bar.stop();
          console.log(
            `produced ${produced.songs} songs, ${produced.profiles} profiles, ${produced.events} events`,
          );
        } else {
          const written = await writeSimulation(simulation, options.out!, onProgress);
          bar.stop();
          console.log(
            `wrote ${written.events} events, ${written.songs} songs, ${written.profiles} profiles to ${options.out}` +
              ` (${options.days} days from ${options.start})`,
          );
        }
      } finally {
        bar.stop();
      }
    });

  program
    .command('train')
    .description('train the disengagement and two-tower models, export ONNX, write metadata and a report')
    .option('--data <dir>', 'a dataset directory (encore dataset): features, labels, songs')
    .option('--clickhouse', 'read the features, labels and songs tables from ClickHouse instead')
    .option('--out <dir>', 'where models/<name>/<version>/ go', '.encore/models')
    .option('--seed <n>', 'random seed for simulation and training', positiveInt('seed'), 7)
    .option('--device <device>', 'torch device (cpu, cuda, cuda:1)', 'cpu')
    .option('--users <n>', 'without --data: simulated listeners', positiveInt('users'), 1_000)
    .option('--days <n>', 'without --data: simulated days', positiveInt('days'), 28)
    .allowExcessArguments()
    .argument('[trainer options...]', 'passed to `python -m encore_training train` (after --)')
    .action((extra: string[], options: TrainOptions) =>
      trainModels(options, extra, () => config(program.opts())),
    );
}

export interface TrainOptions {
  /** A dataset directory (encore dataset); without it nor `clickhouse`, one is simulated. */
  data?: string;
  clickhouse?: boolean;
  /** Where models/<name>/<version>/ go. */
  out: string;
  seed: number;
  device: string;
  /** Without `data`: the simulation's listeners and days. */
  users: number;
  days: number;
}

/**
 * What `encore train` does: simulate and build a dataset through the topology (unless one is given), then
 * run the Python trainer with `extra` options. Needs ENCORE_PYTHON (bin/encore prepares it); `loadConfig`
 * is only called for --clickhouse.
 */
export async function trainModels(
  options: TrainOptions,
  extra: string[] = [],
  loadConfig: () => Config = () => config({}),
): Promise<void> {
  const python = process.env.ENCORE_PYTHON;
  if (!python)
    throw new Error('ENCORE_PYTHON is not set: run training through bin/encore, which prepares it');
  const args = [
    '-m',
    'encore_training',
    'train',
    '--out',
    options.out,
    '--seed',
    String(options.seed),
    '--device',
    options.device,
  ];
  if (options.clickhouse) {
    const { clickhouse } = loadConfig();
    args.push(
      '--clickhouse',
      `http://${clickhouse.host}:${clickhouse.httpPort}`,
      '--database',
      clickhouse.database,
      '--user',
      clickhouse.username,
    );
    // The password goes by environment, not argv (which `ps` shows to everyone).
    process.env.CLICKHOUSE_PASSWORD = clickhouse.password;
  } else {
    let data = options.data;
    if (!data) {
      data = path.join('.encore', 'datasets', `sim-u${options.users}-d${options.days}-s${options.seed}`);
      await run(process.execPath, [
        path.join(root, 'cli', 'encore.ts'),
        'dataset',
        '--simulate',
        '--users',
        String(options.users),
        '--days',
        String(options.days),
        '--seed',
        String(options.seed),
        '--out',
        data,
      ]);
    }
    args.push('--data', data);
  }
  await run(python, [...args, ...extra], { PYTHONPATH: path.join(root, 'training') });
}
