/**
 * A built topology: sources, processors, sinks and state stores, split into sub-topologies (the parts
 * connected by record flow or by a shared store; repartition topics separate them). Each sub-topology runs
 * as one task per input partition. `describe()` prints it the way Kafka Streams' Topology.describe() does.
 */
import type { ProcessorSupplier } from './api.ts';
import type { DroppedRecords } from './operators.ts';

/** Values on the wire. Keys are UTF-8 strings everywhere in Encore, so only values have a serde. */
export interface ValueSerde<V> {
  serialize(value: V): Promise<Buffer> | Buffer;
  deserialize(bytes: Buffer | null): Promise<V> | V;
}

/**
 * Event time of a record: by default the Kafka record timestamp; an extractor can take it from the value
 * instead (e.g. when the device clock is in the event), as Kafka Streams' TimestampExtractor does.
 */
export type TimestampExtractor<V> = (value: V, recordTimestamp: number) => number;

export interface SourceNode {
  kind: 'source';
  name: string;
  topic: string;
  serde?: ValueSerde<unknown>;
  timestampExtractor?: TimestampExtractor<unknown>;
  children: string[];
}

export interface ProcessorNode {
  kind: 'processor';
  name: string;
  supplier: ProcessorSupplier<unknown, unknown, unknown, unknown>;
  stores: string[];
  children: string[];
}

export interface SinkNode {
  kind: 'sink';
  name: string;
  topic: string;
  serde?: ValueSerde<unknown>;
  /** Always empty: a sink ends the flow. */
  children: string[];
}

export type TopologyNode = SourceNode | ProcessorNode | SinkNode;

export interface StoreDefinition {
  name: string;
  kind: 'key-value' | 'session' | 'list';
  /**
   * The compacted topic holding the store's changes: `<appId>-<store>-changelog`, or the source topic itself
   * for a table read from a compacted topic (restoring from it needs no second copy).
   */
  changelog: { topic: string; sourceTopic: boolean };
}

export interface SubTopology {
  id: number;
  nodes: TopologyNode[];
  sourceTopics: string[];
  sinkTopics: string[];
  stores: string[];
}

export interface TopologyDescription {
  subtopologies: {
    id: number;
    nodes: {
      kind: string;
      name: string;
      topic?: string;
      stores?: string[];
      successors: string[];
      predecessors: string[];
    }[];
  }[];
  stores: StoreDefinition[];
  topics: { sources: string[]; sinks: string[]; repartition: string[]; changelogs: string[] };
}

export class Topology {
  readonly nodes: ReadonlyMap<string, TopologyNode>;
  readonly stores: ReadonlyMap<string, StoreDefinition>;
  readonly repartitionTopics: readonly string[];
  readonly subtopologies: readonly SubTopology[];
  /** Late records dropped by each session aggregation, by store name (counted across all its tasks). */
  readonly dropped: ReadonlyMap<string, DroppedRecords>;

  constructor(
    nodes: Map<string, TopologyNode>,
    stores: Map<string, StoreDefinition>,
    repartitionTopics: string[],
    dropped: ReadonlyMap<string, DroppedRecords> = new Map(),
  ) {
    this.nodes = nodes;
    this.stores = stores;
    this.repartitionTopics = repartitionTopics;
    this.dropped = dropped;
    this.subtopologies = splitSubtopologies(nodes);
  }

  /** The sub-topology that reads `topic`. */
  subtopologyOf(topic: string): SubTopology | undefined {
    return this.subtopologies.find((s) => s.sourceTopics.includes(topic));
  }

  parents(name: string): string[] {
    return [...this.nodes.values()].filter((n) => n.children.includes(name)).map((n) => n.name);
  }

  describe(): { text: string; json: TopologyDescription } {
    const json: TopologyDescription = {
      subtopologies: this.subtopologies.map((s) => ({
        id: s.id,
        nodes: s.nodes.map((n) => ({
          kind: n.kind,
          name: n.name,
          ...(n.kind === 'processor' ? { stores: n.stores } : { topic: n.topic }),
          successors: n.children,
          predecessors: this.parents(n.name),
        })),
      })),
      stores: [...this.stores.values()],
      topics: {
        sources: [...new Set(this.subtopologies.flatMap((s) => s.sourceTopics))],
        sinks: [...new Set(this.subtopologies.flatMap((s) => s.sinkTopics))],
        repartition: [...this.repartitionTopics],
        changelogs: [...this.stores.values()].map((s) => s.changelog.topic),
      },
    };
    const lines = ['Topologies:'];
    for (const sub of json.subtopologies) {
      lines.push(`   Sub-topology: ${sub.id}`);
      for (const node of sub.nodes) {
        const detail =
          node.kind === 'source'
            ? `Source: ${node.name} (topics: [${node.topic}])`
            : node.kind === 'sink'
              ? `Sink: ${node.name} (topic: ${node.topic})`
              : `Processor: ${node.name} (stores: [${node.stores?.join(', ')}])`;
        lines.push(`    ${detail}`);
        lines.push(`      --> ${node.successors.join(', ') || 'none'}`);
        lines.push(`      <-- ${node.predecessors.join(', ') || 'none'}`);
      }
    }
    if (json.stores.length > 0) {
      lines.push('   Stores:');
      for (const store of json.stores) {
        lines.push(`    ${store.name} (${store.kind}, changelog: ${store.changelog.topic})`);
      }
    }
    return { text: `${lines.join('\n')}\n`, json };
  }
}

/** Connected components over record flow and shared stores, in the order of their first source. */
function splitSubtopologies(nodes: Map<string, TopologyNode>): SubTopology[] {
  const parent = new Map<string, string>([...nodes.keys()].map((n) => [n, n]));
  const find = (n: string): string => {
    const p = parent.get(n)!;
    if (p === n) return n;
    const root = find(p);
    parent.set(n, root);
    return root;
  };
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  const storeOwners = new Map<string, string>();
  for (const node of nodes.values()) {
    for (const child of node.children) union(node.name, child);
    if (node.kind === 'processor') {
      for (const store of node.stores) {
        const owner = storeOwners.get(store);
        if (owner) union(owner, node.name);
        else storeOwners.set(store, node.name);
      }
    }
  }
  const groups = new Map<string, TopologyNode[]>();
  for (const node of nodes.values()) {
    const root = find(node.name);
    groups.set(root, [...(groups.get(root) ?? []), node]);
  }
  return [...groups.values()].map((group, id) => ({
    id,
    nodes: group,
    sourceTopics: group.flatMap((n) => (n.kind === 'source' ? [n.topic] : [])),
    sinkTopics: group.flatMap((n) => (n.kind === 'sink' ? [n.topic] : [])),
    stores: [...new Set(group.flatMap((n) => (n.kind === 'processor' ? n.stores : [])))],
  }));
}
