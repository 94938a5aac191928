import { randomUUID } from 'node:crypto';

import type { Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import { PosternError } from '../shared/errors.ts';
import type { Account, Profile } from './account.ts';
import {
  findAccountById, findAccountByLogin, findAccountForLogin, insertAccount, listAccounts, updateAccount,
} from './account.repository.ts';
import type { PasswordHasher } from './password-hasher.ts';
import { checkPassword } from './password-policy.ts';

export interface NewAccount {
  readonly username: string;
  readonly email: string;
  readonly password: string;
  readonly emailVerified?: boolean;
  readonly profile?: Profile;
  readonly roles?: readonly string[];
}

/** Why a sign-in failed: for logs and audit only; the person always sees one generic message. */
export type LoginFailure = 'unknown_account' | 'wrong_password' | 'disabled' | 'no_password';
export type LoginResult = { ok: true; account: Account } | { ok: false; reason: LoginFailure; account?: Account };

export interface AccountService {
  create(input: NewAccount): Promise<Account>;
  findById(id: string): Promise<Account | undefined>;
  findByLogin(login: string): Promise<Account | undefined>;
  list(): Promise<Account[]>;
  setDisabled(login: string, disabled: boolean): Promise<Account>;
  setPassword(login: string, password: string): Promise<Account>;
  authenticate(login: string, password: string): Promise<LoginResult>;
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@]{1,63}$/;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/;

function invalid(message: string): never {
  throw new PosternError('ERR_INVALID_INPUT', message);
}

function validateNewAccount(input: NewAccount): void {
  if (!USERNAME.test(input.username)) invalid('username must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  if (!EMAIL.test(input.email)) invalid(`"${input.email}" is not an email address`);
  if (input.username.includes('@')) invalid('username must not contain "@"');
  for (const role of input.roles ?? []) if (!ROLE.test(role)) invalid(`"${role}" is not a valid role name`);
  checkPassword(input.password, input);
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}

export function createAccountService(deps: { db: Kysely<Database>; hasher: PasswordHasher; clock: Clock }): AccountService {
  const { db, hasher, clock } = deps;

  async function mustFind(login: string): Promise<Account> {
    const account = await findAccountByLogin(db, login) ?? await findAccountById(db, login);
    if (!account) throw new PosternError('ERR_NOT_FOUND', `no account "${login}"`);
    return account;
  }

  return {
    async create(input) {
      validateNewAccount(input);
      const passwordHash = await hasher.hash(input.password);
      try {
        return await insertAccount(db, {
          id: randomUUID(),
          username: input.username,
          email: input.email,
          email_verified: input.emailVerified ?? false,
          password_hash: passwordHash,
          profile: JSON.stringify(input.profile ?? {}),
          roles: [...(input.roles ?? [])],
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw new PosternError('ERR_DUPLICATE', 'an account with that username or email already exists');
        throw error;
      }
    },
    findById: (id) => findAccountById(db, id),
    findByLogin: (login) => findAccountByLogin(db, login),
    list: () => listAccounts(db),
    async setDisabled(login, disabled) {
      const account = await mustFind(login);
      return (await updateAccount(db, account.id, { disabled }))!;
    },
    async setPassword(login, password) {
      const account = await mustFind(login);
      checkPassword(password, account);
      return (await updateAccount(db, account.id, { password_hash: await hasher.hash(password) }))!;
    },
    async authenticate(login, password) {
      const found = login.length <= 320 ? await findAccountForLogin(db, login) : undefined;
      if (!found?.passwordHash) {
        // Same work as a real check, so timing does not tell which accounts exist.
        await hasher.verifyDummy(password);
        return found ? { ok: false, reason: 'no_password', account: found.account } : { ok: false, reason: 'unknown_account' };
      }
      const { ok, needsRehash } = await hasher.verify(found.passwordHash, password);
      if (!ok) return { ok: false, reason: 'wrong_password', account: found.account };
      if (found.account.disabled) return { ok: false, reason: 'disabled', account: found.account };
      const update = needsRehash ? { password_hash: await hasher.hash(password) } : {};
      const account = await updateAccount(db, found.account.id, { ...update, last_login_at: clock.now() });
      return { ok: true, account: account ?? found.account };
    },
  };
}
