/** What `stack up | down | status` needs from each local server. */
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { ComponentName } from './install.ts';

export interface StackContext {
  config: Config;
  /** Absolute: `stack.dataDir`; each component owns `<dataDir>/<name>/`. */
  dataDir: string;
  /** Absolute: `stack.cacheDir`, for downloads kept across clones. */
  cacheDir: string;
  log: Logger;
}

export interface PortBinding {
  /** The config key that sets this port, for error messages. */
  key: string;
  host: string;
  port: number;
}

export interface Launch {
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

export interface Component {
  name: ComponentName;
  ports(config: Config): PortBinding[];
  /** Downloads or installs what the server needs; cached, so a second call is quick. */
  install(ctx: StackContext): Promise<void>;
  /** Writes the server's config files under its data folder and says how to launch it. */
  prepare(ctx: StackContext, home: string): Promise<Launch>;
  /** One quick check that the server answers its protocol, not merely that a port is open. */
  healthy(ctx: StackContext): Promise<boolean>;
  /**
   * Set-up that needs the server running (Kafka's SCRAM user), after each `up` has found it healthy, whether
   * it started it or found it running: idempotent, and quick when there is nothing to do.
   */
  ready?(ctx: StackContext): Promise<void>;
}
