/**
 * LinUCB (Li, Chu, Langford & Schapire 2010, "A contextual-bandit approach to personalized news article
 * recommendation"), the disjoint variant with one shared arm: a ridge regression of the reward on the
 * ranking features, kept as A⁻¹ and b so that each feedback is an O(d²) Sherman–Morrison update instead of
 * a matrix inversion. The mean θᵀx corrects the ranking's prior weights; the width √(xᵀA⁻¹x) says how
 * little the bandit knows about a feature vector, which the exploration slots go after.
 *
 * The state is plain numbers and arrays (no typed arrays, no class) so that a changelogged state store can
 * serialise it as JSON and a restarted job continues from the same estimates.
 */

export interface BanditState {
  dimensions: number;
  /** A⁻¹, row-major, `dimensions × dimensions`; A = ridge·I + Σ x xᵀ. */
  inverse: number[];
  /** b = Σ reward · x. */
  rewards: number[];
  /** Feedbacks learned from. */
  updates: number;
}

/** A bandit that knows nothing yet: A = ridge·I, so θ = 0 and every width is |x| / √ridge. */
export function newBandit(dimensions: number, ridge = 1): BanditState {
  if (!Number.isInteger(dimensions) || dimensions < 1)
    throw new RangeError(`a bandit needs a positive whole number of dimensions, got ${dimensions}`);
  if (!(ridge > 0) || !Number.isFinite(ridge))
    throw new RangeError(`the ridge must be a positive finite number, got ${ridge}`);
  const inverse = new Array<number>(dimensions * dimensions).fill(0);
  for (let i = 0; i < dimensions; i++) inverse[i * dimensions + i] = 1 / ridge;
  return { dimensions, inverse, rewards: new Array<number>(dimensions).fill(0), updates: 0 };
}

/**
 * Throws unless `x` fits the state and the state is whole; the state comes back from a store, and a
 * mismatch (a feature added without resetting the bandit) must fail loudly rather than read out of bounds.
 */
function checkState({ dimensions, inverse, rewards }: BanditState) {
  if (inverse.length !== dimensions * dimensions || rewards.length !== dimensions)
    throw new RangeError(
      `bandit state of ${dimensions} dimensions holds ${inverse.length} inverse and ${rewards.length} reward values, expected ${dimensions * dimensions} and ${dimensions}`,
    );
}

function checkShapes(state: BanditState, x: ArrayLike<number>) {
  checkState(state);
  if (x.length !== state.dimensions)
    throw new RangeError(`feature vector has ${x.length} values, the bandit ${state.dimensions} dimensions`);
}

/** θ = A⁻¹b, the learned weight of each feature (for explaining a score, or scoring many vectors). */
export function banditWeights(state: BanditState): Float64Array {
  checkState(state);
  const { dimensions, inverse, rewards } = state;
  const theta = new Float64Array(dimensions);
  for (let i = 0; i < dimensions; i++) {
    let sum = 0;
    for (let j = 0; j < dimensions; j++) sum += inverse[i * dimensions + j]! * rewards[j]!;
    theta[i] = sum;
  }
  return theta;
}

/** θᵀx: the reward the bandit expects for `x`. Scoring many vectors, take `banditWeights` once instead. */
export function banditMean(state: BanditState, x: ArrayLike<number>): number {
  checkShapes(state, x);
  const theta = banditWeights(state);
  let mean = 0;
  for (let i = 0; i < theta.length; i++) mean += theta[i]! * x[i]!;
  return mean;
}

/** √(xᵀA⁻¹x): the confidence width around the mean, large where the bandit has seen little like `x`. */
export function banditWidth(state: BanditState, x: ArrayLike<number>): number {
  checkShapes(state, x);
  const { dimensions, inverse } = state;
  let quadratic = 0;
  for (let i = 0; i < dimensions; i++) {
    if (x[i] === 0) continue;
    let row = 0;
    for (let j = 0; j < dimensions; j++) row += inverse[i * dimensions + j]! * x[j]!;
    quadratic += x[i]! * row;
  }
  // A⁻¹ is positive definite, so a negative value is rounding error.
  return Math.sqrt(Math.max(0, quadratic));
}

/**
 * Learns one feedback in place: A ← A + x xᵀ by Sherman–Morrison,
 * A⁻¹ ← A⁻¹ − (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x), and b ← b + reward · x.
 */
export function banditUpdate(state: BanditState, x: ArrayLike<number>, reward: number): void {
  checkShapes(state, x);
  // A NaN would poison the persisted state for good: refuse it before touching anything.
  if (!Number.isFinite(reward)) throw new RangeError(`reward must be a finite number, got ${reward}`);
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i])) throw new RangeError(`feature ${i} is ${x[i]}, not a finite number`);

  const { dimensions, inverse, rewards } = state;
  const projected = new Float64Array(dimensions); // A⁻¹x
  let quadratic = 0; // xᵀA⁻¹x
  for (let i = 0; i < dimensions; i++) {
    let sum = 0;
    for (let j = 0; j < dimensions; j++) sum += inverse[i * dimensions + j]! * x[j]!;
    projected[i] = sum;
    quadratic += x[i]! * sum;
  }
  // Using A⁻¹x for both sides (A⁻¹ is symmetric) keeps the stored inverse exactly symmetric.
  const denominator = 1 + quadratic;
  for (let i = 0; i < dimensions; i++) {
    const scaled = projected[i]! / denominator;
    for (let j = 0; j < dimensions; j++) inverse[i * dimensions + j]! -= scaled * projected[j]!;
    rewards[i]! += reward * x[i]!;
  }
  state.updates += 1;
}
