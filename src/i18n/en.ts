// Every text a person reads, in English: mails now, pages as they move here. Templates name a
// text by its key and never hold wording themselves, so a translation is one more file like
// this one. `{name}` placeholders are filled by fillText (i18n/texts.ts) before escaping.
export const en = {
  mail: {
    greeting: 'Hello {name},',
    greetingNoName: 'Hello,',
    signature: '{product}',
    notYou: 'If this was not you, you can ignore this message.',
    linkFallback: 'If the button does not work, copy this address into your browser:',
    automated: 'This message was sent by {product} at {issuer}. Replies are not read.',
    verifyEmail: {
      subject: 'Confirm your email address for {product}',
      intro: 'Please confirm that this is your email address.',
      action: 'Confirm my email address',
      code: 'Or enter this code on the confirmation page: {code}',
      expiry: 'The link and the code work once and expire in {hours} hours.',
    },
    registerExisting: {
      subject: 'Someone tried to register with your address at {product}',
      intro: 'Someone tried to create a new {product} account with this email address, which already has an account.',
      advice:
        'If it was you, sign in instead, or reset your password if you have forgotten it. Your account has not been changed.',
      signIn: 'Sign in',
      reset: 'Reset my password',
    },
    resetPassword: {
      subject: 'Reset your {product} password',
      intro: 'Someone asked to reset the password of your {product} account.',
      action: 'Choose a new password',
      expiry: 'The link works once and expires in {minutes} minutes.',
      notYou: 'If you did not ask for this, ignore this message: your password stays as it is.',
    },
    passwordChanged: {
      subject: 'Your {product} password was changed',
      intro: 'The password of your {product} account was changed, and every other session was signed out.',
      notYou: 'If you did not do this, reset your password now and tell your administrator.',
      action: 'Reset my password',
    },
    unlockAccount: {
      subject: 'Unlock your {product} account',
      intro: 'Your {product} account was locked after too many failed sign-in attempts.',
      action: 'Unlock my account',
      trust: 'The link unlocks the account for the browser you open it in, and remembers that browser as yours.',
      expiry: 'The link works once and expires in {minutes} minutes.',
    },
    invite: {
      subject: 'You are invited to {product}',
      intro: 'An account was created for you at {product}. Choose a password to start using it.',
      action: 'Choose my password',
      username: 'Your username: {username}',
      expiry: 'The link works once and expires in {days} days.',
    },
    emailChangeConfirm: {
      subject: 'Confirm your new email address for {product}',
      intro: 'You asked to use this address for your {product} account instead of your current one.',
      action: 'Confirm my new address',
      expiry: 'Nothing changes until you confirm. The link works once and expires in {hours} hours.',
    },
    emailChangeNotice: {
      subject: 'Your {product} email address is being changed',
      intro: 'Someone asked to change the email address of your {product} account to {newEmail}.',
      pending: 'The change takes effect only when it is confirmed from the new address.',
      notYou: 'If this was not you, change your password now and tell your administrator.',
    },
    recoveryCodeUsed: {
      subject: 'A recovery code was used for your {product} account',
      intro: 'A recovery code was used to sign in to your {product} account.',
      remaining: 'You have {remaining} recovery codes left.',
      notYou: 'If this was not you, change your password and create new recovery codes now.',
    },
    mfaReset: {
      subject: 'Two-step verification was reset for your {product} account',
      intro:
        'The two-step verification of your {product} account was reset. You can set it up again from your account page.',
      notYou: 'If you did not ask for this, change your password now and tell your administrator.',
    },
  },
  pages: {},
} as const;

export type Texts = typeof en;
