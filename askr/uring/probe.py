"""One probe of what io_uring can do here, for ``askr doctor`` and --io=auto.

Everything is asked of the kernel (set-up per flag, io_uring's opcode
probe, a trial of the multishot and buffer-ring features on a real ring),
never inferred from the kernel version: distributions backport, and
seccomp or kernel.io_uring_disabled can deny a kernel that has it all.
"""

from __future__ import annotations

import errno
import os
import platform
import resource

from .ring import FEATURE_BITS, SETUP_FLAG_NAMES, SETUP_NO_SQARRAY, WANT_FLAGS

# Opcodes (enum io_uring_op in linux/io_uring.h).
OPCODES = {
    "NOP": 0,
    "POLL_ADD": 6,
    "READ": 22,
    "WRITE": 23,
    "TIMEOUT": 11,
    "ASYNC_CANCEL": 14,
    "ACCEPT": 13,
    "CLOSE": 19,
    "SEND": 26,
    "RECV": 27,
    "SPLICE": 30,
    "PROVIDE_BUFFERS": 31,
    "SEND_ZC": 47,
}

# Set-up flags that the kernel accepts only together with another one.
FLAG_NEEDS = {
    "DEFER_TASKRUN": SETUP_FLAG_NAMES["SINGLE_ISSUER"],
    "TASKRUN_FLAG": SETUP_FLAG_NAMES["COOP_TASKRUN"],
}

# The loop cannot run without these.
REQUIRED_OPS = ("ACCEPT", "RECV", "SEND", "POLL_ADD", "ASYNC_CANCEL")


def _disabled_sysctl() -> int | None:
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def probe() -> dict:
    """What io_uring offers this process, and whether the loop can use it."""
    result: dict = {
        "kernel": platform.release(),
        "io_uring_disabled": _disabled_sysctl(),
        "setup_ok": False,
        "setup_errno": None,
        "flags": {name: False for name in SETUP_FLAG_NAMES},
        "ops": {name: False for name in OPCODES},
        "features": {name: False for name in FEATURE_BITS},
        "memlock": resource.getrlimit(resource.RLIMIT_MEMLOCK)[0],
        "usable": False,
        "reason": "",
    }
    result["flags"]["NO_SQARRAY"] = False

    try:
        from ._askr_uring import ffi, lib
    except ImportError as exc:
        result["reason"] = f"native module askr.uring._askr_uring not built ({exc})"
        return result

    ret = lib.askr_probe_setup(0)
    if ret < 0:
        result["setup_errno"] = -ret
        name = errno.errorcode.get(-ret, str(-ret))
        result["reason"] = f"io_uring_setup failed: {name} ({os.strerror(-ret)})"
        if result["io_uring_disabled"]:
            disabled = result["io_uring_disabled"]
            result["reason"] += f"; kernel.io_uring_disabled={disabled}"
        return result
    result["setup_ok"] = True

    for name, bit in list(SETUP_FLAG_NAMES.items()) + [
        ("NO_SQARRAY", SETUP_NO_SQARRAY)
    ]:
        extra = FLAG_NEEDS.get(name, 0)
        result["flags"][name] = lib.askr_probe_setup(bit | extra) == 0

    names = list(OPCODES)
    ops_in = ffi.new("int[]", [OPCODES[n] for n in names])
    ops_out = ffi.new("int[]", len(names))
    if lib.askr_probe_ops(ops_in, len(names), ops_out) == 0:
        result["ops"] = {n: bool(ops_out[i]) for i, n in enumerate(names)}

    err = ffi.new("int *")
    ring = lib.askr_ring_open(8, WANT_FLAGS, 8, 4096, err)
    if ring != ffi.NULL:
        feats = lib.askr_ring_features(ring)
        result["features"] = {n: bool(feats & b) for n, b in FEATURE_BITS.items()}
        lib.askr_ring_close(ring)

    missing = [op for op in REQUIRED_OPS if not result["ops"][op]]
    if missing:
        result["reason"] = "io_uring lacks opcodes: {}".format(", ".join(missing))
    elif not result["features"]["ext_arg"]:
        result["reason"] = "io_uring lacks IORING_FEAT_EXT_ARG (kernel < 5.11)"
    else:
        result["usable"] = True
        result["reason"] = "io_uring usable"
    return result
