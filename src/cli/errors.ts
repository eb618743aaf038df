/** What an entry point prints when it fails: always a message, never `undefined` or an empty line. */
import { inspect } from 'node:util';

export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    // e.g. a connection refused on every address of `localhost`: the message is empty, the causes are not
    const causes = [...new Set(err.errors.map(describeError))].join('; ');
    return err.message ? `${err.message}: ${causes}` : causes;
  }
  if (err instanceof Error) {
    if (err.message.trim()) return err.message;
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${err.name} ${code}` : `${err.name} without a message`;
  }
  if (typeof err === 'string') return err.trim() ? err : 'failed with an empty reason';
  if (err === undefined || err === null) return 'failed without saying why (the failing step gave no error)';
  return inspect(err, { breakLength: Infinity, depth: 2 });
}
