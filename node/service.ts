/**
 * Running a full-node service as its own process (`tsx node/main.ts`, `tsx node/dataNode.ts`):
 * parse the environment (a bad field prints its message and exits 1), start the service, and on
 * SIGINT or SIGTERM stop it once and exit.
 */
import type { Logger } from "pino";
import { GradnetError } from "../sdk";
import { ConfigError } from "./config";

export interface RunningService {
  logger: Logger;
}

export function runAsProcess<C, S extends RunningService>(
  parse: (env: NodeJS.ProcessEnv) => C,
  start: (config: C) => Promise<S>,
  stop: (service: S) => Promise<void>,
): void {
  const main = async (): Promise<void> => {
    let config: C;
    try {
      config = parse(process.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(err.message);
        process.exit(1);
      }
      throw err;
    }
    const service = await start(config);
    let shuttingDown = false;
    const shutdown = (signal: NodeJS.Signals) => {
      if (shuttingDown) return;
      shuttingDown = true;
      service.logger.info({ signal }, "shutting down");
      stop(service).then(
        () => process.exit(0),
        (err: unknown) => {
          service.logger.error({ err }, "error while shutting down");
          process.exit(1);
        },
      );
    };
    process.on("SIGINT", shutdown);
    process.on("SIGTERM", shutdown);
  };
  main().catch((err: unknown) => {
    console.error(err instanceof GradnetError ? err.message : err);
    process.exit(1);
  });
}
