"""Who may write, and how the browser proves a form is ours: tokens, sessions, CSRF, safe redirects, headers.

Reading is open (a collection's intranet); every write (a review decision, a SPARQL UPDATE) needs the workspace
token, given either as ``Authorization: Bearer TOKEN`` (API clients, scripts) or once on the login page, which
sets a signed, HttpOnly, SameSite=Strict session cookie. A cookie alone never authorises a write: each form post
or fetch also carries a CSRF token (an HMAC of a per-browser random cookie), which a page on another site cannot
read or forge. Secrets are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from iconoscope.serve.errors import Forbidden, Unauthorized

CSRF_COOKIE = "ico_csrf"
SESSION_COOKIE = "ico_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
USER_HEADER = "x-iconoscope-user"

# Applied to every response. No inline script or style anywhere in the templates, so 'self' suffices.
SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def resolve_token(config_token: str | None, token_env: str | None) -> str | None:
    """The write token: ``[serve] token`` in the config, else the environment variable it names."""
    if config_token:
        return config_token
    if token_env:
        value = os.environ.get(token_env, "").strip()
        return value or None
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Security:
    """Token check, signed sessions and CSRF tokens for one app instance."""

    token: str | None
    secret: bytes
    session_ttl_s: int = 12 * 3600

    @classmethod
    def create(cls, token: str | None, secret: bytes | None = None) -> Security:
        return cls(token=token, secret=secret or secrets.token_bytes(32))

    @property
    def writes_enabled(self) -> bool:
        return bool(self.token)

    def _mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self.secret, f"{purpose}\0{value}".encode(), hashlib.sha256).digest())

    def token_ok(self, supplied: str | None) -> bool:
        if not self.token or not supplied:
            return False
        return hmac.compare_digest(supplied.encode("utf-8"), self.token.encode("utf-8"))

    # ---- CSRF (HMAC of the browser's random ico_csrf cookie)
    @staticmethod
    def new_seed() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, seed: str) -> str:
        return self._mac("csrf", seed)

    def csrf_ok(self, seed: str | None, supplied: str | None) -> bool:
        if not seed or not supplied:
            return False
        return hmac.compare_digest(self.csrf_token(seed).encode(), supplied.encode("utf-8", "replace"))

    # ---- sessions
    def make_session(self, user: str) -> str:
        payload = _b64(json.dumps({"u": user, "exp": int(time.time()) + self.session_ttl_s}).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def read_session(self, cookie: str | None) -> str | None:
        """The user of a valid, unexpired session cookie, else None."""
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac.encode(), self._mac("session", payload).encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(data, dict) or int(data.get("exp", 0)) < time.time():
            return None
        user = data.get("u")
        return user if isinstance(user, str) else None

    # ---- writers
    def writer(self, *, authorization: str | None, session_cookie: str | None, csrf_seed: str | None,
               csrf_supplied: str | None, origin_ok: bool, user_header: str | None = None) -> str:
        """The user a write is attributed to, or Unauthorized/Forbidden with the reason."""
        if not self.writes_enabled:
            raise Forbidden("writes are disabled on this server: set the token ([serve] token_env, default "
                            "ICONOSCOPE_TOKEN) and restart it")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not self.token_ok(value.strip()):
                raise Unauthorized("invalid token in the Authorization header (expected 'Bearer TOKEN')")
            return user_header or "api"
        user = self.read_session(session_cookie)
        if user is None:
            raise Unauthorized("this needs the write token: sign in at /login, or send 'Authorization: Bearer TOKEN'")
        if not origin_ok:
            raise Forbidden("cross-site request refused (Origin does not match this server)")
        if not self.csrf_ok(csrf_seed, csrf_supplied):
            raise Forbidden("missing or invalid CSRF token: reload the page and try again")
        return user


def same_origin(origin: str | None, host: str | None) -> bool:
    """True when there is no Origin header (same-site navigation, non-browser client) or it names this host."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to redirect to after a form: never another site (no scheme, no //host, no backslash)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return default
    return target
