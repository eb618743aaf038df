// The usage-ingestion baseline, as its own process: the same rows as the API stores, sent as raw
// multi-row INSERTs (1 000 rows, 7 parameters each) through pg, `concurrency` at a time.
// argv: database URL, concurrency, a JSON file of { warmup: Row[][], batches: Row[][] } with
// Row = [id, tenant_id, subscription_id, metric, quantity, occurred_at, idempotency_key].
// Prints {"seconds": …} for the batches (the warm-up batches are not timed).
import { readFile } from 'node:fs/promises';
import pg from 'pg';

const [url, concurrencyArg, file] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const { warmup, batches } = JSON.parse(await readFile(file, 'utf8'));
const pool = new pg.Pool({ connectionString: url, max: concurrency });

const statements = new Map();
function insertOf(rows) {
  if (!statements.has(rows)) {
    const values = Array.from({ length: rows }, (_, i) => {
      const p = Array.from({ length: 7 }, (_, j) => `$${i * 7 + j + 1}`);
      return `(${p.join(', ')})`;
    });
    statements.set(
      rows,
      'insert into usage_records (id, tenant_id, subscription_id, metric, quantity, occurred_at, idempotency_key) ' +
        `values ${values.join(', ')}`,
    );
  }
  return statements.get(rows);
}

/** `params[i]` is batch i's rows flattened: built before the clock starts, as the API's bodies are. */
async function run(params) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < params.length) {
        const batch = params[next++];
        const rows = batch.length / 7;
        const res = await pool.query(insertOf(rows), batch);
        if (res.rowCount !== rows) throw new Error(`stored ${res.rowCount} of ${rows} rows`);
      }
    }),
  );
}

const flat = (list) => list.map((rows) => rows.flat());
await run(flat(warmup));
const measured = flat(batches);
const started = performance.now();
await run(measured);
const seconds = (performance.now() - started) / 1000;
await pool.end();
process.stdout.write(`${JSON.stringify({ seconds })}\n`);
