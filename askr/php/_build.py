"""Build askr/php/_askr_php*.so (cffi API mode) from _askr_sapi.c.

The module is compiled against the PHP that `php-config` reports; the
environment variable ASKR_PHP_CONFIG may name another php-config.  It links
libphp (the "embed" SAPI library, e.g. /usr/lib/libphp8.2.so on Debian).

Run `python askr/php/_build.py` to build in place; askr/build.py calls
build().
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODULE = "askr.php._askr_php"

CDEF = """
typedef struct {
    void *job;
    const char *env;
    size_t env_len;
    const char *body;
    size_t body_len;
    int body_fd;
} askr_job_in;

typedef struct {
    const char *version;
    long version_id;
    int zts;
    int zend_signals;
    int debug;
    const char *extension_dir;
    const char *startup_name;
} askr_build_info;

void askr_get_build_info(askr_build_info *out);
int askr_startup(const char *ini, size_t ini_len, const char *php_ini);
int askr_run_script(void *job, const char *env, size_t env_len,
                    const char *body, size_t body_len, int body_fd);
int askr_run_worker(askr_job_in *boot);
void askr_set_request_timeout(double seconds);
void askr_shutdown(void);
void askr_install_stop_signal(void);
int askr_stop_requested(void);

extern "Python+C" int askr_py_send(void *job, int status, const char *headers,
                                   size_t headers_len, const char *data,
                                   size_t data_len, int last);
extern "Python+C" void askr_py_log(int level, const char *message,
                                   size_t message_len);
extern "Python+C" int askr_py_next_job(void *job, askr_job_in *out);
"""

INSTALL_HINT = (
    "install the PHP embed library and headers "
    "(Debian/Ubuntu: apt-get install libphp8.2-embed php8.2-dev)"
)


class PHPBuildError(RuntimeError):
    """The PHP found cannot be embedded by Askr; the message says why."""


def php_config() -> str:
    name = os.environ.get("ASKR_PHP_CONFIG", "php-config")
    path = shutil.which(name)
    if not path:
        raise PHPBuildError(f"{name} not found: {INSTALL_HINT}")
    return path


def _query(pc: str, option: str) -> str:
    out = subprocess.run([pc, option], capture_output=True, text=True, check=False)
    if out.returncode != 0 or out.stdout.startswith("Usage:"):
        return ""
    return out.stdout.strip()


def _is_zts(pc: str, include_dir: str) -> bool:
    opts = _query(pc, "--configure-options")
    if re.search(r"--enable-(maintainer-)?zts", opts):
        return True
    header = Path(include_dir, "main", "php_config.h")
    if header.exists():
        return (
            re.search(r"^#define ZTS 1", header.read_text(), re.MULTILINE) is not None
        )
    return False


def find_libphp(pc: str) -> Path:
    """The embed SAPI's shared library for this php-config."""
    version = _query(pc, "--version")
    major_minor = ".".join(version.split(".")[:2])
    major = version.split(".")[0]
    prefix = _query(pc, "--prefix") or "/usr"
    dirs = []
    lib_embed = _query(pc, "--lib-embed")
    if lib_embed:
        dirs.extend(p[2:] for p in lib_embed.split() if p.startswith("-L"))
    dirs += [
        os.path.join(prefix, "lib"),
        os.path.join(prefix, "lib64"),
        os.path.join(prefix, "lib", sysconfig.get_config_var("MULTIARCH") or ""),
    ]
    names = [f"libphp{major_minor}.so", f"libphp{major}.so", "libphp.so"]
    for d in dirs:
        for n in names:
            p = Path(d, n)
            if p.exists():
                return p
    raise PHPBuildError(
        f"no libphp*.so for PHP {version} in {', '.join(dirs)}: {INSTALL_HINT}"
    )


def make_ffi(verbose: bool = False):
    import cffi

    pc = php_config()
    include_dir = _query(pc, "--include-dir")
    includes = _query(pc, "--includes").split()
    if not include_dir or not Path(include_dir, "main", "php.h").exists():
        raise PHPBuildError(f"PHP headers missing for {pc}: {INSTALL_HINT}")
    if _is_zts(pc, include_dir):
        raise PHPBuildError(
            f"{pc} describes a thread-safe (ZTS) PHP; Askr embeds an NTS build: "
            + INSTALL_HINT
        )
    lib = find_libphp(pc)
    libname = lib.name[3:-3]

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        MODULE,
        '#include "_askr_sapi.h"',
        sources=[str(HERE / "_askr_sapi.c")],
        include_dirs=[str(HERE)] + [i[2:] for i in includes if i.startswith("-I")],
        library_dirs=[str(lib.parent)],
        runtime_library_dirs=[str(lib.parent)],
        libraries=[libname],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-parameter"],
    )
    return ffi


def build(verbose: bool = False) -> str:
    """Compile the bridge and return the path of the built module."""
    ffi = make_ffi(verbose)
    with tempfile.TemporaryDirectory(prefix="askr-php-build-") as tmp:
        built = ffi.compile(tmpdir=tmp, verbose=verbose)
        dest = HERE / Path(built).name
        shutil.copyfile(built, dest)
    return str(dest)


if __name__ == "__main__":
    try:
        print(build(verbose="-v" in sys.argv))
    except PHPBuildError as exc:
        print(f"askr: cannot build the PHP bridge: {exc}", file=sys.stderr)
        sys.exit(1)
