/**
 * `encore bench`: the benchmarks on the local stack (bin/encore hands `bench` here). Kept apart from the
 * job's command line so that nothing of it reaches the job's container image.
 *   encore bench streams [--events N --users N ...]   one stream job on five systems
 *   encore bench state [--sessions N]                 Encore's state per session and restore time
 *   encore bench ann [--sizes N,N ...]                ANN retrieval: usearch vs hnswlib-node vs exact (no stack)
 *   encore bench serving [--rates N,N --seconds N]    end-to-end recommendation latency, exactly-once
 *   encore bench udf [--batches N,N]                  inference UDF latency by batch size, user tower + ANN (no stack)
 *   encore bench load [--rates N,N --find-max A:B:S]  vegeta through the HTTP collector, end-to-end latency under load
 */
import { config, newProgram, positiveInt, runProgram } from '../cli/options.ts';
import { benchLoad } from '../load/run.ts';
import { benchAnn } from './ann.ts';
import { benchServing } from './serving.ts';
import { benchStreams, SYSTEMS } from './streams/run.ts';
import { benchState } from './streams/state.ts';
import { benchUdf, type UdfBenchOptions } from './udf.ts';

const program = newProgram(
  'encore bench',
  'benchmarks against the local stack; results in bench/results/ (see bench/README.md)',
);

program
  .command('streams')
  .description('the same stream job on raw librdkafka, Encore (ALOS, EOS), Kafka Streams (Java), nodefluent')
  .option('--events <n>', 'input events', positiveInt('events'), 1_000_000)
  .option('--users <n>', 'distinct users (keys)', positiveInt('users'), 100_000)
  .option('--partitions <n>', 'partitions of every topic', positiveInt('partitions'), 4)
  .option('--systems <names>', 'comma-separated subset of the systems', (v: string) => v.split(','))
  .option('--seed <n>', 'random seed of the input', positiveInt('seed'), 7)
  .option('--timeout <s>', 'longest a system may take', positiveInt('timeout'), 900)
  .option('--output <file>', 'results file', 'bench/results/streams-runtime.json')
  .action(
    async (options: {
      events: number;
      users: number;
      partitions: number;
      systems?: string[];
      seed: number;
      timeout: number;
      output: string;
    }) => {
      const unknown = (options.systems ?? []).filter((name) => !SYSTEMS.some((s) => s.name === name));
      if (unknown.length > 0)
        program.error(
          `unknown --systems ${unknown.join(', ')}; known: ${SYSTEMS.map((s) => s.name).join(', ')}`,
        );
      await benchStreams(config(program.opts()), {
        ...options,
        systems: options.systems ?? SYSTEMS.map((s) => s.name),
        timeoutMs: options.timeout * 1000,
      });
    },
  );

program
  .command('state')
  .description("Encore's state cost: heap per session, and restoring sessions from the changelog")
  .option('--sessions <n>', 'sessions to hold and restore', positiveInt('sessions'), 1_000_000)
  .option('--partitions <n>', 'partitions (tasks)', positiveInt('partitions'), 4)
  .option('--output <file>', 'results file', 'bench/results/streams-state.json')
  .action(async (options: { sessions: number; partitions: number; output: string }) => {
    await benchState(config(program.opts()), options);
  });

const positiveInts = (name: string) => (value: string) => value.split(',').map(positiveInt(name));

program
  .command('ann')
  .description('ANN retrieval over song embeddings: usearch and hnswlib-node against exact search')
  .option('--sizes <n,n>', 'catalog sizes (songs)', positiveInts('sizes'), [100_000, 1_000_000])
  .option('--queries <n>', 'timed queries per setting', positiveInt('queries'), 500)
  .option(
    '--dimensions <n>',
    "embedding dimensions (the two-tower model's out_dim)",
    positiveInt('dimensions'),
    64,
  )
  .option(
    '--builds <MxEFC,...>',
    'HNSW graphs to build: connectivity (M) x ef_construction',
    (value: string) =>
      value.split(',').map((pair) => {
        const [connectivity, expansionAdd] = pair.split('x').map(positiveInt('builds'));
        if (connectivity === undefined || expansionAdd === undefined)
          throw new Error(`--builds takes MxEFC pairs like 16x128, got "${pair}"`);
        return { connectivity, expansionAdd };
      }),
    [
      { connectivity: 16, expansionAdd: 128 },
      { connectivity: 32, expansionAdd: 128 },
    ],
  )
  .option('--ef <n,n>', 'ef_search values tried on every graph', positiveInts('ef'), [100, 150, 250, 400])
  .option('--seed <n>', 'random seed of the embeddings', positiveInt('seed'), 7)
  .option('--output <file>', 'results file', 'bench/results/ann.json')
  .action(
    async (options: {
      sizes: number[];
      queries: number;
      dimensions: number;
      builds: { connectivity: number; expansionAdd: number }[];
      ef: number[];
      seed: number;
      output: string;
    }) => {
      await benchAnn({ ...options, expansionSearch: options.ef });
    },
  );

program
  .command('serving')
  .description(
    'event appended → recommendation committed (read_committed), p50/p99, exactly-once, at fixed rates',
  )
  .option('--rates <n,n>', 'events per second, one run each', positiveInts('rates'), [1_000, 5_000])
  .option('--seconds <n>', 'measured seconds per rate', positiveInt('seconds'), 60)
  .option('--warmup <n>', 'seconds not measured at the start of each run', positiveInt('warmup'), 15)
  .option('--users <n>', 'simulated listeners', positiveInt('users'), 20_000)
  .option('--commit-interval <ms>', 'streams.commitIntervalMs of the job', (v: string) => Number(v), 20)
  .option('--output <file>', 'results file', 'bench/results/serving-latency.json')
  .action(
    async (options: {
      rates: number[];
      seconds: number;
      warmup: number;
      users: number;
      commitInterval: number;
      output: string;
    }) => {
      await benchServing(config(program.opts()), {
        ...options,
        warmupSeconds: options.warmup,
        commitIntervalMs: options.commitInterval,
      });
    },
  );

program
  .command('load')
  .description(
    'vegeta posts simulated listening to the HTTP collector at a ramping rate; end-to-end latency, exactly-once',
  )
  .option(
    '--rates <n,n>',
    'events per second to ramp to and hold, one run each',
    positiveInts('rates'),
    [1_000, 5_000],
  )
  .option(
    '--find-max <from:to:step>',
    'also step the rate up until the job no longer keeps up',
    (v: string) => {
      const [from, to, step] = v.split(':').map(Number);
      if (!from || !to || !step || from <= 0 || step <= 0 || to < from)
        throw new Error(`--find-max takes from:to:step, e.g. 1000:6000:500, got "${v}"`);
      return { from, to, step };
    },
  )
  .option('--ramp <s>', 'seconds of ramp (not measured)', positiveInt('ramp'), 10)
  .option('--hold <s>', 'seconds held at the rate (measured)', positiveInt('hold'), 30)
  .option('--users <n>', 'simulated listeners', positiveInt('users'), 20_000)
  .option('--batch <n>', 'events per HTTP request', positiveInt('batch'), 1)
  .option('--p99 <ms>', 'threshold on the end-to-end p99: a run over it fails', positiveInt('p99'), 200)
  .option('--commit-interval <ms>', 'streams.commitIntervalMs of the job', positiveInt('commit-interval'), 20)
  .option('--output-dir <dir>', 'where load-<rate>.json and load-max.json go', 'bench/results')
  .action(
    async (options: {
      rates: number[];
      findMax?: { from: number; to: number; step: number };
      ramp: number;
      hold: number;
      users: number;
      batch: number;
      p99: number;
      commitInterval: number;
      outputDir: string;
    }) => {
      await benchLoad(config(program.opts()), {
        ...options,
        rampSeconds: options.ramp,
        holdSeconds: options.hold,
        p99Ms: options.p99,
        commitIntervalMs: options.commitInterval,
      });
    },
  );

program
  .command('udf')
  .description(
    'inference UDFs: disengagement scoring by batch size, user tower + top-K song search (no stack)',
  )
  .option('--models <dir>', "models folder (default: serving.modelsDir, else the trainer fixture's models)")
  .option(
    '--batches <n,n>',
    'scoring points per disengagement call',
    positiveInts('batches'),
    [1, 16, 64, 256],
  )
  .option('--calls <n>', 'timed calls per setting', positiveInt('calls'), 2000)
  .option('--k <n>', 'songs retrieved per user-tower query (serving.candidates)', positiveInt('k'), 200)
  .option('--seed <n>', 'random seed of the scoring points', positiveInt('seed'), 7)
  .option('--output <file>', 'results file', 'bench/results/udf.json')
  .action(async (options: UdfBenchOptions) => {
    await benchUdf(config(program.opts()), options);
  });

await runProgram(program);
