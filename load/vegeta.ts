/**
 * vegeta (MIT), the HTTP load generator of the load tests: built once from the Go module proxy into the cache
 * folder, run as child processes, its results read back as JSON.
 *
 * Not k6: the package policy of these machines forbids go.k6.io/k6 (AGPL), and the proxy refuses xk6-kafka
 * (see docs/STACK.md). vegeta sends at a fixed arrival rate (an open model: requests start on schedule
 * however slow the answers are), which is what k6's arrival-rate executors did.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { commandPath, ensureCached } from '../stack/install.ts';

export const VEGETA_MODULE = 'github.com/tsenart/vegeta/v12';
export const VEGETA_VERSION = 'v12.13.0';
/** Where the Go toolchain's official tarball installs itself, for machines that have not put it on PATH. */
const GO_FALLBACK = '/usr/local/go/bin/go';

const log = logger('vegeta');

/**
 * A child process run to its end: its stdout, or an error with the end of its stderr. Not stack/install.ts's
 * `run`: this one streams its input (a stage's targets) and takes output past execFile's buffer.
 */
function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: Iterable<string> },
) {
  return new Promise<string>((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    // A child that fails before reading all its input breaks the pipe: its exit status tells why.
    if (options.stdin && child.stdin)
      pipeline(Readable.from(options.stdin), child.stdin).catch(() => undefined);
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(
            new EncoreError(
              ErrorCodes.STACK_COMPONENT_FAILED,
              `${path.basename(command)} ${args.slice(0, 2).join(' ')} failed (exit ${code}):\n${stderr}`,
            ),
          ),
    );
  });
}

async function goBinary(): Promise<string> {
  const onPath = await commandPath('go');
  if (onPath) return onPath;
  if (existsSync(GO_FALLBACK)) return GO_FALLBACK;
  throw new EncoreError(
    ErrorCodes.STACK_COMPONENT_FAILED,
    `vegeta: building vegeta ${VEGETA_VERSION} needs Go 1.22+ (\`go\` on PATH or ${GO_FALLBACK}); install it from https://go.dev/dl/`,
  );
}

/** The path of a vegeta binary, building it on first use (about 10 seconds, then cached). */
export async function ensureVegeta(config: Config): Promise<string> {
  const cache = path.resolve(config.stack.cacheDir);
  const dir = path.join(cache, `vegeta-${VEGETA_VERSION}`);
  const built = await ensureCached(dir, async (tmp) => {
    const go = await goBinary();
    log.info({ version: VEGETA_VERSION, dir }, 'building vegeta from the Go module proxy (once)');
    await run(go, ['install', `${VEGETA_MODULE}@${VEGETA_VERSION}`], {
      // A GOPATH in the cache keeps the module downloads for the next build; -modcacherw lets the cache be
      // deleted without chmod.
      env: {
        ...process.env,
        GOPATH: path.join(cache, 'go'),
        GOBIN: tmp,
        GOFLAGS: '-modcacherw',
        CGO_ENABLED: '0',
      },
    });
  });
  if (built) log.info({ dir }, 'vegeta built');
  return path.join(dir, 'vegeta');
}

/** A constant arrival rate held for a number of whole seconds. */
export interface Stage {
  requestsPerSecond: number;
  seconds: number;
}

/** One request as vegeta recorded it. */
export interface Hit {
  stage: number;
  /** Its place in its stage: the stage's pace scheduled it at `seq / requestsPerSecond` seconds. */
  seq: number;
  /** When it was sent (epoch ms). */
  sentAt: number;
  latencyMs: number;
  /** The HTTP status; 0 when no answer came (vegeta's `error` says why). */
  code: number;
  body: string;
  error: string;
}

interface VegetaResult {
  attack: string;
  method: string;
  seq: number;
  code: number;
  timestamp: string;
  latency: number;
  error: string;
  body: string | null;
}

/** vegeta's error for a tick that found the targets used up: the end of a stage, not a request. */
const NO_TARGETS = 'no targets to attack';

/** How many requests a stage sends. */
export const stageRequests = (stage: Stage) => Math.round(stage.requestsPerSecond * stage.seconds);

/**
 * POSTs `bodies` to `url` in their order, stage after stage, each at its own constant rate. Each stage is one
 * vegeta process, started on the stage's schedule rather than when the previous one exits, so that one
 * stage's answers in flight do not delay the next. A stage sends the next `stageRequests(stage)` bodies,
 * all of them, late if it must. Results are written under `dir`; every request comes back as a hit.
 */
export async function attack(
  vegeta: string,
  url: string,
  stages: readonly Stage[],
  bodies: readonly string[],
  dir: string,
): Promise<Hit[]> {
  const needed = stages.reduce((sum, stage) => sum + stageRequests(stage), 0);
  if (bodies.length < needed)
    throw new EncoreError(
      ErrorCodes.CONFIG_INVALID,
      `vegeta: the stages send ${needed} requests; only ${bodies.length} bodies were given`,
    );
  const start = Date.now();
  const outputs: string[] = [];
  const runs: Promise<string>[] = [];
  let first = 0;
  let at = 0;
  for (const [index, stage] of stages.entries()) {
    const count = stageRequests(stage);
    const slice = bodies.slice(first, first + count);
    first += count;
    await sleep(start + at * 1000 - Date.now());
    at += stage.seconds;
    const output = path.join(dir, `stage-${index}.bin`);
    outputs.push(output);
    const running = run(
      vegeta,
      [
        'attack',
        '-lazy',
        '-format=json',
        `-name=${index}`,
        // No -duration: the stage ends when its bodies run out, so a vegeta that fell behind (starved of
        // CPU) sends its last requests late, where they count as send lag, rather than dropping them.
        `-rate=${count}/${stage.seconds}s`,
        `-output=${output}`,
      ],
      { stdin: targets(url, slice) },
    );
    // Awaited below, with the others; until then a stage that fails early must not count as unhandled.
    running.catch(() => undefined);
    runs.push(running);
  }
  await Promise.all(runs);
  const json = await run(vegeta, ['encode', '--to=json', ...outputs], {});
  return json
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as VegetaResult)
    .filter((result) => !(result.method === '' && result.error === NO_TARGETS))
    .map((result) => ({
      stage: Number(result.attack),
      seq: result.seq,
      sentAt: Date.parse(result.timestamp),
      latencyMs: result.latency / 1e6,
      code: result.code,
      body: result.body ? Buffer.from(result.body, 'base64').toString() : '',
      error: result.error,
    }));
}

/** vegeta's JSON targets, one line each. */
function* targets(url: string, bodies: readonly string[]): Generator<string> {
  const header = { 'Content-Type': ['application/json'] };
  for (const body of bodies)
    yield `${JSON.stringify({ method: 'POST', url, header, body: Buffer.from(body).toString('base64') })}\n`;
}
