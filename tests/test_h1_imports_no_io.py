"""The HTTP layer stays sans-IO: importing it loads no socket, ssl, loop or
PHP module (checked in a fresh interpreter)."""

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
import askr.http.docroot, askr.http.errors, askr.http.h1, askr.http.mime
import askr.http.static
bad = {"socket", "ssl", "askr.uring", "askr.php"} & set(sys.modules)
print(sorted(bad))
"""


def test_http_layer_imports_no_io_modules():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True,
                         text=True, timeout=60, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]"
