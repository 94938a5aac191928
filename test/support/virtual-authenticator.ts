import type { Browser, BrowserContext, Page } from 'playwright-core';

/** A Chromium tab whose virtual platform authenticator verifies the user (CDP WebAuthn domain). */
export interface AuthenticatorTab {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Uncaught script errors of the tab's pages. */
  readonly problems: string[];
  /** The passkeys the authenticator holds. */
  readonly held: () => Promise<unknown[]>;
}

/**
 * Adds a CTAP2 platform authenticator to the page that keeps discoverable credentials and
 * verifies the user, as a laptop's would; returns what it holds.
 */
export async function virtualAuthenticator(page: Page): Promise<{ held: () => Promise<unknown[]> }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
    },
  });
  return { held: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials };
}

/** A new context and tab with a virtual authenticator, collecting the tab's script errors. */
export async function tabWithAuthenticator(browser: Browser): Promise<AuthenticatorTab> {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  const page = await context.newPage();
  const { held } = await virtualAuthenticator(page);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  return { context, page, problems, held };
}
