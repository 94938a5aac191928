import { performance } from 'node:perf_hooks';

import type { Recorder } from './stats.ts';

export interface Answer {
  /** 0: no answer (timeout, refused, reset). */
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly ms: number;
}

export interface CallOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly form?: Record<string, string>;
  readonly timeoutMs?: number;
  /** Whether the answer is the one wanted (default: any 2xx); a string says what is wrong. */
  readonly expect?: (answer: Answer) => true | string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
const is2xx = (a: Answer): true | string => (a.status >= 200 && a.status < 300 ? true : a.text.slice(0, 200));

/** One HTTP request with a timeout (body included), timed and recorded under `op`. Never throws. */
export async function call(
  recorder: Recorder,
  op: string,
  url: string,
  options: CallOptions = {},
): Promise<Answer & { ok: boolean }> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const headers: Record<string, string> = { ...options.headers };
  let body: string | null = null;
  if (options.form) {
    body = new URLSearchParams(options.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  let answer: Answer;
  try {
    const response = await fetch(url, {
      method: options.method ?? (body === null ? 'GET' : 'POST'),
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
    const text = await response.text();
    answer = { status: response.status, headers: response.headers, text, ms: performance.now() - t0 };
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } };
    answer = {
      status: 0,
      headers: new Headers(),
      text: `${e.name}: ${e.cause?.code ?? e.message}`,
      ms: performance.now() - t0,
    };
  }
  let verdict: true | string;
  try {
    verdict = answer.status === 0 ? answer.text : (options.expect ?? is2xx)(answer);
  } catch (error) {
    verdict = `${(error as Error).message}: ${answer.text.slice(0, 200)}`;
  }
  const ok = verdict === true;
  recorder.record(
    op,
    startedAt,
    answer.ms,
    answer.status,
    ok,
    ok ? '' : String(verdict),
    answer.headers.has('retry-after'),
  );
  return { ...answer, ok };
}

export const redirectTo =
  (prefix?: string) =>
  (a: Answer): true | string => {
    const location = a.headers.get('location');
    if (a.status >= 300 && a.status < 400 && location && (!prefix || location.includes(prefix))) return true;
    return `wanted a redirect${prefix ? ` to ${prefix}` : ''}, got ${a.status} ${location ?? ''} ${a.text.slice(0, 200)}`;
  };

export const basicAuth = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * A browser's cookie jar, reduced to what the login pages need. Cookies are kept per host
 * name, not per port (RFC 6265 §8.5: cookies do not isolate by port), so both instances on
 * 127.0.0.1 see the same cookies, as they would in a real browser.
 */
export class CookieJar {
  readonly #cookies = new Map<string, { value: string; path: string; expires: number | undefined }>();

  header(url: URL): string {
    const now = Date.now();
    return [...this.#cookies.entries()]
      .filter(
        ([key, c]) =>
          key.startsWith(`${url.hostname} `) &&
          url.pathname.startsWith(c.path) &&
          (c.expires === undefined || c.expires > now),
      )
      .map(([key, c]) => `${key.slice(url.hostname.length + 1)}=${c.value}`)
      .join('; ');
  }

  store(url: URL, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const key = `${url.hostname} ${pair.slice(0, eq)}`;
      let path = '/';
      let expires: number | undefined;
      for (const attribute of attributes) {
        const [name = '', value = ''] = attribute.split('=');
        if (name.toLowerCase() === 'path') path = value;
        if (name.toLowerCase() === 'expires') expires = Date.parse(value);
        if (name.toLowerCase() === 'max-age') expires = Date.now() + Number(value) * 1000;
      }
      if (expires !== undefined && expires <= Date.now()) this.#cookies.delete(key);
      else this.#cookies.set(key, { value: pair.slice(eq + 1), path, expires });
    }
  }
}
