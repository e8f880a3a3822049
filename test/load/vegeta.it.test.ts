/**
 * vegeta for real (built from the Go module proxy, cached) against a local HTTP server: every body is
 * posted exactly once, stage after stage at its rate, and every answer comes back as a hit.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { attack, ensureVegeta } from '../../load/vegeta.ts';
import { isolatedConfig } from '../helpers/env.ts';

it('posts every body once, stage by stage, and returns each answer', async () => {
  const vegeta = await ensureVegeta(isolatedConfig('vegeta'));
  const received: string[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on('end', () => {
      received.push(body);
      const refused = body === '{"n":7}';
      response
        .writeHead(refused ? 400 : 202, { 'content-type': 'application/json' })
        .end(JSON.stringify({ accepted: refused ? 0 : 1, rejected: refused ? [{ index: 0 }] : [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1/events`;
  const dir = await mkdtemp(path.join(tmpdir(), 'encore-vegeta-'));
  try {
    const bodies = Array.from({ length: 70 }, (_, n) => JSON.stringify({ n }));
    const stages = [
      { requestsPerSecond: 20, seconds: 1 },
      { requestsPerSecond: 50, seconds: 1 },
    ];
    const hits = await attack(vegeta, url, stages, bodies, dir);

    assert.deepEqual([...received].sort(), [...bodies].sort());
    assert.equal(hits.length, 70);
    const ofStage = (stage: number) => hits.filter((h) => h.stage === stage).map((h) => h.seq);
    assert.deepEqual(
      ofStage(0).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.deepEqual(
      ofStage(1).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i),
    );
    const refused = hits.filter((h) => h.code === 400);
    assert.equal(refused.length, 1);
    assert.deepEqual(JSON.parse(refused[0]?.body ?? ''), { accepted: 0, rejected: [{ index: 0 }] });
    // The second stage starts on its schedule, a second after the first (vegeta never sends early).
    const firstOf = (stage: number) =>
      Math.min(...hits.filter((h) => h.stage === stage).map((h) => h.sentAt));
    assert.ok(firstOf(1) - firstOf(0) >= 800, `stage 1 began ${firstOf(1) - firstOf(0)} ms after stage 0`);
    await assert.rejects(attack(vegeta, url, stages, bodies.slice(0, 69), dir), /only 69 bodies/);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
