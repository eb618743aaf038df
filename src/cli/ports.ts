/**
 * The ports `npm start` binds, checked before it starts anything: a port in use stops the start
 * with one line naming the port and its variable, instead of a half-started stack or an API whose
 * requests reach another program.
 */
import net from 'node:net';
import type { Config } from '../config';

export interface PortToBind {
  /** the variable that sets it, as the operator knows it */
  variable: 'PORT' | 'EMBEDDED_POSTGRES_PORT' | 'TEMPORAL_DEV_PORT' | 'TEMPORAL_UI_PORT';
  port: number;
  host: string;
}

/** Every port this configuration makes `npm start` bind (PostgreSQL and Temporal only when embedded). */
export function portsToBind(config: Config): PortToBind[] {
  const ports: PortToBind[] = [{ variable: 'PORT', port: config.PORT, host: config.HOST }];
  // src/db/embedded.ts and temporal/dev-server.ts listen on loopback
  if (!config.DATABASE_URL) {
    ports.push({
      variable: 'EMBEDDED_POSTGRES_PORT',
      port: config.EMBEDDED_POSTGRES_PORT,
      host: '127.0.0.1',
    });
  }
  if (!config.TEMPORAL_ADDRESS) {
    ports.push(
      { variable: 'TEMPORAL_DEV_PORT', port: config.TEMPORAL_DEV_PORT, host: '127.0.0.1' },
      { variable: 'TEMPORAL_UI_PORT', port: config.TEMPORAL_UI_PORT, host: '127.0.0.1' },
    );
  }
  // 0 asks the system for any free port: nothing to check
  return ports.filter((p) => p.port !== 0);
}

/** The one line that says why `port` (set by `variable`) cannot be bound. */
export function portProblem(variable: string, port: number, host: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `port ${port} (${variable}) is already in use`;
  if (code === 'EACCES') return `port ${port} (${variable}) cannot be bound: permission denied`;
  const why = err instanceof Error ? err.message : String(err);
  return `port ${port} (${variable}) on ${host} cannot be bound: ${why}`;
}

/** Binds and releases the port: undefined if that worked, else the reason. */
function tryBind(port: number, host: string): Promise<unknown> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', resolve);
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** The first problem with the ports, as one line; undefined when every one of them is free. */
export async function checkPorts(ports: readonly PortToBind[]): Promise<string | undefined> {
  for (const [i, a] of ports.entries()) {
    const b = ports.slice(i + 1).find((other) => other.port === a.port);
    if (b) return `port ${a.port} is set for both ${a.variable} and ${b.variable}`;
  }
  for (const { variable, port, host } of ports) {
    const err = await tryBind(port, host);
    if (err !== undefined) return portProblem(variable, port, host, err);
  }
  return undefined;
}
