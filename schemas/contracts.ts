/**
 * The Avro contracts, each tying a schema file to the TypeScript type generated from it. Everything that
 * reads or writes a topic goes through one of these, never through a schema of its own.
 */
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import type {
  DeadLetter,
  DisengagementLabel,
  ListeningEvent,
  ListeningSession,
  ModelAnnouncement,
  ModelScore,
  Recommendation,
  RecommendationFeedback,
  RecommendationRequest,
  SessionFeatures,
  Song,
  UserProfile,
} from './types.generated.ts';

export interface Contract<T> {
  /** Full Avro name, e.g. dev.encore.events.ListeningEvent. */
  name: string;
  /** The schema as written in schemas/avro, for registration. */
  schema: avro.Schema;
  /** Compiled avsc type: the reader schema of this build. */
  type: avro.Type;
  /** Never set: carries T so serdes built from the contract are typed. */
  readonly valueType?: T;
}

export function contractFromSchema<T>(schema: avro.Schema): Contract<T> {
  const type = avro.Type.forSchema(schema);
  return { name: type.name ?? type.typeName, schema, type };
}

function contract<T>(file: string): Contract<T> {
  const schema = JSON.parse(readFileSync(new URL(`./avro/${file}`, import.meta.url), 'utf8')) as avro.Schema;
  return contractFromSchema<T>(schema);
}

export const Contracts = {
  listeningEvent: contract<ListeningEvent>('listening-event.avsc'),
  userProfile: contract<UserProfile>('user-profile.avsc'),
  song: contract<Song>('song.avsc'),
  recommendation: contract<Recommendation>('recommendation.avsc'),
  recommendationFeedback: contract<RecommendationFeedback>('recommendation-feedback.avsc'),
  deadLetter: contract<DeadLetter>('dead-letter.avsc'),
  sessionFeatures: contract<SessionFeatures>('session-features.avsc'),
  disengagementLabel: contract<DisengagementLabel>('disengagement-label.avsc'),
  listeningSession: contract<ListeningSession>('listening-session.avsc'),
  modelScore: contract<ModelScore>('model-score.avsc'),
  recommendationRequest: contract<RecommendationRequest>('recommendation-request.avsc'),
  modelAnnouncement: contract<ModelAnnouncement>('model-announcement.avsc'),
} as const;
