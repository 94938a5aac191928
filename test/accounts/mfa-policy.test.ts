import { describe, expect, it } from 'vitest';

import {
  acrAsksForMfa,
  amrWith,
  decideSecondFactor,
  hasSecondFactor,
  passwordlessLogin,
  type SignInFacts,
} from '../../src/accounts/mfa-policy.ts';

const OPTIONAL = { required: false, requiredRoles: ['admin'] };
const NOTHING: SignInFacts = {
  roles: [],
  methods: [],
  clientRequiresMfa: false,
  acrRequested: false,
  deviceRemembered: false,
};

describe('decideSecondFactor', () => {
  it('asks nobody without a factor or a rule for it', () => {
    expect(decideSecondFactor(OPTIONAL, NOTHING)).toEqual({ kind: 'none' });
  });

  it('asks whoever set up TOTP, offering every method they have', () => {
    expect(decideSecondFactor(OPTIONAL, { ...NOTHING, methods: ['totp', 'recovery_code'] })).toEqual({
      kind: 'verify',
      methods: ['totp', 'recovery_code'],
    });
    expect(decideSecondFactor(OPTIONAL, { ...NOTHING, methods: ['totp', 'passkey'] })).toEqual({
      kind: 'verify',
      methods: ['totp', 'passkey'],
    });
  });

  it('asks for a passkey after the password only when MFA is asked for, and never sends its owner to set up TOTP', () => {
    const passkeyOnly = { ...NOTHING, methods: ['passkey'] as const };
    expect(decideSecondFactor(OPTIONAL, passkeyOnly)).toEqual({ kind: 'none' });
    expect(decideSecondFactor(OPTIONAL, { ...passkeyOnly, acrRequested: true })).toEqual({
      kind: 'verify',
      methods: ['passkey'],
    });
    expect(decideSecondFactor(OPTIONAL, { ...passkeyOnly, clientRequiresMfa: true })).toMatchObject({ kind: 'verify' });
    expect(decideSecondFactor({ required: true, requiredRoles: [] }, passkeyOnly)).toMatchObject({ kind: 'verify' });
    expect(decideSecondFactor(OPTIONAL, { ...passkeyOnly, roles: ['admin'] })).toMatchObject({ kind: 'verify' });
  });

  it('leads whoever must use MFA and has no factor to enrollment: the installation, a role, the client, the request', () => {
    expect(decideSecondFactor({ required: true, requiredRoles: [] }, NOTHING)).toEqual({ kind: 'enroll' });
    expect(decideSecondFactor(OPTIONAL, { ...NOTHING, roles: ['staff', 'admin'] })).toEqual({ kind: 'enroll' });
    expect(decideSecondFactor(OPTIONAL, { ...NOTHING, clientRequiresMfa: true })).toEqual({ kind: 'enroll' });
    expect(decideSecondFactor(OPTIONAL, { ...NOTHING, acrRequested: true })).toEqual({ kind: 'enroll' });
  });

  it('lets a remembered device skip the question, unless the client or the request asked for MFA itself', () => {
    const remembered = { ...NOTHING, methods: ['totp'] as const, deviceRemembered: true };
    expect(decideSecondFactor({ required: true, requiredRoles: [] }, remembered)).toEqual({ kind: 'none' });
    expect(decideSecondFactor(OPTIONAL, { ...remembered, clientRequiresMfa: true })).toMatchObject({ kind: 'verify' });
    expect(decideSecondFactor(OPTIONAL, { ...remembered, acrRequested: true })).toMatchObject({ kind: 'verify' });
  });

  it('does not count recovery codes alone as a factor', () => {
    expect(decideSecondFactor(OPTIONAL, { ...NOTHING, methods: ['recovery_code'] })).toEqual({ kind: 'none' });
  });
});

describe('amr and acr_values', () => {
  it('adds the method and mfa to what was given (RFC 8176)', () => {
    expect(amrWith(['pwd'], 'otp')).toEqual(['pwd', 'otp', 'mfa']);
    expect(amrWith(undefined, 'otp')).toEqual(['pwd', 'otp', 'mfa']);
    expect(amrWith(['pwd', 'otp', 'mfa'], 'otp')).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('knows a second factor by otp, hwk or swk', () => {
    expect(hasSecondFactor(['pwd'])).toBe(false);
    expect(hasSecondFactor(undefined)).toBe(false);
    expect(hasSecondFactor(['pwd', 'otp'])).toBe(true);
    expect(hasSecondFactor(['hwk', 'user'])).toBe(true);
    expect(hasSecondFactor(['pwd', 'swk', 'mfa'])).toBe(true);
  });

  it('counts a passkey alone without user verification as one factor, not as MFA', () => {
    expect(hasSecondFactor(['hwk'])).toBe(false);
    expect(hasSecondFactor(['swk', 'mfa'])).toBe(false);
    expect(amrWith(['hwk'], 'hwk')).toEqual(['hwk']);
    expect(amrWith(['pwd'], 'hwk', 'user')).toEqual(['pwd', 'hwk', 'user', 'mfa']);
  });

  it('makes a passwordless passkey sign-in with user verification mfa, and one without it a single factor', () => {
    expect(passwordlessLogin(['hwk', 'user'])).toEqual({ amr: ['hwk', 'user', 'mfa'], acr: 'urn:postern:mfa' });
    expect(passwordlessLogin(['swk', 'user'])).toEqual({ amr: ['swk', 'user', 'mfa'], acr: 'urn:postern:mfa' });
    expect(passwordlessLogin(['hwk'])).toEqual({ amr: ['hwk'], acr: 'urn:postern:pwd' });
  });

  it('reads urn:postern:mfa among space-separated acr_values', () => {
    expect(acrAsksForMfa('urn:postern:pwd urn:postern:mfa')).toBe(true);
    expect(acrAsksForMfa('urn:postern:pwd')).toBe(false);
    expect(acrAsksForMfa(undefined)).toBe(false);
  });
});
