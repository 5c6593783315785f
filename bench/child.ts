/**
 * One timed role of one workload, in its own process. Usage (run.ts does this):
 *   node --import tsx bench/child.ts '{"role":"w2","system":"baton","db":"bench_baton","jobs":50000}'
 * Protocol on stdout: "@@READY" when a worker is started (W4) or loaded and waiting for "go" on stdin
 * (W3x4), "@@PROGRESS <n>" lines from a W3x4 worker, then one "@@RESULT <json>" line.
 */
import { checkpoint, dbUrl } from './lib/db.js';
import { quantile } from './lib/quantile.js';
import { drain, drainMember, memoryDrain } from './roles/drain.js';
import { loadSystem } from './systems/index.js';
import type { Payload } from './systems/types.js';

interface Args {
  role:
    | 'setup'
    | 'seed'
    | 'seed-finished'
    | 'w1'
    | 'w2'
    | 'w3'
    | 'w3x4-worker'
    | 'w4-worker'
    | 'w4-enqueue'
    | 'memory';
  system: string;
  db: string;
  jobs: number;
  timeoutMs: number;
  rate?: number;
  concurrency?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const sys = await loadSystem(args.system);
const url = dbUrl(args.db);
const deadline = performance.now() + args.timeoutMs;
const BATCH = 1000;
const CONCURRENCY = args.concurrency ?? 32;
const now = () => performance.timeOrigin + performance.now();
const result = (r: Record<string, unknown>): void => {
  process.stdout.write(`@@RESULT ${JSON.stringify(r)}\n`);
};
const drainContext = () => ({ sys, url, jobs: args.jobs, concurrency: CONCURRENCY, deadline });

async function enqueueBatches(n: number): Promise<void> {
  const p = await sys.producer(url);
  for (let done = 0; done < n; done += BATCH) {
    const size = Math.min(BATCH, n - done);
    await p.enqueueMany(Array.from({ length: size }, () => ({ t: now() })));
  }
  await p.close();
}

async function main(): Promise<void> {
  switch (args.role) {
    case 'setup':
      await sys.setup(url);
      return result({});
    case 'seed':
      await enqueueBatches(args.jobs);
      await checkpoint();
      return result({});
    case 'seed-finished': {
      if (!sys.seedHistory) throw new Error(`${sys.id}: no seedHistory`);
      const t0 = performance.now();
      await sys.seedHistory(url, args.jobs, args.timeoutMs);
      await checkpoint();
      return result({ seconds: (performance.now() - t0) / 1000 });
    }
    case 'w2': {
      const p = await sys.producer(url);
      await p.enqueueMany([{ t: now() }]); // connect and warm up, untimed (one extra job)
      const t0 = performance.now();
      for (let done = 0; done < args.jobs; done += BATCH) {
        const size = Math.min(BATCH, args.jobs - done);
        await p.enqueueMany(Array.from({ length: size }, () => ({ t: now() })));
      }
      const s = (performance.now() - t0) / 1000;
      await p.close();
      return result({ jobsPerSec: args.jobs / s, seconds: s });
    }
    case 'w1': {
      const p = await sys.producer(url);
      await p.enqueue({ t: now() }); // warm-up, untimed
      let next = 0;
      const t0 = performance.now();
      const lane = async () => {
        while (next < args.jobs && performance.now() < deadline) {
          next++;
          await p.enqueue({ t: now() });
        }
      };
      await Promise.all(Array.from({ length: 16 }, lane));
      const s = (performance.now() - t0) / 1000;
      await p.close();
      return result({ jobsPerSec: next / s, seconds: s, jobs: next });
    }
    case 'w3':
      return result(await drain(drainContext()));
    case 'w3x4-worker':
      return result(await drainMember(drainContext()));
    case 'memory':
      return result(await memoryDrain(drainContext()));
    case 'w4-worker':
      return latencyWorker();
    case 'w4-enqueue':
      return steadyEnqueue(args.rate ?? 200);
  }
}

async function latencyWorker(): Promise<void> {
  const lat: number[] = [];
  let target = Number.POSITIVE_INFINITY;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => {
    done = r;
  });
  const worker = await sys.startWorker(url, {
    concurrency: CONCURRENCY,
    onJob: (p: Payload) => {
      lat.push(now() - p.t);
      if (lat.length >= target) done();
    },
  });
  // The orchestrator writes the number of jobs actually enqueued to stdin once the enqueuer exits.
  process.stdin.setEncoding('utf8').on('data', (line: string) => {
    target = Number(line.trim());
    if (lat.length >= target) done();
    else setTimeout(done, 10_000).unref();
  });
  process.stdout.write('@@READY\n');
  await Promise.race([all, new Promise((r) => setTimeout(r, Math.max(0, deadline - performance.now())))]);
  process.stdin.destroy();
  await worker.stop();
  lat.sort((a, b) => a - b);
  result({
    received: lat.length,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    max: lat[lat.length - 1] ?? Number.NaN,
  });
}

async function steadyEnqueue(rate: number): Promise<void> {
  const p = await sys.producer(url);
  await p.enqueue({ t: now() }); // warm-up (the worker counts it too; the orchestrator expects jobs + 1)
  const interval = 1000 / rate;
  const t0 = performance.now();
  let inFlight = 0;
  let sent = 0;
  let skipped = 0;
  const pending = new Set<Promise<void>>();
  for (let i = 0; i < args.jobs && performance.now() < deadline; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (inFlight >= 64) {
      skipped++; // the system cannot keep up; do not queue unbounded work in the client
      continue;
    }
    inFlight++;
    const job = p.enqueue({ t: now() }).finally(() => {
      inFlight--;
      pending.delete(job);
    });
    pending.add(job);
    sent++;
  }
  await Promise.all(pending);
  const s = (performance.now() - t0) / 1000;
  await p.close();
  result({ sent, skipped, achievedRate: sent / s });
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
