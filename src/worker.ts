/**
 * The worker process's core: one NativeConnection, the workflow bundle built once, and one
 * Worker per task queue, all fed by the same activity factories.
 */
import {
  bundleWorkflowCode,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { auditActivityInterceptor } from './db/audit-context';
import type { Logger } from './logger';
import { TASK_QUEUES, type TaskQueue } from './workflows/shared';

export interface WorkerOptions extends ActivityDeps {
  address: string;
  namespace: string;
  /** defaults to every task queue */
  taskQueues?: TaskQueue[];
  /** time in-flight activities get to finish on shutdown */
  shutdownGraceTimeMs?: number;
  /** pass a pre-built bundle (tests build one per process) */
  workflowBundle?: WorkflowBundleWithSourceMap;
  logger: Logger;
}

export interface RunningWorkers {
  /** resolves when every worker has stopped */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function buildWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    logger: {
      trace: () => {},
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: () => {},
      log: () => {},
    },
  });
}

export async function startWorkers(opts: WorkerOptions): Promise<RunningWorkers> {
  const connection = await NativeConnection.connect({ address: opts.address });
  const bundle = opts.workflowBundle ?? (await buildWorkflowBundle());
  const activities = createActivities(opts);
  const queues = opts.taskQueues ?? Object.values(TASK_QUEUES);
  const workers = await Promise.all(
    queues.map((taskQueue) =>
      Worker.create({
        connection,
        namespace: opts.namespace,
        taskQueue,
        workflowBundle: bundle,
        activities,
        // every change an activity makes is audited as its workflow's
        interceptors: { activity: [auditActivityInterceptor] },
        shutdownGraceTime: opts.shutdownGraceTimeMs ?? 30_000,
        // Bounded: the SDK sizes the cache from the heap, per worker, and this process runs one
        // worker per task queue, which took the worker past its memory budget under a billing run.
        maxCachedWorkflows: opts.config.WORKER_MAX_CACHED_WORKFLOWS,
      }),
    ),
  );
  const done = Promise.all(workers.map((w) => w.run())).then(async () => {
    await connection.close();
  });
  opts.logger.info({ taskQueues: queues, namespace: opts.namespace }, 'workers running');
  return {
    done,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}

/** Routes the SDK's own logs (worker state, activity failures) into pino; installs once per process. */
export function installRuntime(
  logger: Logger,
  opts: { handleSignals: boolean } = { handleSignals: false },
): void {
  const forward =
    (level: 'trace' | 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, meta?: Record<string, unknown>) =>
      logger[level]({ sdk: meta }, message);
  Runtime.install({
    logger: {
      log: (level, message, meta) =>
        forward(level === 'TRACE' ? 'trace' : (level.toLowerCase() as 'debug'))(message, meta),
      trace: forward('trace'),
      debug: forward('debug'),
      info: forward('info'),
      warn: forward('warn'),
      error: forward('error'),
    },
    shutdownSignals: opts.handleSignals ? undefined : [],
  });
}
