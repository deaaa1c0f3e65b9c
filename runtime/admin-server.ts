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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}
