import type { AccountPageService } from '../accounts/account-page.service.ts';
import type { Account } from '../accounts/account.ts';
import type { PasskeyView } from '../accounts/passkeys.ts';
import { fillText, textsFor } from '../i18n/texts.ts';
import type { AccountOverview } from '../oidc/account-sessions.ts';
import type { FieldError } from '../shared/errors.ts';

// What views/account.eta shows, computed here so that the template only prints: texts, values,
// dates in one format, devices in words.

export type Done =
  | 'profile'
  | 'email'
  | 'password'
  | 'session'
  | 'others'
  | 'app'
  | 'passkey_added'
  | 'passkey_removed';

const BROWSERS: readonly [RegExp, string][] = [
  [/Edg\//, 'Edge'],
  [/OPR\//, 'Opera'],
  [/Firefox\//, 'Firefox'],
  [/Chrom(e|ium)\//, 'Chrome'],
  [/Safari\//, 'Safari'],
  [/curl\//, 'curl'],
];
const SYSTEMS: readonly [RegExp, string][] = [
  [/Android/, 'Android'],
  [/iPhone|iPad|iOS/, 'iOS'],
  [/Windows/, 'Windows'],
  [/Mac OS X|Macintosh/, 'macOS'],
  [/CrOS/, 'ChromeOS'],
  [/Linux/, 'Linux'],
];

/** "Firefox on Linux": enough to recognise a device; the full user agent goes in a tooltip. */
export function describeUserAgent(userAgent: string | null, unknown: string): string {
  if (!userAgent) return unknown;
  const browser = BROWSERS.find(([re]) => re.test(userAgent))?.[1];
  const system = SYSTEMS.find(([re]) => re.test(userAgent))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? userAgent.slice(0, 40);
}

/** One format for every date on the page, in UTC (the server does not know the reader's zone). */
export function formatDate(date: Date | null): string {
  return date ? `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
}

export function accountPageData(input: {
  account: Account;
  csrf: string;
  overview: AccountOverview;
  service: Pick<AccountPageService, 'emailChangeEnabled' | 'deletionEnabled'>;
  done?: Done;
  errors?: readonly FieldError[];
  values?: Record<string, string>;
  /** The account's passkeys, when passkeys are served (http/passkey.routes.ts). */
  passkeys?: readonly PasskeyView[];
}) {
  const t = textsFor().pages.account;
  const { account, overview } = input;
  const values = input.values ?? {};
  const field = (name: string, stored: string | undefined) => values[name] ?? stored ?? '';
  const errors = input.errors ?? [];
  return {
    t,
    title: t.title,
    lead: fillText(t.lead, { username: account.username }),
    csrf: input.csrf,
    done: input.done ? t.done[input.done] : undefined,
    errors,
    errorFor: Object.fromEntries(errors.map((e) => [e.field, e.detail])),
    profile: {
      name: field('name', account.profile.name),
      given_name: field('given_name', account.profile.givenName),
      family_name: field('family_name', account.profile.familyName),
      username: field('username', account.username),
    },
    email: {
      current: fillText(t.email.current, { email: account.email }),
      state: account.emailVerified ? t.email.verified : t.email.unverified,
      newEmail: values.new_email ?? '',
      enabled: input.service.emailChangeEnabled,
    },
    sessions: overview.sessions.map((s) => ({
      id: s.id,
      current: s.current,
      device: describeUserAgent(s.userAgent, t.sessions.unknown),
      userAgent: s.userAgent ?? '',
      ip: s.ip ?? t.sessions.unknown,
      signedIn: formatDate(s.signedInAt),
      lastActivity: formatDate(s.lastActivityAt),
      apps: s.apps.join(', '),
    })),
    others: overview.sessions.some((s) => !s.current),
    apps: overview.apps.map((a) => ({
      clientId: a.clientId,
      name: a.name,
      firstParty: a.firstParty,
      granted: fillText(t.apps.granted, { date: formatDate(a.grantedAt) }),
      lastUsed: a.lastUsedAt ? fillText(t.apps.lastUsed, { date: formatDate(a.lastUsedAt) }) : '',
    })),
    deletion: input.service.deletionEnabled,
    passkeys: input.passkeys && {
      list: input.passkeys.map((p) => ({
        id: p.id,
        name: p.name,
        created: formatDate(p.createdAt),
        lastUsed: p.lastUsedAt ? formatDate(p.lastUsedAt) : t.passkeys.never,
      })),
      name: values.passkey_name ?? '',
    },
    wide: true,
  };
}
