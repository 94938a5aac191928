import { afterAll, beforeAll, expect, it } from 'vitest';

import { isPosternError } from '../../src/shared/errors.ts';
import { createTestClock, type TestServer } from '../support/server.ts';
import { passkeyServiceOn, startServerOnOwnDatabase } from '../support/setup.ts';

// The password asked before adding a passkey on the account page is counted like a sign-in
// (review of issue 14, finding 3): a session holder gets no unlimited password oracle.

const PASSWORD = 'a long enough passphrase';
let server: TestServer;
const clock = createTestClock();

beforeAll(async () => {
  server = await startServerOnOwnDatabase({ POSTERN_ACCOUNT_LOCKOUT_THRESHOLD: '6' }, { clock });
});

afterAll(async () => {
  await server?.close();
});

it('wrong passwords before adding a passkey lock the account counter: then even the right one is refused', async () => {
  const { container } = server;
  const passkeys = passkeyServiceOn(server, clock, 'https://id.example.com');
  const ann = await container.accounts.create({ username: 'ann', email: 'ann@example.com', password: PASSWORD });
  const options = (password: string) =>
    passkeys.registrationOptions(ann, 'account:x', { name: 'Key', password }).then(
      () => 'ok',
      (error: unknown) => (isPosternError(error, 'ERR_INVALID_INPUT') ? error.fields[0]?.detail : 'other'),
    );
  for (let i = 0; i < 6; i += 1) expect(await options(`guess ${i}`)).toBe('the password is not correct');
  expect(await options(PASSWORD)).toBe('too many wrong passwords; try again later');
  expect(await container.audit.query({ type: 'lockout.started', accountId: ann.id })).toMatchObject([
    { details: { scope: 'account' } },
  ]);
});
