/** Listens and drains: on shutdown stop accepting, let in-flight requests finish, then close idle sockets. */
import type { Server } from 'node:http';
import type { Express } from 'express';
import type { Config } from '../config';
import type { Logger } from '../logger';

export interface ServingApi {
  server: Server;
  url: string;
  drain(timeoutMs: number): Promise<void>;
}

export async function serve(app: Express, config: Config, logger: Logger): Promise<ServingApi> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`;
  logger.info({ url }, 'API listening');
  return {
    server,
    url,
    drain: (timeoutMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, timeoutMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
