/** Which Temporal client errors prove a signal or update never reached the workflow (the API then cancels its job). */
import { ServiceError } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { provenUndelivered } from '../../src/services/cloudpods';

/** A gRPC service error as @grpc/grpc-js raises it: an Error with a numeric status code. */
const grpc = (code: number, details: string) =>
  Object.assign(new Error(details), { code, details, metadata: {} });

describe('provenUndelivered', () => {
  it('is true for a workflow that does not exist and for a server that could not be reached', () => {
    expect(provenUndelivered(new WorkflowNotFoundError('gone', 'cloudpod-x', undefined))).toBe(true);
    // UNAVAILABLE (14), also when the SDK wraps it in a ServiceError.
    expect(provenUndelivered(grpc(14, 'connect ECONNREFUSED'))).toBe(true);
    expect(provenUndelivered(new ServiceError('signal failed', { cause: grpc(14, 'unavailable') }))).toBe(
      true,
    );
  });

  it('is false for anything that may have landed: a deadline, an internal error, an unknown failure', () => {
    expect(provenUndelivered(grpc(4, 'deadline exceeded'))).toBe(false);
    expect(provenUndelivered(grpc(13, 'internal'))).toBe(false);
    expect(provenUndelivered(new Error('socket hang up'))).toBe(false);
    expect(provenUndelivered(undefined)).toBe(false);
  });
});
