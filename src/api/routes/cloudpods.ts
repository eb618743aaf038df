/** /api/v1/cloudpods: a tenant's pods and the operations on them; long work answers 202 with its job. */
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import { CloudPod, Product, ProvisioningJob } from '../../db/entities';
import type { EntityManager, MikroORM } from '../../db/orm';
import { podBackupsPage, podJobsPage, podPage } from '../../db/repositories/cloudpods';
import { dataBody, pageBody, type Page } from '../../db/repositories/pages';
import { planChangeProblem } from '../../domain/cloudpods';
import { AppError, notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import {
  createPod,
  requestOperation,
  requestPlanChange,
  resourcesOf,
  type SignalOperation,
} from '../../services/cloudpods';
import { cancelSubscriptionOfPod } from '../../services/subscriptions';
import { changePlanPath, liveSubscriptionOfPod } from '../../services/subscription-plan-change';
import { backupView, jobView, podView } from './cloudpods.views';
import { route, type Method, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import type { ApiMetrics } from '../middleware/metrics';
import type { PaymentProvider } from '../../providers/payments';
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
  PodCreated,
  PodIdParams,
  PodView,
} from './cloudpods.schemas';
import { encodeCursor } from './common.schemas';

const read = { caller: 'tenant', permission: 'pods:read' } as const;
const write = { caller: 'tenant', permission: 'pods:write' } as const;

const accepted = (description: string) => ({
  202: { description, content: { 'application/json': { schema: PodAccepted } } },
});

/** One of the calling tenant's pods: other tenants' ids are invisible through the tenant filter. */
async function loadPod(em: EntityManager, id: string): Promise<CloudPod> {
  if (!isId('pod', id)) throw notFound('CloudPod');
  const pod = await em.findOne(CloudPod, { id }, { populate: ['tenant'] });
  if (!pod) throw notFound('CloudPod');
  return pod;
}

async function currentJob(em: EntityManager, pod: CloudPod): Promise<ProvisioningJob | null> {
  return em.findOne(ProvisioningJob, { pod: pod.id }, { orderBy: { createdAt: 'desc', id: 'desc' } });
}

async function targetProduct(em: EntityManager, productId: string): Promise<Product> {
  const product = isId('product', productId) ? await em.findOne(Product, { id: productId }) : null;
  if (!product) {
    throw new AppError('unprocessable', 'product_id does not name an available product of this tenant', {
      errors: [{ field: 'product_id', message: 'unknown or retired product' }],
    });
  }
  return product;
}

export function cloudPodRoutes(deps: {
  orm: MikroORM;
  temporal: Client;
  config: Config;
  metrics: ApiMetrics;
  /** charges the final invoice of a subscribed pod's usage when the pod is terminated */
  payments: PaymentProvider;
}): Route[] {
  const services = (em: EntityManager) => ({ em, temporal: deps.temporal, config: deps.config });

  /** One of a pod's lists, answering 404 for any id but one of the tenant's pods, as `loadPod` does. */
  const podList = async (
    page: (em: EntityManager, tenantId: string, podId: string) => Promise<Page | null>,
    tenantId: string,
    podId: string,
  ): Promise<Page> => {
    const found = isId('pod', podId) ? await page(deps.orm.em, tenantId, podId) : null;
    if (!found) throw notFound('CloudPod');
    return found;
  };

  /** Suspend, unsuspend and terminate: a job handed to the pod's workflow by signal. */
  const signalRoute = (
    operationId: string,
    method: Method,
    path: string,
    summary: string,
    description: string,
    type: SignalOperation,
  ): Route =>
    route({
      operationId,
      tag: 'CloudPods',
      method,
      path,
      summary,
      access: write,
      params: PodIdParams,
      idempotent: true,
      durable: true,
      responses: accepted(description),
      problems: [409],
      async handle({ principal, em, params, res, log }) {
        const pod = await loadPod(em, params.id);
        const { job } = await requestOperation(services(em), pod, type);
        // A terminated pod is never billed again: its subscription ends with it.
        if (type === 'TERMINATE') {
          const ended = await cancelSubscriptionOfPod(
            { ...services(em), collect: { orm: deps.orm, payments: deps.payments } },
            tenantOf(principal),
            pod.id,
          );
          if (ended)
            log.info({ podId: pod.id, subscriptionId: ended.id }, 'subscription of the pod canceled');
        }
        log.info({ podId: pod.id, jobId: job.id, type }, 'pod operation requested');
        res.status(202).json({ pod: podView(pod), job: jobView(job) });
      },
    });

  return [
    route({
      operationId: 'createCloudPod',
      tag: 'CloudPods',
      method: 'post',
      path: '/api/v1/cloudpods',
      summary:
        'Create a CloudPod: validates, checks quota, starts the provisioning workflow. A priced product creates the subscription that pays for the pod; its activation provisions the pod and bills it once ACTIVE',
      access: write,
      body: CreatePodBody,
      idempotent: true,
      durable: true,
      responses: {
        202: {
          description:
            'Pod PENDING; provisioning runs (through the subscription activation for a priced product)',
          content: { 'application/json': { schema: PodCreated } },
        },
      },
      problems: [409, 422],
      async handle({ principal, em, body, res, log }) {
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
          throw new AppError(
            'unprocessable',
            'product_id does not name an available product of this tenant',
            {
              errors: [{ field: 'product_id', message: 'unknown or retired product' }],
            },
          );
        }
        const { pod, job, subscription } = await createPod(services(em), {
          tenantId: tenantOf(principal),
          customerId: body.customer_id,
          productId: body.product_id,
          slug: body.slug,
          restoreFromBackupId: body.restore_from_backup_id ?? null,
        });
        deps.metrics.workflowStarts.inc({ workflow: subscription ? 'activateSubscription' : 'cloudPod' });
        log.info(
          { podId: pod.id, jobId: job.id, subscriptionId: subscription?.id },
          subscription
            ? 'priced pod created; its subscription activation started'
            : 'pod created; provisioning started',
        );
        res
          .status(202)
          .location(`/api/v1/cloudpods/${pod.id}`)
          .json({
            pod: podView(pod),
            job: jobView(job),
            subscription: subscription
              ? {
                  id: subscription.id,
                  status: subscription.status,
                  activation_workflow_id: subscription.activationWorkflowId,
                }
              : null,
          });
      },
    }),
    route({
      operationId: 'listCloudPods',
      tag: 'CloudPods',
      method: 'get',
      path: '/api/v1/cloudpods',
      summary: "List the tenant's pods",
      access: read,
      query: ListPodsQuery,
      responses: {
        200: {
          description: 'A page of pods',
          content: {
            'application/json': {
              schema: z.object({ data: z.array(PodView), next_cursor: z.string().nullable() }),
            },
          },
        },
      },
      async handle({ principal, query, res }) {
        const page = await podPage(deps.orm.em, tenantOf(principal), {
          status: query.status,
          customerId: query.customer_id,
          after: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getCloudPod',
      tag: 'CloudPods',
      method: 'get',
      path: '/api/v1/cloudpods/:id',
      summary: 'Get a pod with its current job',
      access: read,
      params: PodIdParams,
      responses: {
        200: { description: 'The pod', content: { 'application/json': { schema: PodView } } },
      },
      async handle({ em, params, res }) {
        const pod = await loadPod(em, params.id);
        res.json(podView(pod, await currentJob(em, pod)));
      },
    }),
    route({
      operationId: 'listCloudPodJobs',
      tag: 'CloudPods',
      method: 'get',
      path: '/api/v1/cloudpods/:id/jobs',
      summary: "A pod's operation jobs, newest first",
      access: read,
      params: PodIdParams,
      responses: {
        200: {
          description: 'Jobs',
          content: { 'application/json': { schema: z.object({ data: z.array(JobView) }) } },
        },
      },
      async handle({ principal, params, res }) {
        res
          .type('application/json')
          .send(dataBody(await podList(podJobsPage, tenantOf(principal), params.id)));
      },
    }),
    route({
      operationId: 'previewPlanChange',
      tag: 'CloudPods',
      method: 'get',
      path: '/api/v1/cloudpods/:id/plan/preview',
      summary: 'The limits a plan change would give, and whether it is allowed',
      access: read,
      params: PodIdParams,
      query: PlanPreviewQuery,
      responses: {
        200: { description: 'Preview', content: { 'application/json': { schema: PlanPreview } } },
      },
      problems: [422],
      async handle({ em, params, query, res }) {
        const pod = await loadPod(em, params.id);
        const product = await targetProduct(em, query.product_id);
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
      },
    }),
    route({
      operationId: 'changePlan',
      tag: 'CloudPods',
      method: 'post',
      path: '/api/v1/cloudpods/:id/plan',
      summary: 'Change the plan (resize the VM; new cores or memory restart a running pod)',
      access: write,
      params: PodIdParams,
      body: PlanBody,
      idempotent: true,
      durable: true,
      responses: accepted('Plan change accepted'),
      problems: [409, 422],
      async handle({ em, params, body, res }) {
        const pod = await loadPod(em, params.id);
        // A subscribed pod's plan is its subscription's: resized here, it would run a plan nobody bills.
        const subscription = await liveSubscriptionOfPod(em, pod.id);
        if (subscription) {
          throw new AppError(
            'conflict',
            `pod ${pod.id} is paid for by subscription ${subscription.id}; change its plan with POST ${changePlanPath(subscription.id)}, which resizes the pod and bills the change`,
            { subscription_id: subscription.id, change_plan: changePlanPath(subscription.id) },
          );
        }
        const product = await targetProduct(em, body.product_id);
        const job = await requestPlanChange(services(em), pod, product);
        res.status(202).json({ pod: podView(pod), job: jobView(job) });
      },
    }),
    signalRoute(
      'suspendCloudPod',
      'post',
      '/api/v1/cloudpods/:id/suspend',
      'Suspend: stop the VM and take the customer’s power over it away',
      'suspend accepted',
      'SUSPEND',
    ),
    signalRoute(
      'unsuspendCloudPod',
      'post',
      '/api/v1/cloudpods/:id/unsuspend',
      'Unsuspend: give the customer’s power back and start the VM',
      'unsuspend accepted',
      'UNSUSPEND',
    ),
    signalRoute(
      'terminateCloudPod',
      'delete',
      '/api/v1/cloudpods/:id',
      'Terminate: pre-termination backup, destroy VM, delete DNS, release capacity',
      'Termination accepted',
      'TERMINATE',
    ),
    route({
      operationId: 'listBackups',
      tag: 'CloudPods',
      method: 'get',
      path: '/api/v1/cloudpods/:id/backups',
      summary: "A pod's backups",
      access: read,
      params: PodIdParams,
      responses: {
        200: {
          description: 'Backups',
          content: { 'application/json': { schema: z.object({ data: z.array(BackupView) }) } },
        },
      },
      async handle({ principal, params, res }) {
        res
          .type('application/json')
          .send(dataBody(await podList(podBackupsPage, tenantOf(principal), params.id)));
      },
    }),
    route({
      operationId: 'createBackup',
      tag: 'CloudPods',
      method: 'post',
      path: '/api/v1/cloudpods/:id/backups',
      summary: 'Take a manual backup',
      access: write,
      params: PodIdParams,
      idempotent: true,
      durable: true,
      responses: accepted('Backup accepted'),
      problems: [409],
      async handle({ em, params, res }) {
        const pod = await loadPod(em, params.id);
        const { job, backup } = await requestOperation(services(em), pod, 'BACKUP');
        res
          .status(202)
          .json({ pod: podView(pod), job: jobView(job), ...(backup ? { backup: backupView(backup) } : {}) });
      },
    }),
    route({
      operationId: 'restoreBackup',
      tag: 'CloudPods',
      method: 'post',
      path: '/api/v1/cloudpods/:id/backups/:backupId/restore',
      summary: 'Restore a completed backup',
      access: write,
      params: BackupParams,
      idempotent: true,
      durable: true,
      responses: accepted('Restore accepted'),
      problems: [409],
      async handle({ em, params, res }) {
        const pod = await loadPod(em, params.id);
        if (!isId('backup', params.backupId)) throw notFound('backup');
        const { job } = await requestOperation(services(em), pod, 'RESTORE', { backupId: params.backupId });
        res.status(202).json({ pod: podView(pod), job: jobView(job) });
      },
    }),
  ];
}
