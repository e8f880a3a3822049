/** The BENCH_* variables of the contract (bench/streams/README.md), for the systems written in TypeScript. */
import { type Config, loadConfig } from '../../../core/config.ts';
import type { ValueSerde } from '../../../topology/streams/topology.ts';

export interface BenchEnv {
  bootstrap: string;
  eventsTopic: string;
  /** Unset or empty: no profile join (the state benchmark measures the session store alone). */
  profilesTopic: string | undefined;
  outputTopic: string;
  applicationId: string;
  guarantee: 'exactly-once' | 'at-least-once';
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see bench/streams/README.md)`);
  return value;
}

export function benchEnv(): BenchEnv {
  const guarantee = required('BENCH_GUARANTEE');
  if (guarantee !== 'exactly-once' && guarantee !== 'at-least-once')
    throw new Error(`BENCH_GUARANTEE must be exactly-once or at-least-once, got ${guarantee}`);
  return {
    bootstrap: required('BENCH_BOOTSTRAP'),
    eventsTopic: required('BENCH_EVENTS_TOPIC'),
    profilesTopic: process.env.BENCH_PROFILES_TOPIC || undefined,
    outputTopic: required('BENCH_OUTPUT_TOPIC'),
    applicationId: required('BENCH_APPLICATION_ID'),
    guarantee,
  };
}

/** Encore's config for a TypeScript system: the stack's servers, the contract's group and guarantee. */
export function benchConfig(env: BenchEnv): Config {
  const base = loadConfig();
  const [host, port] = env.bootstrap.split(':');
  return {
    ...base,
    appId: env.applicationId,
    kafka: { ...base.kafka, host: host!, port: Number(port) },
    streams: { ...base.streams, guarantee: env.guarantee, instanceId: 'bench' },
  };
}

/** The output values of the contract: UTF-8 JSON (written only). */
export function jsonSerde<V>(): ValueSerde<V> {
  return {
    serialize: (value) => Buffer.from(JSON.stringify(value)),
    deserialize: () => {
      throw new Error('the benchmark only writes its output');
    },
  };
}
