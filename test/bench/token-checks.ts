// One-off requests made before a phase loads an endpoint: they prove the phase measures what
// it claims to (a JWT really is issued, an introspection really answers active).

/** RFC 6749 §2.3.1: client id and secret are form-encoded before they are joined and base64-encoded. */
export function basicAuth(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function postForm(url: string, authorization: string, body: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

export async function requestAccessToken(tokenEndpoint: string, authorization: string, body: string): Promise<string> {
  const json = await postForm(tokenEndpoint, authorization, body);
  if (typeof json.access_token !== 'string')
    throw new Error(`token response without access_token: ${JSON.stringify(json)}`);
  return json.access_token;
}

function decodePart(part: string | undefined, what: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new Error(`the access token's ${what} is not base64url JSON`);
  }
}

/** RFC 9068 §2.1: a JWT access token has typ "at+jwt"; it must be for our API and signed as configured. */
export function assertJwtAccessToken(token: string, expected: { alg: string; audience: string }): void {
  const parts = token.split('.');
  if (parts.length !== 3)
    throw new Error(
      `expected a JWT access token, got an opaque one (${parts.length} part(s): "${token.slice(0, 24)}...")`,
    );
  const header = decodePart(parts[0], 'header');
  const payload = decodePart(parts[1], 'payload');
  if (header.typ !== 'at+jwt')
    throw new Error(`access token header typ is ${JSON.stringify(header.typ)}, expected "at+jwt"`);
  if (header.alg !== expected.alg)
    throw new Error(`access token is signed with ${String(header.alg)}, expected ${expected.alg}`);
  const audience = [payload.aud].flat();
  if (!audience.includes(expected.audience))
    throw new Error(`access token aud is ${JSON.stringify(payload.aud)}, expected ${expected.audience}`);
}

export function assertOpaqueToken(token: string): void {
  if (token.split('.').length === 3)
    throw new Error('expected an opaque access token for the introspection phase, got a JWT');
}

/** RFC 7662 §2.2: the token must come back active, or the phase would measure a cheap refusal. */
export async function assertIntrospectsActive(endpoint: string, authorization: string, token: string): Promise<void> {
  const json = await postForm(endpoint, authorization, new URLSearchParams({ token }).toString());
  if (json.active !== true) throw new Error(`introspection says the token is not active: ${JSON.stringify(json)}`);
}
