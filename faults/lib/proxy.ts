/**
 * A TCP proxy in front of PostgreSQL that can stop forwarding, the way a network fails:
 *
 * - `pause()` / `resume()`: a partition that heals. Bytes in both directions (and on connections
 *   opened meanwhile) are held, then delivered in order, as TCP retransmission would once the
 *   network is back. Nothing is refused, nothing is reset: statements simply get no answer.
 * - `blackhole(match)`: half-open connections. Existing connections whose startup message matches
 *   (say, `application_name=baton_listener`) silently stop forwarding for good; the sockets stay
 *   open, so only an application-level probe can notice. New connections work.
 *
 * (test/helpers/pg-proxy.ts is the tests' simpler proxy, which drops message types.)
 */
import { connect, createServer, type Socket } from 'node:net';

interface Link {
  client: Socket;
  upstream: Socket;
  /** The client's startup message as text (user, database, application_name...). */
  startup: string;
  dead: boolean;
}

export interface FaultProxy {
  port: number;
  links(): number;
  pause(): void;
  resume(): void;
  /** Makes matching open connections half-open for good; returns how many. */
  blackhole(match: (startup: string) => boolean): number;
  close(): Promise<void>;
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const links = new Set<Link>();
  let paused = false;
  const held: (() => void)[] = [];

  const forward = (link: Link, to: Socket, chunk: Buffer) => {
    if (link.dead) return;
    if (paused) held.push(() => !link.dead && to.write(chunk));
    else to.write(chunk);
  };

  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const link: Link = { client, upstream, startup: '', dead: false };
    links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (link.startup === '') link.startup = chunk.toString('latin1').replaceAll('\0', ' ');
      forward(link, upstream, chunk);
    });
    upstream.on('data', (chunk: Buffer) => forward(link, client, chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      links.delete(link);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('proxy has no port');

  return {
    port: address.port,
    links: () => links.size,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      for (const deliver of held.splice(0)) deliver();
    },
    blackhole: (match) => {
      let count = 0;
      for (const link of links) {
        if (!link.dead && match(link.startup)) {
          link.dead = true;
          count++;
        }
      }
      return count;
    },
    close: () =>
      new Promise((resolve) => {
        for (const link of links) {
          link.client.destroy();
          link.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
