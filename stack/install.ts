/**
 * Getting the servers' binaries onto the machine: Debian packages, Maven Central artifacts, Java runtimes.
 * Every download lands in the cache folder first and is moved into place only when complete, so an
 * interrupted install is retried rather than half-used.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { EncoreError, ErrorCodes } from '../core/errors.ts';

const exec = promisify(execFile);

export type ComponentName = 'kafka' | 'schema-registry' | 'clickhouse';

export function componentError(component: ComponentName, message: string, cause?: unknown): EncoreError {
  return new EncoreError(ErrorCodes.STACK_COMPONENT_FAILED, `${component}: ${message}`, { cause });
}

export async function run(command: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  const { stdout, stderr } = await exec(command, args, {
    cwd: options.cwd,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return `${stdout}${stderr}`;
}

/** Where Debian puts servers: not on a non-root user's PATH there. */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Where `command` is: on PATH, or in the system directories; undefined when nowhere. */
export async function commandPath(command: string): Promise<string | undefined> {
  const PATH = [process.env.PATH ?? '', ...SYSTEM_DIRS].join(':');
  try {
    const { stdout } = await exec('/bin/sh', ['-c', `command -v ${command}`], {
      env: { ...process.env, PATH },
    });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Installs Debian packages when `probe` (a command) is missing; returns where `probe` is. */
export async function ensureDebianPackages(
  component: ComponentName,
  probe: string,
  packages: string[],
): Promise<string> {
  const found = await commandPath(probe);
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw componentError(
      component,
      `${probe} is missing; install it with: sudo apt-get install -y ${packages.join(' ')}`,
    );
  }
  try {
    await run('apt-get', ['update', '-qq']);
    await run('apt-get', ['install', '-y', '-qq', ...packages]);
  } catch (error) {
    throw componentError(
      component,
      `apt-get install ${packages.join(' ')} failed: ${(error as Error).message}`,
      error,
    );
  }
  const installed = await commandPath(probe);
  if (!installed)
    throw componentError(component, `${probe} is not there after apt-get install ${packages.join(' ')}`);
  return installed;
}

/**
 * Makes `target` exist by running `fill(tmp)` into a temporary folder and renaming it into place.
 * Returns false when it already existed (a cache hit).
 */
export async function ensureCached(target: string, fill: (tmp: string) => Promise<void>): Promise<boolean> {
  if (existsSync(path.join(target, '.complete'))) return false;
  const tmp = `${target}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await fill(tmp);
  writeFileSync(path.join(tmp, '.complete'), new Date().toISOString());
  rmSync(target, { recursive: true, force: true });
  renameSync(tmp, target);
  return true;
}

export async function maven(component: ComponentName, args: string[]): Promise<void> {
  const mvn = await ensureDebianPackages(component, 'mvn', ['maven']);
  try {
    await run(mvn, ['-B', '-q', ...args]);
  } catch (error) {
    throw componentError(
      component,
      `Maven failed: mvn ${args.join(' ')}\n${(error as Error).message}`,
      error,
    );
  }
}

/** The major version of a `java` binary, or undefined when it does not run. */
export async function javaMajorVersion(java: string): Promise<number | undefined> {
  try {
    const output = await run(java, ['-version']);
    const match = /version "(\d+)(?:\.(\d+))?/.exec(output);
    if (!match) return undefined;
    const major = Number(match[1]);
    return major === 1 ? Number(match[2]) : major;
  } catch {
    return undefined;
  }
}

/**
 * Finds a Java runtime of at least `minimum`. A configured home is the only candidate when set (a wrong
 * setting must fail, not be papered over); otherwise JAVA_HOME, `java` on PATH and the JDKs under
 * /usr/lib/jvm, newest first. Returns undefined when none qualifies.
 */
export async function findJava(minimum: number, configuredHome: string): Promise<string | undefined> {
  const candidates: string[] = [];
  if (configuredHome) candidates.push(path.join(configuredHome, 'bin', 'java'));
  else {
    if (process.env.JAVA_HOME) candidates.push(path.join(process.env.JAVA_HOME, 'bin', 'java'));
    candidates.push('java');
    const jvmRoot = '/usr/lib/jvm';
    if (existsSync(jvmRoot)) {
      for (const entry of readdirSync(jvmRoot)) candidates.push(path.join(jvmRoot, entry, 'bin', 'java'));
    }
  }
  let best: { java: string; version: number } | undefined;
  for (const java of candidates) {
    const version = await javaMajorVersion(java);
    if (version !== undefined && version >= minimum && (!best || version > best.version))
      best = { java, version };
  }
  return best?.java;
}

/** Rejects with STACK_PORT_IN_USE, naming the config key, when something already listens on the port. */
export async function assertPortFree(
  component: ComponentName,
  host: string,
  port: number,
  configKey: string,
): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
  if (!free) {
    throw new EncoreError(
      ErrorCodes.STACK_PORT_IN_USE,
      `${component}: port ${port} on ${host} (config key ${configKey}) is already in use by another process; ` +
        'stop that process or choose another port',
    );
  }
}

/** Resolves once a TCP connection to host:port succeeds, or false after `timeoutMs`. */
export async function portAccepts(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
