/**
 * The k6 binary for the load tests, built once from the Go module proxy into the cache folder.
 *
 * Plain k6, not k6 with xk6-kafka: the module proxy here refuses xk6 and xk6-kafka (403, see docs/STACK.md),
 * so the load tests drive Encore through its HTTP event collector, which produces Avro to Kafka.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { commandPath, ensureCached } from '../stack/install.ts';

export const K6_VERSION = 'v1.8.1';
/** Where the Go toolchain's official tarball installs itself, for machines that have not put it on PATH. */
const GO_FALLBACK = '/usr/local/go/bin/go';

const log = logger('k6');

async function goBinary(): Promise<string> {
  const onPath = await commandPath('go');
  if (onPath) return onPath;
  if (existsSync(GO_FALLBACK)) return GO_FALLBACK;
  throw new EncoreError(
    ErrorCodes.STACK_COMPONENT_FAILED,
    `k6: building k6 ${K6_VERSION} needs Go 1.24+ (\`go\` on PATH or ${GO_FALLBACK}); install it from https://go.dev/dl/`,
  );
}

function goInstall(go: string, gopath: string, bin: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(go, ['install', `go.k6.io/k6@${K6_VERSION}`], {
      // A GOPATH in the cache keeps the module downloads for the next build; -modcacherw lets the cache be
      // deleted without chmod.
      env: { ...process.env, GOPATH: gopath, GOBIN: bin, GOFLAGS: '-modcacherw', CGO_ENABLED: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(
            new EncoreError(
              ErrorCodes.STACK_COMPONENT_FAILED,
              `k6: go install go.k6.io/k6@${K6_VERSION} failed (exit ${code}):\n${stderr}`,
            ),
          ),
    );
  });
}

/** The path of a k6 binary, building it on first use (about 2 minutes, then cached). */
export async function ensureK6(config: Config): Promise<string> {
  const cache = path.resolve(config.stack.cacheDir);
  const dir = path.join(cache, `k6-${K6_VERSION}`);
  const built = await ensureCached(dir, async (tmp) => {
    const go = await goBinary();
    log.info({ version: K6_VERSION, dir }, 'building k6 from the Go module proxy (once, ~2 minutes)');
    await goInstall(go, path.join(cache, 'go'), tmp);
  });
  if (built) log.info({ dir }, 'k6 built');
  return path.join(dir, 'k6');
}
