/** `npm run bench`: the API budgets of docs/architecture.md ("Performance budgets") on the test harness's real PostgreSQL and Temporal. */
const base = require('./jest.config');

module.exports = {
  ...base,
  roots: ['<rootDir>/bench'],
  testMatch: ['**/*.bench.ts'],
  testTimeout: 600000,
  maxWorkers: 1,
};
