"""What never leaves the tool: API keys and the passwords of URLs.

One definition for every message, `--json` report and ledger column: `redact` for free text (a
server's error message, an exception's text), `public_url` for a URL the tool shows or stores
(the service a ledger row belongs to). `OPENAI_BASE_URL=http://alice:secret@host/v1` works, and
only `http://host/v1` is ever printed or recorded.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from openai_batch import settings

REDACTED = "<redacted>"

_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,}|[A-Fa-f0-9]{32})\b")
_BEARER_PATTERN = re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
# scheme://user[:password]@ : the userinfo of any URL inside a text
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@:]*(?::[^\s/@]*)?@")
# user:password@host written without a scheme (`alice:secret@host/v1`)
_BARE_USERINFO = re.compile(r"(?<![\w/:@.\-])[^\s/@:'\"]+:[^\s/@'\"]*@(?=[\w\[])")


def redact(text: str, *secrets: str) -> str:
    """Remove anything that is, or looks like, an API key (or `secrets`), a bearer token or a
    URL's user name and password from a message."""
    for value in (*settings.secrets(), *secrets):
        if value and len(value.strip()) >= 8:
            text = text.replace(value.strip(), REDACTED)
    text = _USERINFO.sub(r"\1", text)
    text = _BARE_USERINFO.sub("", text)
    text = _BEARER_PATTERN.sub(rf"\1{REDACTED}", text)
    return _KEY_PATTERN.sub(REDACTED, text)


def public_url(url: str) -> str:
    """The URL without its user name and password (what may be shown, stored or compared)."""
    if "://" not in url:  # not a URL this function can take apart: `alice:secret@host`
        return redact(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))
