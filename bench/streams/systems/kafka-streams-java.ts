/**
 * Apache Kafka Streams 4.3 on Java 17, exactly_once_v2: bench/streams/java, a Maven project. The build lands
 * in the cache folder (`stack.cacheDir`, kept across clones), under a hash of the project's files, so a
 * fresh clone reuses it and an edit to the pom or the source rebuilds.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../../core/config.ts';
import { ensureCached, javaMajorVersion } from '../../../stack/install.ts';
import type { BenchSystem } from './system.ts';

const exec = promisify(execFile);

const repoRoot = path.resolve(import.meta.dirname, '..', '..', '..');
const projectDir = path.join(repoRoot, 'bench', 'streams', 'java');

/** Every file the build reads: pom.xml and everything under src/, in a stable order. */
function projectFiles(): string[] {
  const files = [path.join(projectDir, 'pom.xml')];
  const walk = (dir: string) => {
    // Plain code-unit order, not localeCompare: the hash must not depend on the machine's locale.
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(path.join(projectDir, 'src'));
  return files;
}

function buildHash(): string {
  const hash = createHash('sha256');
  for (const file of projectFiles()) {
    // The name counts too: a renamed file is a different build.
    hash.update(path.relative(projectDir, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

async function build(outputDir: string): Promise<void> {
  const args = ['-B', '-q', '-Dstyle.color=never', 'package', `-Dbench.buildDir=${outputDir}`];
  try {
    await exec('mvn', args, { cwd: projectDir, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const { stdout = '', stderr = '', message } = error as Error & { stdout?: string; stderr?: string };
    // Maven reports compile errors on stdout; a missing mvn has no output, only the spawn error.
    const output = `${stdout}${stderr}`.trim() || message;
    throw new Error(`kafka-streams-java: mvn ${args.join(' ')} failed in ${projectDir}:\n${output}`, {
      cause: error,
    });
  }
}

export const kafkaStreamsJava: BenchSystem = {
  name: 'kafka-streams-java',
  guarantee: 'exactly-once',
  async prepare() {
    const cacheRoot = path.join(loadConfig().stack.cacheDir, 'bench-java');
    const target = path.join(cacheRoot, buildHash());
    // Built into a temporary folder and renamed when complete: an interrupted build is redone, not used.
    if (await ensureCached(target, build)) {
      // Each build is ~100 MB (RocksDB's native libraries); older ones and failed attempts are of no use.
      for (const entry of readdirSync(cacheRoot)) {
        if (entry !== path.basename(target))
          rmSync(path.join(cacheRoot, entry), { recursive: true, force: true });
      }
    }
    const jar = path.join(target, 'session-count.jar');
    if (!existsSync(jar))
      throw new Error(`kafka-streams-java: the build in ${target} has no session-count.jar`);
    // The jar is compiled for Java 17: an older `java` would fail only once the harness starts it.
    const java = await javaMajorVersion('java');
    if (java === undefined || java < 17) {
      throw new Error(
        `kafka-streams-java: needs Java 17 or later as \`java\` on PATH, found ${java ?? 'none'}`,
      );
    }
    const schemas = path.join(repoRoot, 'schemas', 'avro');
    return {
      command: 'java',
      args: [
        '-jar',
        jar,
        path.join(schemas, 'listening-event.avsc'),
        path.join(schemas, 'user-profile.avsc'),
      ],
    };
  },
};
