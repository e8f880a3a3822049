/**
 * The model registry: which version of each model serves, with hot reload. Per model the champion is the
 * announced version (model-control topic, `announce`) or else the newest version folder under
 * `serving.modelsDir`, which is polled every `serving.modelPollMs`. The disengagement model may also have
 * a challenger, scored in the shadow of the champion. A new version is loaded completely (session open,
 * song index built) before it replaces the old one in one assignment of the snapshot; the old one is
 * released after a grace delay, once no call on it is in flight. A version that cannot be loaded is
 * logged and the current one keeps serving: the job never stops for a model.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Gauge } from 'prom-client';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';
import { registry } from '../core/metrics.ts';
import type { ModelAnnouncement } from '../schemas/types.generated.ts';
import {
  type DisengagementModel,
  loadDisengagementModel,
  loadUserTowerModel,
  MODEL_FILES,
  type ModelName,
  type UserTowerModel,
} from './onnx.ts';

const log = logger('models');

/** The models served at one moment. A caller keeps one snapshot for a whole batch: it is never mutated. */
export interface ServingModels {
  readonly disengagement?: DisengagementModel;
  /** Scored alongside the champion and logged, never acted on (shadow scoring). */
  readonly disengagementChallenger?: DisengagementModel;
  readonly userTower?: UserTowerModel;
}

export type ServingRole = 'champion' | 'challenger';

/** A change of served version; a null version is none (a first load, a challenger withdrawn). */
export interface ModelSwap {
  model: ModelName;
  role: ServingRole;
  fromVersion: string | null;
  toVersion: string | null;
}

export interface ModelRegistryOptions {
  /**
   * How long a replaced model stays usable by callers still holding an older snapshot before it is
   * released (after the calls in flight on it end, whatever this is). A snapshot is held for one batch,
   * well under a second.
   */
  releaseGraceMs?: number;
}

type ServedModel = DisengagementModel | UserTowerModel;

const MODEL_NAMES: readonly ModelName[] = ['disengagement', 'user-tower'];

/** Where each model and role sits in the snapshot; only the disengagement model has a challenger. */
const SLOTS: Record<ModelName, Partial<Record<ServingRole, keyof ServingModels>>> = {
  disengagement: { champion: 'disengagement', challenger: 'disengagementChallenger' },
  'user-tower': { champion: 'userTower' },
};

const DEFAULT_RELEASE_GRACE_MS = 30_000;

const modelInfo = new Gauge({
  name: 'encore_model_info',
  help: '1 for each model version served, by model, role (champion, challenger) and version',
  labelNames: ['model', 'role', 'version'] as const,
  registers: [registry],
});

/** Releases a model; a failure is logged (the session is gone either way). */
const release = (model: ServedModel) =>
  model
    .release()
    .catch((error: Error) =>
      log.error(
        { model: model.name, version: model.version, err: error.message },
        'releasing a model failed',
      ),
    );

const isModelName = (name: string): name is ModelName => (MODEL_NAMES as readonly string[]).includes(name);

export class ModelRegistry {
  private readonly serving: Config['serving'];
  private readonly modelsDir: string;
  private readonly releaseGraceMs: number;
  private snapshot: ServingModels = Object.freeze({});
  private readonly listeners = new Set<(swap: ModelSwap) => void>();
  /** Announced champion versions; a model absent here follows the newest folder. */
  private readonly pinned = new Map<ModelName, string>();
  /** Each model's loads and swaps, one after another (a user tower's index build must not overlap another). */
  private readonly queues = new Map<ModelName, { tail: Promise<unknown>; pending: number }>(
    MODEL_NAMES.map((name) => [name, { tail: Promise.resolve(), pending: 0 }]),
  );
  /** Versions that failed to load, with their files' signature: not tried again until a file changes. */
  private readonly refused = new Map<string, string>();
  /** Things already logged once: incomplete folders, models with no version. */
  private readonly reported = new Set<string>();
  private readonly retiring = new Map<ServedModel, NodeJS.Timeout>();
  private readonly stopping = new AbortController();
  private poller: NodeJS.Timeout | undefined;

  constructor(config: Pick<Config, 'serving'>, options: ModelRegistryOptions = {}) {
    this.serving = config.serving;
    this.modelsDir = path.resolve(config.serving.modelsDir);
    this.releaseGraceMs = options.releaseGraceMs ?? DEFAULT_RELEASE_GRACE_MS;
  }

  /** Loads each model's champion (a missing model is not an error: `current()` lacks it), then polls. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.serving.modelPollMs > 0 && !this.stopping.signal.aborted) {
      this.poller = setInterval(() => {
        // A model still loading (a large song index takes minutes) is not asked again meanwhile.
        for (const name of MODEL_NAMES)
          if (this.queues.get(name)!.pending === 0) void this.refreshModel(name);
      }, this.serving.modelPollMs);
      this.poller.unref();
    }
  }

  current(): ServingModels {
    return this.snapshot;
  }

  /** Looks for newer versions now (what each poll does); resolves once they are served or refused. */
  async refresh(): Promise<void> {
    await Promise.all(MODEL_NAMES.map((name) => this.refreshModel(name)));
  }

  /**
   * Applies a model-control record: CHAMPION pins a version (null: back to the newest), CHALLENGER loads
   * one next to the champion (null: withdraws it). Resolves to whether it took effect; a version that
   * cannot be loaded is logged and changes nothing.
   */
  announce(announcement: ModelAnnouncement): Promise<boolean> {
    const { model, version, role } = announcement;
    if (!isModelName(model)) {
      log.warn(
        { announcement },
        `announcement ignored: no model ${model} (known: ${MODEL_NAMES.join(', ')})`,
      );
      return Promise.resolve(false);
    }
    // A version names a folder under the model's: nothing that would lead out of it.
    if (version !== null && (version.startsWith('.') || /[/\\]/.test(version))) {
      log.warn({ announcement }, `announcement ignored: ${version} is not a version folder name`);
      return Promise.resolve(false);
    }
    if (this.stopping.signal.aborted) return Promise.resolve(false);
    if (role === 'CHALLENGER' && !SLOTS[model].challenger) {
      log.warn({ announcement }, `announcement ignored: only disengagement has a challenger, not ${model}`);
      return Promise.resolve(false);
    }
    return this.enqueue(model, async () => {
      const applied =
        role === 'CHAMPION'
          ? await this.applyChampion(model, version)
          : await this.applyChallenger(model, version);
      if (applied) log.info({ announcement }, 'announcement applied');
      return applied;
    });
  }

  /** Calls `listener` on every change of served version; returns the unsubscribe function. */
  onSwap(listener: (swap: ModelSwap) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops polling, abandons loads in progress and releases every model (after the calls in flight). */
  async close(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort(new Error('the model registry is closing'));
    clearInterval(this.poller);
    await Promise.all([...this.queues.values()].map((queue) => queue.tail));
    for (const name of MODEL_NAMES)
      for (const role of ['champion', 'challenger'] as const) {
        const model = this.served(name, role);
        if (model) modelInfo.remove({ model: name, role, version: model.version });
      }
    const models = [...Object.values(this.snapshot), ...this.retiring.keys()] as ServedModel[];
    for (const timer of this.retiring.values()) clearTimeout(timer);
    this.retiring.clear();
    this.snapshot = Object.freeze({});
    await Promise.all(models.map((model) => release(model)));
  }

  private enqueue<T>(name: ModelName, task: () => Promise<T>): Promise<T> {
    const queue = this.queues.get(name)!;
    queue.pending++;
    const run = queue.tail.then(task).finally(() => queue.pending--);
    queue.tail = run.catch(() => undefined);
    return run;
  }

  private refreshModel(name: ModelName): Promise<void> {
    return this.enqueue(name, () => this.followNewest(name)).catch((error: Error) =>
      log.error({ model: name, err: error.message }, 'looking for new model versions failed'),
    );
  }

  private served(name: ModelName, role: ServingRole): ServedModel | undefined {
    const slot = SLOTS[name][role];
    return slot && this.snapshot[slot];
  }

  /** Serves the newest loadable version newer than the served one, unless a version is pinned. */
  private async followNewest(name: ModelName): Promise<void> {
    if (this.pinned.has(name) || this.stopping.signal.aborted) return;
    const served = this.served(name, 'champion')?.version;
    const versions = await this.completeVersions(name);
    if (versions.length === 0 && served === undefined) {
      this.reportOnce(`missing ${name}`, () =>
        log.warn(
          { model: name, dir: path.join(this.modelsDir, name) },
          'no version of the model to serve: its fallbacks serve until one appears',
        ),
      );
      return;
    }
    // Newest first, down to the served one: a newer version that fails leaves the next newer a chance.
    for (const version of versions.reverse()) {
      if (served !== undefined && version <= served) return;
      const model = await this.tryLoad(name, version, 'champion', false);
      if (model) {
        this.swap(name, 'champion', model);
        return;
      }
    }
  }

  private async applyChampion(name: ModelName, version: string | null): Promise<boolean> {
    if (version === null) {
      this.pinned.delete(name);
      await this.followNewest(name);
      return true;
    }
    if (this.served(name, 'champion')?.version !== version) {
      const model = await this.tryLoad(name, version, 'champion', true);
      if (!model) return false;
      this.swap(name, 'champion', model);
    }
    this.pinned.set(name, version);
    return true;
  }

  private async applyChallenger(name: ModelName, version: string | null): Promise<boolean> {
    const current = this.served(name, 'challenger');
    if (version === null) {
      if (current) this.swap(name, 'challenger', undefined);
      return true;
    }
    if (current?.version === version) return true;
    const model = await this.tryLoad(name, version, 'challenger', true);
    if (!model) return false;
    this.swap(name, 'challenger', model);
    return true;
  }

  /** Version folders holding every file the model needs, oldest first; incomplete ones are reported once. */
  private async completeVersions(name: ModelName): Promise<string[]> {
    const { complete, incomplete } = await scanVersions(this.modelsDir, name);
    for (const { version, missing } of incomplete)
      this.reportOnce(`incomplete ${name}/${version} ${missing}`, () =>
        log.warn(
          { model: name, version, missing },
          `ignoring the version folder: it lacks ${missing.join(', ')}`,
        ),
      );
    return complete;
  }

  private fileStats(name: ModelName, version: string) {
    return versionFileStats(this.modelsDir, name, version);
  }

  /**
   * Loads a version, or logs why it cannot be and returns undefined. A refused version is not tried again
   * by the poll until one of its files changes (it may have been read while being written); an announced
   * version always is.
   */
  private async tryLoad(
    name: ModelName,
    version: string,
    role: ServingRole,
    announced: boolean,
  ): Promise<ServedModel | undefined> {
    const key = `${name}/${version}`;
    const signature = (await this.fileStats(name, version)).map((s) => s && `${s.mtimeMs}:${s.size}`).join();
    if (!announced && this.refused.get(key) === signature) return undefined;
    const directory = path.join(this.modelsDir, name, version);
    try {
      const model =
        name === 'disengagement'
          ? await loadDisengagementModel(directory, this.serving)
          : await loadUserTowerModel(directory, this.serving, this.stopping.signal);
      this.refused.delete(key);
      return model;
    } catch (error) {
      if (this.stopping.signal.aborted) return undefined;
      this.refused.set(key, signature);
      log.error(
        { model: name, version, err: (error as Error).message },
        `model version refused; the ${role} stays ${this.served(name, role)?.version ?? 'none'}`,
      );
      return undefined;
    }
  }

  /** Puts `model` in its slot in a new snapshot (none: empties it) and retires the one it replaces. */
  private swap(name: ModelName, role: ServingRole, model: ServedModel | undefined) {
    if (this.stopping.signal.aborted) {
      if (model) void release(model);
      return;
    }
    const slot = SLOTS[name][role]!;
    const previous = this.snapshot[slot];
    const next: Record<string, ServedModel | undefined> = { ...this.snapshot, [slot]: model };
    if (!model) delete next[slot];
    this.snapshot = Object.freeze(next) as ServingModels;
    if (previous) modelInfo.remove({ model: name, role, version: previous.version });
    if (model) modelInfo.set({ model: name, role, version: model.version }, 1);
    const swap: ModelSwap = {
      model: name,
      role,
      fromVersion: previous?.version ?? null,
      toVersion: model?.version ?? null,
    };
    log.info(swap, 'model swapped');
    for (const listener of this.listeners) {
      try {
        listener(swap);
      } catch (error) {
        log.error({ ...swap, err: (error as Error).message }, 'a model swap listener failed');
      }
    }
    if (previous) this.retire(previous);
  }

  private retire(model: ServedModel) {
    const timer = setTimeout(() => {
      this.retiring.delete(model);
      void release(model);
    }, this.releaseGraceMs);
    timer.unref();
    this.retiring.set(model, timer);
  }

  private reportOnce(key: string, report: () => void) {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    report();
  }
}

function versionFileStats(modelsDir: string, name: ModelName, version: string) {
  return Promise.all(
    MODEL_FILES[name].map((file) => stat(path.join(modelsDir, name, version, file)).catch(() => undefined)),
  );
}

/**
 * The version folders of a model under `modelsDir`: those holding every file the model needs, oldest first
 * (versions sort as strings; the last is what the registry serves unless one is pinned), and the others
 * with what they lack. Hidden folders are versions being written (publish one by renaming it into place).
 */
export async function scanVersions(
  modelsDir: string,
  name: ModelName,
): Promise<{ complete: string[]; incomplete: { version: string; missing: string[] }[] }> {
  let entries: Dirent[];
  try {
    entries = await readdir(path.join(modelsDir, name), { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { complete: [], incomplete: [] };
    throw error;
  }
  const complete: string[] = [];
  const incomplete: { version: string; missing: string[] }[] = [];
  for (const entry of entries.filter((e) => e.isDirectory() && !e.name.startsWith('.'))) {
    const missing = (await versionFileStats(modelsDir, name, entry.name)).flatMap((s, i) =>
      s ? [] : [MODEL_FILES[name][i]!],
    );
    if (missing.length === 0) complete.push(entry.name);
    else incomplete.push({ version: entry.name, missing });
  }
  return { complete: complete.sort(), incomplete };
}
