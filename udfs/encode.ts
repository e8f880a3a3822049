/**
 * A model version's metadata.json (written by training/encore_training/export.py) and the encoding of
 * scoring points into the model's input tensors. The stream computes the features once (`SessionFeatures`,
 * topology/listening/features.ts); this file only turns them into tensors, exactly as training did
 * (dataset.py `PointsBuilder.add`, models.py `batch_tensors`), with the names, order and vocabularies read
 * from the metadata rather than listed here.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import ort from 'onnxruntime-node';
import { z } from 'zod';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import type { SessionFeatures } from '../schemas/types.generated.ts';

/** Ids to model indices: `ids[i]` is index `firstIndex + i`; ids not listed are `unknownIndex`. */
export interface Vocabulary {
  padIndex: number;
  unknownIndex: number;
  firstIndex: number;
  ids: readonly string[];
}

export interface FeatureSpec {
  version: string;
  /** Raw values in this order (normalisation is inside the model). */
  numeric: readonly { name: string; transform: string }[];
  /** Each value is its index in `values`; an unknown value is 0. */
  categorical: readonly { name: string; values: readonly string[] }[];
  /** The session's last `length` plays, left-padded. */
  sequence: { length: number; fields: readonly string[] };
  /** `users` is null for a model without a user-id input. */
  vocabularies: { songs: Vocabulary; users: Vocabulary | null };
}

export interface TensorDescription {
  name: string;
  dtype: 'float32' | 'int64';
  /** 'batch' for the dynamic batch dimension. */
  shape: readonly (number | 'batch')[];
}

export interface ModelMetadata {
  /** Where it was read from, for error messages. */
  file: string;
  name: string;
  version: string;
  /** The disengagement model's trigger threshold, chosen on validation data. */
  threshold: number | undefined;
  featureSpec: FeatureSpec;
  inputs: readonly TensorDescription[];
  outputs: readonly TensorDescription[];
}

/**
 * The SessionFeatures field of each categorical the spec may name (its name in the dataset rows); a spec
 * naming another one is a feature the job does not compute.
 */
const CATEGORICAL_FIELDS = {
  device: 'device',
  event_type: 'eventType',
  subscription: 'subscription',
} as const satisfies Record<string, keyof SessionFeatures>;

/** The dataset row fields of the sequence, in the order training reads them (spec.py SEQUENCE_FIELDS). */
const SEQUENCE_FIELDS = ['seq_song_ids', 'seq_skipped', 'seq_dwell_s', 'seq_gap_s'];

const vocabulary = z
  .object({
    pad_index: z.number().int().min(0),
    unknown_index: z.number().int().min(0),
    first_index: z.number().int().min(0),
    ids: z.array(z.string()),
  })
  .refine((v) => v.first_index > Math.max(v.pad_index, v.unknown_index), {
    message: 'first_index must come after pad_index and unknown_index',
  });

const tensor = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'int64']),
  shape: z.array(z.union([z.number().int().min(1), z.literal('batch')])).min(1),
});

const MetadataSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  threshold: z.number().min(0).max(1).optional(),
  feature_spec: z.object({
    version: z.string().min(1),
    numeric: z.array(z.object({ name: z.string().min(1), transform: z.string() })).min(1),
    categorical: z.array(
      z.object({
        name: z.enum(Object.keys(CATEGORICAL_FIELDS) as (keyof typeof CATEGORICAL_FIELDS)[], {
          error: `the job computes the categoricals ${Object.keys(CATEGORICAL_FIELDS).join(', ')} only`,
        }),
        values: z.array(z.string()).min(1),
      }),
    ),
    sequence: z.object({
      length: z.number().int().min(1),
      fields: z.array(z.string()).refine((fields) => fields.join() === SEQUENCE_FIELDS.join(), {
        message: `the job computes the sequence fields ${SEQUENCE_FIELDS.join(', ')}, in this order`,
      }),
    }),
    vocabularies: z.object({ songs: vocabulary, users: vocabulary.nullable() }),
  }),
  inputs: z.array(tensor).min(1),
  outputs: z.array(tensor).min(1),
});

type RawSpec = z.infer<typeof MetadataSchema>['feature_spec'];

const sequenceLength = (spec: RawSpec) => spec.sequence.length;

/** The inputs a model may take, each with what its metadata must declare: dtype and [batch, width]. */
const INPUTS = {
  numeric: { dtype: 'float32', width: (spec: RawSpec) => spec.numeric.length },
  categorical: { dtype: 'int64', width: (spec: RawSpec) => spec.categorical.length },
  seq_song: { dtype: 'int64', width: sequenceLength },
  seq_skipped: { dtype: 'float32', width: sequenceLength },
  seq_dwell: { dtype: 'float32', width: sequenceLength },
  seq_gap: { dtype: 'float32', width: sequenceLength },
  /** One index per point: shape [batch]. */
  user: { dtype: 'int64', width: undefined },
} as const;

type InputName = keyof typeof INPUTS;

const invalid = (file: string, why: string) => new EncoreError(ErrorCodes.MODEL_INVALID, `${file}: ${why}`);

/** Validates a parsed metadata.json; `file` names it in errors. Throws EncoreError(MODEL_INVALID). */
export function parseModelMetadata(raw: unknown, file: string): ModelMetadata {
  const parsed = MetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const field = issue.path.join('.') || '(top level)';
      return `field ${field}: ${issue.message}`;
    });
    throw invalid(file, problems.join('; '));
  }
  const metadata = parsed.data;
  const spec = metadata.feature_spec;
  for (const [position, input] of metadata.inputs.entries()) {
    const field = `field inputs.${position}`;
    if (!Object.hasOwn(INPUTS, input.name))
      throw invalid(file, `${field}: unknown input ${input.name} (known: ${Object.keys(INPUTS).join(', ')})`);
    const expected = INPUTS[input.name as InputName];
    const shape = expected.width ? ['batch', expected.width(spec)] : ['batch'];
    if (input.dtype !== expected.dtype || input.shape.join() !== shape.join())
      throw invalid(
        file,
        `${field}: ${input.name} is ${input.dtype} [${input.shape}], the feature spec gives ${expected.dtype} [${shape}]`,
      );
    if (input.name === 'user' && spec.vocabularies.users === null)
      throw invalid(
        file,
        `${field}: the model takes a user input but feature_spec.vocabularies.users is null`,
      );
  }
  const vocabularyOf = (v: z.infer<typeof vocabulary>): Vocabulary => ({
    padIndex: v.pad_index,
    unknownIndex: v.unknown_index,
    firstIndex: v.first_index,
    ids: v.ids,
  });
  return {
    file,
    name: metadata.name,
    version: metadata.version,
    threshold: metadata.threshold,
    featureSpec: {
      version: spec.version,
      numeric: spec.numeric,
      categorical: spec.categorical,
      sequence: spec.sequence,
      vocabularies: {
        songs: vocabularyOf(spec.vocabularies.songs),
        users: spec.vocabularies.users && vocabularyOf(spec.vocabularies.users),
      },
    },
    inputs: metadata.inputs,
    outputs: metadata.outputs,
  };
}

/** Reads and validates a metadata.json. Throws EncoreError(MODEL_INVALID) naming the file and the field. */
export async function readModelMetadata(file: string): Promise<ModelMetadata> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw invalid(file, `cannot read it: ${(error as Error).message}`);
  }
  return parseModelMetadata(raw, file);
}

/** A metadata's lookups, built once per model version: encoding runs per micro-batch. */
interface Encoder {
  metadata: ModelMetadata;
  songs: Map<string, number>;
  users: Map<string, number> | undefined;
  categoricals: {
    field: (typeof CATEGORICAL_FIELDS)[keyof typeof CATEGORICAL_FIELDS];
    index: Map<string, number>;
  }[];
}

const encoders = new WeakMap<ModelMetadata, Encoder>();

function encoderOf(metadata: ModelMetadata): Encoder {
  let encoder = encoders.get(metadata);
  if (!encoder) {
    const { vocabularies, categorical } = metadata.featureSpec;
    const indexOf = (v: Vocabulary) => new Map(v.ids.map((id, i) => [id, v.firstIndex + i]));
    encoder = {
      metadata,
      songs: indexOf(vocabularies.songs),
      users: vocabularies.users ? indexOf(vocabularies.users) : undefined,
      categoricals: categorical.map(({ name, values }) => ({
        field: CATEGORICAL_FIELDS[name as keyof typeof CATEGORICAL_FIELDS],
        index: new Map(values.map((value, i) => [value, i])),
      })),
    };
    encoders.set(metadata, encoder);
  }
  return encoder;
}

/**
 * int64 tensors filled through an Int32Array over their buffer: indices are small and non-negative, so
 * writing the low word (its high word stays 0) is the value, without a BigInt per element.
 */
const LOW_WORD = endianness() === 'LE' ? 0 : 1;

function int64Column(length: number): { data: BigInt64Array; words: Int32Array } {
  const data = new BigInt64Array(length);
  return { data, words: new Int32Array(data.buffer) };
}

/** Where a point's sequence lands: its last `length` plays, after `pad` padded positions. */
function sequenceWindow(
  point: SessionFeatures,
  length: number,
): { from: number; pad: number; count: number } {
  const count = Math.min(point.seqSongIds.length, length);
  return { from: point.seqSongIds.length - count, pad: length - count, count };
}

function floatSequence(
  encoder: Encoder,
  points: readonly SessionFeatures[],
  values: (point: SessionFeatures, at: number) => number,
): ort.Tensor {
  const { length } = encoder.metadata.featureSpec.sequence;
  const data = new Float32Array(points.length * length);
  points.forEach((point, row) => {
    const { from, pad, count } = sequenceWindow(point, length);
    const offset = row * length + pad;
    for (let j = 0; j < count; j++) data[offset + j] = values(point, from + j);
  });
  return new ort.Tensor('float32', data, [points.length, length]);
}

const ENCODE: Record<InputName, (encoder: Encoder, points: readonly SessionFeatures[]) => ort.Tensor> = {
  numeric(encoder, points) {
    const width = encoder.metadata.featureSpec.numeric.length;
    const data = new Float32Array(points.length * width);
    points.forEach((point, row) => {
      data.set(point.features, row * width);
    });
    return new ort.Tensor('float32', data, [points.length, width]);
  },
  categorical({ categoricals }, points) {
    const width = categoricals.length;
    const { data, words } = int64Column(points.length * width);
    points.forEach((point, row) => {
      for (let c = 0; c < width; c++) {
        const { field, index } = categoricals[c]!;
        words[2 * (row * width + c) + LOW_WORD] = index.get(point[field]) ?? 0;
      }
    });
    return new ort.Tensor('int64', data, [points.length, width]);
  },
  seq_song({ metadata, songs }, points) {
    const { length } = metadata.featureSpec.sequence;
    const { unknownIndex } = metadata.featureSpec.vocabularies.songs;
    const { data, words } = int64Column(points.length * length);
    points.forEach((point, row) => {
      const { from, pad, count } = sequenceWindow(point, length);
      const offset = row * length + pad;
      for (let j = 0; j < count; j++)
        words[2 * (offset + j) + LOW_WORD] = songs.get(point.seqSongIds[from + j]!) ?? unknownIndex;
    });
    return new ort.Tensor('int64', data, [points.length, length]);
  },
  seq_skipped: (encoder, points) => floatSequence(encoder, points, (p, at) => (p.seqSkipped[at] ? 1 : 0)),
  seq_dwell: (encoder, points) => floatSequence(encoder, points, (p, at) => p.seqDwellSeconds[at]!),
  seq_gap: (encoder, points) => floatSequence(encoder, points, (p, at) => p.seqGapSeconds[at]!),
  user({ metadata, users }, points) {
    const { unknownIndex } = metadata.featureSpec.vocabularies.users!;
    const { data, words } = int64Column(points.length);
    points.forEach((point, row) => {
      words[2 * row + LOW_WORD] = users!.get(point.userId) ?? unknownIndex;
    });
    return new ort.Tensor('int64', data, [points.length]);
  },
};

/** Refuses points the model cannot read, before any tensor is built: EncoreError(MODEL_INVALID). */
export function checkPoints(metadata: ModelMetadata, points: readonly SessionFeatures[]) {
  const { version, numeric } = metadata.featureSpec;
  for (const point of points) {
    if (point.featureSpec !== version)
      throw new EncoreError(
        ErrorCodes.MODEL_INVALID,
        `${metadata.name} ${metadata.version} reads feature spec ${version}, scoring point ${point.eventId} follows ${point.featureSpec}`,
      );
    const songs = point.seqSongIds.length;
    if (
      point.features.length !== numeric.length ||
      point.seqSkipped.length !== songs ||
      point.seqDwellSeconds.length !== songs ||
      point.seqGapSeconds.length !== songs
    )
      throw new EncoreError(
        ErrorCodes.MODEL_INVALID,
        `scoring point ${point.eventId} does not follow feature spec ${version}: ${point.features.length} numeric features (the spec has ${numeric.length}), sequences of ${songs}, ${point.seqSkipped.length}, ${point.seqDwellSeconds.length} and ${point.seqGapSeconds.length} plays`,
      );
  }
}

/**
 * The model's input tensors for `points`, one row per point, for exactly the inputs its metadata lists.
 * Throws EncoreError(MODEL_INVALID) when a point follows another feature spec version than the model's.
 */
export function encodeFeatures(
  metadata: ModelMetadata,
  points: readonly SessionFeatures[],
): Record<string, ort.Tensor> {
  checkPoints(metadata, points);
  return encodeCheckedFeatures(metadata, points);
}

/** `encodeFeatures` for points `checkPoints` already accepted (a model session checks each call's on arrival). */
export function encodeCheckedFeatures(
  metadata: ModelMetadata,
  points: readonly SessionFeatures[],
): Record<string, ort.Tensor> {
  const encoder = encoderOf(metadata);
  const feeds: Record<string, ort.Tensor> = {};
  for (const { name } of metadata.inputs) feeds[name] = ENCODE[name as InputName](encoder, points);
  return feeds;
}
