/** The route table: every route the API serves, each declared once in its area's file. */
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import type { MikroORM } from '../../db/orm';
import { createPayments } from '../../providers';
import type { FaultInjector } from '../../providers/simulator';
import type { Route } from '../http/route';
import type { ApiMetrics } from '../middleware/metrics';
import { auditRoutes } from './audit';
import { authRoutes } from './auth';
import { billingSettingsRoutes } from './billing-settings';
import { cloudPodRoutes } from './cloudpods';
import { customerRoutes } from './customers';
import { debugRoutes } from './debug';
import { healthRoutes } from './health';
import { memberRoutes } from './members';
import { mfaRoutes } from './mfa';
import { invitationRoutes } from './invitations';
import { invoiceRoutes } from './invoices';
import { nodeRoutes } from './nodes';
import { notificationRoutes } from './notifications';
import { passwordResetRoutes } from './password-reset';
import { opsRoutes } from './ops';
import { productRoutes } from './products';
import { scheduleRoutes } from './schedules';
import { securityRoutes } from './security';
import { securityPolicyRoutes } from './security-policy';
import { shieldRoutes } from './shield';
import { simulatorRoutes } from './simulator';
import { subscriptionRoutes } from './subscriptions';
import { systemRoutes } from './system';
import { tenantRoutes } from './tenants';
import { testClockRoutes } from './test-clocks';
import { tokenRoutes } from './tokens';
import { usageRoutes } from './usage';
import { webhookRoutes } from './webhooks';

export interface RouteTableDeps {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  metrics: ApiMetrics;
  version: string;
  commit: string;
  faults?: FaultInjector | undefined;
  /** the OpenAPI document, built from this very table */
  openApi: () => unknown;
}

export function routeTable(deps: RouteTableDeps): Route[] {
  const { config, orm, temporal, metrics } = deps;
  // `POST …/pay` and SetupIntents call the payment provider from the API, with the worker's choice of it.
  const payments = createPayments(config);
  return [
    ...healthRoutes({ orm, temporalConnection: temporal.connection }),
    ...systemRoutes({ metrics, openApi: deps.openApi }),
    ...debugRoutes({ config, version: deps.version, commit: deps.commit }),
    ...authRoutes({ orm, config }),
    ...mfaRoutes({ config }),
    ...tenantRoutes({ temporal, metrics }),
    ...tokenRoutes(),
    ...memberRoutes(),
    ...invitationRoutes({ config }),
    ...passwordResetRoutes({ config }),
    ...securityRoutes({ orm }),
    ...auditRoutes({ orm }),
    ...securityPolicyRoutes({ config }),
    ...shieldRoutes({ orm }),
    ...customerRoutes({ payments }),
    ...productRoutes(),
    ...subscriptionRoutes({ temporal, metrics, config, orm, payments }),
    ...invoiceRoutes({ orm, temporal, config, payments }),
    ...billingSettingsRoutes(),
    ...testClockRoutes({ temporal, config, metrics }),
    ...notificationRoutes({ orm }),
    ...usageRoutes(),
    ...webhookRoutes({ config, temporal, metrics }),
    ...cloudPodRoutes({ orm, temporal, config, metrics, payments }),
    ...nodeRoutes(),
    ...simulatorRoutes({ orm, config, faults: deps.faults }),
    ...opsRoutes({ orm, temporal, config }),
    ...scheduleRoutes({ temporal, config }),
  ];
}
