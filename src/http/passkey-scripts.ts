import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type Router from '@koa/router';

import { VIEWS_DIR } from './views.ts';

// The two scripts of the passkey buttons, served from our own origin (no CDN): the browser
// build of @simplewebauthn/browser, and ours (views/assets/passkey.js), which uses it. The CSP
// stays script-src 'self'; each <script> also carries a Subresource Integrity hash (W3C SRI
// §3.3), so the page runs only the exact file this server read at start.

export interface PageScript {
  /** Under the issuer's path, with a version from its content: /assets/passkey.js?v=1a2b3c4d. */
  readonly src: string;
  /** sha384-…, for the integrity attribute. */
  readonly integrity: string;
}

interface ScriptFile extends PageScript {
  readonly path: string;
  readonly content: Buffer;
}

function bundlePath(): string {
  // The package's entry is its ES module build; the browser bundle sits beside it.
  const entry = fileURLToPath(import.meta.resolve('@simplewebauthn/browser'));
  return path.join(path.dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js');
}

function scriptFile(at: string, file: string): ScriptFile {
  const content = readFileSync(file);
  const digest = createHash('sha384').update(content).digest();
  // The version in the URL: a browser holding an older copy (cached an hour) fetches the new
  // one after an upgrade, instead of failing its integrity check.
  const src = `${at}?v=${digest.subarray(0, 6).toString('hex')}`;
  return { path: at, src, integrity: `sha384-${digest.toString('base64')}`, content };
}

export interface PasskeyScripts {
  /** In the order the page must run them (deferred scripts run in document order). */
  readonly scripts: readonly PageScript[];
  serve(router: Router): void;
}

export function loadPasskeyScripts(): PasskeyScripts {
  const files = [
    scriptFile('/assets/simplewebauthn-browser.js', bundlePath()),
    scriptFile('/assets/passkey.js', path.join(VIEWS_DIR, 'assets', 'passkey.js')),
  ];
  return {
    scripts: files.map(({ src, integrity }) => ({ src, integrity })),
    serve(router) {
      for (const file of files)
        router.get(file.path, (ctx) => {
          ctx.set('Cache-Control', 'public, max-age=3600');
          ctx.remove('Pragma');
          ctx.type = 'text/javascript';
          ctx.body = file.content;
        });
    },
  };
}
