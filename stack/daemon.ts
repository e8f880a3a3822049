/**
 * Background servers started by `stack up`: spawned detached with their output in a log file, remembered in a
 * pid file, and recognised on later runs by a marker in their command line (the component's data folder),
 * so `stack down` never signals a process it did not start, even when a pid was reused.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DaemonSpec {
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  pidFile: string;
  /** A string that only this daemon's command line contains. */
  marker: string;
}

export function spawnDaemon(spec: DaemonSpec): number {
  const out = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      detached: true,
      stdio: ['ignore', out, out],
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${spec.command}`);
    child.unref();
    writeFileSync(spec.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

/** The pid of the daemon if it is alive and still the process we started; cleans up a stale pid file. */
export function runningPid(pidFile: string, marker: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10);
  if (Number.isInteger(pid) && pid > 0 && commandLine(pid)?.includes(marker)) return pid;
  rmSync(pidFile, { force: true });
  return undefined;
}

function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\u0000', ' ');
  } catch {
    return undefined;
  }
}

/** Resident memory of a process in MiB, from /proc. */
export function residentMemoryMb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopDaemon(
  pid: number,
  pidFile: string,
  graceMs = 30_000,
): Promise<'stopped' | 'killed'> {
  let outcome: 'stopped' | 'killed' = 'stopped';
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && !isZombie(pid)) {
    if (Date.now() > deadline) {
      signal(pid, 'SIGKILL');
      outcome = 'killed';
    }
    await sleep(100);
  }
  rmSync(pidFile, { force: true });
  return outcome;
}

function signal(pid: number, name: NodeJS.Signals) {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** The last lines of a log file, for error messages that point at the cause. */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log yet)';
  }
}
