/**
 * What a run must produce, computed before it starts: the plan's valid inputs through the job's own
 * topology in the in-memory test driver, with the models the job will serve and the same catalog. Every
 * output id is deterministic (an event's id; a recommendation's id hashes its user and its cause), and so
 * is the set of recommendations: a disengagement push depends on the user's scoring points, the model's
 * score, the user's threshold and the cooldown in event time, none of which depends on timing, partitioning
 * or batching. What does depend on them (a list's songs, its serving path, feedback and the bandit) is not
 * compared. Scores themselves differ by batch composition in the last float bit (~1e-7), so points that
 * close to their threshold are counted: a decision there could go either way.
 */
import type { Config } from '../core/config.ts';
import { topics } from '../schemas/topics.ts';
import type {
  ListeningEvent,
  ModelScore,
  Recommendation,
  RecommendationRequest,
  SessionFeatures,
  UserProfile,
} from '../schemas/types.generated.ts';
import { firstEventTime } from '../simulator/kafka.ts';
import { encoreTopology } from '../topology/recommendations.ts';
import { TopologyTestDriver } from '../topology/streams/test-driver.ts';
import { SongCatalog } from '../udfs/catalog.ts';
import { ModelRegistry } from '../udfs/models.ts';
import type { Plan } from './plan.ts';

/** A score this close to its threshold may land on the other side in another batch. */
export const FLOAT_NOISE = 1e-6;
/** Inputs between the driver's flushes, as a polled batch of the runtime. */
const FLUSH_EVERY = 500;

/** Output ids with their event times, to count "everything before t". */
export class Ledger {
  readonly times = new Map<string, number>();
  private sorted: Float64Array | undefined;

  add(id: string, time: number): void {
    this.times.set(id, time);
    this.sorted = undefined;
  }

  has(id: string): boolean {
    return this.times.has(id);
  }

  get size(): number {
    return this.times.size;
  }

  /** Every id with its event time, earliest first. */
  byTime(): { id: string; time: number }[] {
    return Array.from(this.times, ([id, time]) => ({ id, time })).sort((a, b) => a.time - b.time);
  }

  /** How many have an event time before `time`. */
  countBefore(time: number): number {
    this.sorted ??= Float64Array.from(this.times.values()).sort();
    let low = 0;
    let high = this.sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.sorted[middle]! < time) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

export interface Expected {
  /** Every valid event (version 1 or 2), by id. */
  events: Ledger;
  /** The topology's scoring points (features at every event but an exit), by event id. */
  scoringPoints: Ledger;
  /** Every recommendation, pushed or requested, by recommendation id. */
  recommendations: Ledger;
  /** Explicit requests among the recommendations. */
  requests: number;
  /** The champion's score was within FLOAT_NOISE of the threshold at these events. */
  nearThreshold: Set<string>;
  /** The model versions the driver served (the job must serve the same). */
  models: { disengagement: string | null; userTower: string | null };
  driverMs: number;
}

/** The plan through the topology in the test driver; `onProgress` gets the inputs processed so far. */
export async function expectedOutputs(
  config: Config,
  plan: Plan,
  onProgress?: (inputs: number) => void,
): Promise<Expected> {
  const began = Date.now();
  const t = topics(config);
  const registry = new ModelRegistry({ serving: { ...config.serving, modelPollMs: 0 } });
  await registry.start();
  const catalog = new SongCatalog();
  for (const song of plan.simulation.songs) catalog.put(song);
  const served = registry.current();
  const driver = new TopologyTestDriver(
    encoreTopology(config, () => undefined, { catalog, models: () => served }),
    { applicationId: config.appId, changelogs: false },
  );
  const expected: Expected = {
    events: new Ledger(),
    scoringPoints: new Ledger(),
    recommendations: new Ledger(),
    requests: 0,
    nearThreshold: new Set(),
    models: {
      disengagement: served.disengagement?.version ?? null,
      userTower: served.userTower?.version ?? null,
    },
    driverMs: 0,
  };
  const outputs = Object.values(t).map((topic) => driver.createOutputTopic<unknown>(topic.name));
  const points = driver.createOutputTopic<SessionFeatures>(t.sessionFeatures.name);
  const scores = driver.createOutputTopic<ModelScore>(t.modelScores.name);
  const recommendations = driver.createOutputTopic<Recommendation>(t.recommendations.name);
  /** Notes what the topology produced so far and lets go of every output (memory stays bounded). */
  const collect = async () => {
    await driver.flush();
    for (const point of points.readValues()) expected.scoringPoints.add(point.eventId, point.timestamp);
    for (const score of scores.readValues())
      if (
        score.role === 'champion' &&
        score.threshold !== null &&
        Math.abs(score.score - score.threshold) < FLOAT_NOISE
      )
        expected.nearThreshold.add(score.eventId);
    for (const recommendation of recommendations.readValues())
      expected.recommendations.add(recommendation.recommendationId, recommendation.eventTime);
    for (const output of outputs) output.readRecords();
  };

  const profiles = driver.createInputTopic<UserProfile>(t.userProfiles.name);
  const events = driver.createInputTopic<ListeningEvent>(t.listeningEvents.name);
  const requests = driver.createInputTopic<RecommendationRequest>(t.recommendationRequests.name);
  // The tables as produceTables stamps them.
  const first = firstEventTime(plan.validEvents());
  for (const profile of plan.simulation.profiles)
    profiles.pipe(profile.userId, profile, Math.min(profile.createdAt, first));
  let inputs = 0;
  try {
    for (const input of plan.inputs()) {
      if (input.kind === 'event') {
        // A version-2 event is read as version 1 (the job's reader schema): the same value.
        events.pipe(input.event.userId, input.event, input.event.timestamp);
        expected.events.add(input.event.eventId, input.event.timestamp);
      } else if (input.kind === 'request') {
        requests.pipe(input.request.userId, input.request, input.request.requestedAt);
        expected.requests += 1;
      }
      if (++inputs % FLUSH_EVERY === 0) {
        await collect();
        onProgress?.(inputs);
      }
    }
    await collect();
    onProgress?.(inputs);
  } finally {
    driver.close();
    await registry.close();
  }
  expected.driverMs = Date.now() - began;
  return expected;
}
