import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadConfig, MIN_SECRET_LENGTH } from '../../src/config/config.ts';
import { ConfigError } from '../../src/shared/errors.ts';

const GOOD_SECRET = 's'.repeat(MIN_SECRET_LENGTH);

/** The problems loadConfig reports for `env`; fails the test when it accepts it. */
function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('ERR_CONFIG_INVALID');
    return (error as ConfigError).problems;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  describe('defaults (embedded development mode)', () => {
    it('needs no settings at all', () => {
      const config = loadConfig({});

      expect(config).toEqual({
        nodeEnv: 'development',
        production: false,
        issuer: 'http://localhost:3000',
        port: 3000,
        host: '0.0.0.0',
        databaseUrl: undefined,
        dataDir: path.resolve('./data'),
        secret: undefined,
        logLevel: 'info',
        migrateOnStart: true,
        demo: true,
        trustProxy: false,
        authorizationPost: false,
        argon2: { memoryKiB: 19456, iterations: 2, parallelism: 1 },
        sweepIntervalSeconds: 300,
        ttl: {
          accessToken: 3600,
          idToken: 3600,
          session: 14 * 86400,
          interaction: 3600,
          authorizationCode: 60,
          grant: 365 * 86400,
        },
        lockout: {
          threshold: 5,
          windowSeconds: 900,
          lockSeconds: 900,
          maxLockSeconds: 86400,
          accountThreshold: 20,
          ipFailureLimit: 50,
          reveal: false,
        },
        keys: { algs: ['RS256', 'ES256'], rotationSeconds: 90 * 86400, jwksCacheSeconds: 300, pollSeconds: 5 },
        cacheSeconds: 5,
        refresh: { idleSeconds: 14 * 86400, absoluteSeconds: 90 * 86400, graceSeconds: 10, graceMaxRepeats: 10 },
        outboundPrivateNetwork: false,
        metrics: { port: undefined, token: undefined, perClient: false },
        shutdownSeconds: 10,
        auditRetentionDays: 400,
        publicName: 'Postern',
        mail: {
          mode: 'log',
          enabled: true,
          smtp: undefined,
          from: 'no-reply@localhost',
          retentionDays: 7,
          retryMaxSeconds: 60,
          giveUpSeconds: 86400,
        },
        admin: { rateLimit: 600, rateWindowSeconds: 60, corsOrigins: [], idempotencySeconds: 86400 },
        accountDeletion: false,
        recovery: { accountLimit: 5, ipLimit: 20 },
        registration: { open: false, ipLimit: 3, emailLimit: 3, windowSeconds: 3600 },
        requireVerifiedEmail: false,
        mfa: { required: false, requiredRoles: [], rememberDays: 0 },
        passkeys: { userVerification: 'required' },
      });
    });

    it('returns a frozen object', () => {
      const config = loadConfig({});

      expect(Object.isFrozen(config)).toBe(true);
      expect(() => {
        (config as { port: number }).port = 1;
      }).toThrow(TypeError);
    });

    it('treats blank values as unset', () => {
      expect(loadConfig({ PORT: '   ', POSTERN_SECRET: '' }).port).toBe(3000);
    });

    it('turns off migrate-on-start and demo with DATABASE_URL', () => {
      const config = loadConfig({ DATABASE_URL: 'postgres://db.internal/postern', POSTERN_SECRET: GOOD_SECRET });

      expect(config.databaseUrl).toBe('postgres://db.internal/postern');
      expect(config.migrateOnStart).toBe(false);
      expect(config.demo).toBe(false);
    });
  });

  describe('problems', () => {
    it('reports every problem at once in one ConfigError', () => {
      const problems = problemsOf({
        PORT: 'eighty',
        LOG_LEVEL: 'loud',
        POSTERN_ISSUER: 'ftp://id.example.com',
        DATABASE_URL: 'mysql://db.internal/postern',
        POSTERN_SECRET: 'too short',
        POSTERN_TRUST_PROXY: 'maybe',
      });

      expect(problems).toHaveLength(6);
      for (const name of [
        'PORT',
        'LOG_LEVEL',
        'POSTERN_ISSUER',
        'DATABASE_URL',
        'POSTERN_SECRET',
        'POSTERN_TRUST_PROXY',
      ]) {
        expect(
          problems.filter((p) => p.startsWith(`${name} `)),
          name,
        ).toHaveLength(1);
      }
    });

    it('lists every problem in the error message too', () => {
      try {
        loadConfig({ PORT: 'eighty', LOG_LEVEL: 'loud' });
        expect.unreachable('loadConfig accepted a bad PORT and LOG_LEVEL');
      } catch (error) {
        expect((error as Error).message).toMatch(/PORT must be/);
        expect((error as Error).message).toMatch(/LOG_LEVEL must be/);
      }
    });

    it('never puts the secret in a problem', () => {
      const problems = problemsOf({ POSTERN_SECRET: 'hunter2-short-secret' });

      expect(problems).toHaveLength(1);
      expect(problems.join('\n')).not.toContain('hunter2');
    });
  });

  describe('POSTERN_SECRET', () => {
    it('is required when NODE_ENV=production', () => {
      const env = { NODE_ENV: 'production', POSTERN_ISSUER: 'https://id.example.com', POSTERN_TRUST_PROXY: 'true' };

      expect(problemsOf(env)).toEqual(['POSTERN_SECRET is required when NODE_ENV=production']);
      expect(loadConfig({ ...env, POSTERN_SECRET: GOOD_SECRET }).secret).toBe(GOOD_SECRET);
    });

    it('is required with DATABASE_URL, because every instance must share it', () => {
      const env = { DATABASE_URL: 'postgresql://db.internal/postern' };

      expect(problemsOf(env)).toEqual([expect.stringMatching(/^POSTERN_SECRET is required with DATABASE_URL/)]);
      expect(loadConfig({ ...env, POSTERN_SECRET: GOOD_SECRET }).secret).toBe(GOOD_SECRET);
    });

    it(`must be at least ${MIN_SECRET_LENGTH} characters`, () => {
      expect(problemsOf({ POSTERN_SECRET: GOOD_SECRET.slice(1) })).toEqual([
        expect.stringMatching(new RegExp(`^POSTERN_SECRET must be at least ${MIN_SECRET_LENGTH} characters`)),
      ]);
      expect(loadConfig({ POSTERN_SECRET: GOOD_SECRET }).secret).toBe(GOOD_SECRET);
    });

    it('is checked for length in production too, alongside the other problems', () => {
      const problems = problemsOf({ NODE_ENV: 'production', POSTERN_SECRET: 'short' });

      expect(problems).toHaveLength(2);
      expect(problems).toContainEqual(expect.stringMatching(/^POSTERN_SECRET must be at least/));
      expect(problems).toContainEqual(expect.stringMatching(/^POSTERN_ISSUER must use https/));
    });
  });

  describe('POSTERN_AUTHORIZATION_POST', () => {
    it('is off by default', () => {
      expect(loadConfig({}).authorizationPost).toBe(false);
    });

    it('needs an https issuer (its SameSite=None session cookie must be Secure)', () => {
      expect(problemsOf({ POSTERN_AUTHORIZATION_POST: 'true' })).toEqual([
        'POSTERN_AUTHORIZATION_POST=true needs an https POSTERN_ISSUER: its session cookie must be SameSite=None, which browsers accept only with Secure',
      ]);
    });

    it('is accepted with an https issuer behind a trusted proxy', () => {
      const env = {
        POSTERN_AUTHORIZATION_POST: 'yes',
        POSTERN_ISSUER: 'https://id.example.com',
        POSTERN_TRUST_PROXY: 'true',
      };
      expect(loadConfig(env).authorizationPost).toBe(true);
    });

    it('must be a boolean', () => {
      expect(problemsOf({ POSTERN_AUTHORIZATION_POST: 'sometimes' })).toEqual([
        'POSTERN_AUTHORIZATION_POST must be true or false (got "sometimes")',
      ]);
    });
  });

  describe('POSTERN_ACCOUNT_DELETION', () => {
    it('is off by default and on with "on"', () => {
      expect(loadConfig({}).accountDeletion).toBe(false);
      expect(loadConfig({ POSTERN_ACCOUNT_DELETION: 'on' }).accountDeletion).toBe(true);
      expect(loadConfig({ POSTERN_ACCOUNT_DELETION: 'off' }).accountDeletion).toBe(false);
    });

    it('must be on or off', () => {
      expect(problemsOf({ POSTERN_ACCOUNT_DELETION: 'true' })).toEqual([
        'POSTERN_ACCOUNT_DELETION must be on or off (got "true")',
      ]);
    });
  });

  describe('POSTERN_MFA, POSTERN_MFA_REQUIRED_ROLES, POSTERN_MFA_REMEMBER_DAYS', () => {
    it('default to optional, no role, and no remembered devices', () => {
      expect(loadConfig({}).mfa).toEqual({ required: false, requiredRoles: [], rememberDays: 0 });
    });

    it('read required, a comma-separated role list and a number of days', () => {
      const { mfa } = loadConfig({
        POSTERN_MFA: 'required',
        POSTERN_MFA_REQUIRED_ROLES: 'admin, manager,,postern:admin',
        POSTERN_MFA_REMEMBER_DAYS: '30',
      });
      expect(mfa).toEqual({ required: true, requiredRoles: ['admin', 'manager', 'postern:admin'], rememberDays: 30 });
    });

    it('report every problem at once', () => {
      expect(
        problemsOf({
          POSTERN_MFA: 'always',
          POSTERN_MFA_REQUIRED_ROLES: 'ok,bad role',
          POSTERN_MFA_REMEMBER_DAYS: '366',
        }),
      ).toEqual([
        'POSTERN_MFA must be optional or required (got "always")',
        expect.stringMatching(/^POSTERN_MFA_REQUIRED_ROLES: "bad role" is not a role name/),
        'POSTERN_MFA_REMEMBER_DAYS must be a whole number from 0 to 365 (got "366")',
      ]);
    });
  });

  describe('PORT', () => {
    it.each(['eighty', '-1', '65536', '80.5', '0x50', '1e3'])('rejects %j', (port) => {
      expect(problemsOf({ PORT: port })).toEqual([
        expect.stringMatching(/^PORT must be a whole number from 0 to 65535/),
      ]);
    });

    it.each([
      ['0', 0],
      ['8080', 8080],
      ['65535', 65535],
      [' 443 ', 443],
    ])('accepts %j', (port, expected) => {
      expect(loadConfig({ PORT: port }).port).toBe(expected);
    });
  });

  describe('POSTERN_ISSUER', () => {
    const production = { NODE_ENV: 'production', POSTERN_SECRET: GOOD_SECRET, POSTERN_TRUST_PROXY: 'true' };

    it('must use https in production', () => {
      expect(problemsOf({ ...production, POSTERN_ISSUER: 'http://id.example.com' })).toEqual([
        'POSTERN_ISSUER must use https when NODE_ENV=production',
      ]);
    });

    it('has no production default (the development default is http)', () => {
      expect(problemsOf(production)).toEqual(['POSTERN_ISSUER must use https when NODE_ENV=production']);
    });

    it('being https, needs a trusted TLS-terminating proxy in front', () => {
      expect(problemsOf({ POSTERN_ISSUER: 'https://id.example.com' })).toEqual([
        'POSTERN_ISSUER is https, so Postern runs behind a TLS-terminating proxy: set POSTERN_TRUST_PROXY=true',
      ]);
    });

    it('accepts https in production, without a trailing slash', () => {
      const config = loadConfig({ ...production, POSTERN_ISSUER: 'https://id.example.com/tenant/' });

      expect(config.production).toBe(true);
      expect(config.issuer).toBe('https://id.example.com/tenant');
    });

    it('may use http outside production', () => {
      expect(loadConfig({ POSTERN_ISSUER: 'http://id.localhost:8080' }).issuer).toBe('http://id.localhost:8080');
    });

    it.each(['not a url', 'ftp://id.example.com', 'https://id.example.com/?tenant=a', 'https://id.example.com/#top'])(
      'rejects %j',
      (issuer) => {
        expect(problemsOf({ POSTERN_ISSUER: issuer })).toEqual([
          expect.stringMatching(/^POSTERN_ISSUER must be an http\(s\) URL/),
        ]);
      },
    );
  });

  describe('POSTERN_AUDIT_RETENTION_DAYS', () => {
    it('sets how many days audit events are kept', () => {
      expect(loadConfig({ POSTERN_AUDIT_RETENTION_DAYS: '30' }).auditRetentionDays).toBe(30);
    });

    it.each(['0', '-1', '1.5', 'forever', '36501'])('rejects %j', (days) => {
      expect(problemsOf({ POSTERN_AUDIT_RETENTION_DAYS: days })).toEqual([
        `POSTERN_AUDIT_RETENTION_DAYS must be a whole number from 1 to 36500 (got "${days}")`,
      ]);
    });
  });

  describe('mail settings', () => {
    const production = {
      NODE_ENV: 'production',
      POSTERN_SECRET: GOOD_SECRET,
      POSTERN_ISSUER: 'https://id.example.com',
      POSTERN_TRUST_PROXY: 'true',
    };

    it('reads an smtp:// URL: STARTTLS required by default, port 587, user and password decoded', () => {
      const { mail } = loadConfig({
        POSTERN_SMTP_URL: 'smtp://mailer%40example.com:p%40ss%3Aword@smtp.example.com',
        POSTERN_MAIL_FROM: 'Postern <no-reply@example.com>',
      });

      expect(mail.mode).toBe('smtp');
      expect(mail.enabled).toBe(true);
      expect(mail.from).toBe('Postern <no-reply@example.com>');
      expect(mail.smtp).toEqual({
        secure: false,
        host: 'smtp.example.com',
        port: 587,
        startTls: 'required',
        user: 'mailer@example.com',
        password: 'p@ss:word',
      });
    });

    it('reads smtps:// as TLS from the first byte on port 465', () => {
      const { mail } = loadConfig({ POSTERN_SMTP_URL: 'smtps://smtp.example.com', POSTERN_MAIL_FROM: 'a@example.com' });

      expect(mail.smtp).toMatchObject({ secure: true, port: 465, startTls: 'never', user: undefined });
    });

    it.each(['opportunistic', 'never'])('takes starttls=%s', (policy) => {
      const { mail } = loadConfig({
        POSTERN_SMTP_URL: `smtp://relay.internal:25?starttls=${policy}`,
        POSTERN_MAIL_FROM: 'a@example.com',
      });

      expect(mail.smtp).toMatchObject({ port: 25, startTls: policy });
    });

    it.each([
      ['http://smtp.example.com', 'must be smtp://[user:password@]host[:port] or smtps://...'],
      ['smtp://smtp.example.com?starttls=maybe', 'starttls must be one of required, opportunistic, never'],
      ['smtp://smtp.example.com?tls=off', 'accepts only the query parameter starttls'],
      ['smtps://smtp.example.com?starttls=required', 'smtps:// is TLS already: starttls does not apply'],
      ['smtp://smtp.example.com/path', 'must have no path or fragment'],
    ])('rejects POSTERN_SMTP_URL=%s without repeating it', (url, problem) => {
      const problems = problemsOf({ POSTERN_SMTP_URL: url, POSTERN_MAIL_FROM: 'a@example.com' });

      expect(problems).toEqual([`POSTERN_SMTP_URL ${problem}`]);
    });

    it('never repeats the password of a bad URL', () => {
      const problems = problemsOf({ POSTERN_SMTP_URL: 'smtp://u:hunter2@h/x', POSTERN_MAIL_FROM: 'a@example.com' });

      expect(problems.join(' ')).not.toContain('hunter2');
    });

    it('needs POSTERN_MAIL_FROM with an SMTP server, and one address in it', () => {
      expect(problemsOf({ POSTERN_SMTP_URL: 'smtp://h' })).toEqual([
        'POSTERN_MAIL_FROM is required with POSTERN_SMTP_URL (the sender address your mail server accepts)',
      ]);
      expect(problemsOf({ POSTERN_MAIL_FROM: 'nobody' })[0]).toMatch(/^POSTERN_MAIL_FROM must be one address/);
    });

    it('turns mail off in production without POSTERN_SMTP_URL', () => {
      const { mail } = loadConfig(production);

      expect(mail).toMatchObject({ mode: 'off', enabled: false });
    });

    it('keeps mail on in the log outside production without POSTERN_SMTP_URL', () => {
      expect(loadConfig({}).mail).toMatchObject({ mode: 'log', enabled: true });
    });

    it('checks the retry, give-up and retention numbers', () => {
      expect(
        problemsOf({
          POSTERN_MAIL_RETRY_MAX_SECONDS: '1',
          POSTERN_MAIL_GIVE_UP_SECONDS: '0',
          POSTERN_MAIL_RETENTION_DAYS: '0',
        }),
      ).toEqual([
        'POSTERN_MAIL_RETENTION_DAYS must be a whole number from 1 to 3650 (got "0")',
        'POSTERN_MAIL_RETRY_MAX_SECONDS must be a whole number from 2 to 3600 (got "1")',
        'POSTERN_MAIL_GIVE_UP_SECONDS must be a whole number from 1 to 2592000 (got "0")',
      ]);
    });

    it('takes POSTERN_PUBLIC_NAME, one short line', () => {
      expect(loadConfig({ POSTERN_PUBLIC_NAME: 'Acme ID' }).publicName).toBe('Acme ID');
      expect(problemsOf({ POSTERN_PUBLIC_NAME: 'a\nb' })).toEqual([
        'POSTERN_PUBLIC_NAME must be one line of at most 80 characters',
      ]);
    });
  });

  describe('the admin API settings', () => {
    it('read the rate limit, its window, the idempotency lifetime and the allowed origins', () => {
      const config = loadConfig({
        POSTERN_ADMIN_RATE_LIMIT: '10',
        POSTERN_ADMIN_RATE_WINDOW_SECONDS: '5',
        POSTERN_ADMIN_IDEMPOTENCY_SECONDS: '3600',
        POSTERN_ADMIN_CORS_ORIGINS: 'https://console.example.com, http://localhost:5173',
      });
      expect(config.admin).toEqual({
        rateLimit: 10,
        rateWindowSeconds: 5,
        idempotencySeconds: 3600,
        corsOrigins: ['https://console.example.com', 'http://localhost:5173'],
      });
    });

    it('reject an allowed origin that is not an origin, and numbers out of range', () => {
      expect(
        problemsOf({
          POSTERN_ADMIN_CORS_ORIGINS: 'https://console.example.com/,ftp://x.example.com',
          POSTERN_ADMIN_RATE_LIMIT: '0',
          POSTERN_ADMIN_IDEMPOTENCY_SECONDS: '10',
        }),
      ).toEqual([
        'POSTERN_ADMIN_CORS_ORIGINS: "https://console.example.com/" is not an origin (scheme://host[:port], no path or trailing slash)',
        'POSTERN_ADMIN_CORS_ORIGINS: "ftp://x.example.com" is not an origin (scheme://host[:port], no path or trailing slash)',
        'POSTERN_ADMIN_RATE_LIMIT must be a whole number from 1 to 1000000 (got "0")',
        'POSTERN_ADMIN_IDEMPOTENCY_SECONDS must be a whole number from 60 to 604800 (got "10")',
      ]);
    });
  });

  describe('limits on reset and unlock requests', () => {
    it('takes POSTERN_RECOVERY_ACCOUNT_LIMIT and POSTERN_RECOVERY_IP_LIMIT (requests an hour)', () => {
      expect(loadConfig({ POSTERN_RECOVERY_ACCOUNT_LIMIT: '3', POSTERN_RECOVERY_IP_LIMIT: '100' }).recovery).toEqual({
        accountLimit: 3,
        ipLimit: 100,
      });
    });

    it('refuses what is not a whole number in range, each named', () => {
      expect(problemsOf({ POSTERN_RECOVERY_ACCOUNT_LIMIT: '0', POSTERN_RECOVERY_IP_LIMIT: 'many' })).toEqual([
        'POSTERN_RECOVERY_ACCOUNT_LIMIT must be a whole number from 1 to 1000 (got "0")',
        'POSTERN_RECOVERY_IP_LIMIT must be a whole number from 1 to 100000 (got "many")',
      ]);
    });
  });

  describe('registration settings', () => {
    const productionWithoutSmtp = {
      NODE_ENV: 'production',
      POSTERN_SECRET: GOOD_SECRET,
      POSTERN_ISSUER: 'https://id.example.com',
      POSTERN_TRUST_PROXY: 'true',
    };

    it('opens registration on request, and then requires verified email by default', () => {
      const config = loadConfig({ POSTERN_REGISTRATION: 'open' });
      expect(config.registration).toEqual({ open: true, ipLimit: 3, emailLimit: 3, windowSeconds: 3600 });
      expect(config.requireVerifiedEmail).toBe(true);
      expect(
        loadConfig({ POSTERN_REGISTRATION: 'open', POSTERN_REQUIRE_VERIFIED_EMAIL: 'false' }).requireVerifiedEmail,
      ).toBe(false);
      expect(loadConfig({ POSTERN_REQUIRE_VERIFIED_EMAIL: 'true' }).requireVerifiedEmail).toBe(true);
    });

    it('keeps registration off in production without SMTP, where nobody could verify an address', () => {
      const config = loadConfig({ ...productionWithoutSmtp, POSTERN_REGISTRATION: 'open' });
      expect(config.registration.open).toBe(false);
      expect(config.requireVerifiedEmail).toBe(false);
      expect(problemsOf({ ...productionWithoutSmtp, POSTERN_REQUIRE_VERIFIED_EMAIL: 'true' })).toEqual([
        'POSTERN_REQUIRE_VERIFIED_EMAIL=true needs email (POSTERN_SMTP_URL): nobody could verify an address, so nobody could sign in',
      ]);
    });

    it('checks the switch and the limits', () => {
      expect(
        problemsOf({
          POSTERN_REGISTRATION: 'yes',
          POSTERN_REGISTRATION_IP_LIMIT: '0',
          POSTERN_REGISTRATION_EMAIL_LIMIT: 'many',
          POSTERN_REGISTRATION_WINDOW_SECONDS: '10',
        }),
      ).toEqual([
        'POSTERN_REGISTRATION must be off or open (got "yes")',
        'POSTERN_REGISTRATION_IP_LIMIT must be a whole number from 1 to 100000 (got "0")',
        'POSTERN_REGISTRATION_EMAIL_LIMIT must be a whole number from 1 to 100000 (got "many")',
        'POSTERN_REGISTRATION_WINDOW_SECONDS must be a whole number from 60 to 604800 (got "10")',
      ]);
      expect(
        loadConfig({ POSTERN_REGISTRATION_IP_LIMIT: '10', POSTERN_REGISTRATION_EMAIL_LIMIT: '2' }).registration,
      ).toMatchObject({ ipLimit: 10, emailLimit: 2 });
    });
  });

  describe('passkey settings', () => {
    it('requires user verification by default, and accepts the three WebAuthn levels', () => {
      expect(loadConfig({}).passkeys).toEqual({ userVerification: 'required' });
      expect(loadConfig({ POSTERN_PASSKEY_USER_VERIFICATION: 'Preferred' }).passkeys.userVerification).toBe(
        'preferred',
      );
      expect(loadConfig({ POSTERN_PASSKEY_USER_VERIFICATION: 'discouraged' }).passkeys.userVerification).toBe(
        'discouraged',
      );
      expect(problemsOf({ POSTERN_PASSKEY_USER_VERIFICATION: 'always' })).toEqual([
        'POSTERN_PASSKEY_USER_VERIFICATION must be one of required, preferred, discouraged (got "always")',
      ]);
    });
  });
});
