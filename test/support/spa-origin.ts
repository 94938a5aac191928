import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Asset {
  readonly type: string;
  readonly body: string | Buffer;
}

export interface SpaOrigin {
  /** http://127.0.0.2:PORT: another origin and another site than Postern's 127.0.0.1. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * A browser app's own web server: static pages on another loopback address, so that Postern
 * sees it as a cross-site origin (CORS, opener policy), as it would see app.example.com.
 * `serve` is asked on each request, so pages may name things created after the server started.
 */
export async function startSpaOrigin(serve: (path: string) => Asset | undefined): Promise<SpaOrigin> {
  const server = http.createServer((req, res) => {
    const asset = serve(new URL(req.url ?? '/', 'http://spa').pathname);
    if (!asset) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-store' }).end(asset.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.2:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const html = (body: string): Asset => ({
  type: 'text/html; charset=utf-8',
  body: `<!doctype html><meta charset="utf-8">${body}`,
});
