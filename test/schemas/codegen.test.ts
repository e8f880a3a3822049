import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { generate, generatedFile } from '../../schemas/codegen.ts';

it('types.generated.ts matches the .avsc files (regenerate with `node schemas/codegen.ts`)', () => {
  assert.equal(readFileSync(generatedFile, 'utf8'), generate());
});

it('turns nullable unions, enums, arrays, maps and bytes into TypeScript types', () => {
  const source = generate();
  assert.match(source, /export interface ListeningEvent \{/);
  assert.match(source, /songId: null \| string;/);
  assert.match(source, /export type EventType = 'UNKNOWN' \| 'PLAY' \| 'SKIP'/);
  assert.match(source, /items: RecommendedSong\[\];/);
  assert.match(source, /headers: Record<string, string>;/);
  assert.match(source, /value: null \| Buffer;/);
});
