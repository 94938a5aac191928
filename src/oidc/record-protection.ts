import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

import { seal, unseal } from '../keys/sealed-box.ts';

// DESIGN §5: a database dump hands out no bearer credential. Every engine record is stored under
// a keyed hash of its id (HMAC-SHA-256; ids are high-entropy random strings, so a fast hash is
// as strong as a slow one), and the few clear ids the engine needs back are sealed (AES-256-GCM).
// Both keys derive from the installation key (config/secrets.ts), so `postern keys reencrypt`
// changes neither and every stored record stays findable.

export interface RecordProtection {
  /** The key a record is stored and looked up by: base64url(HMAC-SHA-256(key, id)). */
  hashId(id: string): string;
  seal(binding: string, value: string): string;
  /** undefined when the value does not open under our key (altered, or sealed for another row). */
  unseal(binding: string, sealed: string): string | undefined;
}

export function createRecordProtection(keys: { hmacKey: Buffer; sealKey: Buffer }): RecordProtection {
  // One KeyObject for the process: createHmac per call then costs no key import.
  const hmacKey: KeyObject = createSecretKey(keys.hmacKey);
  const sealKey = Buffer.from(keys.sealKey);
  return {
    hashId: (id) => createHmac('sha256', hmacKey).update(id, 'utf8').digest('base64url'),
    seal: (binding, value) => seal(sealKey, binding, Buffer.from(value, 'utf8')),
    unseal(binding, sealed) {
      try {
        return unseal(sealKey, binding, sealed).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}
