/**
 * Finds or builds the external binaries the platform runs beside itself: the Temporal CLI
 * (dev server) and stripe-mock. Resolution order for Temporal (DESIGN.md §2):
 * TEMPORAL_CLI_PATH → `temporal` on PATH → the tool cache → `go install` at a pinned tag →
 * (caller's last resort) the SDK's own download.
 */
import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface GoTool {
  /** binary name as `go install` produces it */
  binary: string;
  module: string;
  version: string;
  /** environment variable that may point straight at a binary */
  pathVariable: string;
}

/** v1.5.1 is the newest tag without a `replace` directive, so it is the newest `go install` can build. */
export const TEMPORAL_CLI: GoTool = {
  binary: 'temporal',
  module: 'github.com/temporalio/cli/cmd/temporal',
  version: 'v1.5.1',
  pathVariable: 'TEMPORAL_CLI_PATH',
};

export const STRIPE_MOCK: GoTool = {
  binary: 'stripe-mock',
  module: 'github.com/stripe/stripe-mock',
  version: 'v0.197.0',
  pathVariable: 'STRIPE_MOCK_PATH',
};

export type ToolLog = (line: string) => void;

/** The tool cache lives outside any clone so CI runs and fresh checkouts on one machine share it. */
export function toolCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PODPLANE_TOOLS_DIR) return env.PODPLANE_TOOLS_DIR;
  const base = env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'podplane', 'tools');
}

export function cachedToolPath(tool: GoTool, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolCacheDir(env), `${tool.binary}-${tool.version}`, tool.binary);
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(binary: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function goAvailable(env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    await execFileAsync('go', ['version'], { env });
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid written into a lock, or null while its taker has not written it yet. */
async function lockHolder(lock: string): Promise<number | null> {
  const pid = Number(await readFile(path.join(lock, 'pid'), 'utf8').catch(() => 'NaN'));
  return Number.isInteger(pid) ? pid : null;
}

/**
 * Removes the lock of a builder that died — once: the takers of a stale lock race, so each must
 * first hold `<lock>.takeover` and then find the same dead pid in it, or another taker has already
 * replaced it with a live lock that must not be removed. A guard older than a minute is the
 * leftover of a taker that died in these few statements.
 */
async function takeOver(lock: string, deadPid: number): Promise<void> {
  const guard = `${lock}.takeover`;
  try {
    await mkdir(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = Date.now() - (await stat(guard).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    if (age > 60_000) await rm(guard, { recursive: true, force: true });
    return;
  }
  try {
    if ((await lockHolder(lock)) === deadPid) await rm(lock, { recursive: true, force: true });
  } finally {
    await rm(guard, { recursive: true, force: true });
  }
}

/**
 * Builds `tool` once even when several processes need it at the same time (`npm start` next to
 * `npm test`, parallel test runs): the first takes `<target>.lock` (a directory holding its pid),
 * the others wait for its binary. A lock whose process is gone is taken over.
 */
export async function goInstall(
  tool: GoTool,
  log: ToolLog,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const target = cachedToolPath(tool, env);
  await mkdir(path.dirname(target), { recursive: true });
  const lock = `${target}.lock`;
  let told = false;
  for (;;) {
    try {
      await mkdir(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await isExecutable(target)) return target;
      const holder = await lockHolder(lock);
      if (holder !== null && !alive(holder)) {
        await takeOver(lock, holder);
      } else {
        if (!told) log(`waiting for another process that is building ${tool.binary}`);
        told = true;
        await sleep(500);
      }
      continue;
    }
    try {
      await writeFile(path.join(lock, 'pid'), String(process.pid));
      if (await isExecutable(target)) return target;
      return await build(tool, target, log, env);
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

/**
 * `go install` into a temporary GOBIN, moved into the cache only when the build succeeded, so an
 * interrupted build never leaves a broken binary behind.
 */
async function build(tool: GoTool, target: string, log: ToolLog, env: NodeJS.ProcessEnv): Promise<string> {
  const gobin = await mkdtemp(path.join(path.dirname(target), '.build-'));
  log(`building ${tool.module}@${tool.version} with go install (first time only; this takes a few minutes)`);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('go', ['install', `${tool.module}@${tool.version}`], {
        env: { ...env, GOBIN: gobin, CGO_ENABLED: env.CGO_ENABLED ?? '0' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`go install ${tool.module}@${tool.version} exited with ${code}`)),
      );
    });
    await rename(path.join(gobin, tool.binary), target);
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
  log(`cached ${tool.binary} at ${target}`);
  return target;
}

export type Resolution =
  { path: string; source: 'env' | 'path' | 'cache' | 'go-install' } | { path: undefined; why: string };

/** Resolves a tool without downloading anything but Go modules. */
export async function resolveTool(
  tool: GoTool,
  log: ToolLog,
  env: NodeJS.ProcessEnv = process.env,
  opts: { install: boolean } = { install: true },
): Promise<Resolution> {
  const explicit = env[tool.pathVariable];
  if (explicit) {
    if (await isExecutable(explicit)) return { path: explicit, source: 'env' };
    throw new Error(`${tool.pathVariable}=${explicit} is not an executable file`);
  }
  const fromPath = await onPath(tool.binary, env);
  if (fromPath) return { path: fromPath, source: 'path' };
  const cached = cachedToolPath(tool, env);
  if (await isExecutable(cached)) return { path: cached, source: 'cache' };
  if (!opts.install) return { path: undefined, why: `${tool.binary} is not installed` };
  if (!(await goAvailable(env)))
    return { path: undefined, why: 'Go is not installed, so it cannot be built' };
  return { path: await goInstall(tool, log, env), source: 'go-install' };
}
