/**
 * The node's admin HTTP port, bound to 127.0.0.1 only: /health (200 once the node serves, with a
 * `ready` flag once it sees enough peers to do its job), /status (JSON for `cluster status`) and
 * /metrics (Prometheus text). Read-only: nothing here changes the node.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface AdminSources {
  health(): { ready: boolean; [key: string]: unknown };
  status(): Record<string, unknown>;
  registry: Registry;
  /** Called before /metrics renders, to refresh gauges sampled from counters. */
  beforeScrape?(): void;
}

export async function startAdminServer(port: number, sources: AdminSources): Promise<Server> {
  const server = createServer((req, res) => {
    const reply = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const url = (req.url ?? '/').split('?')[0];
    // Only a request addressed to this host: a web page on the same machine could otherwise read
    // the node's status through a name of its own that resolves to 127.0.0.1 (DNS rebinding).
    if (!localHosts(port).has((req.headers.host ?? '').toLowerCase())) return reply(421, 'text/plain', 'not for this host\n');
    if (req.method !== 'GET') return reply(405, 'text/plain', 'GET only\n');
    try {
      if (url === '/health') return reply(200, 'application/json', JSON.stringify({ status: 'ok', ...sources.health() }));
      if (url === '/status') return reply(200, 'application/json', JSON.stringify(sources.status()));
      if (url === '/metrics') {
        sources.beforeScrape?.();
        void sources.registry.metrics().then(
          (text) => reply(200, sources.registry.contentType, text),
          (error: Error) => reply(500, 'text/plain', `${error.message}\n`),
        );
        return;
      }
      reply(404, 'text/plain', 'try /health, /status or /metrics\n');
    } catch (error) {
      reply(500, 'text/plain', `${(error as Error).message}\n`);
    }
  });
  server.keepAliveTimeout = 1000;
  // A request left half-sent must not hold a clean stop (and the node's lmdb) for Node's 60 s.
  server.headersTimeout = 5000;
  server.requestTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

/** The Host values a request for this port on loopback carries. */
function localHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

/**
 * Stops the admin port: connections first, since close() waits for requests in progress, and one
 * left half-sent held a node's stop past the launcher's 5 s (which then sent SIGKILL).
 */
export async function stopAdminServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
