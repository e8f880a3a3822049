/**
 * `encore models announce`: tells every running job instance which model version to serve, through the
 * compacted model-control topic (the job also picks up new version folders by itself; an announcement pins
 * a version, rolls back, or starts and ends shadow scoring of a challenger).
 *
 *   encore models announce disengagement 20261123-1a2b3c4d               the champion, pinned
 *   encore models announce disengagement 20261123-5e6f7a8b --challenger  shadow-scored beside it
 *   encore models announce disengagement --withdraw [--challenger]       unpin (newest) / end the challenger
 */
import type { Command } from 'commander';
import { Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import type { ModelAnnouncement } from '../schemas/types.generated.ts';
import { provision } from '../topology/job.ts';
import { config } from './options.ts';

const MODELS = ['disengagement', 'user-tower'];

export function registerServingCommands(program: Command): void {
  program
    .command('models')
    .description('the models the running job serves')
    .command('announce')
    .description('announce a model version on the model-control topic: running jobs load and swap it')
    .argument('<model>', MODELS.join(' | '))
    .argument('[version]', 'a version folder under serving.modelsDir/<model>/')
    .option('--challenger', 'shadow-score it beside the champion instead of serving it')
    .option(
      '--withdraw',
      'withdraw the role: the champion goes back to the newest version, a challenger ends',
    )
    .action(
      async (
        model: string,
        version: string | undefined,
        options: { challenger?: boolean; withdraw?: boolean },
      ) => {
        if (!MODELS.includes(model))
          throw new Error(`model must be one of ${MODELS.join(', ')}, got "${model}"`);
        if (!version === !options.withdraw) throw new Error('give a version, or --withdraw (not both)');
        const announcement: ModelAnnouncement = {
          model,
          version: version ?? null,
          role: options.challenger ? 'CHALLENGER' : 'CHAMPION',
          announcedAt: Date.now(),
        };
        await announceModel(config(program.opts()), announcement);
        console.log(`announced ${model} ${announcement.role.toLowerCase()}: ${version ?? '(withdrawn)'}`);
      },
    );
}

/** Produces an announcement to the model-control topic, keyed `<model>/<role>` so compaction keeps the latest. */
export async function announceModel(loaded: Config, announcement: ModelAnnouncement): Promise<void> {
  await provision(loaded);
  const registry = new SchemaRegistry(loaded);
  const producer = new Producer(loaded, 'models-announce');
  try {
    const topic = topics(loaded).modelControl;
    await producer.connect();
    await producer.send([
      {
        topic: topic.name,
        key: `${announcement.model}/${announcement.role}`,
        value: await topicSerde(registry, topic).serialize(announcement),
      },
    ]);
  } finally {
    await producer.disconnect();
    registry.close();
  }
}
