/** The compose file is valid and agrees with the code about search attributes. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/workflows/shared';

const run = promisify(execFile);
const root = path.join(__dirname, '../..');

/** `docker compose` (v2 plugin) where present, else Debian's `docker-compose`; .ci/run installs the latter. */
async function composeCommand(): Promise<string[]> {
  for (const candidate of [['docker', 'compose'], ['docker-compose']]) {
    try {
      await run(candidate[0] as string, [...candidate.slice(1), 'version']);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    'neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)',
  );
}

describe('docker-compose.yml', () => {
  it('passes `compose config -q`', async () => {
    const [bin, ...args] = await composeCommand();
    const { stderr } = await run(bin as string, [...args, '-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: root,
      env: { ...process.env, JWT_SECRET: 'compose-config-check-secret-0123456789abcdef' },
    });
    expect(stderr.trim()).toBe('');
  });

  it('refuses to start without a JWT secret', async () => {
    const [bin, ...args] = await composeCommand();
    const env = { ...process.env };
    delete env.JWT_SECRET;
    await expect(
      run(bin as string, [...args, '-f', 'docker-compose.yml', 'config', '-q'], { cwd: root, env }),
    ).rejects.toThrow(/JWT_SECRET/);
  });

  it('registers exactly the search attributes the workflows use', () => {
    const script = readFileSync(path.join(root, 'temporal/docker/setup-namespace.sh'), 'utf8');
    const listed = /SEARCH_ATTRIBUTES="([^"]+)"/.exec(script)?.[1]?.split(/\s+/) ?? [];
    expect([...listed].sort()).toEqual([...SEARCH_ATTRIBUTE_NAMES].sort());
  });
});
