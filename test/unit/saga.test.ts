/** The saga helper the workflows build on: undo before step, reverse order, skipped dependents. */
import { Saga } from '../../src/workflows/saga';

describe('Saga', () => {
  it('undoes a step that failed after acting (its undo is registered first), in reverse order', async () => {
    const done: string[] = [];
    const saga = new Saga('a');
    await saga.step('a', () => Promise.resolve(done.push('a')), {
      run: () => Promise.resolve(done.push('undo a')),
    });
    await expect(
      saga.step('b', () => Promise.reject(new Error('b acted, then failed')), {
        run: () => Promise.resolve(done.push('undo b')),
      }),
    ).rejects.toThrow('b acted');
    expect(saga.current).toBe('b');
    const result = await saga.compensate(
      (step) => done.push(`undoing ${step}`),
      (err) => String(err),
    );
    expect(result).toEqual({ failed: [], skipped: [] });
    expect(done).toEqual(['a', 'undoing b', 'undo b', 'undoing a', 'undo a']);
  });

  it('skips an undo whose prerequisite failed to undo, and runs the others', async () => {
    const done: string[] = [];
    const saga = new Saga('reserve');
    await saga.step('reserve', () => Promise.resolve(), {
      run: () => Promise.resolve(done.push('release')),
      needs: 'create',
    });
    await saga.step('create', () => Promise.resolve(), {
      run: () => Promise.reject(new Error('destroy refused')),
    });
    await saga.step('publish', () => Promise.resolve(), {
      run: () => Promise.resolve(done.push('unpublish')),
    });
    const result = await saga.compensate(
      () => undefined,
      (err) => (err instanceof Error ? err.message : String(err)),
    );
    expect(result).toEqual({ failed: [{ step: 'create', reason: 'destroy refused' }], skipped: ['reserve'] });
    expect(done).toEqual(['unpublish']);
  });
});
