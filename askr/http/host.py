"""Is a Host header (or HTTP/2 :authority) a host at all?

PHP gets it as HTTP_HOST and SERVER_NAME, and frameworks build absolute
URLs and cookie domains from it, so a value that cannot be a host is
refused with 400 before PHP sees it, as nginx does.  The grammar is RFC
3986's authority without userinfo: a bracketed IP literal or a reg-name
(letters, digits, ``-._~``, sub-delims, percent-escapes), then an optional
``:port``.  ``..`` is refused too (nginx's rule: never a real name, and a
path-traversal attempt where the host names a directory).  An empty value
is allowed (RFC 9110 7.2, a target without an authority).
"""

from __future__ import annotations

import re

_HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


def valid_host(value: bytes) -> bool:
    return _HOST.fullmatch(value) is not None and b".." not in value
