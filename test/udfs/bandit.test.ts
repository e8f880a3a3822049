import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random, sigmoid } from '../../simulator/random.ts';
import { banditMean, banditUpdate, banditWeights, banditWidth, newBandit } from '../../udfs/bandit.ts';

function randomVector(random: Random, dimensions: number): number[] {
  return Array.from({ length: dimensions }, () => random.between(-1, 1));
}

/** A⁻¹ by Gauss–Jordan elimination with partial pivoting: the slow, direct way to compare against. */
function invert(matrix: number[][]): number[][] {
  const n = matrix.length;
  const rows = matrix.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let column = 0; column < n; column++) {
    let pivot = column;
    for (let r = column + 1; r < n; r++)
      if (Math.abs(rows[r]![column]!) > Math.abs(rows[pivot]![column]!)) pivot = r;
    [rows[column], rows[pivot]] = [rows[pivot]!, rows[column]!];
    const pivotRow = rows[column]!;
    const scale = pivotRow[column]!;
    for (let j = 0; j < 2 * n; j++) pivotRow[j]! /= scale;
    for (let r = 0; r < n; r++) {
      if (r === column) continue;
      const factor = rows[r]![column]!;
      for (let j = 0; j < 2 * n; j++) rows[r]![j]! -= factor * pivotRow[j]!;
    }
  }
  return rows.map((row) => row.slice(n));
}

describe('LinUCB bandit', () => {
  it('starts knowing nothing: mean 0, width |x| / √ridge', () => {
    const bandit = newBandit(3, 4);
    assert.equal(banditMean(bandit, [1, 2, 2]), 0);
    assert.equal(banditWidth(bandit, [1, 2, 2]), 3 / 2);
    assert.equal(bandit.updates, 0);
  });

  it('learns a Bernoulli(sigmoid(w·x)) environment: ranks the arms in the true order, widths shrink', () => {
    const random = new Random(4);
    const dimensions = 6;
    const trueWeights = [1.5, -1, 0.5, 2, -0.5, 1];
    const arms = Array.from({ length: dimensions }, () => randomVector(random, dimensions));
    const rewardProbability = arms.map((x) => sigmoid(x.reduce((sum, v, i) => sum + v * trueWeights[i]!, 0)));
    const trueOrder = arms.map((_, arm) => arm).sort((a, b) => rewardProbability[b]! - rewardProbability[a]!);
    // The environment must be learnable at this sample size: arms at least 0.05 apart.
    for (let i = 1; i < trueOrder.length; i++)
      assert.ok(rewardProbability[trueOrder[i - 1]!]! - rewardProbability[trueOrder[i]!]! >= 0.05);

    const bandit = newBandit(dimensions);
    const widthsBefore = arms.map((x) => banditWidth(bandit, x));
    for (let step = 0; step < 30_000; step++) {
      const x = random.pick(arms);
      banditUpdate(bandit, x, random.chance(rewardProbability[arms.indexOf(x)]!) ? 1 : 0);
    }

    const means = arms.map((x) => banditMean(bandit, x));
    assert.deepEqual(
      arms.map((_, arm) => arm).sort((a, b) => means[b]! - means[a]!),
      trueOrder,
    );
    // Each arm spans its own direction, so the ridge regression recovers every arm's reward rate.
    means.forEach((mean, arm) => {
      assert.ok(
        Math.abs(mean - rewardProbability[arm]!) < 0.05,
        `arm ${arm}: ${mean} vs ${rewardProbability[arm]}`,
      );
    });
    arms.forEach((x, arm) => {
      assert.ok(banditWidth(bandit, x) < widthsBefore[arm]! / 10, `arm ${arm} width did not shrink`);
    });
    assert.equal(bandit.updates, 30_000);
  });

  it('keeps A⁻¹ equal to the direct inverse of ridge·I + Σ x xᵀ, and θ = A⁻¹b', () => {
    const random = new Random(3);
    const dimensions = 5;
    const ridge = 2;
    const bandit = newBandit(dimensions, ridge);
    const matrix = Array.from({ length: dimensions }, (_, i) =>
      Array.from({ length: dimensions }, (_, j) => (i === j ? ridge : 0)),
    );
    const rewards = new Array<number>(dimensions).fill(0);
    for (let step = 0; step < 200; step++) {
      const x = randomVector(random, dimensions);
      const reward = random.normal();
      banditUpdate(bandit, x, reward);
      for (let i = 0; i < dimensions; i++) {
        rewards[i]! += reward * x[i]!;
        for (let j = 0; j < dimensions; j++) matrix[i]![j]! += x[i]! * x[j]!;
      }
    }

    const inverse = invert(matrix);
    inverse.forEach((row, i) => {
      row.forEach((value, j) => {
        assert.ok(Math.abs(bandit.inverse[i * dimensions + j]! - value) < 1e-9, `A⁻¹[${i}][${j}]`);
      });
    });
    const theta = inverse.map((row) => row.reduce((sum, value, j) => sum + value * rewards[j]!, 0));
    banditWeights(bandit).forEach((weight, i) => {
      assert.ok(Math.abs(weight - theta[i]!) < 1e-9, `θ[${i}]`);
    });
    const x = randomVector(random, dimensions);
    const expectedMean = theta.reduce((sum, weight, i) => sum + weight * x[i]!, 0);
    const expectedWidth = Math.sqrt(
      x.reduce((sum, xi, i) => sum + xi * inverse[i]!.reduce((row, value, j) => row + value * x[j]!, 0), 0),
    );
    assert.ok(Math.abs(banditMean(bandit, x) - expectedMean) < 1e-9);
    assert.ok(Math.abs(banditWidth(bandit, x) - expectedWidth) < 1e-9);
  });

  it('survives a JSON round trip: the same scores, and it goes on learning the same way', () => {
    const random = new Random(5);
    const bandit = newBandit(4);
    for (let step = 0; step < 100; step++) banditUpdate(bandit, randomVector(random, 4), random.float());
    const restored = JSON.parse(JSON.stringify(bandit));
    const x = randomVector(random, 4);
    assert.equal(banditMean(restored, x), banditMean(bandit, x));
    assert.equal(banditWidth(restored, x), banditWidth(bandit, x));
    banditUpdate(bandit, x, 1);
    banditUpdate(restored, x, 1);
    assert.deepEqual(restored, bandit);
  });

  it('rejects sizes that do not fit, naming them', () => {
    assert.throws(() => newBandit(0), RangeError);
    assert.throws(() => newBandit(2.5), RangeError);
    assert.throws(() => newBandit(3, 0), RangeError);
    const bandit = newBandit(4);
    assert.throws(() => banditMean(bandit, [1, 2, 3]), /3 values, the bandit 4 dimensions/);
    assert.throws(() => banditWidth(bandit, [1, 2, 3, 4, 5]), /5 values, the bandit 4 dimensions/);
    assert.throws(() => banditUpdate(bandit, [1], 1), RangeError);
    const truncated = { ...bandit, inverse: bandit.inverse.slice(1) };
    assert.throws(() => banditMean(truncated, [1, 2, 3, 4]), /15 inverse .* expected 16/);
  });

  it('refuses a non-finite reward or feature without touching the state', () => {
    const bandit = newBandit(2);
    const before = structuredClone(bandit);
    assert.throws(() => banditUpdate(bandit, [1, 0], Number.NaN), RangeError);
    assert.throws(() => banditUpdate(bandit, [Number.POSITIVE_INFINITY, 0], 1), RangeError);
    assert.deepEqual(bandit, before);
  });
});
