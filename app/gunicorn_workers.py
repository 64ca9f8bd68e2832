"""gunicorn workers that also count the requests gunicorn turns away itself.

A request line over `limit_request_line` (414), headers over their limits (431),
a line that is not HTTP (400): gunicorn answers these before the app sees
anything, so the request middleware never counts them, and a flood of them
would be invisible in both pipelines. These workers count each one as route
`unmatched` with the status gunicorn sent. The method is `other` when the
request line itself could not be read.
"""

import logging

from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseHeaderName, ParseException
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker
from gunicorn.workers.sync import SyncWorker as _SyncWorker

log = logging.getLogger(__name__)
# Raised while sending the app's own response: the app saw (and counted) that request.
_AFTER_THE_APP = (InvalidResponseHeader, InvalidResponseHeaderName)


class _StatusLine:
    """The client's socket, noting the status of the answer written to it."""

    def __init__(self, sock):
        self._sock = sock
        self.status = None

    def sendall(self, data, *args):
        if self.status is None and data.startswith(b"HTTP/"):
            self.status = int(data[9:12])
        return self._sock.sendall(data, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _CountsRejected:
    def handle_error(self, req, client, addr, exc):
        if not isinstance(exc, ParseException) or isinstance(exc, _AFTER_THE_APP):
            return super().handle_error(req, client, addr, exc)
        # The status is the one gunicorn writes (414, 431, 400, ...), not a copy of its mapping.
        answer = _StatusLine(client)
        super().handle_error(req, answer, addr, exc)
        if answer.status is not None:
            try:
                metrics = self.wsgi.extensions["lab.metrics"]
                metrics.request_rejected(getattr(req, "method", None) or "", answer.status)
            except Exception:  # counting must never turn a 4xx into a crash
                log.exception("could not count a rejected request")


class SyncWorker(_CountsRejected, _SyncWorker):
    """gunicorn's sync worker (GUNICORN_THREADS=1), counting rejected requests."""


class ThreadWorker(_CountsRejected, _ThreadWorker):
    """gunicorn's gthread worker (GUNICORN_THREADS>1), counting rejected requests."""
