import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Browser, findForm } from '../support/browser.ts';
import { startServerOnOwnDatabase } from '../support/setup.ts';
import { discover, REDIRECT_URI } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';

// Server-rendered apps as their libraries work by default: passport-openidconnect and
// mod_auth_openidc without PKCE (allowed per confidential client, with a nonce: RFC 9700
// §2.1.1), and express-openid-connect with response_type=id_token and form_post (allowed per
// client; never an ID token in a URL fragment).

const PASSWORD = 'ines keeps a long passphrase';
const CLASSIC_REDIRECT = 'https://classic.example.com/callback';
const secretOf = (clientId: string) => `${clientId}-secret-0123456789abcdefghijklmnop`;
let server: TestServer;

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  const { clients, accounts } = server.container;
  await accounts.create({ username: 'ines', email: 'ines@example.com', password: PASSWORD });
  const web = {
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid email',
    firstParty: true,
  };
  await clients.create({ ...web, clientId: 'no-pkce', secret: secretOf('no-pkce'), pkce: 'optional' });
  await clients.create({ ...web, clientId: 'strict', secret: secretOf('strict') });
  await clients.create({
    ...web,
    clientId: 'classic',
    secret: secretOf('classic'),
    redirectUris: [CLASSIC_REDIRECT],
    responseTypes: ['code', 'id_token'],
  });
});

afterAll(async () => {
  await server?.close();
});

const app = (clientId: string) => discover(server.issuer, clientId, secretOf(clientId));
const newBrowser = () => new Browser([REDIRECT_URI, CLASSIC_REDIRECT]);

/** Sends the browser to the authorization endpoint with exactly these parameters, signing in if asked. */
async function authorize(config: oidc.Configuration, params: Record<string, string>) {
  const browser = newBrowser();
  const page = await browser.get(oidc.buildAuthorizationUrl(config, params).href);
  if (!page.text.includes('name="password"')) return page;
  return browser.submit(page, '/login', { username: 'ines', password: PASSWORD });
}

describe('PKCE relaxed per confidential client (--pkce optional)', () => {
  it('signs in without a code challenge when the client sends a nonce', async () => {
    const config = await app('no-pkce');
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const page = await authorize(config, { redirect_uri: REDIRECT_URI, scope: 'openid email', state, nonce });
    expect(page.url.startsWith(REDIRECT_URI), page.text.slice(0, 300)).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), {
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ email: 'ines@example.com', nonce });
  });

  it('still needs PKCE from that client when it sends no nonce, the other protection RFC 9700 §2.1.1 accepts', async () => {
    const page = await authorize(await app('no-pkce'), {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      state: 's',
    });
    const callback = new URL(page.url);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('error_description')).toMatch(/requires PKCE/);
  });

  it('refuses a client registered without the flag that sends no code challenge', async () => {
    const page = await authorize(await app('strict'), {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      state: 's',
      nonce: 'n',
    });
    const callback = new URL(page.url);
    expect(callback.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('error_description')).toMatch(/requires PKCE/);
  });

  it('cannot be given to a public client', async () => {
    await expect(
      server.container.clients.create({
        clientId: 'spa',
        public: true,
        grantTypes: ['authorization_code'],
        redirectUris: [REDIRECT_URI],
        pkce: 'optional',
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', message: expect.stringMatching(/confidential clients only/) });
  });
});

describe('response_type=id_token with form_post, for clients registered with it', () => {
  it('is listed in discovery, with form_post among the response modes', async () => {
    const metadata = (await app('classic')).serverMetadata();
    expect(metadata.response_types_supported).toEqual(expect.arrayContaining(['code', 'id_token']));
    expect(metadata.response_modes_supported).toContain('form_post');
  });

  it('posts an ID token with the nonce to the redirect URI through an auto-submitting form', async () => {
    const config = await app('classic');
    const nonce = oidc.randomNonce();
    const page = await authorize(config, {
      redirect_uri: CLASSIC_REDIRECT,
      response_type: 'id_token',
      response_mode: 'form_post',
      scope: 'openid email',
      state: 'st',
      nonce,
    });
    expect(page.status).toBe(200);
    // The page submits itself, and its CSP lets exactly that script run.
    expect(page.text).toContain('document.forms[0].submit()');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-/);
    const form = findForm(page.text, CLASSIC_REDIRECT);
    expect(form.method).toBe('POST');
    expect(form.fields.state).toBe('st');
    expect(form.fields).not.toHaveProperty('code');
    const metadata = config.serverMetadata();
    const { payload } = await jwtVerify(form.fields.id_token!, createRemoteJWKSet(new URL(metadata.jwks_uri!)), {
      issuer: server.issuer,
      audience: 'classic',
    });
    expect(payload).toMatchObject({ nonce, email: 'ines@example.com' });
  });

  it('never puts an ID token in a URL fragment: the default mode for id_token is refused', async () => {
    const page = await authorize(await app('classic'), {
      redirect_uri: CLASSIC_REDIRECT,
      response_type: 'id_token',
      scope: 'openid',
      state: 'st',
      nonce: 'n',
    });
    const answer = new URL(page.url);
    const fragment = new URLSearchParams(answer.hash.slice(1));
    expect(answer.href.startsWith(CLASSIC_REDIRECT)).toBe(true);
    expect(fragment.get('error')).toBe('invalid_request');
    expect(fragment.has('id_token')).toBe(false);
  });

  it('answers a client without the opt-in with unsupported_response_type at its redirect URI', async () => {
    const page = await authorize(await app('strict'), {
      redirect_uri: REDIRECT_URI,
      response_type: 'id_token',
      scope: 'openid',
      state: 'st',
      nonce: 'n',
    });
    const answer = new URL(page.url);
    expect(answer.href.startsWith(REDIRECT_URI)).toBe(true);
    const params = new URLSearchParams(answer.hash.slice(1) || answer.search.slice(1));
    expect(params.get('error')).toBe('unsupported_response_type');
    expect(params.get('state')).toBe('st');
  });
});
