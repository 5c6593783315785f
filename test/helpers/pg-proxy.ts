import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that forwards everything except what `dropFromServer`
 * rejects. Server-to-client traffic is cut into protocol messages (type byte + int32 length), so a
 * test can drop, say, every NotificationResponse ('A'), as a transaction-pooling proxy would.
 */
export interface PgProxy {
  port: number;
  close(): Promise<void>;
}

export async function startPgProxy(
  options: { target?: { host: string; port: number }; dropFromServer?: (type: string) => boolean } = {},
): Promise<PgProxy> {
  const target = options.target ?? { host: '127.0.0.1', port: 5432 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const length = pending.readInt32BE(1);
        if (pending.length < 1 + length) break;
        const message = pending.subarray(0, 1 + length);
        pending = pending.subarray(1 + length);
        if (!options.dropFromServer?.(String.fromCharCode(message[0]!))) client.write(message);
      }
    });
    client.on('data', (chunk) => upstream.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
