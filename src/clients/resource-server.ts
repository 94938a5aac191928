/** An API that accepts Postern's access tokens, named by its resource indicator (RFC 8707). */
export interface ResourceServer {
  readonly identifier: string;
  readonly scopes: readonly string[];
  readonly accessTokenTtl: number;
  readonly tokenFormat: 'jwt' | 'opaque';
  readonly signingAlg: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
