/** /api/v1/cloudpods: a tenant's pods and the operations on them; long work answers 202 with its job. */
import { Router, type Request, type Response } from 'express';
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import { Backup, CloudPod, Product, ProvisioningJob } from '../../db/entities';
import type { MikroORM } from '../../db/orm';
import { listPods } from '../../db/repositories/cloudpods';
import { planChangeProblem } from '../../domain/cloudpods';
import { AppError, notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import {
  backupView,
  createPod,
  jobView,
  podView,
  requestOperation,
  requestPlanChange,
  resourcesOf,
  type SignalOperation,
} from '../../services/cloudpods';
import { emOf, requireTenant } from '../middleware/auth';
import { idempotency } from '../middleware/idempotency';
import type { ApiMetrics } from '../middleware/metrics';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
import { z } from '../zod';
import {
  BackupParams,
  BackupView,
  CreatePodBody,
  JobView,
  ListPodsQuery,
  PlanBody,
  PlanPreview,
  PlanPreviewQuery,
  PodAccepted,
  PodIdParams,
  PodView,
} from './cloudpods.schemas';
import { encodeCursor } from './common.schemas';

const security = [{ [bearerAuth.name]: [] }];
const idemHeader = z.object({ 'idempotency-key': z.string().max(255).optional() });
const accepted = (description: string) => ({
  202: { description, content: { 'application/json': { schema: PodAccepted } } },
});

registry.registerPath({
  method: 'post',
  path: '/api/v1/cloudpods',
  summary: 'Create a CloudPod: validates, checks quota, starts the provisioning workflow',
  security,
  request: { headers: idemHeader, body: { content: { 'application/json': { schema: CreatePodBody } } } },
  responses: { ...accepted('Pod PENDING; provisioning runs'), ...problems(400, 401, 403, 409, 422, 503) },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/cloudpods',
  summary: "List the tenant's pods",
  security,
  request: { query: ListPodsQuery },
  responses: {
    200: {
      description: 'A page of pods',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(PodView), next_cursor: z.string().nullable() }),
        },
      },
    },
    ...problems(400, 401, 403),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/cloudpods/{id}',
  summary: 'Get a pod with its current job',
  security,
  request: { params: PodIdParams },
  responses: {
    200: { description: 'The pod', content: { 'application/json': { schema: PodView } } },
    ...problems(401, 404),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/cloudpods/{id}/jobs',
  summary: "A pod's operation jobs, newest first",
  security,
  request: { params: PodIdParams },
  responses: {
    200: {
      description: 'Jobs',
      content: { 'application/json': { schema: z.object({ data: z.array(JobView) }) } },
    },
    ...problems(401, 404),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/cloudpods/{id}/plan/preview',
  summary: 'The limits a plan change would give, and whether it is allowed',
  security,
  request: { params: PodIdParams, query: PlanPreviewQuery },
  responses: {
    200: { description: 'Preview', content: { 'application/json': { schema: PlanPreview } } },
    ...problems(400, 401, 404, 422),
  },
});
registry.registerPath({
  method: 'post',
  path: '/api/v1/cloudpods/{id}/plan',
  summary: 'Change the plan (resize the VM; new cores or memory restart a running pod)',
  security,
  request: {
    params: PodIdParams,
    headers: idemHeader,
    body: { content: { 'application/json': { schema: PlanBody } } },
  },
  responses: { ...accepted('Plan change accepted'), ...problems(400, 401, 404, 409, 422, 503) },
});
for (const [action, summary] of [
  ['suspend', 'Suspend: stop the VM and take the customer’s power over it away'],
  ['unsuspend', 'Unsuspend: give the customer’s power back and start the VM'],
] as const) {
  registry.registerPath({
    method: 'post',
    path: `/api/v1/cloudpods/{id}/${action}`,
    summary,
    security,
    request: { params: PodIdParams, headers: idemHeader },
    responses: { ...accepted(`${action} accepted`), ...problems(401, 404, 409, 503) },
  });
}
registry.registerPath({
  method: 'delete',
  path: '/api/v1/cloudpods/{id}',
  summary: 'Terminate: pre-termination backup, destroy VM, delete DNS, release capacity',
  security,
  request: { params: PodIdParams, headers: idemHeader },
  responses: { ...accepted('Termination accepted'), ...problems(401, 404, 409, 503) },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/cloudpods/{id}/backups',
  summary: "A pod's backups",
  security,
  request: { params: PodIdParams },
  responses: {
    200: {
      description: 'Backups',
      content: { 'application/json': { schema: z.object({ data: z.array(BackupView) }) } },
    },
    ...problems(401, 404),
  },
});
registry.registerPath({
  method: 'post',
  path: '/api/v1/cloudpods/{id}/backups',
  summary: 'Take a manual backup',
  security,
  request: { params: PodIdParams, headers: idemHeader },
  responses: { ...accepted('Backup accepted'), ...problems(401, 404, 409, 503) },
});
registry.registerPath({
  method: 'post',
  path: '/api/v1/cloudpods/{id}/backups/{backupId}/restore',
  summary: 'Restore a completed backup',
  security,
  request: { params: BackupParams, headers: idemHeader },
  responses: { ...accepted('Restore accepted'), ...problems(401, 404, 409, 503) },
});

export function cloudPodRoutes(deps: {
  orm: MikroORM;
  temporal: Client;
  config: Config;
  metrics: ApiMetrics;
}): Router {
  const router = Router();
  const idem = idempotency(deps.orm);

  async function loadPod(req: Request): Promise<CloudPod> {
    const { id } = parse(PodIdParams, req.params, 'params');
    if (!isId('pod', id)) throw notFound('CloudPod');
    const pod = await emOf(req).findOne(CloudPod, { id }, { populate: ['tenant'] });
    if (!pod) throw notFound('CloudPod');
    return pod;
  }

  async function currentJob(req: Request, pod: CloudPod): Promise<ProvisioningJob | null> {
    return emOf(req).findOne(
      ProvisioningJob,
      { pod: pod.id },
      { orderBy: { createdAt: 'desc', id: 'desc' } },
    );
  }

  router.post('/', idem, async (req, res) => {
    const principal = requireTenant(req, 'write');
    const body = parse(CreatePodBody, req.body);
    if (!isId('customer', body.customer_id)) {
      throw new AppError('unprocessable', 'customer_id does not name a customer of this tenant', {
        errors: [{ field: 'customer_id', message: 'unknown customer' }],
      });
    }
    if (body.restore_from_backup_id !== undefined && !isId('backup', body.restore_from_backup_id)) {
      throw new AppError(
        'unprocessable',
        'restore_from_backup_id does not name a restorable backup of this tenant',
        {
          errors: [{ field: 'restore_from_backup_id', message: 'unknown backup' }],
        },
      );
    }
    if (!isId('product', body.product_id)) {
      throw new AppError('unprocessable', 'product_id does not name an available product of this tenant', {
        errors: [{ field: 'product_id', message: 'unknown or retired product' }],
      });
    }
    const { pod, job } = await createPod(
      { em: emOf(req), temporal: deps.temporal, config: deps.config },
      {
        tenantId: principal.tenantId,
        customerId: body.customer_id,
        productId: body.product_id,
        slug: body.slug,
        restoreFromBackupId: body.restore_from_backup_id ?? null,
      },
    );
    deps.metrics.workflowStarts.inc({ workflow: 'cloudPod' });
    req.log.info({ podId: pod.id, jobId: job.id }, 'pod created; provisioning started');
    res
      .status(202)
      .location(`/api/v1/cloudpods/${pod.id}`)
      .json({ pod: podView(pod), job: jobView(job) });
  });

  router.get('/', async (req, res) => {
    const principal = requireTenant(req);
    const q = parse(ListPodsQuery, req.query, 'query');
    const rows = await listPods(emOf(req), principal.tenantId, {
      status: q.status,
      customerId: q.customer_id,
      after: q.cursor,
      limit: q.limit + 1,
    });
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    res.json({
      data: page.map((p) => podView(p)),
      next_cursor: rows.length > q.limit && last ? encodeCursor(last.id) : null,
    });
  });

  router.get('/:id', async (req, res) => {
    requireTenant(req);
    const pod = await loadPod(req);
    res.json(podView(pod, await currentJob(req, pod)));
  });

  router.get('/:id/jobs', async (req, res) => {
    requireTenant(req);
    const pod = await loadPod(req);
    const jobs = await emOf(req).find(
      ProvisioningJob,
      { pod: pod.id },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: 100 },
    );
    res.json({ data: jobs.map(jobView) });
  });

  async function targetProduct(req: Request, productId: string): Promise<Product> {
    const product = isId('product', productId)
      ? await emOf(req).findOne(Product, { id: productId, deletedAt: null })
      : null;
    if (!product) {
      throw new AppError('unprocessable', 'product_id does not name an available product of this tenant', {
        errors: [{ field: 'product_id', message: 'unknown or retired product' }],
      });
    }
    return product;
  }

  router.get('/:id/plan/preview', async (req, res) => {
    requireTenant(req);
    const pod = await loadPod(req);
    const { product_id } = parse(PlanPreviewQuery, req.query, 'query');
    const product = await targetProduct(req, product_id);
    const problem = planChangeProblem(pod.status, resourcesOf(pod), resourcesOf(product)) ?? null;
    const limits = (r: { vcpu: number; memoryMb: number; diskGb: number }) => ({
      vcpu: r.vcpu,
      memory_mb: r.memoryMb,
      disk_gb: r.diskGb,
    });
    res.json({
      current: limits(pod),
      target: limits(product),
      allowed: problem === null,
      problem,
      restarts: pod.vcpu !== product.vcpu || pod.memoryMb !== product.memoryMb,
    });
  });

  router.post('/:id/plan', idem, async (req, res) => {
    requireTenant(req, 'write');
    const pod = await loadPod(req);
    const body = parse(PlanBody, req.body);
    const product = await targetProduct(req, body.product_id);
    const job = await requestPlanChange(
      { em: emOf(req), temporal: deps.temporal, config: deps.config },
      pod,
      product,
    );
    res.status(202).json({ pod: podView(pod), job: jobView(job) });
  });

  const signalRoute = (type: SignalOperation) => async (req: Request, res: Response) => {
    requireTenant(req, 'write');
    const pod = await loadPod(req);
    const { job } = await requestOperation(
      { em: emOf(req), temporal: deps.temporal, config: deps.config },
      pod,
      type,
    );
    req.log.info({ podId: pod.id, jobId: job.id, type }, 'pod operation requested');
    res.status(202).json({ pod: podView(pod), job: jobView(job) });
  };
  router.post('/:id/suspend', idem, signalRoute('SUSPEND'));
  router.post('/:id/unsuspend', idem, signalRoute('UNSUSPEND'));
  router.delete('/:id', idem, signalRoute('TERMINATE'));

  router.get('/:id/backups', async (req, res) => {
    requireTenant(req);
    const pod = await loadPod(req);
    const backups = await emOf(req).find(
      Backup,
      { pod: pod.id },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: 100 },
    );
    res.json({ data: backups.map(backupView) });
  });

  router.post('/:id/backups', idem, async (req, res) => {
    requireTenant(req, 'write');
    const pod = await loadPod(req);
    const { job, backup } = await requestOperation(
      { em: emOf(req), temporal: deps.temporal, config: deps.config },
      pod,
      'BACKUP',
    );
    res
      .status(202)
      .json({ pod: podView(pod), job: jobView(job), ...(backup ? { backup: backupView(backup) } : {}) });
  });

  router.post('/:id/backups/:backupId/restore', idem, async (req, res) => {
    requireTenant(req, 'write');
    const pod = await loadPod(req);
    const { backupId } = parse(BackupParams, req.params, 'params');
    if (!isId('backup', backupId)) throw notFound('backup');
    const { job } = await requestOperation(
      { em: emOf(req), temporal: deps.temporal, config: deps.config },
      pod,
      'RESTORE',
      {
        backupId,
      },
    );
    res.status(202).json({ pod: podView(pod), job: jobView(job) });
  });

  return router;
}
