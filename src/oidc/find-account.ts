import type { Account as ProviderAccount, FindAccount } from 'oidc-provider';

import type { AccountService } from '../accounts/account.service.ts';
import { accountClaims } from '../accounts/claims.ts';
import { guardDatabase } from './unavailable.ts';

/**
 * The engine asks for an account whenever it issues or serves claims. A disabled or deleted
 * account is "not found", which ends its sessions and stops userinfo (OIDC Core §5.3).
 */
export function createFindAccount(accounts: AccountService): FindAccount {
  return async (_ctx, sub): Promise<ProviderAccount | undefined> => {
    const account = await guardDatabase(() => accounts.findById(sub));
    if (!account || account.disabled) return undefined;
    return {
      accountId: account.id,
      claims: () => accountClaims(account) as { sub: string },
    };
  };
}
