/** A registered client as stored: provider metadata (snake_case, as oidc-provider takes it) plus our flags. */
export interface ClientRecord {
  readonly clientId: string;
  readonly secretHash: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly firstParty: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
