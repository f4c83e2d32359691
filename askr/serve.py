"""``askr serve``: turn a Config into a running master.

The supervisor (askr/supervisor.py) knows processes, not PHP; this module
maps askr.toml onto its settings and pools: the web workers run
``askr.worker.main``, the queue workers and the scheduler run
``askr.services``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from askr import errors
from askr.supervisor import Pool, Supervisor, settings_from_config

log = logging.getLogger("askr.master")


def pools_from(cfg: Any) -> list[Pool]:
    from askr import services, worker

    workers = int(cfg.server.workers or os.cpu_count() or 1)
    pools = [Pool("web", worker.main, workers, kind="web",
                  max_requests=int(cfg.server.max_requests or 0), config=cfg)]
    if cfg.queue.workers and cfg.queue.script:
        pools.append(Pool("queue", services.queue_main, int(cfg.queue.workers),
                          kind="service", config=cfg))
    if cfg.scheduler.script:
        # Never two schedulers at once, even during a reload: the old one
        # stops before the new one starts.
        pools.append(Pool("scheduler", services.scheduler_main, 1,
                          kind="service", config=cfg, overlap=False))
    return pools


def run(cfg: Any) -> int:
    """Run the master until it stops; returns the exit code."""
    if not cfg.server.root or not os.path.isdir(cfg.server.root):
        log.error("document root %s is not a directory", cfg.server.root)
        return errors.CONFIG_INVALID
    if cfg.tls.listen:
        from askr import worker
        from askr.tls.context import ReloadableContext

        worker.TLS_CONTEXT = ReloadableContext(cfg.tls.cert, cfg.tls.key)
    supervisor = Supervisor(settings_from_config(cfg), pools_from(cfg))
    return supervisor.run()
