import { describe, expect, it } from 'vitest';

import { isStepUp } from '../../src/http/mfa.routes.ts';

// Which login prompts the second-factor page answers on its own (review finding 7): the engine's
// reasons for a session that exists, as interactionDetails gives them. An essential acr (the
// claims parameter, OIDC Core §5.5.1.1) is a step-up only when it names urn:postern:mfa.

type Details = Parameters<typeof isStepUp>[0];
const details = (reasons: string[], extra: Record<string, unknown> = {}) =>
  ({
    uid: 'u',
    params: {},
    session: { accountId: 'a', uid: 's', cookie: 'c' },
    prompt: { name: 'login', reasons, details: extra },
  }) as unknown as Details;

describe('isStepUp', () => {
  it('is a step-up when only our mfa_required check asked', () => {
    expect(isStepUp(details(['mfa_required']))).toBe(true);
  });

  it('is a step-up for an essential acr that names urn:postern:mfa', () => {
    expect(isStepUp(details(['essential_acrs'], { acr: { essential: true, values: ['urn:postern:mfa'] } }))).toBe(true);
    expect(isStepUp(details(['essential_acr'], { acr: { essential: true, value: 'urn:postern:mfa' } }))).toBe(true);
  });

  it('is a new login for any other essential acr', () => {
    expect(isStepUp(details(['essential_acrs'], { acr: { essential: true, values: ['urn:example:loa:4'] } }))).toBe(
      false,
    );
    expect(isStepUp(details(['essential_acr'], { acr: { essential: true, value: 'urn:postern:pwd' } }))).toBe(false);
  });

  it('is a new login when the engine asks for one for another reason too (max_age, prompt=login)', () => {
    expect(isStepUp(details(['mfa_required', 'max_age']))).toBe(false);
    expect(isStepUp(details(['login_prompt']))).toBe(false);
  });
});
