import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';

/**
 * The engine offers every response type in its configuration (and discovery lists them), then
 * answers a client not registered for one with invalid_request. To that client Postern simply
 * does not support it: RFC 6749 §4.1.2.1 unsupported_response_type, sent to its redirect URI.
 */
export function refuseUnregisteredResponseTypes(provider: Provider): void {
  const Client = provider.Client.prototype as unknown as { responseTypeAllowed(this: unknown, type: string): boolean };
  const registered = Client.responseTypeAllowed;
  Client.responseTypeAllowed = function responseTypeAllowed(type) {
    if (!registered.call(this, type))
      throw new errors.UnsupportedResponseType(`response_type ${type} is not enabled for this client`);
    return true;
  };
}
