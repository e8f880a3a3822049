/**
 * Encore's own commands (`encore run`, `encore collect`) as child processes, configured through ENCORE_*
 * variables the way a deployment configures them. Benchmarks, load runs and fault tests use it: a child can
 * be SIGKILLed, and its CPU is its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { envName } from '../core/config.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Config keys as dotted paths (`streams.instanceId`) with their values for the child. */
export type ChildSettings = Record<string, string | number>;

export function spawnEncore(command: 'run' | 'collect', settings: ChildSettings): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(settings)) env[envName(key.split('.'))] = String(value);
  return spawn(process.execPath, ['cli/encore.ts', command], {
    cwd: root,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
  const done = exited(child);
  child.kill('SIGTERM');
  const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(kill);
}
