/** An account as the rest of Postern sees it. */
export interface Account {
  readonly id: string;
  readonly username: string;
  readonly email: string;
  readonly emailVerified: boolean;
  readonly profile: Profile;
  readonly roles: readonly string[];
  readonly disabled: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly lastLoginAt: Date | null;
}

export interface Profile {
  readonly name?: string;
  readonly givenName?: string;
  readonly familyName?: string;
}
