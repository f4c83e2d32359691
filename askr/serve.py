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
from askr.supervisor import Pool, Settings, Supervisor

log = logging.getLogger("askr.master")


def settings_from(cfg: Any) -> Settings:
    server, reload = cfg.server, cfg.reload
    admin = cfg.admin.listen
    return Settings(
        listen=[str(a) for a in server.listen],
        tls_listen=[str(a) for a in cfg.tls.listen],
        request_timeout=float(server.request_timeout),
        max_worker_memory=int(server.max_worker_memory or 0),
        canary=bool(reload.canary),
        canary_seconds=float(reload.canary_seconds),
        error_rate=float(reload.error_rate),
        admin_listen=str(admin) if admin else None,
        admin_allow_public=bool(cfg.admin.allow_public),
        root=server.root,
        io=server.io,
    )


def pools_from(cfg: Any) -> list[Pool]:
    from askr import services, worker

    workers = int(cfg.server.workers or os.cpu_count() or 1)
    pools = [Pool("web", worker.main, workers, kind="web",
                  max_requests=int(cfg.server.max_requests or 0), config=cfg)]
    if cfg.queue.workers and cfg.queue.script:
        pools.append(Pool("queue", services.queue_main, int(cfg.queue.workers),
                          kind="service", config=cfg))
    if cfg.scheduler.script:
        pools.append(Pool("scheduler", services.scheduler_main, 1,
                          kind="service", config=cfg))
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
    supervisor = Supervisor(settings_from(cfg), pools_from(cfg))
    return supervisor.run()
