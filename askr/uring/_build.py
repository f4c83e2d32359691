"""Build askr/uring/_askr_uring*.so (cffi API mode) against liburing.

API mode because most of liburing is static inline in liburing.h: only a
compiler can reach io_uring_get_sqe, the prep helpers and the CQ iterators.
Python sees the few functions of _uring_shim.c declared in CDEF, nothing
else.  Run as ``python askr/uring/_build.py`` or call ``build()``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

CDEF = """
typedef struct askr_ring askr_ring;
typedef struct askr_ev {
    int64_t kind;
    int64_t fd;
    int64_t value;
    int64_t off;
    int64_t len;
} askr_ev;

int askr_probe_setup(unsigned flags);
int askr_probe_ops(const int *ops, int n, int *ops_out);
askr_ring *askr_ring_open(unsigned entries, unsigned want_flags,
                          unsigned nbufs, unsigned bufsize, int *err);
void askr_ring_close(askr_ring *r);
unsigned askr_ring_flags(askr_ring *r);
unsigned askr_ring_features(askr_ring *r);
void askr_ring_stats(askr_ring *r, uint64_t *out);
int askr_add_listener(askr_ring *r, int fd);
void askr_set_multishot_accept(askr_ring *r, int on);
void askr_forget_features(askr_ring *r, unsigned mask);
int askr_set_accepting(askr_ring *r, int on);
int askr_accepts_armed(askr_ring *r);
int askr_arm_accept(askr_ring *r, int fd);
int askr_watch(askr_ring *r, int fd);
int askr_pause(askr_ring *r, int fd);
int askr_resume(askr_ring *r, int fd);
int askr_send(askr_ring *r, int fd, const char *buf, unsigned len);
int askr_send_file(askr_ring *r, int fd, const char *buf, unsigned len,
                   int file_fd, int64_t off, int64_t count, int more);
int askr_cancel_fd(askr_ring *r, int fd);
int askr_inflight(askr_ring *r, int fd);
void askr_forget(askr_ring *r, int fd);
int askr_ring_wait(askr_ring *r, int64_t timeout_ns, askr_ev *evs, int max,
                   char *arena, unsigned arena_size);
"""


def make_ffi() -> FFI:
    """The FFI builder for askr.uring._askr_uring."""
    ffi = FFI()
    ffi.cdef(CDEF)
    with open(os.path.join(HERE, "_uring_shim.c")) as f:
        source = f.read()
    ffi.set_source(
        "askr.uring._askr_uring",
        source,
        libraries=["uring"],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    )
    return ffi


def build(verbose: bool = False) -> str:
    """Compile the module in place; return the path of the built .so."""
    ffi = make_ffi()
    root = os.path.dirname(os.path.dirname(HERE))
    tmp = tempfile.mkdtemp(prefix="askr-uring-build-")
    try:
        built = ffi.compile(tmpdir=tmp, verbose=verbose)
        target = os.path.join(root, "askr", "uring", os.path.basename(built))
        shutil.copyfile(built, target + ".tmp")
        os.replace(target + ".tmp", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(build(verbose="-v" in sys.argv))
