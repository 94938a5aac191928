import { Secret, TOTP } from 'otpauth';
import { expect } from 'vitest';

import { type Browser, type Page, unescapeHtml } from './browser.ts';

// What a person's authenticator app does (otpauth, RFC 6238), and setting one up from the
// account page the way a person does it, without JavaScript (issue 14).

/** The code an authenticator app shows at `now` (pass the server's clock). */
export function totpCode(secret: string, now: Date): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: now.getTime() });
}

export const secretOn = (page: Page) =>
  unescapeHtml(/id="totp-secret">([^<]+)</.exec(page.text)?.[1] ?? '').replace(/\s/g, '');

export const recoveryCodesOn = (page: Page) =>
  [...page.text.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);

/** Sets up TOTP from the account page in `browser` (signing in there first): the secret and the recovery codes. */
export async function enrollOnAccountPage(
  issuer: string,
  browser: Browser,
  person: { username: string; password: string },
  now: () => Date,
): Promise<{ secret: string; codes: string[] }> {
  let page = await browser.get(`${issuer}/account/two-factor`);
  if (page.url.includes('/interaction/')) page = await browser.submit(page, '/login', person);
  if (!page.url.endsWith('/account/two-factor')) page = await browser.get(`${issuer}/account/two-factor`);
  page = await browser.submit(page, '/account/two-factor/totp');
  expect(page.text).toContain('<svg');
  const secret = secretOn(page);
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  page = await browser.submit(page, '/totp/confirm', { code: totpCode(secret, now()), password: person.password });
  const codes = recoveryCodesOn(page);
  expect(codes).toHaveLength(10);
  return { secret, codes };
}
