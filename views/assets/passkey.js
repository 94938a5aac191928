// Passkey buttons, as a progressive enhancement: without JavaScript (or without WebAuthn) the
// pages work as they are, and these forms stay hidden. With it, a form marked data-passkey asks
// the server for options (POST with its CSRF token), runs the ceremony with
// @simplewebauthn/browser (served from our origin just before this file), puts the result in
// its hidden "credential" field and submits itself: the server answers as to any form.
(() => {
  const webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn?.browserSupportsWebAuthn()) return;

  // The form's fields go along: the server checks a new passkey's name and the password before
  // the authenticator makes anything. Undefined: the form has errors the server will show.
  async function fetchOptions(form) {
    const response = await fetch(form.dataset.options, {
      method: 'POST',
      body: new URLSearchParams(new FormData(form)),
      headers: { accept: 'application/json' },
      credentials: 'same-origin',
    });
    if (response.status === 400) return undefined;
    if (!response.ok) throw new Error(`options: ${response.status}`);
    return response.json();
  }

  function say(form, text) {
    const status = form.querySelector('[data-passkey-status]');
    if (status) {
      status.textContent = text;
      status.hidden = false;
    }
  }

  function enhance(form, ceremony) {
    for (const hidden of document.querySelectorAll('[data-passkey-fallback]')) hidden.hidden = true;
    form.hidden = false;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      // A field left empty (the name of a new passkey, the password): the server says so, as
      // for any form, before a passkey is made for nothing.
      const empty = [...form.querySelectorAll('input[required]')].some((input) => input.value.trim() === '');
      if (empty) return form.submit();
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      try {
        const optionsJSON = await fetchOptions(form);
        if (!optionsJSON) return form.submit();
        const credential = await ceremony({ optionsJSON });
        form.elements.credential.value = JSON.stringify(credential);
        const remember = document.querySelector('input[name="remember"][type="checkbox"]');
        if (form.elements.remember && remember) form.elements.remember.value = remember.checked ? 'yes' : '';
        form.submit();
      } catch {
        // Cancelled, timed out, or no passkey for this site: the person may try again.
        say(form, form.dataset.failed);
        button.disabled = false;
      }
    });
  }

  // The login page's passwordless button, or the second step's "Use a passkey".
  const signIn = document.querySelector('form[data-passkey="sign-in"], form[data-passkey="second-factor"]');
  if (signIn) enhance(signIn, webauthn.startAuthentication);
  const register = document.querySelector('form[data-passkey="register"]');
  if (register) enhance(register, webauthn.startRegistration);
})();
