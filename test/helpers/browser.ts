import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Debian's chromium; CI installs it (.ci/run). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Why the browser tests cannot run here, or null when they can. Only a developer machine without
 * chromium skips them: under CI a missing browser is a failure, not a skip.
 */
export function browserSkipReason(): string | null {
  if (existsSync(CHROMIUM_PATH) || process.env.CI) return null;
  return `${CHROMIUM_PATH} is missing (apt-get install -y chromium); the console browser tests are skipped`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** What a page did that a console page must never do: dialogs, CSP violations, uncaught errors. */
export interface PageWatch {
  dialogs: string[];
  cspViolations: string[];
  pageErrors: string[];
  consoleErrors: string[];
}

/**
 * Watches a page from its first script: every JavaScript dialog (dismissed, recorded), every
 * `securitypolicyviolation` event and CSP console message, every uncaught error.
 */
export async function watchPage(page: Page): Promise<PageWatch> {
  const watch: PageWatch = { dialogs: [], cspViolations: [], pageErrors: [], consoleErrors: [] };
  page.on('dialog', (dialog) => {
    watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => watch.pageErrors.push(error.message));
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|Refused to (execute|load|apply|connect|frame)/i.test(text)) {
      watch.cspViolations.push(text);
    } else if (message.type() === 'error' && !/Failed to load resource/.test(text)) {
      watch.consoleErrors.push(text);
    }
  });
  // Injected by the browser's debugging protocol, not by the page, so the CSP does not apply to it.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (event) => {
      seen.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
    });
  });
  return watch;
}

/** CSP violations the page itself saw (the securitypolicyviolation events). */
export async function pageCspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __cspViolations?: string[] }).__cspViolations ?? []);
}

/** Logs in through the form, as an operator would, and waits for the queue page to know who it is. */
export async function logIn(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/ops/login`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${baseUrl}/ops/queue`), page.click('button[type=submit]')]);
  await page.waitForFunction(() => document.getElementById('who')?.textContent !== '');
}
