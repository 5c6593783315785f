/**
 * The ops console in a real browser (Debian's chromium through playwright-core), against the real
 * API, a fresh database and a real worker: log in through the form, live counts, failure filters,
 * job detail, dead-letter batch retry with dry run and confirmation, audit export, and hostile
 * payloads shown as text with no script run and no CSP violation on any page.
 */
import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { HttpServer } from '../src/http/server.js';
import { type BatonClient, defineKind, JobError } from '../src/index.js';
import type { Worker } from '../src/worker/worker.js';
import {
  browserSkipReason,
  launchChromium,
  logIn,
  type PageWatch,
  pageCspViolations,
  watchPage,
} from './helpers/browser.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { type ApiCall, OPERATOR_TOKEN, serveApi, VIEWER_TOKEN } from './helpers/http.js';
import { pollUntil } from './helpers/poll.js';

const skipReason = browserSkipReason();
if (skipReason) console.warn(skipReason);

/** Groups whose failing jobs succeed from now on (the fault was "fixed" before the batch retry). */
const healedGroups = new Set<string>();
const payload = z.object({
  sleepMs: z.number().int().min(0).default(0),
  note: z.string().optional(),
  failWith: z.string().optional(),
});
const handler = async (input: z.infer<typeof payload>, { job }: { job: { group: string | null } }) => {
  if (input.sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, input.sleepMs));
  if (input.failWith && !healedGroups.has(job.group ?? ''))
    throw new JobError('PRECONDITION_FAILED', input.failWith);
  return { done: true, note: input.note ?? null };
};
const work = defineKind({ kind: 'console.work', payload, maxAttempts: 1, handler });
const other = defineKind({ kind: 'console.other', payload, maxAttempts: 1, handler });
/** Served by no worker: its pending jobs must stand out. */
const idle = defineKind({ kind: 'console.idle', payload: z.object({}) });

const XSS_IMG = '<img src=x onerror=alert(1)>';
const XSS_SCRIPT = '"><script>alert(2)</script>';
const XSS_MARKER = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';

let database: TestDatabase;
let baton: BatonClient;
let workerBaton: BatonClient;
let worker: Worker;
let server: HttpServer;
let call: ApiCall;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let watch: PageWatch;

describe.skipIf(skipReason !== null)('ops console in a browser', () => {
  beforeAll(async () => {
    database = await createTestDatabase('console_browser');
    baton = connectBaton(database, { kinds: [work, other, idle] });
    ({ server, call } = await serveApi(baton));
    workerBaton = connectBaton(database);
    worker = workerBaton.createWorker({
      kinds: [work, other],
      pollIntervalMs: 200,
      shutdownSignals: [],
      logLevel: 'silent',
    });
    await worker.start();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await workerBaton?.close();
    await server?.close();
    await baton?.close();
    await database?.drop();
  });

  beforeEach(async () => {
    context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    watch = await watchPage(page);
    await logIn(page, server.url, OPERATOR_TOKEN);
  });

  afterEach(async () => {
    const violations = await pageCspViolations(page).catch(() => []);
    await context.close();
    expect({ violations, ...watch }).toEqual({
      violations: [],
      dialogs: [],
      cspViolations: [],
      pageErrors: [],
      consoleErrors: [],
    });
  });

  /** Enqueues through the API (as another system would) and returns the job ids. */
  async function enqueue(kind: string, jobs: object[]): Promise<string[]> {
    const response = await call('POST', '/api/jobs', { json: { kind, jobs } });
    expect(response.status).toBe(201);
    return response.body.jobs.map((job: { id: string }) => job.id);
  }

  const deadLetterCount = async (ids: string[]) =>
    (
      await database.rows(`select count(*)::int as n from baton.dead_letters where job_id = any($1)`, [ids])
    )[0].n as number;
  const waitForDead = (ids: string[]) =>
    pollUntil('dead letters', async () => (await deadLetterCount(ids)) === ids.length);

  const countCell = (kind: string, state: string) =>
    `#counts tr[data-kind="${kind}"] [data-count="${state}"]`;
  const readCount = async (kind: string, state: string) =>
    Number(
      (await page
        .locator(countCell(kind, state))
        .textContent({ timeout: 1000 })
        .catch(() => '0')) ?? 0,
    );

  test('a wrong token shows the login page with an error', async () => {
    await page.context().clearCookies();
    await page.goto(`${server.url}/ops/login`);
    await page.fill('#token', 'this-is-not-a-valid-token');
    await page.click('button[type=submit]');
    await page.getByText('That token is not valid').waitFor();
    expect(page.url()).toBe(`${server.url}/ops/login`);
  });

  test('counts change live while the worker runs, and a kind with no worker stands out', async () => {
    await page.getByText('Jobs per kind').waitFor();
    const before = await readCount('console.work', 'completed');
    await enqueue(
      'console.work',
      Array.from({ length: 6 }, () => ({ payload: { sleepMs: 50 } })),
    );
    await page.waitForFunction(
      ([selector, expected]) =>
        Number(document.querySelector(selector as string)?.textContent) >= (expected as number),
      [countCell('console.work', 'completed'), before + 6] as const,
      { timeout: 30_000 },
    );
    await enqueue('console.idle', [{ payload: {} }]);
    await page
      .locator('#counts tr.no-worker[data-kind="console.idle"]')
      .getByText('NO LIVE WORKER')
      .waitFor();
    expect(await page.locator('#banner').textContent()).toContain('console.idle');
    expect(await page.locator('#banner').isVisible()).toBe(true);
    await page.locator('#workers').getByText('console.work').waitFor({ state: 'attached' });
  });

  test('failures filter by kind and by group, and a job opens with its payload and error', async () => {
    const alpha = await enqueue('console.work', [
      { payload: { note: 'alpha-note', failWith: 'alpha broke' }, group: 'g-alpha' },
    ]);
    const beta = await enqueue('console.work', [{ payload: { failWith: 'beta broke' }, group: 'g-beta' }]);
    const others = await enqueue('console.other', [
      { payload: { failWith: 'other broke' }, group: 'g-alpha' },
    ]);
    await waitForDead([...alpha, ...beta, ...others]);
    await page.click('a[data-tab=failures]');
    const filters = page.locator('#failure-filters');
    await filters.locator('[name=kind]').fill('console.other');
    await filters.locator('button[type=submit]').click();
    await page.locator('#dead-letter-list').getByText(others[0]!).waitFor();
    await page.locator('#failed-jobs').getByText(others[0]!).waitFor();
    // The tab's first, unfiltered list also shows others[0]: wait for the filtered one to replace it
    // (a fresh-clone CI run read the list in between).
    await expect
      .poll(() => page.locator('#dead-letter-list').textContent(), { timeout: 10_000 })
      .not.toContain(alpha[0]!);
    await expect
      .poll(() => page.locator('#failed-jobs').textContent(), { timeout: 10_000 })
      .not.toContain(alpha[0]!);
    await filters.locator('[name=kind]').fill('console.work');
    await filters.locator('[name=group]').fill('g-alpha');
    await filters.locator('button[type=submit]').click();
    await page.locator('#dead-letter-list').getByText(alpha[0]!).waitFor();
    for (const list of ['#dead-letter-list', '#failed-jobs']) {
      await page.locator(list).getByText(alpha[0]!).waitFor();
      const text = await page.locator(list).textContent();
      expect(text).not.toContain(beta[0]!);
      expect(text).not.toContain(others[0]!);
    }
    await page.locator('#dead-letter-list').getByRole('button', { name: alpha[0]! }).click();
    const detail = page.locator('#job-detail');
    await detail.getByText('alpha-note').waitFor();
    const text = await detail.textContent();
    expect(text).toContain('alpha broke');
    expect(text).toContain('PRECONDITION_FAILED');
    expect(await detail.locator('pre.stack').first().textContent()).toMatch(/at /);
  });

  test('dead letters: preview, select all on a page, dry run, confirm, retry; then the audit log and its CSV', async () => {
    const ids = await enqueue(
      'console.work',
      Array.from({ length: 5 }, (_, index) => ({
        payload: { failWith: `batch failure ${index}` },
        group: 'g-batch',
      })),
    );
    await waitForDead(ids);
    healedGroups.add('g-batch');
    await page.click('a[data-tab=dead-letters]');
    const form = page.locator('#batch-filters');
    await form.locator('[name=group]').fill('g-batch');
    await form.locator('button[type=submit]').click();
    await page.locator('#batch-summary').getByText('5 dead letters match').waitFor();
    await page.locator('#batch-preview input.select-page').check();
    await page.getByRole('button', { name: 'Retry selected (5)' }).click();
    const dialog = page.locator('#confirm-dialog');
    await dialog.getByText('Retry 5 jobs?').waitFor();
    expect(await page.locator('#batch-result').textContent()).toContain('Nothing has changed yet');
    expect(await deadLetterCount(ids)).toBe(5);
    await dialog.getByRole('button', { name: 'Retry 5 jobs' }).click();
    await page.locator('#batch-result').getByText('5 jobs retried').waitFor();
    const batchId = /Batch ([0-9a-f-]{36})/.exec(
      (await page.locator('#batch-result').textContent()) ?? '',
    )![1]!;
    await page.locator('#batch-summary').getByText('0 dead letters match').waitFor();
    expect(await deadLetterCount(ids)).toBe(0);
    await pollUntil('retried jobs completed', async () => {
      const rows = await database.rows(`select state from baton.jobs where id = any($1)`, [ids]);
      return rows.every((row) => row.state === 'completed');
    });

    await page.getByText('See this batch in the audit log').click();
    await page.locator('#audit-list').getByText(batchId).first().waitFor();
    expect(await page.locator('#audit-list').textContent()).toContain('alice');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#audit-export-csv')]);
    const csv = await readFile((await download.path())!, 'utf8');
    const [header, ...lines] = csv.trim().split(/\r?\n/);
    expect(header).toMatch(/^id,createdAt,action,actor,batchId/);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines.every((line) => line.includes(batchId) && line.includes('alice'))).toBe(true);
  });

  test('hostile payloads, errors, groups and filter values are shown as text and never run', async () => {
    await page.evaluate(() => {
      (window as unknown as { __xss?: unknown }).__xss = undefined;
    });
    const ids = await enqueue('console.work', [
      { payload: { note: XSS_IMG, failWith: XSS_SCRIPT }, group: XSS_IMG, traceId: XSS_MARKER },
      { payload: { note: XSS_MARKER, failWith: XSS_IMG }, group: XSS_SCRIPT },
    ]);
    await waitForDead(ids);
    await page.locator('#recent-dead-letters').getByText(XSS_SCRIPT).first().waitFor();
    await page.click('a[data-tab=failures]');
    await page.locator('#failure-filters [name=group]').fill(XSS_IMG);
    await page.locator('#failure-filters button[type=submit]').click();
    await page.locator('#failure-filter-summary').getByText(`group = ${XSS_IMG}`).waitFor();
    await page.locator('#dead-letter-list').getByText(ids[0]!).waitFor();
    await page.locator('#dead-letter-list').getByRole('button', { name: ids[0]! }).click();
    await page.locator('#job-detail').getByText(XSS_MARKER).waitFor();
    await page.click('#job-detail-close');
    await page.click('a[data-tab=audit]');
    await page.locator('#audit-filters [name=actor]').fill(XSS_SCRIPT);
    await page.locator('#audit-filters button[type=submit]').click();
    await page.locator('#audit-list').getByText('No audit entries match').waitFor();
    await page.click('a[data-tab=dead-letters]');
    await page.locator('#batch-filters [name=traceId]').fill(XSS_MARKER);
    await page.locator('#batch-filters button[type=submit]').click();
    await page.locator('#batch-preview').getByText(ids[0]!).waitFor();

    const found = await page.evaluate(() => ({
      xss: (window as unknown as { __xss?: unknown }).__xss ?? null,
      images: document.querySelectorAll('img').length,
      scripts: [...document.querySelectorAll('script')].map((script) => script.getAttribute('src')),
      onAttributes: [...document.querySelectorAll('*')].filter((node) =>
        [...node.attributes].some((attribute) => attribute.name.startsWith('on')),
      ).length,
    }));
    expect(found).toEqual({ xss: null, images: 0, scripts: ['/ops/assets/main.js'], onAttributes: 0 });
  });

  test('a job opened by its id is cancelled only after the page asks and the operator confirms', async () => {
    const [id] = await enqueue('console.idle', [{ payload: {} }]);
    await page.fill('#open-job [name=jobId]', id!);
    await page.click('#open-job button[type=submit]');
    const detail = page.locator('#job-detail');
    await detail.getByRole('button', { name: 'Cancel this job' }).click();
    const dialog = page.locator('#confirm-dialog');
    await dialog.getByText('Cancel this job?').waitFor();
    await dialog.getByRole('button', { name: 'Go back' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect((await database.rows(`select state from baton.jobs where id = $1`, [id]))[0].state).toBe(
      'pending',
    );
    await detail.getByRole('button', { name: 'Cancel this job' }).click();
    await dialog.getByRole('button', { name: 'Cancel the job' }).click();
    await detail.getByText('Cancelled: was pending, now cancelled.').waitFor();
    expect((await database.rows(`select state from baton.jobs where id = $1`, [id]))[0].state).toBe(
      'cancelled',
    );
    await detail.getByRole('button', { name: 'Retry this job' }).waitFor();
  });

  test('a viewer session reads but is offered no action', async () => {
    const [id] = await enqueue('console.work', [
      { payload: { failWith: 'viewer sees this' }, group: 'g-viewer' },
    ]);
    await waitForDead([id!]);
    await logIn(page, server.url, VIEWER_TOKEN);
    expect(await page.locator('#who').textContent()).toBe('bob (viewer)');
    await page.fill('#open-job [name=jobId]', id!);
    await page.click('#open-job button[type=submit]');
    await page.locator('#job-detail').getByText('viewer sees this').first().waitFor();
    expect(await page.locator('#job-detail button').allTextContents()).toEqual(['Close', 'Reload']);
    await page.click('#job-detail-close');
    await page.click('a[data-tab=dead-letters]');
    await page.locator('#batch-preview').getByText(id!).waitFor();
    expect(await page.locator('#batch-actions').isVisible()).toBe(false);
    await page.click('a[data-tab=audit]');
    expect(await page.locator('#audit-prune').isVisible()).toBe(false);
  });

  test('every panel and the confirmation dialog load with no CSP violation', async () => {
    for (const tab of ['overview', 'failures', 'dead-letters', 'audit', 'workers']) {
      await page.click(`a[data-tab=${tab}]`);
      await page.locator(`#panel-${tab}`).waitFor();
    }
    await page.click('a[data-tab=audit]');
    await page.locator('#audit-prune button[type=submit]').click();
    await page.locator('#audit-prune-result').getByText('Dry run:').waitFor();
    await page.locator('#chart svg').waitFor({ state: 'attached' });
    expect(await pageCspViolations(page)).toEqual([]);
  });
});
