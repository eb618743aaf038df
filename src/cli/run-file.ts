/**
 * `<DATA_DIR>/run.json`: where a running `npm start` listens, so that the CLI next to it needs none
 * of the port variables, and a second `npm start` on the same data refuses by name. Written when
 * the start-up checks pass (`starting`), completed once everything runs (`running`), removed on a
 * clean stop; a file left by a process that died is recognised by its pid (and, on Linux, the
 * process's start time, since pids are reused) and ignored.
 *
 * Only node:fs and node:path here: the `npm start` launcher (src/cli/dev.ts) loads this module.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface RunFile {
  /** the stack process: it owns PostgreSQL and the Temporal dev server */
  pid: number;
  /** when `pid` started, in clock ticks since boot (Linux), to tell a reused pid */
  pidStartTime?: string | undefined;
  /** the `node dist/src/cli/dev.js` process npm started */
  launcherPid?: number | undefined;
  state: 'starting' | 'running';
  startedAt: string;
  dataDir: string;
  apiUrl?: string;
  /** the embedded server's URL with its local development credentials; an external one without password */
  databaseUrl?: string;
  databaseEmbedded?: boolean;
  temporalAddress?: string;
  temporalNamespace?: string;
  temporalUiUrl?: string | undefined;
}

export function runFilePath(dataDir: string): string {
  return path.resolve(dataDir, 'run.json');
}

/** The start time of a process (field 22 of /proc/<pid>/stat); undefined where there is no /proc. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True while `pid` runs (and, when known, is still the process that started at `startTime`). */
export function processAlive(pid: number, startTime?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (startTime === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === startTime;
}

/** Writes the file whole (a reader never sees half of it), readable by its owner only. */
export function writeRunFile(file: RunFile): void {
  const target = runFilePath(file.dataDir);
  mkdirSync(path.dirname(target), { recursive: true });
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, target);
}

function readRunFile(dataDir: string): RunFile | undefined {
  let text: string;
  try {
    text = readFileSync(runFilePath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<RunFile> | null;
    if (!parsed || typeof parsed.pid !== 'number' || !Number.isInteger(parsed.pid) || parsed.pid <= 0) {
      return undefined;
    }
    return parsed as RunFile;
  } catch {
    return undefined;
  }
}

/** The stack recorded under `dataDir` if its process still runs; undefined when none does. */
export function liveRunFile(dataDir: string): RunFile | undefined {
  const file = readRunFile(dataDir);
  return file && processAlive(file.pid, file.pidStartTime) ? file : undefined;
}

/** Removes the file if it still describes the stack process `pid` (never another stack's). */
export function removeRunFile(dataDir: string, pid: number): void {
  if (readRunFile(dataDir)?.pid !== pid) return;
  rmSync(runFilePath(dataDir), { force: true });
}

/** `postgres://user:secret@host/db` → `postgres://user@host/db`, for a URL that is not ours to write down. */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(a DATABASE_URL that is not a URL)';
  }
}

/**
 * A PostgreSQL server that holds `<DATA_DIR>/postgres`, from its `postmaster.pid` (line 1 the pid,
 * line 4 the port); undefined when none runs there.
 */
export function postgresHolding(dataDir: string): { pid: number; port: number; dir: string } | undefined {
  const dir = path.resolve(dataDir, 'postgres');
  let lines: string[];
  try {
    lines = readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return undefined;
  // A file left by a killed server names a pid that may run something else by now.
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres')) return undefined;
  } catch {
    // no /proc (macOS): trust the pid, as PostgreSQL itself does
  }
  return { pid, port, dir };
}
