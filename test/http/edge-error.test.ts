import { errors } from 'oidc-provider';
import { describe, expect, it } from 'vitest';

import { describeError, renderError, STATUS_BY_CODE } from '../../src/http/edge-error.ts';
import { createViews } from '../../src/http/views.ts';
import { invalid, PosternError } from '../../src/shared/errors.ts';

// One error object, three answers: a page for people, an OAuth error for clients of the
// protocol (RFC 6749 §5.2), problem details for the admin API (RFC 9457).
const ISSUER = 'https://id.example.com';
const views = createViews();
const page = { views, requestId: 'req-1' };

function thrown(fn: () => never): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('nothing thrown');
}

describe('an invalid field', () => {
  const e = describeError(thrown(() => invalid('username must not contain "@"', 'username')));

  it('is a 400 invalid_request whatever the format', () => {
    expect(e).toMatchObject({ status: 400, error: 'invalid_request' });
  });

  it('renders as a readable page that says what is wrong', () => {
    const { type, body } = renderError(e, 'page', page);
    expect(type).toBe('html');
    expect(body).toContain('username must not contain &quot;@&quot;');
    expect(body).toContain('<code>invalid_request</code>');
    expect(body).toContain('req-1');
  });

  it('renders as an OAuth error', () => {
    expect(renderError(e, 'oauth', page)).toEqual({
      type: 'json',
      body: { error: 'invalid_request', error_description: 'username must not contain "@"' },
    });
  });

  it('renders as problem details with a stable type per code and the field at fault', () => {
    expect(renderError(e, { problem: { issuer: ISSUER } }, page)).toEqual({
      type: 'application/problem+json',
      body: {
        type: 'https://id.example.com/problems/invalid-input',
        title: 'Bad Request',
        status: 400,
        detail: 'username must not contain "@"',
        errors: [{ field: 'username', detail: 'username must not contain "@"' }],
      },
    });
  });
});

describe('the edge', () => {
  it('maps each of our codes to its status', () => {
    expect(describeError(new PosternError('ERR_DUPLICATE', 'a client "x" already exists'))).toMatchObject({
      status: 409,
      problem: 'duplicate',
    });
    expect(STATUS_BY_CODE.ERR_NOT_FOUND).toBe(404);
  });

  it("answers the engine's errors with their own status and code; SessionNotFound is an expired page", () => {
    const forbidden = describeError(new errors.InvalidRequest('the form has expired; please start again', 403));
    expect(renderError(forbidden, 'oauth', page).body).toEqual({
      error: 'invalid_request',
      error_description: 'the form has expired; please start again',
    });
    expect(forbidden.status).toBe(403);
    const expired = describeError(new errors.SessionNotFound('interaction session not found'));
    expect(expired).toMatchObject({ status: 400, error: 'session_not_found' });
    expect(renderError(expired, 'page', page).body).toContain('This sign-in page has expired');
  });

  it('says nothing of a failure of its own, in any format', () => {
    const e = describeError(new Error('connection string has a password in it'));
    expect(renderError(e, 'oauth', page).body).toEqual({ error: 'server_error' });
    expect(renderError(e, { problem: { issuer: ISSUER } }, page).body).toEqual({
      type: 'https://id.example.com/problems/server-error',
      title: 'Internal Server Error',
      status: 500,
    });
    expect(renderError(e, 'page', page).body).not.toContain('password');
    // Our own server-side codes hide their message too.
    const mismatch = describeError(new PosternError('ERR_SECRET_MISMATCH', 'the secret in /etc/x does not open'));
    expect(renderError(mismatch, 'oauth', page).body).toEqual({ error: 'server_error' });
  });

  it('answers a lost database as 503 temporarily_unavailable', () => {
    const lost = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(renderError(describeError(lost), 'oauth', page).body).toEqual({ error: 'temporarily_unavailable' });
  });
});
