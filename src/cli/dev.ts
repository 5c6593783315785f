import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { type BatonClient, createBaton, createEmbeddedBaton } from '../client.js';
import { createHttpLogger } from '../http/logger.js';
import { type HttpServer, startHttpServer } from '../http/server.js';
import { type HttpSettings, resolveHttpSettings } from '../http/settings.js';
import { formatStats } from './commands.js';
import { demoKinds, flaky, greet, lookup } from './demo-kinds.js';
import { loadKinds } from './load-kinds.js';

interface DevOptions {
  dataDir: string;
  jobs?: string;
  demoJobs: number;
  exitWhenDone?: boolean;
  /** False with --no-http: no API and console. */
  http: boolean;
  port: number;
}

const SHOWN = new Set([
  'worker.started',
  'job.claimed',
  'job.completed',
  'job.retry_scheduled',
  'job.dead_lettered',
  'job.lease_lost',
  'recovery.requeued',
  'worker.stopped',
]);

/** Human-readable lines for a first run; production workers log JSON. */
function devLogger(): pino.Logger {
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text);
        if (!SHOWN.has(line.event)) continue;
        const time = String(line.time).slice(11, 23);
        const job = line.jobId
          ? ` ${line.kind} ${String(line.jobId).slice(0, 8)} attempt ${line.attempt}`
          : '';
        const extra = [
          line.durationMs !== undefined ? `${line.durationMs} ms` : '',
          line.delayMs !== undefined ? `retry in ${line.delayMs} ms` : '',
          line.errorCode ? `${line.errorCode}: ${line.errorMessage ?? line.reason ?? ''}` : '',
        ]
          .filter(Boolean)
          .join(', ');
        process.stdout.write(`${time}  ${line.event.padEnd(19)}${job}${extra ? `  (${extra})` : ''}\n`);
      }
      done();
    },
  });
  return pino({ level: 'info', timestamp: pino.stdTimeFunctions.isoTime }, stream);
}

export async function runDev(options: DevOptions): Promise<void> {
  const kinds = options.jobs ? await loadKinds(options.jobs) : demoKinds;
  let baton: BatonClient;
  if (process.env.DATABASE_URL) {
    baton = createBaton({ kinds });
    process.stdout.write(`baton dev: PostgreSQL from DATABASE_URL\n`);
  } else {
    mkdirSync(options.dataDir, { recursive: true });
    baton = await createEmbeddedBaton({ kinds, dataDir: options.dataDir });
    process.stdout.write(`baton dev: embedded database in ${options.dataDir} (no server needed)\n`);
  }
  await baton.migrate();
  const worker = baton.createWorker({
    kinds,
    concurrency: 4,
    pollIntervalMs: 500,
    logger: devLogger(),
    shutdownSignals: [],
  });
  await worker.start();

  let server: HttpServer | undefined;
  if (options.http) {
    try {
      server = await startDevServer(baton, options.port);
    } catch (error) {
      await worker.stop();
      await baton.close();
      throw error;
    }
  }

  const enqueued: string[] = [];
  if (!options.jobs && options.demoJobs > 0) {
    const names = Array.from({ length: Math.max(1, options.demoJobs - 2) }, (_, index) => ({
      payload: { name: `guest ${index + 1}` },
    }));
    enqueued.push(...(await baton.enqueueMany(greet, names)).map((job) => job.id));
    enqueued.push((await baton.enqueue(flaky, { failures: 1 })).id);
    enqueued.push((await baton.enqueue(lookup, { id: 42 })).id);
    process.stdout.write(
      `enqueued ${enqueued.length} demo jobs: ${names.length} demo.greet, 1 demo.flaky (fails once, then succeeds), 1 demo.lookup (dead-letters)\n`,
    );
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server?.close();
    await worker.stop();
    process.stdout.write(`\n${formatStats(await baton.stats())}`);
    await baton.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  if (options.exitWhenDone) {
    for (;;) {
      const jobs = await Promise.all(enqueued.map((id) => baton.getJob(id)));
      if (jobs.every((job) => job && ['completed', 'failed', 'cancelled'].includes(job.state))) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await stop();
  } else {
    process.stdout.write('running; press Ctrl-C to stop\n');
  }
}

/**
 * The API and console beside the dev worker, with a fresh operator token printed so a first run can
 * log in. Tokens from BATON_API_TOKENS work too. When the port is taken, a free one is used.
 */
async function startDevServer(baton: BatonClient, port: number): Promise<HttpServer> {
  const configured = resolveHttpSettings({ port });
  const token = randomBytes(24).toString('base64url');
  const settings: HttpSettings = {
    ...configured,
    tokens: [...configured.tokens, { actor: 'dev', role: 'operator', token }],
  };
  const logger = createHttpLogger('warn');
  let server: HttpServer;
  try {
    server = await startHttpServer(baton, settings, { logger });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    process.stdout.write(`port ${settings.port} is taken; using a free one\n`);
    server = await startHttpServer(baton, { ...settings, port: 0 }, { logger });
  }
  process.stdout.write(
    `console: ${server.url}/ops/queue\n` +
      `API:     ${server.url}/api (docs/http.md)\n` +
      `operator token for this run (actor "dev"): ${token}\n`,
  );
  return server;
}
