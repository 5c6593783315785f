#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { BatonError } from '../errors.js';
import { runEnqueue, runMigrate, runServe, runStats, runWorker } from './commands.js';

const integer = (name: string) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new InvalidArgumentError(`${name} must be an integer, got "${value}"`);
  return parsed;
};

const program = new Command()
  .name('baton')
  .description('Durable background jobs on PostgreSQL. Commands other than dev need DATABASE_URL.')
  .showHelpAfterError();

program
  .command('dev')
  .description(
    'Run a worker with demo jobs, the HTTP API and the ops console on the embedded database (kept in --data-dir), or on DATABASE_URL when set',
  )
  .option('--data-dir <dir>', 'folder of the embedded database', '.baton/dev')
  .option('--jobs <module>', 'module exporting kind definitions (default: the built-in demo kinds)')
  .option('--demo-jobs <n>', 'demo jobs to enqueue at start', integer('--demo-jobs'), 12)
  .option('--exit-when-done', 'exit once every demo job has finished, instead of running until Ctrl-C')
  .option('--port <port>', 'port of the API and console (a free one when taken)', integer('--port'), 8080)
  .option('--no-http', 'run the worker only, without the API and console')
  // Loaded when run: dev brings the HTTP server and the embedded database, which worker does not need.
  .action(async (options) => (await import('./dev.js')).runDev(options));

program
  .command('migrate')
  .description('Apply pending schema migrations to DATABASE_URL (safe when many processes run it at once)')
  .action(runMigrate);

program
  .command('worker')
  .description(
    'Run a worker for the kinds a module exports; settings from BATON_* variables (see docs/configuration.md)',
  )
  .requiredOption('--jobs <module>', 'module exporting kind definitions made with defineKind')
  .option('--concurrency <n>', 'jobs at once (overrides BATON_CONCURRENCY)', integer('--concurrency'))
  .option('--no-migrate', 'do not apply migrations before starting')
  .action(runWorker);

program
  .command('serve')
  .description(
    'Serve the HTTP API for the kinds a module exports; settings from BATON_HTTP_* and BATON_API_TOKENS (see docs/http.md)',
  )
  .requiredOption('--jobs <module>', 'module exporting the kind definitions that may be enqueued')
  .action(runServe);

program
  .command('enqueue')
  .description('Enqueue one job; <payload> is JSON')
  .argument('<kind>', 'the job kind')
  .argument('<payload>', 'the payload as JSON, e.g. \'{"to":"a@example.com"}\'')
  .option('--jobs <module>', 'module with the kind definition, to validate the payload here')
  .option('--delay-ms <ms>', 'start after this delay', integer('--delay-ms'))
  .option('--priority <n>', 'higher runs first', integer('--priority'))
  .option('--max-attempts <n>', 'attempts before dead-lettering', integer('--max-attempts'))
  .option('--idempotency-key <key>', 'a second enqueue with this key returns the first job')
  .option('--trace-id <id>', 'trace id carried into logs')
  .option('--group <group>', 'grouping key')
  .action(runEnqueue);

program
  .command('stats')
  .description('Jobs per kind and state, live workers, and kinds with pending jobs but no worker')
  .option('--json', 'print JSON')
  .action(runStats);

program.parseAsync().catch((error: unknown) => {
  if (error instanceof BatonError) {
    process.stderr.write(`baton: ${error.code}: ${error.message}\n`);
  } else {
    process.stderr.write(`baton: ${(error as Error)?.stack ?? String(error)}\n`);
  }
  process.exit(1);
});
