/** The test clock list as JSON text (see pages.ts), in the shape of `testClockView`. */
import { workflowIds } from '../../workflows/shared';
import type { EntityManager } from '../orm';
import { PageWhere, isoJson, textJson, textPage, utc, type Page } from './pages';

interface TestClockPageRow {
  id: string;
  name: string;
  frozen_time: string;
  status: string;
  advancing_to: string | null;
  advances: string;
  failure_reason: string | null;
  created_at: string;
  updated_at: string;
}

/** The workflow of a clock's latest advance, or null before its first. */
export function latestAdvanceWorkflowId(clockId: string, advances: number): string | null {
  return advances > 0 ? workflowIds.advanceTestClock(clockId, advances) : null;
}

/** One page of a tenant's test clocks that are not deleted, by id. */
export function testClockPage(
  em: EntityManager,
  tenantId: string,
  q: { after?: string | undefined; limit: number },
): Promise<Page> {
  const where = new PageWhere(tenantId).add('l', 'deleted_at is null').add('a', 'id > $?', q.after);
  return textPage<TestClockPageRow>(em, {
    name: where.name('test_clocks_page'),
    select: `id, name, ${utc('frozen_time')}, status, ${utc('advancing_to')}, advances, failure_reason,
             ${utc('created_at')}, ${utc('updated_at')}`,
    table: 'test_clocks',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"name":${textJson(r.name)},"frozen_time":${isoJson(r.frozen_time)},` +
      `"status":${textJson(r.status)},"advancing_to":${isoJson(r.advancing_to)},` +
      `"advance_workflow_id":${textJson(latestAdvanceWorkflowId(r.id, Number(r.advances)))},` +
      `"failure_reason":${textJson(r.failure_reason)},` +
      `"created_at":${isoJson(r.created_at)},"updated_at":${isoJson(r.updated_at)}}`,
  });
}
