// The sign-out page for a request whose id_token_hint is this very session's: nothing to ask
// (RP-Initiated Logout 1.0 §2), so press "Continue" for the person. Served from our origin so
// that the page keeps its strict CSP (script-src 'self', no inline script); without JavaScript
// the button is still there.
document.querySelector('button[data-auto-submit]')?.click();
