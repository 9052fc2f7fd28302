"""A TCP proxy on 127.0.0.1 in front of the object store that the nemesis
can cut (every connection dropped, new ones refused) or slow down (a
delay on every chunk it forwards). Standard library only."""

import socket
import threading
import time
import urllib.parse


class Proxy:
    """Forwards 127.0.0.1:self.port to `upstream` (http://HOST:PORT)."""

    def __init__(self, upstream):
        u = urllib.parse.urlparse(upstream)
        self.upstream = (u.hostname, u.port)
        self.delay = 0.0
        self._cut = False
        self._conns = set()
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(256)
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self):
        """Drops every open connection and refuses new ones until restore()."""
        with self._lock:
            self._cut = True
            conns = list(self._conns)
            self._conns.clear()
        for s in conns:
            _close(s)

    def restore(self):
        with self._lock:
            self._cut = False

    def close(self):
        self._closed = True
        self.cut()
        _close(self._server)

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                with self._lock:
                    if self._cut:
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            _close(src)
            _close(dst)


def _close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
