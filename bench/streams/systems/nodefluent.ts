/**
 * The `nodefluent` system: the benchmark job on the npm `kafka-streams` package (nodefluent 5.0.0), run by
 * Node itself from nodefluent-app.ts. The library is a devDependency, so `npm install` is all it needs.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { BenchSystem } from './system.ts';

const APP = fileURLToPath(new URL('./nodefluent-app.ts', import.meta.url));

export const nodefluent: BenchSystem = {
  name: 'nodefluent',
  // The library has no transactions; its producer is node-rdkafka's HighLevelProducer without them.
  guarantee: 'at-least-once',
  async prepare() {
    const require = createRequire(import.meta.url);
    // Fail here, with the fix in the message, rather than in the child after the harness started timing.
    // node-rdkafka is the library's native client (it does not depend on it; the repo does).
    for (const dependency of ['kafka-streams', 'node-rdkafka']) {
      try {
        require.resolve(dependency);
      } catch (error) {
        throw new Error(`nodefluent needs ${dependency}: run npm install`, { cause: error });
      }
    }
    return { command: process.execPath, args: [APP] };
  },
};
