import { Hono } from 'hono';
import { z } from 'zod';
import { MAX_AUDIT_ENTRIES_PER_PAGE, MAX_AUDIT_PRUNE_DAYS } from '../../core/audit.js';
import type { Baton } from '../../core/baton.js';
import type { AuditEntry, AuditFilters } from '../../types.js';
import { type ApiEnv, requireOperator, requireReader } from '../auth.js';
import type { Operation } from '../openapi.js';
import { pageLimit, parse, readJson, timestamp } from '../validation.js';

// Types and shapes are checked here; lengths are the core's to check (its OPTIONS_INVALID is a 400 too).
const pruneFiltersShape = {
  action: z.string().min(1).optional().describe('the action, e.g. job.retry'),
  actor: z.string().min(1).optional().describe('who acted'),
  batchId: z.uuid().optional().describe('the batch (a dead-letter batch retry)'),
  kind: z.string().min(1).optional(),
  group: z.string().min(1).optional(),
  traceId: z.string().min(1).optional(),
  jobId: z.uuid().optional(),
};
const filtersShape = {
  ...pruneFiltersShape,
  createdFrom: timestamp.optional().describe('written at or after (ISO 8601 with an offset)'),
  createdBefore: timestamp.optional().describe('written before (ISO 8601 with an offset)'),
};

const listQuery = z.strictObject({
  ...filtersShape,
  cursor: z.string().min(1).optional().describe('nextCursor of the previous page'),
  limit: pageLimit(MAX_AUDIT_ENTRIES_PER_PAGE).optional().describe('1 to 500, default 50'),
});

const exportQuery = z.strictObject({
  ...filtersShape,
  format: z.enum(['json', 'csv']).default('json').describe('json (an array) or csv (RFC 4180)'),
});

const pruneBody = z.strictObject({
  olderThanDays: z.number().int().min(0).max(MAX_AUDIT_PRUNE_DAYS),
  filters: z.strictObject(pruneFiltersShape).optional(),
  dryRun: z.boolean().optional(),
});

const pruneResponse = z.union([
  z.object({ dryRun: z.literal(true), matched: z.number(), cutoff: z.string() }),
  z.object({ dryRun: z.literal(false), deleted: z.number(), cutoff: z.string() }),
]);

/** The /api/audit-logs operations, for the OpenAPI document. */
export const auditOperations: Operation[] = [
  {
    method: 'get',
    path: '/api/audit-logs',
    summary: 'List audit entries, newest first, with filters and cursor paging',
    access: 'viewer',
    query: listQuery,
  },
  {
    method: 'get',
    path: '/api/audit-logs/export',
    summary: 'Download every matching audit entry as JSON or CSV (streamed, as an attachment)',
    access: 'viewer',
    query: exportQuery,
    produces: 'text/csv',
  },
  {
    method: 'post',
    path: '/api/audit-logs/prune',
    summary:
      'Delete audit entries older than N days that match the filters, or count them with dryRun (audited)',
    access: 'operator',
    body: pruneBody,
    response: pruneResponse,
  },
];

/** The CSV columns, in order; `details` is the entry's details as JSON text. */
const CSV_COLUMNS = [
  'id',
  'createdAt',
  'action',
  'actor',
  'batchId',
  'jobId',
  'kind',
  'group',
  'traceId',
  'details',
] as const;

/**
 * One CSV field (RFC 4180). A value a spreadsheet would run as a formula (one that begins with =,
 * +, -, @, a tab or a carriage return) gets a leading `'` so it is shown as text (OWASP's advice
 * on CSV injection); a field with a comma, quote or line break is quoted, its quotes doubled.
 */
export function csvField(value: string | null): string {
  if (value === null) return '';
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvRow(entry: AuditEntry): string {
  const values: Record<(typeof CSV_COLUMNS)[number], string | null> = {
    id: entry.id,
    createdAt: entry.createdAt.toISOString(),
    action: entry.action,
    actor: entry.actor,
    batchId: entry.batchId,
    jobId: entry.jobId,
    kind: entry.kind,
    group: entry.group,
    traceId: entry.traceId,
    details: JSON.stringify(entry.details),
  };
  return `${CSV_COLUMNS.map((column) => csvField(values[column])).join(',')}\r\n`;
}

/**
 * The export as a stream of text: the first page is read before the response starts (so a
 * database error is still a proper 500), each further page only when the client has taken the
 * previous one, and a client that goes away stops the reading.
 */
async function exportStream(
  pages: AsyncGenerator<AuditEntry[], void, undefined>,
  format: 'json' | 'csv',
): Promise<ReadableStream<Uint8Array>> {
  const encoder = new TextEncoder();
  const first = await pages.next();
  let pending: IteratorResult<AuditEntry[], void> | null = first;
  let written = 0;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(format === 'csv' ? `${CSV_COLUMNS.join(',')}\r\n` : '['));
    },
    async pull(controller) {
      const next = pending ?? (await pages.next());
      pending = null;
      if (next.done) {
        if (format === 'json') controller.enqueue(encoder.encode(written === 0 ? ']\n' : '\n]\n'));
        controller.close();
        return;
      }
      const text =
        format === 'csv'
          ? next.value.map(csvRow).join('')
          : next.value.map((entry) => `${written++ === 0 ? '\n' : ',\n'}${JSON.stringify(entry)}`).join('');
      controller.enqueue(encoder.encode(text));
    },
    async cancel() {
      await pages.return();
    },
  });
}

/** `/api/audit-logs` routes; the caller is already authenticated (see app.ts). */
export function auditRoutes(baton: Baton): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();

  routes.get('/', requireReader, async (c) => {
    const { cursor, limit, ...filters } = parse(listQuery, c.req.query(), 'query parameter');
    return c.json(await baton.audit.list(filters, { cursor, limit }));
  });

  routes.get('/export', requireReader, async (c) => {
    const { format, ...filters } = parse(exportQuery, c.req.query(), 'query parameter');
    const body = await exportStream(baton.audit.export(filters satisfies AuditFilters), format);
    const stamp = new Date()
      .toISOString()
      .replace(/\.\d+Z$/, 'Z')
      .replaceAll(':', '-');
    return new Response(body, {
      headers: {
        'content-type':
          format === 'csv' ? 'text/csv; charset=utf-8; header=present' : 'application/json; charset=utf-8',
        'content-disposition': `attachment; filename="baton-audit-log-${stamp}.${format}"`,
        'cache-control': 'no-store',
      },
    });
  });

  routes.post('/prune', requireOperator, async (c) => {
    const body = parse(pruneBody, await readJson(c.req), 'body');
    const result = await baton.audit.prune({ ...body, actor: c.get('caller').actor });
    return c.json({ ...result, cutoff: result.cutoff.toISOString() });
  });

  return routes;
}
