/**
 * The local stack: Kafka, the schema registry and ClickHouse on 127.0.0.1, installed and run by Encore itself.
 * `up` is idempotent (a healthy server is left alone), `down` stops only what `up` started, `status` checks
 * each server's own protocol.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { clickhouse } from './clickhouse.ts';
import type { Component, StackContext } from './component.ts';
import { isAlive, residentMemoryMb, runningPid, spawnDaemon, stopDaemon, tail } from './daemon.ts';
import { assertPortFree, componentError, portAccepts } from './install.ts';
import { kafka } from './kafka.ts';
import { schemaRegistry } from './registry.ts';

export const COMPONENTS: readonly Component[] = [kafka, schemaRegistry, clickhouse];

export interface ComponentStatus {
  name: string;
  state: 'healthy' | 'unhealthy' | 'stopped';
  pid?: number;
  memoryMb?: number;
  ports: string;
  logFile: string;
}

export function stackContext(config: Config): StackContext {
  return {
    config,
    dataDir: path.resolve(config.stack.dataDir),
    cacheDir: path.resolve(config.stack.cacheDir),
    log: logger('stack'),
  };
}

function files(ctx: StackContext, component: Component) {
  const home = path.join(ctx.dataDir, component.name);
  return {
    home,
    pidFile: path.join(home, 'server.pid'),
    logFile: path.join(home, 'server.log'),
    // The home folder's absolute path appears in every server's command line (config file, data path).
    marker: home,
  };
}

export interface UpResult {
  name: string;
  action: 'started' | 'already-running';
  ms: number;
}

/** Installs what is missing, then starts every server that is not already healthy. */
export async function up(config: Config, only: readonly Component[] = COMPONENTS): Promise<UpResult[]> {
  const ctx = stackContext(config);
  // Installs one after another: Maven's local repository is not safe for concurrent writers.
  for (const component of only) await component.install(ctx);
  const results = await Promise.allSettled(only.map((component) => start(ctx, component)));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    throw new EncoreError(ErrorCodes.STACK_COMPONENT_FAILED, failures.map((f) => f.message).join('\n\n'), {
      cause: failures[0],
    });
  }
  return results.map((r) => (r as PromiseFulfilledResult<UpResult>).value);
}

async function start(ctx: StackContext, component: Component): Promise<UpResult> {
  const began = Date.now();
  const f = files(ctx, component);
  mkdirSync(f.home, { recursive: true });
  const existing = runningPid(f.pidFile, f.marker);
  if (existing !== undefined) {
    await waitHealthy(ctx, component, existing, f.logFile);
    await component.ready?.(ctx);
    return { name: component.name, action: 'already-running', ms: Date.now() - began };
  }
  for (const binding of component.ports(ctx.config)) {
    await assertPortFree(component.name, binding.host, binding.port, binding.key);
  }
  const launch = await component.prepare(ctx, f.home);
  const pid = spawnDaemon({ ...launch, logFile: f.logFile, pidFile: f.pidFile, marker: f.marker });
  ctx.log.info({ server: component.name, pid, log: f.logFile }, 'started');
  await waitHealthy(ctx, component, pid, f.logFile);
  await component.ready?.(ctx);
  return { name: component.name, action: 'started', ms: Date.now() - began };
}

async function waitHealthy(ctx: StackContext, component: Component, pid: number, logFile: string) {
  const deadline = Date.now() + ctx.config.stack.startTimeoutMs;
  const [primary] = component.ports(ctx.config);
  while (Date.now() < deadline) {
    if (!isAlive(pid)) {
      throw componentError(
        component.name,
        `the server exited during start; see ${logFile}:\n${tail(logFile)}`,
      );
    }
    // The cheap TCP probe first: protocol checks on a closed port cost a client timeout each.
    if ((!primary || (await portAccepts(primary.host, primary.port))) && (await component.healthy(ctx)))
      return;
    await sleep(250);
  }
  throw new EncoreError(
    ErrorCodes.TIMEOUT,
    `${component.name}: not healthy after ${ctx.config.stack.startTimeoutMs} ms (stack.startTimeoutMs); ` +
      `see ${logFile}:\n${tail(logFile)}`,
  );
}

export interface DownResult {
  name: string;
  action: 'stopped' | 'killed' | 'not-running';
}

/** Stops the servers this stack started (found by pid file and command-line marker). */
export async function down(config: Config, only: readonly Component[] = COMPONENTS): Promise<DownResult[]> {
  const ctx = stackContext(config);
  return Promise.all(
    only.map(async (component) => {
      const f = files(ctx, component);
      const pid = runningPid(f.pidFile, f.marker);
      if (pid === undefined) return { name: component.name, action: 'not-running' as const };
      return { name: component.name, action: await stopDaemon(pid, f.pidFile) };
    }),
  );
}

export async function status(config: Config): Promise<ComponentStatus[]> {
  const ctx = stackContext(config);
  return Promise.all(
    COMPONENTS.map(async (component) => {
      const f = files(ctx, component);
      const pid = runningPid(f.pidFile, f.marker);
      const ports = component
        .ports(config)
        .map((p) => `${p.host}:${p.port}`)
        .join(' ');
      if (pid === undefined)
        return { name: component.name, state: 'stopped' as const, ports, logFile: f.logFile };
      const healthy = await component.healthy(ctx);
      return {
        name: component.name,
        state: healthy ? ('healthy' as const) : ('unhealthy' as const),
        pid,
        memoryMb: residentMemoryMb(pid),
        ports,
        logFile: f.logFile,
      };
    }),
  );
}
