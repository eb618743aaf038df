// The write baseline, as its own process: a handler that only starts the pod workflow with a
// Temporal client, as POST /api/v1/cloudpods does (same workflow type, task queue, search
// attributes and summary), and answers 202. argv: address, namespace, JSON of the input fields.
import { Client, Connection } from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import express from 'express';

const [address, namespace, fixedJson] = process.argv.slice(2);
const fixed = JSON.parse(fixedJson);
const key = (name) => defineSearchAttributeKey(name, 'KEYWORD');
const connection = await Connection.connect({ address });
const client = new Client({ connection, namespace });
const app = express();
let n = 0;
app.post('/', express.json(), async (_req, res) => {
  const i = ++n;
  const podId = `pod_baseline${process.pid}${String(i).padStart(10, '0')}`;
  await client.workflow.start('cloudPod', {
    workflowId: `cloudpod-${podId}`,
    taskQueue: fixed.taskQueue,
    typedSearchAttributes: [
      { key: key('TenantId'), value: fixed.tenantId },
      { key: key('CloudPodId'), value: podId },
      { key: key('CustomerId'), value: fixed.customerId },
      { key: key('PodplaneStatus'), value: 'PENDING' },
    ],
    staticSummary: `CloudPod baseline-${i} (${podId})`,
    args: [{ ...fixed.input, podId, slug: `baseline-${i}`, provisionJobId: `job_baseline${i}` }],
  });
  res.status(202).json({ ok: true });
});
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
