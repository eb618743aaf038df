// The read baseline, as its own process: a bare Express handler answering the JSON in argv[2]'s file.
import { readFileSync } from 'node:fs';
import express from 'express';

const body = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const app = express();
app.get('/', (_req, res) => {
  res.json(body);
});
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
