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
  /**
   * Stops accepting connections, lets requests in flight finish (for up to
   * POSTERN_SHUTDOWN_SECONDS, then closes what is left), stops the jobs, closes the database.
   */
  close(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

/** POSTERN_METRICS_PORT: /metrics on a listener of its own, for the private network only. */
function metricsServer(container: Container): http.Server {
  return http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    const { registry } = container.metrics;
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
}

function stopListening(server: http.Server, deadlineMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), deadlineMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export async function startServer(
  config: Config,
  logger: Logger,
  options: { clock?: Clock; database?: DatabaseHandle } = {},
): Promise<RunningServer> {
  const container = await createContainer(config, { logger, ...options });
  const server = http.createServer(container.listener);
  // Behind a load balancer, idle keep-alive sockets must outlive the balancer's own timeout.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const metrics = config.metrics.port === undefined ? undefined : metricsServer(container);
  try {
    await listen(server, config.port, config.host);
    if (metrics) await listen(metrics, config.metrics.port!, config.host);
  } catch (error) {
    server.close();
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
        const deadline = config.shutdownSeconds * 1000;
        await Promise.all([stopListening(server, deadline), metrics && stopListening(metrics, deadline)]);
        await container.close();
      })();
      return closing;
    },
  };
}
