"""Run a command with io_uring_setup(2) denied by a seccomp filter.

Usage: python no_uring.py [--errno ENOSYS|EPERM] COMMAND [ARG...]

Kernels before 6.6 have no kernel.io_uring_disabled knob, so the kernel
matrix proves the epoll fallback there by installing a classic-BPF seccomp
filter that makes io_uring_setup fail, then exec'ing the command.  The
filter is inherited by every child and survives exec (no_new_privs is set
first, as the kernel demands of an unprivileged filter), so pytest and the
workers it forks all see a kernel "without io_uring".  ENOSYS mimics a
kernel built without it; EPERM mimics io_uring_disabled=2.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
AUDIT_ARCH_X86_64 = 0xC000003E
NR_IO_URING_SETUP = 425  # the same number on every architecture since 5.1

# Classic BPF opcodes: BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K.
LD_ABS_W = 0x20
JEQ_K = 0x15
RET_K = 0x06

# Offsets into struct seccomp_data.
OFF_NR = 0
OFF_ARCH = 4


class SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def program(err: int) -> list[tuple[int, int, int, int]]:
    """The filter: on x86-64, io_uring_setup returns -err; all else passes."""
    return [
        (LD_ABS_W, 0, 0, OFF_ARCH),
        # Another ABI (i386 emulation): not ours to judge, allow (jump to 5).
        (JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        (LD_ABS_W, 0, 0, OFF_NR),
        (JEQ_K, 0, 1, NR_IO_URING_SETUP),
        (RET_K, 0, 0, SECCOMP_RET_ERRNO | (err & 0xFFFF)),
        (RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]


def install(err: int = errno.ENOSYS) -> None:
    """Install the filter on the calling thread (and so its future children)."""
    libc = ctypes.CDLL(None, use_errno=True)
    insns = program(err)
    array = (SockFilter * len(insns))(*(SockFilter(*i) for i in insns))
    prog = SockFprog(len(insns), array)

    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, "prctl(PR_SET_NO_NEW_PRIVS): " + os.strerror(code))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0):
        code = ctypes.get_errno()
        raise OSError(code, "prctl(PR_SET_SECCOMP): " + os.strerror(code))


def main(argv: list[str]) -> int:
    err = errno.ENOSYS
    if argv[:1] == ["--errno"]:
        err = getattr(errno, argv[1])
        argv = argv[2:]
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2

    install(err)
    os.execvp(argv[0], argv)
    return 127  # not reached: execvp raises on failure


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
