/** Request and response schemas for /api/v1/billing/test-clocks. */
import { MAX_ADVANCE_MONTHS, MAX_TEST_CLOCK_CUSTOMERS, TEST_CLOCK_STATUSES } from '../../domain/test-clocks';
import { z } from '../zod';
import { DisplayName, PaginationQuery, idCursor } from './common.schemas';

/** A new clock starts within this much of now, either way. */
export const MAX_START_OFFSET_MS = 366 * 86_400_000;

/** `2026-02-30T…` is no day of the calendar, though `Date.parse` would roll it into March. */
function isCalendarDay(iso: string): boolean {
  const [y, m, d] = iso.slice(0, 10).split('-').map(Number);
  const day = new Date(Date.UTC(y ?? 0, (m ?? 1) - 1, d ?? 0));
  return day.getUTCFullYear() === y && day.getUTCMonth() + 1 === m && day.getUTCDate() === d;
}

const FrozenTime = z.iso
  .datetime({ offset: true })
  .refine(isCalendarDay, 'is not a day of the calendar')
  .openapi({ example: '2026-12-01T00:00:00Z', description: 'ISO 8601 with a time zone' });

export const CreateTestClockBody = z
  .strictObject({
    name: DisplayName.openapi({ example: 'Annual renewal walk-through' }),
    frozen_time: FrozenTime.refine(
      (at) => Math.abs(Date.parse(at) - Date.now()) <= MAX_START_OFFSET_MS,
      'must be within a year of now',
    )
      .optional()
      .openapi({ description: 'where time stands at first (default: now); within a year of now' }),
  })
  .openapi('CreateTestClock');

export const AdvanceTestClockBody = z
  .strictObject({
    frozen_time: FrozenTime.openapi({
      description: `the time to advance to: later than the clock's frozen_time, at most ${MAX_ADVANCE_MONTHS} months later`,
    }),
  })
  .openapi('AdvanceTestClock');

export const TestClockView = z
  .object({
    id: z.string().openapi({ example: 'clk_01jd0000000000000000000000' }),
    name: z.string(),
    frozen_time: z.string().openapi({ description: 'the time the attached customers are billed at' }),
    status: z.enum(TEST_CLOCK_STATUSES).openapi({
      description:
        'READY: time stands still; ADVANCING: an advance walks it forward; INTERNAL_FAILURE: the last advance could not finish (see failure_reason)',
    }),
    advancing_to: z.string().nullable().openapi({ description: 'the target of the running advance' }),
    advance_workflow_id: z
      .string()
      .nullable()
      .openapi({ description: 'the workflow of the latest advance (`test-clock-<id>-advance-<n>`)' }),
    failure_reason: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('TestClock', {
    description: `A sandbox tenant's clock. Up to ${MAX_TEST_CLOCK_CUSTOMERS} customers attached to it (test_clock_id, chosen at their creation) are billed as of its frozen_time.`,
  });

export type TestClockView = z.infer<typeof TestClockView>;

export const TestClockList = z.object({ data: z.array(TestClockView), next_cursor: z.string().nullable() });

export const ListTestClocksQuery = PaginationQuery.extend({ cursor: idCursor('testClock') });

export const TestClockIdParams = z.object({
  id: z.string().openapi({ example: 'clk_01jd0000000000000000000000' }),
});

export const TestClockAdvanceAccepted = z.object({ test_clock: TestClockView, workflow_id: z.string() });
