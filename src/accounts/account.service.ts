import { randomUUID } from 'node:crypto';

import type { Kysely } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import { isUniqueViolation } from '../db/unique-violation.ts';
import { invalid, PosternError } from '../shared/errors.ts';
import type { Account, Profile } from './account.ts';
import {
  compileFindAccountById,
  findAccountById,
  findAccountByLogin,
  insertAccount,
  listAccountPage,
  listAccounts,
  updateAccount,
  type AccountPageQuery,
} from './account.repository.ts';
import type { PasswordHasher } from './password-hasher.ts';
import { checkPassword } from './password-policy.ts';
import { clearAccountThrottles } from './throttle.repository.ts';

export interface NewAccount {
  readonly username: string;
  readonly email: string;
  /** None for an invited account: its owner chooses one through the emailed link. */
  readonly password?: string;
  readonly emailVerified?: boolean;
  readonly profile?: Profile;
  readonly roles?: readonly string[];
}

/** What an administrator may change of an account besides its password and status. */
export interface AccountChanges {
  readonly profile?: Profile;
  readonly roles?: readonly string[];
  readonly emailVerified?: boolean;
}

export type { AccountPageQuery } from './account.repository.ts';

/** An account changed in a way that ends its sessions, with what ending them did. */
export interface AccessRevoked<Revoked> {
  readonly account: Account;
  /** What revokeAccess returned (the session admin's logout result: back-channel deliveries). */
  readonly revoked: Revoked | undefined;
}

export interface AccountService<Revoked = unknown> {
  create(input: NewAccount): Promise<Account>;
  findById(id: string): Promise<Account | undefined>;
  findByLogin(login: string): Promise<Account | undefined>;
  list(): Promise<Account[]>;
  /** One page by username, optionally filtered (the admin API's list). */
  listPage(query: AccountPageQuery): Promise<Account[]>;
  /** By username, email or id, as the CLI and the admin API name accounts; ERR_NOT_FOUND if none. */
  get(login: string): Promise<Account>;
  /** Profile, roles or email verification; what is not given stays as it was. */
  update(login: string, changes: AccountChanges): Promise<Account>;
  setDisabled(login: string, disabled: boolean): Promise<AccessRevoked<Revoked>>;
  setPassword(login: string, password: string): Promise<AccessRevoked<Revoked>>;
  /** Clears every sign-in lock and counter of the account; returns how many were cleared. */
  unlock(login: string): Promise<{ account: Account; cleared: number }>;
}

export const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@]{1,63}$/;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/;

function checkRoles(roles: readonly string[]): void {
  for (const role of roles) if (!ROLE.test(role)) invalid(`"${role}" is not a valid role name`, 'roles');
}

export function validateNewAccount(input: NewAccount): void {
  if (!USERNAME.test(input.username))
    invalid('username must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  if (!EMAIL.test(input.email)) invalid(`"${input.email}" is not an email address`);
  if (input.username.includes('@')) invalid('username must not contain "@"');
  checkRoles(input.roles ?? []);
  if (input.password !== undefined) checkPassword(input.password, input);
}

export function createAccountService<Revoked = unknown>(deps: {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  audit: AuditLog;
  /** Ends the account's sessions and revokes its grants (wired by the container to the session admin). */
  revokeAccess: (accountId: string, reason: string) => Promise<Revoked>;
}): AccountService<Revoked> {
  const { db, hasher, audit } = deps;

  async function mustFind(login: string): Promise<Account> {
    const account = (await findAccountByLogin(db, login)) ?? (await findAccountById(db, login));
    if (!account) throw new PosternError('ERR_NOT_FOUND', `no account "${login}"`);
    return account;
  }

  return {
    async create(input) {
      validateNewAccount(input);
      const passwordHash = input.password === undefined ? null : await hasher.hash(input.password);
      try {
        const account = await insertAccount(db, {
          id: randomUUID(),
          username: input.username,
          email: input.email,
          email_verified: input.emailVerified ?? false,
          password_hash: passwordHash,
          profile: JSON.stringify(input.profile ?? {}),
          roles: [...(input.roles ?? [])],
        });
        audit.record({ type: 'account.created', accountId: account.id, details: { username: account.username } });
        return account;
      } catch (error) {
        if (isUniqueViolation(error))
          throw new PosternError('ERR_DUPLICATE', 'an account with that username or email already exists');
        throw error;
      }
    },
    findById: compileFindAccountById(db),
    findByLogin: (login) => findAccountByLogin(db, login),
    list: () => listAccounts(db),
    listPage: (query) => listAccountPage(db, query),
    get: mustFind,
    async update(login, changes) {
      const account = await mustFind(login);
      if (changes.roles) checkRoles(changes.roles);
      const updated = (await updateAccount(db, account.id, {
        ...(changes.profile ? { profile: JSON.stringify(changes.profile) } : {}),
        ...(changes.roles ? { roles: [...new Set(changes.roles)] } : {}),
        ...(changes.emailVerified !== undefined ? { email_verified: changes.emailVerified } : {}),
      }))!;
      audit.record({
        type: 'account.updated',
        accountId: account.id,
        details: { changed: Object.keys(changes), ...(changes.roles ? { roles: updated.roles } : {}) },
      });
      return updated;
    },
    async setDisabled(login, disabled) {
      const account = await mustFind(login);
      const updated = (await updateAccount(db, account.id, { disabled }))!;
      audit.record({ type: disabled ? 'account.disabled' : 'account.enabled', accountId: account.id });
      const revoked = disabled ? await deps.revokeAccess(account.id, 'account disabled') : undefined;
      return { account: updated, revoked };
    },
    async setPassword(login, password) {
      const account = await mustFind(login);
      checkPassword(password, account);
      const updated = (await updateAccount(db, account.id, { password_hash: await hasher.hash(password) }))!;
      audit.record({ type: 'account.password_changed', accountId: account.id });
      const revoked = await deps.revokeAccess(account.id, 'password changed');
      return { account: updated, revoked };
    },
    async unlock(login) {
      const account = await mustFind(login);
      const cleared = await clearAccountThrottles(db, account.id);
      audit.record({ type: 'account.unlocked', accountId: account.id, details: { cleared } });
      return { account, cleared };
    },
  };
}
