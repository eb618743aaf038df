/**
 * Temporal for tests: one dev server per run (global-setup), one namespace per test file so
 * workers of parallel test files never steal each other's tasks, and the workflow bundle built
 * once per jest worker process.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal as proto } from '@temporalio/proto';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/workflows/shared';
import { createLogger } from '../../src/logger';
import { buildWorkflowBundle, installRuntime } from '../../src/worker';
import { waitForTemporal } from '../../temporal/dev-server';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

// The SDK's runtime is per process and logs through pino like production; quiet unless asked.
installRuntime(createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'error', name: 'temporal-sdk' }));

/** The production workflow bundle, built once per jest worker. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= buildWorkflowBundle();
  return bundle;
}

export function temporalAddress(): string {
  const address = process.env.PODPLANE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('PODPLANE_TEST_TEMPORAL_ADDRESS is not set: run the tests through jest');
  return address;
}

/** Registers a fresh namespace with our search attributes and waits until it is usable. */
export async function createNamespace(prefix = 'test'): Promise<string> {
  const namespace = `${prefix}-${randomBytes(5).toString('hex')}`;
  const address = temporalAddress();
  const connection = await Connection.connect({ address });
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        SEARCH_ATTRIBUTE_NAMES.map((n) => [
          n,
          proto.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        ]),
      ),
    });
  } finally {
    await connection.close();
  }
  await waitForTemporal(address, namespace, SEARCH_ATTRIBUTE_NAMES, 30000, () => undefined);
  return namespace;
}

export async function connectClient(
  namespace: string,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: temporalAddress() });
  return { client: new Client({ connection, namespace }), close: () => connection.close() };
}
