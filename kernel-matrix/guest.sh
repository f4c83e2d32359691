#!/bin/sh
# One matrix cell: doctor --json, the backend --io=auto picks, and the
# event-loop tests, with their outputs written to OUT.  Run inside the VM
# (chrooted into the host's root, mounted read-only) or on the host itself.
#
# usage: guest.sh OUT on|off
#   off: io_uring denied.  With KM_IN_VM=1 (only inside a VM, never on the
#   shared host) and a kernel that has kernel.io_uring_disabled (6.6+), the
#   knob is set to 2; otherwise no_uring.py's seccomp filter denies
#   io_uring_setup for every process of the cell.

out=$1
mode=$2
here=$(cd "$(dirname "$0")" && pwd)
project=$(dirname "$here")
py=$project/.venv/bin/python
[ -x "$py" ] || py=python3

cd "$project" || exit 1
export PYTHONDONTWRITEBYTECODE=1 HOME=/tmp TMPDIR=/tmp
uname -r >"$out/uname.txt"
if [ "$KM_IN_VM" = 1 ]; then
    # A booted kernel starts init with RLIMIT_NOFILE 1024/4096; give the cell
    # the host's open-file limit so only the kernel differs, not the limits.
    # RLIMIT_MEMLOCK stays the kernel's default on purpose: before 5.12 it
    # bounds io_uring's ring memory, which is part of what is tested.
    ulimit -n "${KM_NOFILE:-20000}" || echo "cannot raise nofile" >&2
fi
ulimit -n >"$out/nofile.txt"
ulimit -l >"$out/memlock.txt"

wrap=""
how=none
if [ "$mode" = off ]; then
    knob=/proc/sys/kernel/io_uring_disabled
    if [ "$KM_IN_VM" = 1 ] && [ -e $knob ] && echo 2 >$knob; then
        how=sysctl
    else
        wrap="$py $here/no_uring.py"
        how=seccomp
    fi
fi
echo "$how" >"$out/disable.txt"

start=$(date +%s)
timeout 300 $wrap "$py" -m askr.cli doctor --json >"$out/doctor.json" \
    2>"$out/doctor.err"
echo $? >"$out/doctor.rc"

timeout 120 $wrap "$py" -c '
import json, logging
from askr.uring import open_backend
be = open_backend("auto", log=lambda level, msg: None)
print(json.dumps({"name": be.name, "reason": be.reason}))
be.shutdown()
' >"$out/backend.json" 2>"$out/backend.err"
echo $? >"$out/backend.rc"

# The host may narrow the selection (kernel-matrix/run --tests ...).
tests="tests/test_loop_*.py"
[ -s "$out/pytest-args" ] && tests=$(cat "$out/pytest-args")
# shellcheck disable=SC2086 # $tests is a list of pytest arguments
timeout "${KM_PYTEST_TIMEOUT:-1200}" $wrap "$py" -m pytest -p no:cacheprovider \
    -q --timeout=180 --junitxml="$out/junit.xml" $tests \
    >"$out/pytest.log" 2>&1
echo $? >"$out/pytest.rc"
echo $(($(date +%s) - start)) >"$out/seconds.txt"
echo done >"$out/finished"
