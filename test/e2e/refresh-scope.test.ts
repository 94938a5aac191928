import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServerOnOwnDatabase } from '../support/setup.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, startAuthorization } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';

// Relying parties that send their whole configured scope on every refresh, offline_access
// included (mod_auth_openidc, Authlib), and that never send prompt=consent: they must stay
// signed in. A first-party app gets offline_access without a consent page; a third-party app
// only after the consent page has asked for it (OpenID Connect Core §11).

const PASSWORD = 'olga keeps a long passphrase';
const SCOPE = 'openid profile email offline_access';
let server: TestServer;

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  const { clients, accounts } = server.container;
  await accounts.create({ username: 'olga', email: 'olga@example.com', password: PASSWORD });
  for (const [clientId, firstParty] of [
    ['own-app', true],
    ['partner-app', false],
  ] as const) {
    await clients.create({
      clientId,
      secret: `${clientId}-secret-0123456789abcdefghijklmnop`,
      firstParty,
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT_URI],
      scope: SCOPE,
    });
  }
});

afterAll(async () => {
  await server?.close();
});

const app = (clientId: string) => discover(server.issuer, clientId, `${clientId}-secret-0123456789abcdefghijklmnop`);

/** Signs in with no prompt, the way these libraries do, and says whether a consent page was shown. */
async function signInWithoutPrompt(config: oidc.Configuration, browser = newBrowser(), scope = SCOPE) {
  const started = await startAuthorization(browser, config, { scope });
  let page = started.page;
  if (page.text.includes('name="password"'))
    page = await browser.submit(page, '/login', { username: 'olga', password: PASSWORD });
  const consentShown = page.url.includes('/interaction/') && page.text.includes('/confirm');
  if (consentShown) {
    // The consent page names offline access: that is the consent OpenID Connect Core §11 asks for.
    if (scope.includes('offline_access')) expect(page.text).toContain('Stay signed in to the app when you are away');
    page = await browser.submit(page, '/confirm');
  }
  expect(page.url.startsWith(REDIRECT_URI), page.text.slice(0, 500)).toBe(true);
  const tokens = await exchange(config, {
    callbackUrl: new URL(page.url),
    verifier: started.verifier,
    state: started.state,
    nonce: started.nonce,
  });
  return { tokens, consentShown, browser };
}

describe.each([
  { clientId: 'own-app', kind: 'a first-party app', consent: false },
  { clientId: 'partner-app', kind: 'a third-party app', consent: true },
])('$kind that repeats its full scope on refresh', ({ clientId, consent }) => {
  it('gets offline_access without prompt=consent and refreshes three times with the same scope', async () => {
    const config = await app(clientId);
    const { tokens, consentShown } = await signInWithoutPrompt(config);
    expect(consentShown).toBe(consent);
    expect(tokens.scope?.split(' ').sort()).toEqual(SCOPE.split(' ').sort());
    let refreshToken = tokens.refresh_token!;
    for (let i = 0; i < 3; i++) {
      const refreshed = await oidc.refreshTokenGrant(config, refreshToken, { scope: SCOPE });
      expect(refreshed.scope?.split(' ')).toContain('offline_access');
      expect(refreshed.refresh_token).toBeTruthy();
      refreshToken = refreshed.refresh_token!;
    }
    // Any subset of what was granted is fine too.
    const narrower = await oidc.refreshTokenGrant(config, refreshToken, { scope: 'openid email' });
    expect(narrower.scope?.split(' ').sort()).toEqual(['email', 'openid']);
  });

  it('adds offline_access to a session that signed in without it, asking consent only from a third-party app', async () => {
    const config = await app(clientId);
    const first = await signInWithoutPrompt(config, newBrowser(), 'openid profile email');
    expect(first.tokens.scope?.split(' ')).not.toContain('offline_access');
    const second = await signInWithoutPrompt(config, first.browser);
    expect(second.consentShown).toBe(consent);
    expect(second.tokens.scope?.split(' ')).toContain('offline_access');
    expect(
      (await oidc.refreshTokenGrant(config, second.tokens.refresh_token!, { scope: SCOPE })).refresh_token,
    ).toBeTruthy();
    // Once given, the consent stands: the next sign-in asks nothing.
    expect((await signInWithoutPrompt(config, first.browser)).consentShown).toBe(false);
  });

  it('refuses a refresh that asks for a scope the user never granted', async () => {
    const config = await app(clientId);
    const { tokens } = await signInWithoutPrompt(config);
    await expect(
      oidc.refreshTokenGrant(config, tokens.refresh_token!, { scope: `${SCOPE} roles` }),
    ).rejects.toMatchObject({ error: 'invalid_scope' });
  });
});
