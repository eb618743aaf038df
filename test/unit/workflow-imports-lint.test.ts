/** The ESLint rule that keeps workflow code deterministic: only allowed imports reach src/workflows. */
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.join(__dirname, '../..');

/** ESLint in its own process (its ESM config cannot load inside jest's sandbox), on stdin as `file`. */
async function restrictedImports(code: string, file = 'src/workflows/tenants.ts'): Promise<string[]> {
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      path.join(root, 'node_modules/.bin/eslint'),
      ['--stdin', '--stdin-filename', file, '--format', 'json'],
      {
        cwd: root,
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    // exit code 1 only means "problems found"; 2 is a crash
    child.on('close', (exitCode) => (exitCode === 2 ? reject(new Error('eslint crashed')) : resolve(out)));
    child.stdin.end(code);
  });
  const [result] = JSON.parse(stdout) as { messages: { ruleId: string | null; message: string }[] }[];
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports')
    .map((m) => m.message);
}

describe('workflow import rule', () => {
  it('refuses I/O libraries, other SDK packages and activity values', async () => {
    const messages = await restrictedImports(
      [
        "import { Client } from '@temporalio/client';",
        "import { createTenantActivities } from '../activities/tenants';",
        "import { Tenant } from '../db/entities';",
        "import { z } from 'zod';",
        'export const x = [Client, createTenantActivities, Tenant, z];',
      ].join('\n'),
    );
    expect(messages).toHaveLength(4);
    expect(messages.filter((m) => m.includes('as types only'))).toHaveLength(1);
  });

  it('allows the workflow SDK, the domain, sibling workflow modules and activity types', async () => {
    const messages = await restrictedImports(
      [
        "import { proxyActivities } from '@temporalio/workflow';",
        "import type { TenantActivities } from '../activities/tenants';",
        "import { canTransition } from '../domain/tenants';",
        "import { SEARCH_ATTRIBUTES } from './shared';",
        'export const x = [proxyActivities, canTransition, SEARCH_ATTRIBUTES] as unknown as TenantActivities;',
      ].join('\n'),
    );
    expect(messages).toEqual([]);
  });

  it('does not apply outside src/workflows', async () => {
    expect(
      await restrictedImports(
        "import { Client } from '@temporalio/client';\nexport const c = Client;",
        'src/api/app.ts',
      ),
    ).toEqual([]);
  });
});
