/** One implementation of the benchmark job (see bench/streams/README.md for the contract it follows). */
export interface BenchSystem {
  /** The name in the results file, e.g. `kafka-streams-java`. */
  name: string;
  /** The guarantee it runs under; `BENCH_GUARANTEE` carries it to the process. */
  guarantee: 'exactly-once' | 'at-least-once';
  /** Builds or installs what the system needs (cached across runs), and says how to start it. */
  prepare(): Promise<{ command: string; args: string[] }>;
}
