import { createHash } from 'node:crypto';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { Browser, findForm } from '../support/browser.ts';
import { freePort, type TestServer } from '../support/server.ts';
import { startServerOnOwnDatabase } from '../support/setup.ts';

// The pages around passkeys over HTTP, without a browser: the scripts come from our origin with
// Subresource Integrity hashes that match what is served, under a CSP with no inline script;
// and an issuer whose host is an IP address (no valid WebAuthn RP ID) offers no passkey at all.

const USER = { username: 'eve', email: 'eve@example.com', password: 'eve has a long passphrase' };
let onDomain: TestServer;
let onAddress: TestServer;

beforeAll(async () => {
  const port = await freePort();
  [onDomain, onAddress] = await Promise.all([
    startServerOnOwnDatabase({ PORT: String(port), POSTERN_ISSUER: `http://localhost:${port}` }),
    startServerOnOwnDatabase(),
  ]);
  await Promise.all([onDomain.container.accounts.create(USER), onAddress.container.accounts.create(USER)]);
});

afterAll(async () => {
  await Promise.all([onDomain?.close(), onAddress?.close()]);
});

/** A browser that reaches an http://localhost:PORT issuer where the server listens (127.0.0.1). */
function localhostBrowser(): Browser {
  const browser = new Browser();
  browser.transport = (url) => {
    const target = new URL(url);
    if (target.hostname === 'localhost') target.hostname = '127.0.0.1';
    return target;
  };
  return browser;
}

function scriptsOf(html: string): { src: string; integrity: string | undefined }[] {
  return [...html.matchAll(/<script\b([^>]*)>/g)].map(([, attributes = '']) => ({
    src: /src="([^"]*)"/.exec(attributes)?.[1] ?? '',
    integrity: /integrity="([^"]*)"/.exec(attributes)?.[1],
  }));
}

it('the login and account pages load the passkey scripts from our origin, each with the SRI hash of the file served', async () => {
  const browser = localhostBrowser();
  const login = await browser.get(`${onDomain.issuer}/account`);
  expect(login.url).toContain('/interaction/');
  expect(login.text).toContain('data-passkey="sign-in"');
  const csp = login.headers.get('content-security-policy')!;
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain('unsafe-inline');
  const account = await browser.submit(login, '/login', { username: USER.username, password: USER.password });
  expect(account.text).toContain('data-passkey="register"');
  for (const page of [login, account]) {
    const scripts = scriptsOf(page.text);
    expect(scripts.map((s) => s.src)).toEqual([
      expect.stringMatching(/^\/assets\/simplewebauthn-browser\.js\?v=[0-9a-f]{12}$/),
      expect.stringMatching(/^\/assets\/passkey\.js\?v=[0-9a-f]{12}$/),
    ]);
    for (const script of scripts) {
      const served = await fetch(`http://127.0.0.1:${new URL(onDomain.issuer).port}${script.src}`);
      expect(served.headers.get('content-type')).toContain('javascript');
      const body = Buffer.from(await served.arrayBuffer());
      expect(script.integrity).toBe(`sha384-${createHash('sha384').update(body).digest('base64')}`);
    }
  }
});

it('an issuer whose host is an IP address offers no passkey: no button, no section, no script, no route', async () => {
  const browser = localhostBrowser();
  const login = await browser.get(`${onAddress.issuer}/account`);
  expect(login.url).toContain('/interaction/');
  expect(login.text).not.toContain('data-passkey');
  expect(scriptsOf(login.text)).toEqual([]);
  const csrf = findForm(login.text, '/login').fields.csrf!;
  const options = await browser.request(`${login.url}/passkey/options`, { form: { csrf } });
  expect(options.status).toBe(404);
  const account = await browser.submit(login, '/login', { username: USER.username, password: USER.password });
  expect(account.url).toBe(`${onAddress.issuer}/account`);
  expect(account.text).not.toContain('Passkeys');
  expect(scriptsOf(account.text)).toEqual([]);
});
