"""Embedded PHP: the cffi bridge (bridge.py, _askr_sapi.c) and $_SERVER
construction (environ.py).  Nothing here knows about sockets."""
