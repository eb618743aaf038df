/** `npm run tools:install`: builds (or finds) the Temporal CLI and stripe-mock into the tool cache. */
import { STRIPE_MOCK, TEMPORAL_CLI, resolveTool } from './tools';

async function main(): Promise<void> {
  const log = (line: string) => process.stdout.write(`[tools] ${line}\n`);
  for (const tool of [TEMPORAL_CLI, STRIPE_MOCK]) {
    const found = await resolveTool(tool, log);
    if (found.path === undefined) {
      throw new Error(`${tool.binary}: ${found.why}`);
    }
    log(`${tool.binary} ${tool.version}: ${found.path} (${found.source})`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[tools] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
