/**
 * The pure billing core: money, periods, invoice totals, proration, dunning and trial dates,
 * usage overage.
 * No I/O and no clock: every time is passed in, so workflows, activities, the API preview and
 * tests all compute the same answer. Workflows import this module as `../domain/billing`.
 */
export * from './errors';
export * from './money';
export * from './periods';
export * from './invoices';
export * from './proration';
export * from './dunning';
export * from './trials';
export * from './usage';
