import { hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type { Config } from './config.ts';

/**
 * The only key derived from POSTERN_SECRET itself (HKDF-SHA-256): it seals the signing keys
 * and the installation key in the database.
 */
export function deriveKeyEncryptionKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'postern', 'postern key encryption v1', 32));
}

/**
 * Keys derived from the installation key (keys/installation-key.ts) with HKDF-SHA-256; each has
 * its own `info`, so none can stand in for another.
 */
export interface DerivedKeys {
  readonly cookieKeys: readonly string[];
  readonly clientSecretKey: Buffer;
  readonly csrfKey: Buffer;
  /** Keys throttle rows for sign-in names that match no account, so typed text is not stored. */
  readonly throttleKey: Buffer;
  /** Engine records are stored under HMAC(recordIdKey, id) (oidc/record-protection.ts). */
  readonly recordIdKey: Buffer;
  /** Seals the few clear ids and the refresh successor an engine record must keep (AES-256-GCM). */
  readonly recordSealKey: Buffer;
  /** Seals rendered messages in the mail outbox (they hold live links; DESIGN §5). */
  readonly mailSealKey: Buffer;
  /** One-time links and codes are stored as HMAC(oneTimeTokenKey, value) (accounts/one-time-tokens.ts). */
  readonly oneTimeTokenKey: Buffer;
  /** Seals a one-time token's payload (e.g. the new address of an email change). */
  readonly oneTimeTokenSealKey: Buffer;
  /** Seals TOTP secrets (accounts/mfa.service.ts). */
  readonly mfaSealKey: Buffer;
  /** Recovery codes are stored as HMAC(mfaHmacKey, account and code). */
  readonly mfaHmacKey: Buffer;
  /** WebAuthn challenges and their bindings are stored as HMAC(webauthnChallengeKey, value) (accounts/passkeys.ts). */
  readonly webauthnChallengeKey: Buffer;
}

export function deriveKeys(installationKey: Buffer): DerivedKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', installationKey, 'postern', info, 32));
  return {
    cookieKeys: [derive('postern cookie signing v1').toString('base64url')],
    clientSecretKey: derive('postern client secret hmac v1'),
    csrfKey: derive('postern csrf v1'),
    throttleKey: derive('postern throttle v1'),
    recordIdKey: derive('postern record id hmac v1'),
    recordSealKey: derive('postern record seal v1'),
    mailSealKey: derive('postern mail seal v1'),
    oneTimeTokenKey: derive('postern one-time token hmac v1'),
    oneTimeTokenSealKey: derive('postern one-time token seal v1'),
    mfaSealKey: derive('postern mfa seal v1'),
    mfaHmacKey: derive('postern mfa recovery code hmac v1'),
    webauthnChallengeKey: derive('postern webauthn challenge hmac v1'),
  };
}

export interface ResolvedSecret {
  readonly secret: string;
  /** true when this call generated it (the caller warns once). */
  readonly generated: boolean;
  readonly file: string | undefined;
}

/**
 * POSTERN_SECRET when set; in embedded mode without it, the secret kept in the data dir,
 * generated on first use (mode 0600). loadConfig already refused the other cases.
 */
export function resolveSecret(config: Config): ResolvedSecret {
  if (config.secret !== undefined) return { secret: config.secret, generated: false, file: undefined };
  const file = path.join(config.dataDir, 'secret');
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  try {
    return { secret: fs.readFileSync(file, 'utf8').trim(), generated: false, file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(48).toString('base64url');
  try {
    fs.writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process won the race: use what it wrote.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      return { secret: fs.readFileSync(file, 'utf8').trim(), generated: false, file };
    }
    throw error;
  }
  return { secret, generated: true, file };
}
