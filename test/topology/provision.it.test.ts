/** Provisioning on the real stack: deprovision removes one application's topics and database, no other's. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ClickHouse, sqlString } from '../../clients/clickhouse.ts';
import { Admin } from '../../clients/kafka.ts';
import { deprovision, provision } from '../../topology/job.ts';
import { isolatedConfig } from '../helpers/env.ts';

it("deprovision deletes every topic of the app id and its database, and nothing of another app's", async () => {
  const config = isolatedConfig('deprovision');
  const other = isolatedConfig('deprovision-other');
  const admin = new Admin(config);
  const db = new ClickHouse(config, { database: null });
  const topicsOf = async (appId: string) =>
    (await admin.describeCluster()).topics.filter((topic) => topic.name.startsWith(`${appId}-`)).length;
  const databaseExists = async (name: string) =>
    Number(
      (
        await db.query<{ n: string }>(
          `SELECT count() AS n FROM system.databases WHERE name = ${sqlString(name)}`,
        )
      )[0]?.n,
    ) > 0;
  try {
    for (const app of [config, other]) {
      await provision(app);
      await db.command(`CREATE DATABASE IF NOT EXISTS ${app.clickhouse.database}`);
    }
    assert.ok((await topicsOf(config.appId)) > 10);

    await deprovision(config);

    assert.equal(await topicsOf(config.appId), 0);
    assert.equal(await databaseExists(config.clickhouse.database), false);
    assert.ok((await topicsOf(other.appId)) > 10, "the other app's topics are still there");
    assert.equal(await databaseExists(other.clickhouse.database), true);
  } finally {
    await deprovision(other);
    await admin.close();
    await db.close();
  }
});
