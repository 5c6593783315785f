/**
 * One timed role of one workload, in its own process. Usage (run.ts does this):
 *   node --import tsx bench/child.ts '{"role":"w2","system":"baton","db":"bench_baton","jobs":50000}'
 * Protocol on stdout: "@@READY" when a worker is started, then one "@@RESULT <json>" line.
 */
import { checkpoint, dbUrl, postgresCpuSeconds, waitUntilZero } from './lib/db.js';
import { redisCpuSeconds } from './lib/redis.js';
import { loadSystem } from './systems/index.js';
import type { Payload } from './systems/types.js';

interface Args {
  role: 'setup' | 'seed' | 'w1' | 'w2' | 'w3' | 'w4-worker' | 'w4-enqueue';
  system: string;
  db: string;
  jobs: number;
  timeoutMs: number;
  rate?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const sys = await loadSystem(args.system);
const url = dbUrl(args.db);
const deadline = performance.now() + args.timeoutMs;
const BATCH = 1000;
const CONCURRENCY = 32;
const now = () => performance.timeOrigin + performance.now();
const result = (r: Record<string, unknown>): void => {
  process.stdout.write(`@@RESULT ${JSON.stringify(r)}\n`);
};

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
      return drain();
    case 'w4-worker':
      return latencyWorker();
    case 'w4-enqueue':
      return steadyEnqueue(args.rate ?? 200);
  }
}

async function drain(): Promise<void> {
  let handled = 0;
  let allHandled: () => void = () => {};
  const handledAll = new Promise<void>((r) => {
    allHandled = r;
  });
  const storeCpu = sys.store === 'redis' ? redisCpuSeconds : postgresCpuSeconds;
  const store0 = await storeCpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = await sys.startWorker(url, {
    concurrency: CONCURRENCY,
    onJob: () => {
      if (++handled === args.jobs) allHandled();
    },
  });
  await Promise.race([
    handledAll,
    new Promise((r) => setTimeout(r, Math.max(0, deadline - performance.now()))),
  ]);
  // Handlers have all started; now wait until the store shows every job in a terminal state.
  const { finished, terminal } = await untilFinished(deadline);
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const store1 = await storeCpu();
  await worker.stop();
  if (!finished) throw new Error(`drain incomplete: ${handled}/${args.jobs} handled before the deadline`);
  if (terminal !== undefined && terminal !== args.jobs) {
    throw new Error(`store counts disagree: ${terminal} jobs terminal, ${args.jobs} enqueued`);
  }
  const per10k = 10_000 / args.jobs;
  result({
    jobsPerSec: args.jobs / s,
    seconds: s,
    handled,
    workerCpuPer10k: ((cpu.user + cpu.system) / 1e6) * per10k,
    storeCpuPer10k: store0 === null || store1 === null ? null : (store1 - store0) * per10k,
  });
}

/** Polls every 10 ms until the store shows no unfinished job; also returns the terminal count if known. */
async function untilFinished(deadline: number): Promise<{ finished: boolean; terminal?: number }> {
  if (!sys.jobCounter) {
    if (!sys.unfinishedSql) throw new Error(`${sys.id}: neither unfinishedSql nor jobCounter`);
    return { finished: await waitUntilZero(url, sys.unfinishedSql, deadline) };
  }
  const counter = await sys.jobCounter(url);
  try {
    while (performance.now() < deadline) {
      if ((await counter.unfinished()) === 0) return { finished: true, terminal: await counter.terminal() };
      await new Promise((r) => setTimeout(r, 10));
    }
    return { finished: false };
  } finally {
    await counter.close();
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
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? Number.NaN;
  result({ received: lat.length, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] ?? Number.NaN });
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
