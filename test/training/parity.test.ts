/**
 * Parity between training and serving: a tiny deterministic training run (Python, PyTorch) exports both
 * models to ONNX with the inputs it scored; onnxruntime-node must give the same outputs within 1e-4.
 * Needs the trainer's virtualenv: bin/encore sets ENCORE_PYTHON for `encore test`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

const TOLERANCE = 1e-4;
const training = fileURLToPath(new URL('../../training', import.meta.url));

interface EncodedTensor {
  dtype: 'float32' | 'int64';
  dims: number[];
  data: number[];
}

interface ParityCase {
  model: string;
  metadata: string;
  inputs: Record<string, EncodedTensor>;
  expected: number[];
  dims: number[];
}

function tensor(encoded: EncodedTensor): ort.Tensor {
  return encoded.dtype === 'int64'
    ? new ort.Tensor(
        'int64',
        BigInt64Array.from(encoded.data, (x) => BigInt(x)),
        encoded.dims,
      )
    : new ort.Tensor('float32', Float32Array.from(encoded.data), encoded.dims);
}

async function run(parity: ParityCase, inputs: Record<string, EncodedTensor>): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(parity.model);
  try {
    const feeds = Object.fromEntries(Object.entries(inputs).map(([name, value]) => [name, tensor(value)]));
    const outputs = await session.run(feeds);
    return outputs[session.outputNames[0]!]!;
  } finally {
    await session.release();
  }
}

const maxDifference = (actual: ort.Tensor, expected: number[]) =>
  Math.max(...Array.from(actual.data as Float32Array, (x, i) => Math.abs(x - expected[i]!)));

describe('PyTorch → ONNX → onnxruntime-node parity', () => {
  let dir: string;
  let cases: ParityCase[];

  before(async () => {
    const python = process.env.ENCORE_PYTHON;
    assert.ok(python, 'ENCORE_PYTHON must name the trainer venv’s python (bin/encore test sets it)');
    dir = await mkdtemp(path.join(tmpdir(), 'encore-parity-'));
    const exported = spawnSync(python, ['-m', 'tests.parity_fixture', dir], {
      cwd: training,
      encoding: 'utf8',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    assert.equal(exported.status, 0, `the parity fixture failed:\n${exported.stderr.slice(-3000)}`);
    cases = JSON.parse(await readFile(path.join(dir, 'parity.json'), 'utf8'));
  });
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('exports the disengagement model and the user tower', () => {
    assert.deepEqual(
      cases.map((c) => path.basename(path.dirname(path.dirname(c.model)))),
      ['disengagement', 'user-tower'],
    );
  });

  it('takes the inputs metadata.json lists, in its order', async () => {
    for (const parity of cases) {
      const metadata = JSON.parse(await readFile(parity.metadata, 'utf8'));
      const session = await ort.InferenceSession.create(parity.model);
      assert.deepEqual(
        session.inputNames,
        metadata.inputs.map((i: { name: string }) => i.name),
      );
      assert.deepEqual(
        session.outputNames,
        metadata.outputs.map((o: { name: string }) => o.name),
      );
      await session.release();
    }
  });

  it(`agrees with PyTorch within ${TOLERANCE}`, async () => {
    for (const parity of cases) {
      const output = await run(parity, parity.inputs);
      assert.deepEqual(output.dims, parity.dims);
      const difference = maxDifference(output, parity.expected);
      assert.ok(difference <= TOLERANCE, `${parity.model}: max difference ${difference}`);
    }
  });

  it('would notice a difference: a perturbed input moves the outputs beyond the tolerance', async () => {
    for (const parity of cases) {
      const numeric = parity.inputs.numeric!;
      const seqDwell = parity.inputs.seq_dwell!;
      const perturbed = {
        ...parity.inputs,
        numeric: { ...numeric, data: numeric.data.map((x) => x + 0.5) },
        seq_dwell: { ...seqDwell, data: seqDwell.data.map((x) => x * 3 + 10) },
      };
      const difference = maxDifference(await run(parity, perturbed), parity.expected);
      assert.ok(difference > TOLERANCE, `${parity.model}: perturbed inputs still within ${difference}`);
    }
  });
});
