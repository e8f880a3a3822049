/**
 * `encore reliability`: the long reliability suite of issue 7 on the local stack, one run per fault at the
 * issue's sizes (1M events through 20 SIGKILLs; 10,000 malformed records; ClickHouse down for a minute...).
 * Writes bench/results/reliability.json and the table of docs/RELIABILITY.md. bin/encore hands
 * `reliability` here: like the benchmarks, it is not part of the job (nor of its image).
 *
 *   bin/encore reliability [--faults sigkill,broker-restart ...] [--events N --fault-events N --kills N ...]
 */
import cliProgress from 'cli-progress';
import { config, newProgram, positiveInt, runProgram } from '../cli/options.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import { up } from '../stack/stack.ts';
import { scanVersions } from '../udfs/models.ts';
import { FAULT_NAMES, type FaultName } from './faults.ts';
import { machine, recoveryCell, writeResults } from './report.ts';
import { runScenario, type ScenarioReport } from './suite.ts';

interface ReliabilityOptions {
  faults: FaultName[];
  events: number;
  faultEvents: number;
  kills: number;
  rate: number;
  users: number;
  brokerOutage: number;
  clickhouseOutage: number;
  malformed: number;
  partitions: number;
  seed: number;
  requestEvery: number;
  catchUpTimeout: number;
  output: string;
  doc: string;
  keep?: boolean;
}

const program = newProgram(
  'encore reliability',
  'faults injected into the job under load, and what was lost or duplicated (docs/RELIABILITY.md)',
);

const faultList = (value: string) => {
  const names = value.split(',');
  const unknown = names.filter((name) => !(FAULT_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new EncoreError(
      ErrorCodes.CONFIG_INVALID,
      `unknown --faults ${unknown.join(', ')}; known: ${FAULT_NAMES.join(', ')}`,
    );
  return names as FaultName[];
};

program
  .option('--faults <names>', `comma-separated subset of ${FAULT_NAMES.join(', ')}`, faultList, [
    ...FAULT_NAMES,
  ])
  .option('--events <n>', 'valid events of the SIGKILL run', positiveInt('events'), 1_000_000)
  .option('--fault-events <n>', 'valid events of each other run', positiveInt('fault-events'), 200_000)
  .option('--kills <n>', 'SIGKILLs of the job', positiveInt('kills'), 20)
  .option(
    '--rate <n>',
    'inputs per second (the job must keep up with it, with room)',
    positiveInt('rate'),
    500,
  )
  .option('--users <n>', 'simulated listeners', positiveInt('users'), 20_000)
  .option('--broker-outage <s>', 'seconds the broker stays down', positiveInt('broker-outage'), 15)
  .option('--clickhouse-outage <s>', 'seconds ClickHouse stays down', positiveInt('clickhouse-outage'), 60)
  .option('--malformed <n>', 'malformed records mixed into the traffic', positiveInt('malformed'), 10_000)
  .option('--partitions <n>', 'partitions of the user-keyed topics', positiveInt('partitions'), 4)
  .option('--seed <n>', 'seed of the simulation and of the kill points', positiveInt('seed'), 7)
  .option(
    '--request-every <n>',
    'an explicit recommendation request after every n events',
    positiveInt('request-every'),
    500,
  )
  .option('--catch-up-timeout <s>', 'longest a catch-up may take', positiveInt('catch-up-timeout'), 600)
  .option('--output <file>', 'results file', 'bench/results/reliability.json')
  .option('--doc <file>', 'the document whose table is regenerated', 'docs/RELIABILITY.md')
  .option('--keep', "keep each run's topics and ClickHouse database")
  .action(async (options: ReliabilityOptions) => {
    const base = config(program.opts());
    for (const model of ['disengagement', 'user-tower'] as const)
      if ((await scanVersions(base.serving.modelsDir, model)).complete.length === 0)
        throw new EncoreError(
          ErrorCodes.MODEL_INVALID,
          `no ${model} model in ${base.serving.modelsDir} (serving.modelsDir): run \`bin/encore train\` first`,
        );
    await up(base);
    const began = new Date();
    const described = machine();
    const command = `bin/encore reliability ${process.argv.slice(2).join(' ')}`.trim();
    const reports: ScenarioReport[] = [];
    for (const fault of options.faults) {
      const events = fault === 'sigkill' ? options.events : options.faultEvents;
      // Bars only on a terminal (cli-progress draws nothing useful into a file); the summary line below always.
      const bars = process.stderr.isTTY
        ? new cliProgress.MultiBar(
            { format: `  ${fault.padEnd(20)} {phase} {bar} {value}/{total} {extra}`, hideCursor: true },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      const driver = bars?.create(events, 0, { phase: 'expected', extra: '' });
      let traffic: cliProgress.SingleBar | undefined;
      const report = await runScenario(base, {
        faults: [fault],
        sizes: {
          kills: options.kills,
          brokerOutageMs: options.brokerOutage * 1000,
          clickhouseOutageMs: options.clickhouseOutage * 1000,
          malformed: options.malformed,
        },
        plan: {
          seed: options.seed,
          events,
          users: options.users,
          songs: 5_000,
          requestEvery: options.requestEvery,
        },
        rate: options.rate,
        partitions: options.partitions,
        catchUpTimeoutMs: options.catchUpTimeout * 1000,
        jobLogLevel: 'warn',
        keep: options.keep,
        // The driver counts every input; the bar shows the events' share of them, roughly.
        onDriverProgress: (inputs) => driver?.update(Math.min(events, inputs)),
        onProgress: (progress) => {
          traffic ??= bars?.create(events, 0, { phase: 'live    ', extra: '' });
          traffic?.update(progress.events, {
            extra: `recommendations ${progress.recommendationsRead} · dead letters ${progress.deadLetters}`,
          });
        },
      }).finally(() => bars?.stop());
      reports.push(report);
      const [struck] = report.faults;
      console.log(
        `${fault}: ${struck!.times} × over ${report.events} events, ${report.lost} lost, ${report.duplicated} duplicated, ` +
          `recovery ${recoveryCell(struck!)}${report.passed ? '' : ` — FAILED: ${report.problems.join('; ')}`}`,
      );
      // Written after every fault: a run of an hour that stops half-way keeps what it measured.
      await writeResults(
        reports,
        { command, began: began.toISOString(), durationMs: Date.now() - began.getTime(), machine: described },
        { json: options.output, doc: options.doc },
      );
      console.log(`wrote ${options.output} and the table in ${options.doc}`);
    }
    if (reports.some((r) => !r.passed)) process.exitCode = 1;
  });

await runProgram(program);
