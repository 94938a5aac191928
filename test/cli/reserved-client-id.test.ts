import { expect, it } from 'vitest';

import { expectOneLineError, run, useCliDatabase } from '../support/cli.ts';

// The account page signs people in through a built-in client, "postern-account", held in the
// engine's static configuration; a stored client with that id would be shadowed by it.
const { env } = useCliDatabase();

it('refuses to create a client with the id of the built-in account page client, in one line', async () => {
  const refused = await run(
    [
      'client',
      'create',
      '--id',
      'postern-account',
      '--grant-types',
      'authorization_code',
      '--public',
      '--redirect-uri',
      'https://app.example.com/cb',
    ],
    env,
  );
  expectOneLineError(refused, /client id "postern-account" is reserved for Postern's built-in account page/);
  const listed = await run(['client', 'list', '--json'], env);
  expect(JSON.parse(listed.stdout)).toEqual([]);
});
