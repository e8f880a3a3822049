/**
 * The inference UDFs: one model version folder (`<modelsDir>/<name>/<version>/`, see training/) loaded
 * into an onnxruntime-node session. The disengagement model scores scoring points; the user tower embeds
 * them and carries the catalog's song embeddings behind a search index. Both take the `SessionFeatures`
 * the stream computed, encoded by udfs/encode.ts, in micro-batches of at most `serving.maxBatch`.
 */
import path from 'node:path';
import ort from 'onnxruntime-node';
import { Counter, Histogram } from 'prom-client';
import type { Config } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { registry } from '../core/metrics.ts';
import type { SessionFeatures } from '../schemas/types.generated.ts';
import { buildSongIndexOffThread, type SongIndex } from './ann.ts';
import { checkPoints, encodeCheckedFeatures, type ModelMetadata, readModelMetadata } from './encode.ts';
import { loadSongEmbeddings, SONG_EMBEDDINGS_FILE, type SongEmbeddings } from './song-embeddings.ts';

const log = logger('onnx');

export const MODEL_FILE = 'model.onnx';
export const METADATA_FILE = 'metadata.json';

export type ModelName = 'disengagement' | 'user-tower';

/** The files a version folder of each model needs: metadata.json is written last by the trainer. */
export const MODEL_FILES: Record<ModelName, readonly string[]> = {
  disengagement: [MODEL_FILE, METADATA_FILE],
  'user-tower': [MODEL_FILE, SONG_EMBEDDINGS_FILE, METADATA_FILE],
};

export type ServingOptions = Pick<Config['serving'], 'threads' | 'maxBatch' | 'exactSearchBelow'>;

export interface DisengagementModel {
  readonly name: 'disengagement';
  readonly version: string;
  /** The probability from which the model's validation chose to trigger (metadata.json). */
  readonly threshold: number;
  /** The feature spec version the model reads: scoring points of another are refused. */
  readonly featureSpec: string;
  /** The probability of disengagement at each point, in order. */
  score(points: readonly SessionFeatures[]): Promise<Float32Array>;
  /** Frees the session once the calls in flight are done; later calls fail. */
  release(): Promise<void>;
}

export interface UserTowerModel {
  readonly name: 'user-tower';
  readonly version: string;
  readonly featureSpec: string;
  readonly dimensions: number;
  /** The catalog's song embeddings of this version, searched by inner product with `embed`'s vectors. */
  readonly songs: SongIndex;
  /** A song's embedding (unit vector), undefined for a song the model has none for. */
  songVector(songId: string): Float32Array | undefined;
  /** One unit vector per point, in order. */
  embed(points: readonly SessionFeatures[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

const inferenceSeconds = new Histogram({
  name: 'encore_inference_duration_seconds',
  help: 'Time of one inference call on one micro-batch (encoding the points included), by model, version and batch size',
  labelNames: ['model', 'version', 'batch_size'] as const,
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [registry],
});

const pointsInferred = new Counter({
  name: 'encore_inference_points_total',
  help: 'Scoring points run through a model, by model and version',
  labelNames: ['model', 'version'] as const,
  registers: [registry],
});

/** Batch sizes grouped by powers of four, so the label stays a handful of values. */
const BATCH_SIZE_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096];

function batchSizeLabel(size: number): string {
  const at = BATCH_SIZE_BUCKETS.findIndex((upper) => size <= upper);
  const upper = BATCH_SIZE_BUCKETS[at] ?? Number.POSITIVE_INFINITY;
  const lower = at > 0 ? BATCH_SIZE_BUCKETS[at - 1]! + 1 : 1;
  return lower === upper ? `${upper}` : `${lower}-${Number.isFinite(upper) ? upper : ''}`;
}

/** A call waiting for the next micro-batch. */
interface QueuedCall {
  points: readonly SessionFeatures[];
  done: PromiseWithResolvers<Float32Array>;
}

/**
 * A session with its metadata: micro-batched runs, metrics, and a release that waits for runs in flight.
 *
 * Calls made together are run together: every task of the runtime flushes at once, and their points share
 * one model call instead of one call each (a point alone costs twice what it costs in a batch of 16 or more,
 * bench/results/udf.json; the user tower's calls were a few points each).
 */
class ModelSession {
  readonly metadata: ModelMetadata;
  private readonly session: ort.InferenceSession;
  private readonly maxBatch: number;
  /** Numbers per point in the output: the product of its dimensions after the batch. */
  private readonly outputWidth: number;
  private queue: QueuedCall[] = [];
  private running = false;
  private inFlight = 0;
  private released = false;
  private drained: PromiseWithResolvers<void> | undefined;

  constructor(metadata: ModelMetadata, session: ort.InferenceSession, maxBatch: number) {
    this.metadata = metadata;
    this.session = session;
    this.maxBatch = maxBatch;
    this.outputWidth = metadata.outputs[0]!.shape.slice(1).reduce<number>((n, d) => n * Number(d), 1);
  }

  private failed(why: string, cause?: unknown) {
    const { name, version } = this.metadata;
    return new EncoreError(ErrorCodes.INFERENCE_FAILED, `${name} ${version}: ${why}`, { cause });
  }

  /**
   * The model's output for the points, `outputWidth` numbers per point in their order. The call joins the
   * next micro-batch (up to `maxBatch` points per model call). Scoring points of another feature spec fail
   * with EncoreError(MODEL_INVALID), without failing the calls batched with them; onnxruntime's failures
   * fail the whole batch with EncoreError(INFERENCE_FAILED).
   */
  run(points: readonly SessionFeatures[]): Promise<Float32Array> {
    if (this.released) return Promise.reject(this.failed('the model was released (a newer version serves)'));
    try {
      checkPoints(this.metadata, points);
    } catch (error) {
      return Promise.reject(error);
    }
    if (points.length === 0) return Promise.resolve(new Float32Array(0));
    const done = Promise.withResolvers<Float32Array>();
    this.queue.push({ points, done });
    this.inFlight++;
    // setImmediate, not a microtask: the other tasks' flushes reach their model calls first.
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.runQueued());
    }
    return done.promise;
  }

  /** Runs what is queued, batch after batch, until the queue is empty. */
  private async runQueued() {
    while (this.queue.length > 0) {
      const calls = this.queue;
      this.queue = [];
      try {
        const output = await this.infer(calls.flatMap((call) => call.points));
        let at = 0;
        for (const call of calls) {
          const end = at + call.points.length * this.outputWidth;
          call.done.resolve(output.subarray(at, end));
          at = end;
        }
      } catch (error) {
        for (const call of calls) call.done.reject(error);
      } finally {
        this.inFlight -= calls.length;
        if (this.inFlight === 0) this.drained?.resolve();
      }
    }
    this.running = false;
  }

  /** One model call per chunk of at most `maxBatch` points. */
  private async infer(points: readonly SessionFeatures[]): Promise<Float32Array> {
    const { name, version } = this.metadata;
    const { name: outputName, shape: outputShape } = this.metadata.outputs[0]!;
    const result = new Float32Array(points.length * this.outputWidth);
    for (let start = 0; start < points.length; start += this.maxBatch) {
      const chunk = points.slice(start, start + this.maxBatch);
      const began = performance.now();
      const feeds = encodeCheckedFeatures(this.metadata, chunk);
      let output: ort.Tensor | undefined;
      try {
        output = (await this.session.run(feeds))[outputName];
      } catch (error) {
        throw this.failed(`onnxruntime failed on ${chunk.length} points: ${(error as Error).message}`, error);
      }
      const expected = [chunk.length, ...outputShape.slice(1)];
      if (output?.type !== 'float32' || output.dims.join() !== expected.join())
        throw this.failed(
          `output ${outputName} is ${output?.type} [${output?.dims}], expected float32 [${expected}]`,
        );
      result.set(output.data as Float32Array, start * this.outputWidth);
      inferenceSeconds
        .labels(name, version, batchSizeLabel(chunk.length))
        .observe((performance.now() - began) / 1000);
      pointsInferred.labels(name, version).inc(chunk.length);
    }
    return result;
  }

  async release() {
    if (this.released) return;
    this.released = true;
    // A session disposed under a run scheduled on it would crash the process, not fail a call.
    while (this.inFlight > 0) {
      this.drained = Promise.withResolvers();
      await this.drained.promise;
    }
    await this.session.release();
  }
}

/** Reads and checks the folder's metadata (its name and version included) and opens the session. */
async function openSession(
  directory: string,
  name: ModelName,
  serving: ServingOptions,
): Promise<ModelSession> {
  const metadataFile = path.join(directory, METADATA_FILE);
  const metadata = await readModelMetadata(metadataFile);
  const folder = path.basename(directory);
  if (metadata.name !== name || metadata.version !== folder)
    throw new EncoreError(
      ErrorCodes.MODEL_INVALID,
      `${metadataFile}: describes ${metadata.name} ${metadata.version}, but lies in the folder of ${name} ${folder}`,
    );
  const modelFile = path.join(directory, MODEL_FILE);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelFile, {
      intraOpNumThreads: serving.threads,
      // One model call at a time per session: the operators within it share the intra-op threads.
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    throw new EncoreError(
      ErrorCodes.MODEL_INVALID,
      `${modelFile}: onnxruntime cannot load it: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const names = (described: readonly { name: string }[]) => described.map((d) => d.name).join(', ');
  if (
    session.inputNames.join(', ') !== names(metadata.inputs) ||
    session.outputNames.join(', ') !== names(metadata.outputs)
  ) {
    await session.release();
    throw new EncoreError(
      ErrorCodes.MODEL_INVALID,
      `${modelFile}: takes (${session.inputNames.join(', ')}) and gives (${session.outputNames.join(', ')}); ${METADATA_FILE} says (${names(metadata.inputs)}) and (${names(metadata.outputs)})`,
    );
  }
  return new ModelSession(metadata, session, serving.maxBatch);
}

/** Runs `check` on a freshly opened session, releasing it when the check fails. */
async function checked<T>(session: ModelSession, check: () => Promise<T> | T): Promise<T> {
  try {
    return await check();
  } catch (error) {
    await session.release();
    throw error;
  }
}

function outputShape(metadata: ModelMetadata, expected: string): readonly (number | 'batch')[] {
  const [output] = metadata.outputs;
  if (metadata.outputs.length !== 1 || output!.dtype !== 'float32')
    throw new EncoreError(
      ErrorCodes.MODEL_INVALID,
      `${metadata.file}: field outputs: expected one float32 output, ${expected}`,
    );
  return output!.shape;
}

export async function loadDisengagementModel(
  directory: string,
  serving: ServingOptions,
): Promise<DisengagementModel> {
  const session = await openSession(directory, 'disengagement', serving);
  const { metadata } = session;
  const threshold = await checked(session, () => {
    const shape = outputShape(metadata, 'the probability [batch]');
    if (shape.join() !== 'batch')
      throw new EncoreError(
        ErrorCodes.MODEL_INVALID,
        `${metadata.file}: field outputs.0.shape: expected [batch], got [${shape}]`,
      );
    if (metadata.threshold === undefined)
      throw new EncoreError(ErrorCodes.MODEL_INVALID, `${metadata.file}: field threshold: missing`);
    return metadata.threshold;
  });
  log.info({ model: metadata.name, version: metadata.version, threshold }, 'model loaded');
  return {
    name: 'disengagement',
    version: metadata.version,
    threshold,
    featureSpec: metadata.featureSpec.version,
    score: (points) => session.run(points),
    release: () => session.release(),
  };
}

/**
 * The user tower and its version's song embeddings. A large catalog's HNSW index is built off the event
 * loop (minutes for a million songs); `signal` abandons the build.
 */
export async function loadUserTowerModel(
  directory: string,
  serving: ServingOptions,
  signal?: AbortSignal,
): Promise<UserTowerModel> {
  const session = await openSession(directory, 'user-tower', serving);
  const { metadata } = session;
  const embeddingsFile = path.join(directory, SONG_EMBEDDINGS_FILE);
  const { dimensions, embeddings, songs } = await checked(session, async () => {
    const shape = outputShape(metadata, 'the user embedding [batch, dimensions]');
    const dimensions = shape[1];
    if (shape.length !== 2 || shape[0] !== 'batch' || typeof dimensions !== 'number')
      throw new EncoreError(
        ErrorCodes.MODEL_INVALID,
        `${metadata.file}: field outputs.0.shape: expected [batch, dimensions], got [${shape}]`,
      );
    let embeddings: SongEmbeddings;
    try {
      embeddings = await loadSongEmbeddings(embeddingsFile);
    } catch (error) {
      throw new EncoreError(ErrorCodes.MODEL_INVALID, (error as Error).message, { cause: error });
    }
    if (embeddings.modelVersion !== metadata.version || embeddings.dimensions !== dimensions)
      throw new EncoreError(
        ErrorCodes.MODEL_INVALID,
        `${embeddingsFile}: embeddings of ${embeddings.modelVersion} in ${embeddings.dimensions} dimensions, the user tower is ${metadata.version} in ${dimensions}`,
      );
    // The file lists the vocabulary's songs in its order: fewer means it was read while being written.
    const vocabulary = metadata.featureSpec.vocabularies.songs.ids;
    if (embeddings.ids.length !== vocabulary.length || embeddings.ids.some((id, i) => id !== vocabulary[i]))
      throw new EncoreError(
        ErrorCodes.MODEL_INVALID,
        `${embeddingsFile}: ${embeddings.ids.length} songs, not the ${vocabulary.length} songs of the model's vocabulary in its order`,
      );
    const began = performance.now();
    const songs = await buildSongIndexOffThread(embeddings, embeddingsFile, {
      exactBelow: serving.exactSearchBelow,
      ...(signal && { signal }),
    });
    log.info(
      {
        version: metadata.version,
        songs: songs.size,
        index: songs.kind,
        seconds: (performance.now() - began) / 1000,
      },
      'song index built',
    );
    return { dimensions, embeddings, songs };
  });
  const rows = new Map(embeddings.ids.map((id, row) => [id, row]));
  log.info({ model: metadata.name, version: metadata.version, dimensions }, 'model loaded');
  return {
    name: 'user-tower',
    version: metadata.version,
    featureSpec: metadata.featureSpec.version,
    dimensions,
    songs,
    songVector(songId) {
      const row = rows.get(songId);
      return row === undefined
        ? undefined
        : embeddings.vectors.subarray(row * dimensions, (row + 1) * dimensions);
    },
    async embed(points) {
      const data = await session.run(points);
      return points.map((_, i) => data.subarray(i * dimensions, (i + 1) * dimensions));
    },
    release: () => session.release(),
  };
}
