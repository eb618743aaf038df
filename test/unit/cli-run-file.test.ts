/** `<DATA_DIR>/run.json` and the CLI's error lines: what `npm start` records and what the CLI prints. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeError } from '../../src/cli/errors';
import {
  liveRunFile,
  processStartTime,
  removeRunFile,
  runFilePath,
  withoutPassword,
  writeRunFile,
  type RunFile,
} from '../../src/cli/run-file';

let dataDir = '';
beforeEach(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'podplane-run-file-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const record = (over: Partial<RunFile> = {}): RunFile => ({
  pid: process.pid,
  pidStartTime: processStartTime(process.pid),
  state: 'running',
  startedAt: new Date().toISOString(),
  dataDir,
  apiUrl: 'http://127.0.0.1:3000',
  ...over,
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString('utf8'));
}

describe('run.json', () => {
  it('is read back while its process runs', () => {
    writeRunFile(record());
    expect(liveRunFile(dataDir)).toMatchObject({ pid: process.pid, apiUrl: 'http://127.0.0.1:3000' });
  });

  it('is ignored when its process is gone, when its pid runs another process, or when it is not JSON', () => {
    writeRunFile(record({ pid: deadPid() }));
    expect(liveRunFile(dataDir)).toBeUndefined();
    if (processStartTime(process.pid) !== undefined) {
      // same pid, another start time: the pid was reused
      writeRunFile(record({ pidStartTime: '1' }));
      expect(liveRunFile(dataDir)).toBeUndefined();
    }
    writeFileSync(runFilePath(dataDir), '{"pid":');
    expect(liveRunFile(dataDir)).toBeUndefined();
  });

  it('is removed only by the stack it describes', () => {
    writeRunFile(record());
    removeRunFile(dataDir, process.pid + 1);
    expect(liveRunFile(dataDir)).toBeDefined();
    removeRunFile(dataDir, process.pid);
    expect(liveRunFile(dataDir)).toBeUndefined();
  });

  it('keeps no password of an external database', () => {
    expect(withoutPassword('postgres://app:s3cret@db.internal:5432/podplane')).toBe(
      'postgres://app@db.internal:5432/podplane',
    );
  });
});

describe('describeError', () => {
  it.each([
    ['an Error', new Error('boom'), 'boom'],
    ['a string', 'plain words', 'plain words'],
    [
      'an Error without message but a code',
      Object.assign(new Error(''), { code: 'ECONNREFUSED' }),
      'Error ECONNREFUSED',
    ],
    [
      'an AggregateError (connection refused on every address)',
      new AggregateError([
        new Error('connect ECONNREFUSED ::1:5432'),
        new Error('connect ECONNREFUSED 127.0.0.1:5432'),
      ]),
      'connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432',
    ],
  ])('%s', (_what, err, line) => {
    expect(describeError(err)).toBe(line);
  });

  it.each([undefined, null, '', new Error('')])('never prints an empty line or "undefined" (%p)', (err) => {
    const line = describeError(err);
    expect(line.trim()).not.toBe('');
    expect(line).not.toMatch(/undefined|null/);
  });
});
