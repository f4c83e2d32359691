"""A PHP app for the master scenarios, deployed like fake_worker's.

releases/<name>/ holds a worker-mode script and a docroot; ``current``
points at the live release.  Markers in a release break it on purpose,
the same ones tests/fake_worker.py reads: BOOT_FAIL (a fatal error before
the first request), FAIL_ALL (every answer 500), BOOT_DELAY (seconds).
The routes match fake_worker's, so tests/test_master_scenarios.py runs
the same scenarios against real askr workers running PHP.
"""

from __future__ import annotations

import os

from fake_worker import FakeDeployment

WORKER_PHP = r"""<?php
// Master-scenario app: boots once, then answers like tests/fake_worker.py.
$dir = __DIR__;
$name = trim(file_get_contents("$dir/VERSION"));
if (file_exists("$dir/BOOT_DELAY")) {
    usleep((int) ((float) file_get_contents("$dir/BOOT_DELAY") * 1e6));
}
if (file_exists("$dir/BOOT_FAIL")) {
    askr_scenario_no_such_function();  // a fatal error at boot
}
$failAll = file_exists("$dir/FAIL_ALL");
$keep = [];

while (askr_handle_request(function () use ($name, $failAll, &$keep) {
    $path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
    if ($failAll) {
        http_response_code(500);
        echo "fail gen=$name";
        return;
    }
    switch ($path) {
        case '/slow':
            sleep((int) ($_GET['s'] ?? 2));
            echo "slow done gen=$name pid=" . getmypid();
            return;
        case '/sleep':
            usleep((int) ($_GET['ms'] ?? 10) * 1000);
            break;
        case '/fail':
            http_response_code(500);
            echo "fail gen=$name";
            return;
        case '/upload':
            $n = strlen(file_get_contents('php://input'));
            echo "received=$n pid=" . getmypid();
            return;
        case '/grow':
            $keep[] = str_repeat('x', ((int) $_GET['mb']) << 20);
            echo "grew={$_GET['mb']} pid=" . getmypid();
            return;
    }
    echo "gen=$name pid=" . getmypid();
})) {
}
"""

INI = ("opcache.enable=1\\nopcache.enable_cli=1\\nopcache.validate_timestamps=0"
       "\\nmemory_limit=512M")


class PhpDeployment(FakeDeployment):
    """The same layout, served by askr.worker with embedded PHP."""

    target = "askr.worker:main"

    def __init__(self, base: str) -> None:
        super().__init__(base)
        config = os.path.join(base, "askr.toml")
        with open(config, "w") as f:
            f.write(f'''[server]
root = "{base}/current/public"
[worker]
script = "{base}/current/worker.php"
ini = "{INI}"
[log]
access = false
''')
        self.master_options = {"config_file": config}
        self.root = os.path.join(base, "current", "public")

    def release(self, name: str, **markers: object) -> str:
        path = super().release(name, **markers)  # type: ignore[arg-type]
        os.makedirs(os.path.join(path, "public"), exist_ok=True)
        with open(os.path.join(path, "worker.php"), "w") as f:
            f.write(WORKER_PHP)
        # The front controller the docroot falls back to (never run in
        # worker mode: the worker script answers every PHP request).
        with open(os.path.join(path, "public", "index.php"), "w") as f:
            f.write("<?php echo 'classic';\n")
        return path

    def activate(self, name: str) -> None:
        tmp = os.path.join(self.base, "current.new")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.join("releases", name), tmp)
        os.replace(tmp, os.path.join(self.base, "current"))
