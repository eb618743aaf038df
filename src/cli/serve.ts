/** Listens and drains: on shutdown stop accepting, let in-flight requests finish, then close idle sockets. */
import http, { type Server } from 'node:http';
import type { Express } from 'express';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { portProblem } from './ports';

export interface ServingApi {
  server: Server;
  url: string;
  drain(timeoutMs: number): Promise<void>;
}

/**
 * Resolves once the API listens; rejects with one line naming the port and PORT when it cannot
 * (Express 5's `app.listen` calls its callback on `error` too, which reported a taken port as a
 * running API, so the server is created and listened on here).
 */
export async function serve(app: Express, config: Config, logger: Logger): Promise<ServingApi> {
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(new Error(portProblem('PORT', config.PORT, config.HOST, err)));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(config.PORT, config.HOST);
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
