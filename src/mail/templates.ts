import { fileURLToPath } from 'node:url';

import { Eta } from 'eta';

import { fillText, textsFor } from '../i18n/texts.ts';

export const MAIL_VIEWS_DIR = fileURLToPath(new URL('../../views/mail', import.meta.url));

/** What each template needs; every link is an absolute URL under POSTERN_ISSUER. */
export interface MailTemplateData {
  'verify-email': { name?: string; link: string; code: string; hours: number };
  'register-existing': { name?: string; signInLink: string; resetLink: string };
  'reset-password': { name?: string; link: string; minutes: number };
  'password-changed': { name?: string; resetLink: string };
  'unlock-account': { name?: string; link: string; minutes: number };
  invite: { name?: string; link: string; days: number; username: string };
  'email-change-confirm': { name?: string; link: string; hours: number };
  'email-change-notice': { name?: string; newEmail: string };
  'recovery-code-used': { name?: string; remaining: number };
  'mfa-reset': { name?: string };
  'totp-enrolled': { name?: string };
  'totp-disabled': { name?: string };
  'recovery-codes-regenerated': { name?: string };
  'passkey-added': { name?: string; passkey: string };
  'passkey-removed': { name?: string; passkey: string };
}

export type MailTemplate = keyof MailTemplateData;

export const MAIL_TEMPLATES: readonly MailTemplate[] = [
  'verify-email',
  'register-existing',
  'reset-password',
  'password-changed',
  'unlock-account',
  'invite',
  'email-change-confirm',
  'email-change-notice',
  'recovery-code-used',
  'mfa-reset',
  'totp-enrolled',
  'totp-disabled',
  'recovery-codes-regenerated',
  'passkey-added',
  'passkey-removed',
];

/** The texts key of each template (i18n/en.ts `mail.*`). */
const TEXT_KEYS = {
  'verify-email': 'verifyEmail',
  'register-existing': 'registerExisting',
  'reset-password': 'resetPassword',
  'password-changed': 'passwordChanged',
  'unlock-account': 'unlockAccount',
  invite: 'invite',
  'email-change-confirm': 'emailChangeConfirm',
  'email-change-notice': 'emailChangeNotice',
  'recovery-code-used': 'recoveryCodeUsed',
  'mfa-reset': 'mfaReset',
  'totp-enrolled': 'totpEnrolled',
  'totp-disabled': 'totpDisabled',
  'recovery-codes-regenerated': 'recoveryCodesRegenerated',
  'passkey-added': 'passkeyAdded',
  'passkey-removed': 'passkeyRemoved',
} as const satisfies Record<MailTemplate, string>;

export interface RenderedMail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface MailRenderer {
  render<T extends MailTemplate>(template: T, data: MailTemplateData[T]): RenderedMail;
  /** An absolute link under the issuer: link('/verify-email', { token }) → https://id.example.com/verify-email?token=… */
  link(path: string, query?: Readonly<Record<string, string>>): string;
}

const LINK_FIELDS = ['link', 'signInLink', 'resetLink'] as const;

/**
 * Two Eta instances over views/mail: the HTML part auto-escaped like the pages, the text part
 * not (it is not markup). Links are checked to point at the issuer, so a template can never
 * carry someone else's address.
 */
export function createMailRenderer(options: { issuer: string; publicName: string; dir?: string }): MailRenderer {
  const dir = options.dir ?? MAIL_VIEWS_DIR;
  const html = new Eta({ views: dir, autoEscape: true, cache: true, autoTrim: false });
  const text = new Eta({ views: dir, autoEscape: false, cache: true, autoTrim: false });
  const origin = `${options.issuer}/`;
  const t = textsFor().mail;
  return {
    render(template, data) {
      for (const field of LINK_FIELDS) {
        const value = (data as Record<string, unknown>)[field];
        if (value !== undefined && (typeof value !== 'string' || !value.startsWith(origin)))
          throw new Error(`mail ${template}: ${field} must be a link under the issuer`);
      }
      const product = options.publicName;
      const fill = (s: string, values: Record<string, string | number> = {}) => fillText(s, { product, ...values });
      const texts = Object.fromEntries(
        Object.entries(t).map(([k, v]) => [
          k,
          typeof v === 'string' ? fill(v) : Object.fromEntries(Object.entries(v).map(([k2, v2]) => [k2, fill(v2)])),
        ]),
      );
      const name = (data as { name?: string }).name;
      const subject = fill(t[TEXT_KEYS[template]].subject).replace(/[\r\n]+/g, ' ');
      const common = {
        ...data,
        t: texts,
        fill,
        product,
        lang: 'en',
        subject,
        greeting: name ? fill(t.greeting, { name }) : t.greetingNoName,
        automated: fill(t.automated, { issuer: options.issuer }),
      };
      return {
        subject,
        text: tidyText(text.render(`${template}.text.eta`, common)),
        html: html.render(`${template}.html.eta`, common),
      };
    },
    link(path, query = {}) {
      const url = new URL(`${options.issuer}${path.startsWith('/') ? path : `/${path}`}`);
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      return url.href;
    },
  };
}

/** Template tags leave blank lines behind: at most one empty line between paragraphs. */
function tidyText(text: string): string {
  return `${text
    .split('\n')
    .map((line) => (line === '-- ' ? line : line.trimEnd())) // "-- " is the signature separator (RFC 3676 §4.3)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`;
}
