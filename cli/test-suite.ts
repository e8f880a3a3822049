/**
 * `encore test`: what CI and a newcomer run. Lint and format check, type check, then the test suites:
 * unit tests (`*.test.ts`) need nothing; integration tests (`*.it.test.ts`) run against the real local
 * stack, which this command starts first.
 */
import { spawn } from 'node:child_process';
import { globSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../core/config.ts';
import { down, up } from '../stack/stack.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);

export interface TestOptions {
  unit?: boolean;
  /** Stop the stack afterwards (the default under CI, so a CI machine is left as it was found). */
  down?: boolean;
  /** Only test files whose path contains one of these strings. */
  filter?: string[];
}

function step(title: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  console.log(`\n▶ ${title}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${title} failed (${signal ?? `exit code ${code}`})`)),
    );
  });
}

export function testFiles(options: Pick<TestOptions, 'unit' | 'filter'>): string[] {
  return globSync('test/**/*.test.ts', { cwd: root })
    .filter((file) => !options.unit || !file.endsWith('.it.test.ts'))
    .filter((file) => !options.filter?.length || options.filter.some((f) => file.includes(f)))
    .sort();
}

export async function runTests(config: Config, options: TestOptions): Promise<void> {
  await step('biome: lint and format', bin('biome'), ['check', '.']);
  await step('tsc: type check', bin('tsc'), ['--noEmit', '-p', '.']);
  if (!options.filter?.length || options.filter.some((f) => f.includes('training'))) {
    // The trainer's suite (Python). Any non-zero exit fails, pytest's 5 ("no tests collected") included.
    const python = process.env.ENCORE_PYTHON;
    if (!python) throw new Error('ENCORE_PYTHON is not set: bin/encore prepares the trainer venv for `test`');
    const args = ['-m', 'pytest', 'training/tests', '-q', '-p', 'no:cacheprovider'];
    await step('pytest: training/tests', python, args, { PYTHONDONTWRITEBYTECODE: '1' });
  }
  const files = testFiles(options);
  if (files.length === 0) throw new Error('no test file matches');
  const integration = files.some((file) => file.endsWith('.it.test.ts'));
  if (integration) {
    console.log('\n▶ stack up');
    for (const r of await up(config)) console.log(`  ${r.name.padEnd(16)} ${r.action} in ${r.ms} ms`);
  }
  try {
    // One file at a time: some integration tests stop and start a shared server (ClickHouse) mid-test.
    const args = ['--test', '--test-concurrency=1', ...files];
    await step(`node --test: ${files.length} files`, process.execPath, args, {
      // Tests assert on behaviour; the job's info logs would bury the runner's report.
      ENCORE_LOG_LEVEL: process.env.ENCORE_LOG_LEVEL ?? 'warn',
    });
  } finally {
    if (integration && (options.down ?? process.env.CI === 'true')) {
      console.log('\n▶ stack down');
      for (const r of await down(config)) console.log(`  ${r.name.padEnd(16)} ${r.action}`);
    }
  }
}
