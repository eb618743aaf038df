/** Drops the run's databases and stops what global-setup started. */
export default async function globalTeardown(): Promise<void> {
  for (const step of globalThis.__podplaneTeardown ?? []) {
    await step();
  }
}
