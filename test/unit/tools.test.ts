/** Temporal CLI resolution order: TEMPORAL_CLI_PATH → PATH → tool cache → go install (never a rebuild when cached). */
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TEMPORAL_CLI, cachedToolPath, resolveTool } from '../../temporal/tools';

async function fakeBinary(dir: string, name = 'temporal', executable = true): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await writeFile(file, '#!/bin/sh\nexit 0\n');
  await chmod(file, executable ? 0o755 : 0o644);
  return file;
}

const noLog = () => undefined;
let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'podplane-tools-'));
});

describe('resolveTool(TEMPORAL_CLI)', () => {
  it('prefers TEMPORAL_CLI_PATH, and refuses one that is not executable', async () => {
    const explicit = await fakeBinary(path.join(root, 'explicit'));
    await fakeBinary(path.join(root, 'bin'));
    const env = {
      TEMPORAL_CLI_PATH: explicit,
      PATH: path.join(root, 'bin'),
      PODPLANE_TOOLS_DIR: path.join(root, 'cache'),
    };
    expect(await resolveTool(TEMPORAL_CLI, noLog, env)).toEqual({ path: explicit, source: 'env' });
    const plain = await fakeBinary(path.join(root, 'plain'), 'temporal', false);
    await expect(resolveTool(TEMPORAL_CLI, noLog, { ...env, TEMPORAL_CLI_PATH: plain })).rejects.toThrow(
      /TEMPORAL_CLI_PATH/,
    );
  });

  it('then PATH, then the tool cache', async () => {
    const cacheEnv = { PODPLANE_TOOLS_DIR: path.join(root, 'cache') };
    const onPath = await fakeBinary(path.join(root, 'bin'));
    expect(await resolveTool(TEMPORAL_CLI, noLog, { ...cacheEnv, PATH: path.join(root, 'bin') })).toEqual({
      path: onPath,
      source: 'path',
    });
    const cached = cachedToolPath(TEMPORAL_CLI, cacheEnv);
    expect(cached).toBe(path.join(root, 'cache', 'temporal-v1.5.1', 'temporal'));
    await fakeBinary(path.dirname(cached));
    expect(await resolveTool(TEMPORAL_CLI, noLog, { ...cacheEnv, PATH: path.join(root, 'empty') })).toEqual({
      path: cached,
      source: 'cache',
    });
  });

  it('says why when nothing is installed and it may not (or cannot) build', async () => {
    const env = { PODPLANE_TOOLS_DIR: path.join(root, 'cache'), PATH: path.join(root, 'empty') };
    expect(await resolveTool(TEMPORAL_CLI, noLog, env, { install: false })).toEqual({
      path: undefined,
      why: 'temporal is not installed',
    });
    // With no `go` on PATH the caller falls back to the SDK download.
    expect(await resolveTool(TEMPORAL_CLI, noLog, env)).toEqual({
      path: undefined,
      why: 'Go is not installed, so it cannot be built',
    });
  });

  it('builds once when several processes need the tool at the same time, and takes over a dead builder’s lock', async () => {
    // A stand-in `go` that counts its builds and takes a moment, as the real one takes minutes.
    const bin = path.join(root, 'go-bin');
    await mkdir(bin, { recursive: true });
    const builds = path.join(root, 'builds');
    await writeFile(
      path.join(bin, 'go'),
      `#!/bin/sh\n[ "$1" = version ] && exit 0\necho built >> ${builds}\n/bin/sleep 0.3\nprintf '#!/bin/sh\\n' > "$GOBIN/temporal"\n/bin/chmod 755 "$GOBIN/temporal"\n`,
    );
    await chmod(path.join(bin, 'go'), 0o755);
    const env = { PODPLANE_TOOLS_DIR: path.join(root, 'cache'), PATH: bin };
    const target = cachedToolPath(TEMPORAL_CLI, env);
    // A lock left by a builder that died (no such pid) does not block anyone.
    await mkdir(`${target}.lock`, { recursive: true });
    await writeFile(path.join(`${target}.lock`, 'pid'), '2147483646');

    const both = await Promise.all([
      resolveTool(TEMPORAL_CLI, noLog, env),
      resolveTool(TEMPORAL_CLI, noLog, env),
    ]);
    expect(both.map((r) => r.path)).toEqual([target, target]);
    expect((await readFile(builds, 'utf8')).trim().split('\n')).toEqual(['built']);
  });
});
