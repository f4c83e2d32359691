"""Runs the PHP bridge in its own process for the bridge tests.

The bridge holds one PHP interpreter per process, and a crash in C must not
take pytest down, so each test module drives one of these over pipes: one
JSON command per line on stdin, one JSON answer per line on stdout.  Bodies
travel as latin-1 strings.

Commands:
  {"op": "startup", "ini": "...", "timeout": 0}
  {"op": "run", "job": JOB}                       classic request
  {"op": "worker", "boot": JOB, "jobs": [JOB...], "rss_at": [100, 1000]}
  {"op": "rss"}, {"op": "install_stop"}, {"op": "stop_requested"}
JOB = {"env": [[k, v], ...], "body": "...", "body_file": path|null,
       "abort_after": n|null}
Answer to run: {"sends": [[status, headers|null, data, last], ...],
                "logs": [[level, msg], ...]}
"""

from __future__ import annotations

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from askr.php import bridge

LOGS: list[list] = []
TMP_RE = re.compile(rb"TMP:(\S+)")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Job:
    def __init__(self, spec: dict, queue: list | None = None, state=None) -> None:
        self.env = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in spec["env"]]
        self.body = spec.get("body", "").encode("latin-1")
        self.body_fd = -1
        if spec.get("body_file"):
            self.body_fd = os.open(spec["body_file"], os.O_RDONLY)
        self.abort_after = spec.get("abort_after")
        self.sends: list = []
        self.queue = queue
        self.state = state

    def send(self, status, headers, data, last) -> bool:
        self.sends.append(
            [
                status,
                None if headers is None else [h.decode("latin-1") for h in headers],
                data.decode("latin-1"),
                # The bridge's last: 0 more to come, 1 complete, 2
                # complete at fastcgi_finish_request() (PHP runs on).
                {0: False, 1: True, 2: "early"}[last],
            ]
        )
        if last and self.body_fd >= 0:
            os.close(self.body_fd)
            self.body_fd = -1
        return not (
            self.abort_after is not None and len(self.sends) >= self.abort_after
        )

    def next_job(self):
        st = self.state
        # temp files named by the previous request must be gone by now
        for jb in st["done"][-1:]:
            for s in jb.sends:
                for m in TMP_RE.finditer(s[2].encode("latin-1")):
                    if os.path.exists(m.group(1)):
                        st["leaked"].append(m.group(1).decode())
        n = len(st["done"]) - 1
        if n in st["rss_at"]:
            st["rss"][str(n)] = rss()
        if not self.queue:
            return None
        nxt = self.queue.pop(0)
        st["done"].append(nxt)
        return nxt


def main() -> None:
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        LOGS.clear()
        out: dict = {}
        if op == "startup":
            bridge.startup(cmd.get("ini", ""), lambda lv, m: LOGS.append([lv, m]))
            bridge.set_request_timeout(cmd.get("timeout", 0))
            out["info"] = bridge.build_info()
        elif op == "run":
            job = Job(cmd["job"])
            bridge.run_script(job)
            out["sends"] = job.sends
        elif op == "worker":
            state = {
                "done": [],
                "leaked": [],
                "rss": {},
                "rss_at": cmd.get("rss_at", []),
            }
            queue = [Job(j) for j in cmd["jobs"]]
            for j in queue:
                j.queue = queue
                j.state = state
            boot = Job(cmd["boot"], queue, state)
            state["done"].append(boot)
            results = []
            while True:
                results.append(bridge.run_worker(boot))
                if not queue or len(results) > 20:
                    break
                boot.sends = []
            out["results"] = results
            out["boot"] = boot.sends
            out["sends"] = [j.sends for j in state["done"][1:]]
            out["leaked"] = state["leaked"]
            out["rss"] = state["rss"]
        elif op == "install_stop":
            bridge.install_stop_signal()
        elif op == "stop_requested":
            out["stop_requested"] = bridge.stop_requested()
        elif op == "rss":
            out["rss"] = rss()
        out["logs"] = list(LOGS)
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
