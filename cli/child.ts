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

/** Settings as the ENCORE_* variables that carry them. */
export function settingsEnv(settings: ChildSettings): Record<string, string> {
  return Object.fromEntries(
    Object.entries(settings).map(([key, value]) => [envName(key.split('.')), String(value)]),
  );
}

/** `output: 'pipe'` hands the child's stdout and stderr to the caller instead of this process's. */
export function spawnEncore(
  command: 'run' | 'collect',
  settings: ChildSettings,
  options: { output?: 'inherit' | 'pipe' } = {},
): ChildProcess {
  const output = options.output ?? 'inherit';
  return spawn(process.execPath, ['cli/encore.ts', command], {
    cwd: root,
    env: { ...process.env, ...settingsEnv(settings) },
    stdio: ['ignore', output, output],
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
