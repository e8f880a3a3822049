/**
 * State cost of Encore's runtime: heap per session held in the session store, and the time to restore a
 * million sessions from the changelog after a restart. One event per user makes one session per user.
 *
 *   bin/encore bench state --sessions 1000000
 *
 * The Encore system (bench/streams/systems/encore-app.ts, without the profile join) answers SIGUSR2 with
 * its heap after a full GC and its store entries, and prints the restore time after each rebalance.
 */

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from '../../cli/child.ts';
import { Admin, Consumer } from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';
import { Contracts } from '../../schemas/contracts.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { AvroSerde } from '../../schemas/serde.ts';
import { valueSubject } from '../../schemas/topics.ts';
import { up } from '../../stack/stack.ts';
import {
  benchEvent,
  committedSum,
  deleteRunTopics,
  KEEP_FOREVER,
  produceAll,
  progressBar,
  startSystem,
  T0,
  treeRssMib,
} from './harness.ts';
import { encoreAtLeastOnce } from './systems/typescript.ts';

export interface StateBenchOptions {
  sessions: number;
  partitions: number;
  output: string;
}

interface AppLine {
  tasks?: number;
  restoreSeconds?: number;
  state?: { heapUsed: number; entries: Record<string, number> };
}

/** The app's JSON lines, one at a time, as they come. */
function appLines(child: ChildProcess) {
  const waiting: ((line: AppLine) => void)[] = [];
  const queued: AppLine[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    if (!text.startsWith('{')) return;
    const line = JSON.parse(text) as AppLine;
    const next = waiting.shift();
    if (next) next(line);
    else queued.push(line);
  });
  return async (match: (line: AppLine) => boolean, timeoutMs: number): Promise<AppLine> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line =
        queued.shift() ??
        (await Promise.race([
          new Promise<AppLine>((resolve) => waiting.push(resolve)),
          sleep(Math.max(0, deadline - Date.now())).then(() => undefined),
        ]));
      if (line === undefined) throw new Error(`no matching line from the app within ${timeoutMs} ms`);
      if (match(line)) return line;
    }
  };
}

async function heap(child: ChildProcess, next: ReturnType<typeof appLines>) {
  child.kill('SIGUSR2');
  return (await next((l) => l.state !== undefined, 60_000)).state!;
}

export async function benchState(config: Config, options: StateBenchOptions): Promise<void> {
  await up(config);
  const prefix = `bench-state-${Date.now().toString(36)}`;
  const topic = `${prefix}-events`;
  const admin = new Admin(config);
  await admin.ensureTopics([
    { name: topic, partitions: options.partitions, replicationFactor: 1, config: KEEP_FOREVER },
    { name: `${prefix}-out`, partitions: options.partitions, replicationFactor: 1, config: KEEP_FOREVER },
  ]);
  await admin.close();
  const topics = { events: topic, output: `${prefix}-out`, applicationId: prefix };

  console.log(
    `State: ${options.sessions} sessions (one per user), ${options.partitions} partitions (${prefix})`,
  );
  const first = await startSystem(config, encoreAtLeastOnce, topics);
  let next = appLines(first);
  await next((l) => l.tasks === options.partitions, 120_000);
  const before = await heap(first, next);

  const registry = new SchemaRegistry(config);
  const serde = new AvroSerde(registry, valueSubject(topic), Contracts.listeningEvent);
  await produceAll(
    config,
    'events',
    options.sessions,
    (function* () {
      for (let u = 0; u < options.sessions; u++) {
        const event = benchEvent({
          eventId: `e-${u}`,
          userId: `user-${u}`,
          type: 'PLAY',
          // Within one minute: every session stays open (none is closed by stream time).
          timestamp: T0 + (u % 60_000),
          songId: `song-${u % 50_000}`,
          positionMs: 0,
        });
        yield serde
          .serialize(event)
          .then((value) => ({ topic, key: event.userId, value, timestamp: event.timestamp }));
      }
    })(),
  );
  registry.close();

  const monitor = new Consumer(config, 'bench-monitor', { groupId: prefix, topics: [] });
  await monitor.connect();
  const bar = progressBar('  processing {bar} {value}/{total}');
  bar.start(options.sessions, 0);
  for (;;) {
    const committed = await committedSum(monitor, topic, options.partitions);
    bar.update(committed);
    if (committed >= options.sessions) break;
    if (first.exitCode !== null) throw new Error(`the app exited (${first.exitCode})`);
    await sleep(500);
  }
  bar.stop();
  await monitor.disconnect();
  const after = await heap(first, next);
  const rssProcessing = treeRssMib(first.pid!);
  await stopChild(first);
  const held = after.entries.sessions ?? 0;
  const bytesPerSession = Math.round((after.heapUsed - before.heapUsed) / held);
  console.log(
    `  ${held} sessions held, ${bytesPerSession} bytes of heap each (RSS ${Math.round(rssProcessing)} MiB)`,
  );

  // Restart: the same application restores its tasks from the changelog before processing.
  const began = performance.now();
  const second = await startSystem(config, encoreAtLeastOnce, topics);
  next = appLines(second);
  const restored = await next((l) => l.tasks === options.partitions, 600_000);
  const untilReady = (performance.now() - began) / 1000;
  const check = await heap(second, next);
  await stopChild(second);
  const restoreSeconds = Math.round(restored.restoreSeconds! * 10) / 10;
  console.log(
    `  restored ${check.entries.sessions} sessions in ${restoreSeconds} s (${Math.round(untilReady * 10) / 10} s from process start)`,
  );

  await deleteRunTopics(config, prefix);
  const scale = options.sessions / 1_000_000;
  const file = {
    name: 'streams-state',
    command: `bin/encore bench state --sessions ${options.sessions} --partitions ${options.partitions}`,
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    date: new Date().toISOString().slice(0, 10),
    results: [
      {
        system: 'encore-alos',
        sessions: held,
        heap_bytes_per_session: bytesPerSession,
        rss_mib_while_holding: Math.round(rssProcessing),
        restored_sessions: check.entries.sessions ?? 0,
        restore_s: restoreSeconds,
        restart_to_ready_s: Math.round(untilReady * 10) / 10,
        p50_ms: null,
        p99_ms: null,
      },
    ],
    targets: [
      {
        metric: 'heap bytes per active session',
        goal: '<= 1024',
        value: bytesPerSession,
        met: bytesPerSession <= 1024,
      },
      {
        metric: `seconds to restore 1M sessions (measured for ${options.sessions}, scaled linearly)`,
        goal: '<= 30',
        value: Math.round((restoreSeconds / scale) * 10) / 10,
        met: restoreSeconds / scale <= 30 && check.entries.sessions === held,
      },
    ],
  };
  writeFileSync(options.output, `${JSON.stringify(file, null, 2)}\n`);
  console.log(`\nWrote ${options.output}`);
  for (const t of file.targets)
    console.log(`  ${t.met ? 'met    ' : 'MISSED '} ${t.metric} = ${t.value} (${t.goal})`);
}
