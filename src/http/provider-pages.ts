import type { ProviderPages } from '../oidc/provider.ts';
import { errorPageData, type Views } from './views.ts';

/** The engine's own pages (errors, logout confirmation, signed out) in our look and headers. */
export function createProviderPages(views: Views): ProviderPages {
  return {
    async error(ctx, out) {
      ctx.type = 'html';
      ctx.body = views.render(
        'error',
        errorPageData(out.error, out.error_description, ctx.response.get('x-request-id') || undefined),
      );
    },
    async logout(ctx, form, { confirm }) {
      ctx.type = 'html';
      const clientName = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
      ctx.body = views.render('logout', { form, host: ctx.host, clientName, confirm });
    },
    async postLogout(ctx) {
      ctx.type = 'html';
      ctx.body = views.render('logged-out', { clientName: ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId });
    },
  };
}
