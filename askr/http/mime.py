"""Content-Type by file extension for static files.

A fixed table rather than the ``mimetypes`` module: that one reads
/etc/mime.types, so answers would change with the host's packages.  Text
types carry ``charset=utf-8`` (what front-end build tools emit).
"""

DEFAULT = b"application/octet-stream"

_UTF8 = "; charset=utf-8"

TYPES: dict[str, bytes] = {ext: ctype.encode() for ext, ctype in {
    "html": "text/html" + _UTF8,
    "htm": "text/html" + _UTF8,
    "css": "text/css" + _UTF8,
    "js": "text/javascript" + _UTF8,
    "mjs": "text/javascript" + _UTF8,
    "txt": "text/plain" + _UTF8,
    "csv": "text/csv" + _UTF8,
    "md": "text/markdown" + _UTF8,
    "xml": "application/xml",
    "json": "application/json",
    "map": "application/json",
    "webmanifest": "application/manifest+json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/x-icon",
    "bmp": "image/bmp",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    "wasm": "application/wasm",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "gz": "application/gzip",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "mp4": "video/mp4",
    "webm": "video/webm",
}.items()}


def content_type(path: str) -> bytes:
    """The Content-Type value for ``path`` (by its last extension)."""
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return DEFAULT
    return TYPES.get(path[dot + 1:].lower(), DEFAULT)
