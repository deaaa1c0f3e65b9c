/**
 * The admin port (twentieth session's review): it answers only requests addressed to this host,
 * and a request left half-sent does not hold the node's stop.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { Server } from 'node:http';
import { startAdminServer, stopAdminServer } from '../../runtime/admin-server.ts';
import { freePort } from '../free-port.ts';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) if (server.listening) await stopAdminServer(server);
});

async function start(): Promise<number> {
  const port = await freePort();
  servers.push(await startAdminServer(port, { registry: new Registry(), health: () => ({ ready: true }), status: () => ({ seq: 7 }) }));
  return port;
}

/** The status line of the answer to `text`, sent raw (fetch cannot set Host). */
function statusLine(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.on('data', (d) => (out += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out.split('\r\n')[0] ?? '');
    });
  });
}

describe('admin server', () => {
  it('answers a request for this host, and refuses one for another (a DNS-rebinding page in a browser on this machine)', async () => {
    // Before: any Host got 200, so a page whose name resolved to 127.0.0.1 could read /status.
    const port = await start();
    const get = (host: string) => statusLine(port, `GET /status HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(await get(`127.0.0.1:${port}`)).toBe('HTTP/1.1 200 OK');
    expect(await get(`localhost:${port}`)).toBe('HTTP/1.1 200 OK');
    expect(await get('attacker.example')).toMatch(/^HTTP\/1\.1 421/);
    expect(await get(`attacker.example:${port}`)).toMatch(/^HTTP\/1\.1 421/);
    expect(await (await fetch(`http://127.0.0.1:${port}/status`)).json()).toEqual({ seq: 7 });
  });

  it('a request left half-sent does not hold the stop (it held it for 60 s; the launcher kills after 5)', async () => {
    const port = await start();
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET /status HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = stopAdminServer(servers[0]!).then(() => 'stopped');
    const outcome = await Promise.race([stopped, new Promise((resolve) => setTimeout(() => resolve('still waiting after 3 s'), 3000))]);
    socket.destroy();
    expect(outcome).toBe('stopped');
  });
});
