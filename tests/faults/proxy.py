"""A TCP proxy the tests control, between the service and PostgreSQL or Redis.

with FaultProxy("127.0.0.1", 5432) as proxy:   # service connects to proxy.port
    proxy.refuse()      # connections refused, open ones cut: a server that is down
    proxy.blackhole()   # connections accepted, bytes dropped: a network partition
    proxy.heal()        # back to passing bytes through
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

Mode = Literal["pass", "refuse", "blackhole"]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "pass"
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()

    def __enter__(self) -> FaultProxy:
        self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        self._close_listener()
        self._cut_all()

    # ---- faults -----------------------------------------------------------------------

    def refuse(self) -> None:
        """Like a stopped server: new connections are refused, open ones reset."""
        self.mode = "refuse"
        self._close_listener()
        self._cut_all()

    def blackhole(self) -> None:
        """Like a partition: connections open (or stay open), nothing comes back."""
        self.mode = "blackhole"
        if self._listener is None:
            self._listen()

    def heal(self) -> None:
        self.mode = "pass"
        if self._listener is None:
            self._listen()

    # ---- plumbing ---------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _cut_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            # shutdown() wakes a thread blocked in recv() on it (close() alone does not),
            # so the pumps end and the service's side sees its connection reset.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.mode == "pass":
                    dst.sendall(data)
                # blackhole: swallowed; the peer waits for an answer that never comes
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()
