/**
 * Re-delivers work a crash left between two writes (see `sweepStrandedWork`): once when a worker
 * process starts, then every SWEEP_INTERVAL_MS. Nothing depends on a process surviving between the
 * commit of a pod or job and the call that hands it to its workflow.
 */
import type { Client } from '@temporalio/client';
import type { Config } from './config';
import { systemEm, type MikroORM } from './db/orm';
import type { Logger } from './logger';
import { sweepStrandedWork } from './services/cloudpods';

export interface Sweeper {
  /** one pass now (also what the timer runs) */
  sweep(): Promise<void>;
  stop(): Promise<void>;
}

export function startSweeper(deps: {
  orm: MikroORM;
  temporal: Client;
  config: Config;
  logger: Logger;
}): Sweeper {
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const pass = async () => {
    try {
      const found = await sweepStrandedWork({
        em: systemEm(deps.orm),
        temporal: deps.temporal,
        config: deps.config,
      });
      if (found.started + found.redelivered + found.canceled > 0)
        deps.logger.warn(found, 'sweeper re-delivered stranded work');
    } catch (err) {
      deps.logger.warn({ err }, 'sweeper pass failed; the next pass tries again');
    }
  };
  const sweep = () => {
    if (!stopped) running = running.then(pass);
    return running;
  };
  const timer = setInterval(() => void sweep(), deps.config.SWEEP_INTERVAL_MS);
  timer.unref();
  void sweep();
  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
