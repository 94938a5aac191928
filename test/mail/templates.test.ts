import { describe, expect, it } from 'vitest';

import { createMailRenderer, MAIL_TEMPLATES, type MailTemplateData } from '../../src/mail/templates.ts';

const issuer = 'https://id.example.com/idp';
const renderer = createMailRenderer({ issuer, publicName: 'Acme <ID>' });
const link = renderer.link('/x', { token: 't' });

// One sample per template: the data a feature passes.
const SAMPLES: { [T in keyof MailTemplateData]: MailTemplateData[T] } = {
  'verify-email': { name: 'Ann', link, code: '123456', hours: 24 },
  'register-existing': { name: 'Ann', signInLink: link, resetLink: link },
  'reset-password': { name: 'Ann', link, minutes: 30 },
  'password-changed': { name: 'Ann', resetLink: link },
  'unlock-account': { name: 'Ann', link, minutes: 30 },
  invite: { name: 'Ann', link, days: 7, username: 'ann' },
  'email-change-confirm': { name: 'Ann', link, hours: 24 },
  'email-change-notice': { name: 'Ann', newEmail: 'ann@new.example' },
  'recovery-code-used': { name: 'Ann', remaining: 7 },
  'mfa-reset': { name: 'Ann' },
  'totp-enrolled': { name: 'Ann' },
  'totp-disabled': { name: 'Ann' },
  'recovery-codes-regenerated': { name: 'Ann' },
  'passkey-added': { name: 'Ann', passkey: 'Work laptop' },
  'passkey-removed': { name: 'Ann', passkey: 'Work laptop' },
};

describe('mail templates', () => {
  it.each(MAIL_TEMPLATES)('%s has a subject, a text part and an HTML part with no remote resource', (template) => {
    const mail = renderer.render(template, SAMPLES[template] as never);

    expect(mail.subject).toContain('Acme <ID>');
    expect(mail.text).toMatch(/^Hello Ann,\n/);
    expect(mail.text).toContain('-- \nThis message was sent by Acme <ID> at https://id.example.com/idp.');
    expect(mail.html).toMatch(/^<!doctype html>/);
    expect(mail.html).toContain('Acme &lt;ID&gt;');
    expect(mail.html).not.toMatch(/<img|<link|<script|src=/i);
    if ('link' in SAMPLES[template]) {
      expect(mail.text).toContain(link);
      expect(mail.html).toContain(`href="${link}"`);
    }
  });

  it('escapes what people typed in the HTML part', () => {
    const mail = renderer.render('mfa-reset', { name: '<a href="https://evil.example">x</a>' });

    expect(mail.html).not.toContain('<a href="https://evil.example">');
    expect(mail.html).toContain('&lt;a href=&quot;https://evil.example&quot;&gt;');
  });

  it('refuses a link that is not under the issuer', () => {
    expect(() =>
      renderer.render('reset-password', { link: 'https://id.example.com/other/reset?token=t', minutes: 30 }),
    ).toThrow(/link must be a link under the issuer/);
    expect(renderer.link('/reset', { token: 'a b' })).toBe('https://id.example.com/idp/reset?token=a+b');
  });

  it('keeps CR and LF out of the subject', () => {
    const mail = createMailRenderer({ issuer, publicName: 'A' }).render('mfa-reset', {});

    expect(mail.subject).not.toMatch(/[\r\n]/);
  });
});
