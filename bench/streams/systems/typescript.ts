/** The systems written in TypeScript: each runs from its own file with this Node. */
import { fileURLToPath } from 'node:url';
import type { BenchSystem } from './system.ts';

function typescriptSystem(name: string, file: string, guarantee: BenchSystem['guarantee']): BenchSystem {
  const path = fileURLToPath(new URL(file, import.meta.url));
  // --expose-gc: the Encore app measures its heap after a collection when asked (SIGUSR2).
  return {
    name,
    guarantee,
    prepare: async () => ({ command: process.execPath, args: ['--expose-gc', path] }),
  };
}

export const rawPassthrough = typescriptSystem('raw-passthrough', './raw-app.ts', 'at-least-once');
export const encoreAtLeastOnce = typescriptSystem('encore-alos', './encore-app.ts', 'at-least-once');
export const encoreExactlyOnce = typescriptSystem('encore-eos', './encore-app.ts', 'exactly-once');
