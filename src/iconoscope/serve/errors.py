"""Errors the web layer turns into 4xx responses with the message as is (never a stack trace).

The library raises these with a message that names the record, image or parameter at fault, so the same text
reaches a curator's browser, an API client and the log.
"""

from __future__ import annotations

from iconoscope.errors import IconoscopeError


class ServeError(IconoscopeError):
    """A client-side problem: ``status`` is the HTTP status the web layer answers with."""

    status = 400


class BadRequest(ServeError):
    status = 400


class NotFound(ServeError):
    status = 404


class Unauthorized(ServeError):
    status = 401


class Forbidden(ServeError):
    status = 403


class NotAcceptable(ServeError):
    status = 406


class TooLarge(ServeError):
    status = 413


class Unavailable(ServeError):
    """The server cannot answer now (query time limit reached, all query slots busy)."""

    status = 503


class UnsupportedMediaType(ServeError):
    status = 415
