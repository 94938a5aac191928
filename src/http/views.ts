import { fileURLToPath } from 'node:url';

import { Eta } from 'eta';
import type { Context } from 'koa';

export const VIEWS_DIR = fileURLToPath(new URL('../../views', import.meta.url));

export interface Views {
  render(name: string, data: Record<string, unknown>): string;
}

/**
 * Server-side templates with auto-escaping on; raw output (`<%~`) only for markup we built.
 * Every template gets `it.base`, the issuer's path, to prefix its links ('' at the root).
 */
export function createViews(dir = VIEWS_DIR, basePath = ''): Views {
  const eta = new Eta({ views: dir, autoEscape: true, cache: true, autoTrim: false });
  return { render: (name, data) => eta.render(name, { base: basePath, ...data }) };
}

export function sendPage(ctx: Context, views: Views, name: string, data: Record<string, unknown>, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = views.render(name, data);
}

/** Wording for the error page, by OAuth error code; anything else gets the generic text. */
const ERROR_TEXT: Record<string, [string, string]> = {
  invalid_redirect_uri: [
    'This sign-in link is not valid',
    "The application sent you here with a return address it has not registered. Please contact the application's owner.",
  ],
  invalid_client: [
    'Unknown application',
    'The application that sent you here is not registered with this identity provider.',
  ],
  invalid_request: ['This request is not valid', 'The application sent an incomplete or malformed sign-in request.'],
  session_not_found: ['This sign-in page has expired', 'Go back to the application and start signing in again.'],
  not_found: ['Page not found', 'There is nothing at this address.'],
  temporarily_unavailable: [
    'Temporarily unavailable',
    'The identity provider cannot reach its database right now. Please try again in a moment.',
  ],
};

export function errorPageData(code: string, description: string | undefined, requestId: string | undefined) {
  const [heading, message] = ERROR_TEXT[code] ?? [
    'Something went wrong',
    description ?? 'The request could not be completed.',
  ];
  return {
    heading,
    message:
      ERROR_TEXT[code] && description && code !== 'temporarily_unavailable' ? `${message} (${description})` : message,
    code,
    requestId,
  };
}
