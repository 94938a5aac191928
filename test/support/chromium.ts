import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { chromium, type Browser, type Page } from 'playwright-core';

// Debian's Chromium, never a downloaded browser (CI installs it); tests skip where it is absent.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** For a server on 127.0.0.1 reached as localhost (a WebAuthn RP ID), which could otherwise be tried as ::1. */
export const LOCALHOST_IS_IPV4 = '--host-resolver-rules=MAP localhost 127.0.0.1';

/** Headless Chromium without the background traffic, GPU and sandbox a test machine does not need. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** Saves full-page screenshots as dir/NAME.png (making dir when first needed), for people to look at. */
export function screenshots(dir: string): (page: Page, name: string) => Promise<Buffer> {
  return (page, name) => {
    mkdirSync(dir, { recursive: true });
    return page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
  };
}

/**
 * The tab's console errors and uncaught script errors, collected as they happen: a page that
 * breaks under the strict CSP shows here. `expected` matches console errors that are not problems.
 */
export function scriptProblems(page: Page, expected?: RegExp): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected?.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return problems;
}
