// A small user agent for tests: a cookie jar, manual redirects and form submission, so
// tests walk the login pages over HTTP the way a browser does (no JavaScript needed: the
// pages work without it).

interface StoredCookie {
  value: string;
  path: string;
  expires: number | undefined;
}

export interface Page {
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

const ENTITIES: Record<string, string> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#39;': "'",
  '&#x27;': "'",
  '&#x2F;': '/',
  '&#61;': '=',
};
export const unescapeHtml = (s: string) => s.replace(/&(amp|lt|gt|quot|#39|#x27|#x2F|#61);/g, (m) => ENTITIES[m] ?? m);

export class Browser {
  readonly cookies = new Map<string, StoredCookie>();
  /** URLs starting with one of these are returned, not fetched (a relying party's callback). */
  readonly stopAt: string[];
  /** Sent with every request (e.g. X-Forwarded-For, to play a client at another address). */
  headers: Record<string, string> = {};
  /** Where a URL is really fetched (a test playing the TLS-terminating proxy of an https issuer). */
  transport: (url: URL) => URL = (url) => url;

  constructor(stopAt: string[] = []) {
    this.stopAt = stopAt;
  }

  #cookieHeader(url: URL): string {
    const now = Date.now();
    return [...this.cookies.entries()]
      .filter(([, c]) => url.pathname.startsWith(c.path) && (c.expires === undefined || c.expires > now))
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
  }

  #store(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expires: number | undefined;
      for (const attribute of attributes) {
        const [key = '', val = ''] = attribute.split('=');
        if (key.toLowerCase() === 'path') path = val;
        if (key.toLowerCase() === 'expires') expires = Date.parse(val);
        if (key.toLowerCase() === 'max-age') expires = Date.now() + Number(val) * 1000;
      }
      if (expires !== undefined && expires <= Date.now()) this.cookies.delete(name);
      else this.cookies.set(name, { value, path, expires });
    }
  }

  async request(
    url: string,
    init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<Page> {
    let current = new URL(url);
    let method = init.method ?? (init.form ? 'POST' : 'GET');
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 20; hops++) {
      if (this.stopAt.some((prefix) => current.href.startsWith(prefix))) {
        return { url: current.href, status: 0, headers: new Headers(), text: '' };
      }
      const headers: Record<string, string> = { accept: 'text/html', ...this.headers, ...init.headers };
      const cookie = this.#cookieHeader(current);
      if (cookie) headers.cookie = cookie;
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await fetch(this.transport(current), {
        method,
        headers,
        body: body ?? null,
        redirect: 'manual',
      });
      this.#store(response.headers);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.arrayBuffer();
        current = new URL(location, current);
        method = 'GET';
        body = undefined;
        continue;
      }
      return { url: current.href, status: response.status, headers: response.headers, text: await response.text() };
    }
    throw new Error('too many redirects');
  }

  get(url: string): Promise<Page> {
    return this.request(url);
  }

  /** Submits the form whose action contains `actionPart`, with its hidden fields plus `fields`. */
  async submit(page: Page, actionPart: string, fields: Record<string, string> = {}): Promise<Page> {
    const form = findForm(page.text, actionPart);
    return this.request(new URL(form.action, page.url).href, {
      method: form.method,
      form: { ...form.fields, ...fields },
    });
  }
}

export function findForm(
  html: string,
  actionPart: string,
): { action: string; method: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  for (const [, attributes = '', inner = ''] of forms) {
    const action = unescapeHtml(/action="([^"]*)"/.exec(attributes)?.[1] ?? '');
    if (!action.includes(actionPart)) continue;
    const method = (/method="([^"]*)"/.exec(attributes)?.[1] ?? 'get').toUpperCase();
    const fields: Record<string, string> = {};
    for (const [input] of inner.matchAll(/<input\b[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(input)?.[1];
      const type = /type="([^"]*)"/.exec(input)?.[1];
      if (name && type === 'hidden') fields[name] = unescapeHtml(/value="([^"]*)"/.exec(input)?.[1] ?? '');
    }
    return { action, method, fields };
  }
  throw new Error(`no form with action containing "${actionPart}" in:\n${html.slice(0, 2000)}`);
}
