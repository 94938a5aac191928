import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Config } from './config/config.ts';
import { createContainer, type Container } from './container.ts';
import type { DatabaseHandle } from './db/connect.ts';
import type { Clock } from './shared/clock.ts';
import type { Logger } from './shared/logger.ts';

export interface RunningServer {
  readonly container: Container;
  readonly server: http.Server;
  readonly url: string;
  /** Stops accepting connections, lets requests in flight finish, then closes the database. */
  close(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger, options: { clock?: Clock; database?: DatabaseHandle } = {}): Promise<RunningServer> {
  const container = await createContainer(config, { logger, role: 'server', ...options });
  const server = http.createServer(container.app.callback());
  // Behind a load balancer, idle keep-alive sockets must outlive the balancer's own timeout.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (error) {
    await container.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    container,
    server,
    url: `http://localhost:${port}`,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await container.close();
      })();
      return closing;
    },
  };
}
