"""Work done by a forked child process beside the caller, over two pipes: what a second core can do
without sharing the caller's interpreter lock.

The child runs ``start()`` at once, then answers ``answer(request)`` for each request, in order, until the
caller ends it (or exits: the child reads the end of its pipe and leaves). A request may be posted and its
reply taken later (:meth:`Forked.post`, :meth:`Forked.reply`), the caller working meanwhile. Messages
are marshalled (plain data: lists, dicts, str, bytes, int), each after its length. The child never
writes to the caller's terminal, never runs the caller's exit handlers (it leaves by ``os._exit``), and
dies of Ctrl-C at once. Anything that goes wrong on its side, or with the pipes, is :class:`Gone` to the
caller, who then does the work itself.

Forking is offered only where it is safe: on Linux, from a process that runs no other thread (of any
kind: the kernel's count). The child closes every file the caller had open but its two pipes, so it
never keeps the caller's files or connections alive.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_LENGTH = 8  # bytes of the length before each message


class Gone(Exception):
    """The child has ended, or a message was lost: the caller does the work itself."""


def can_fork() -> bool:
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1  # threads no Python code started count too
    except OSError:
        return False


class Forked:
    """A child process that runs ``start`` and then answers requests (see the module's docstring)."""

    def __init__(self, start: Callable[[], Any], answer: Callable[[Any], Any]):
        opened: list[int] = []
        try:
            opened += os.pipe()
            opened += os.pipe()
            pid = os.fork()
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        requests_read, requests_write, replies_read, replies_write = opened
        if pid == 0:  # the child: it never returns from here
            _child(start, answer, requests_read, replies_write)
        os.close(requests_read)
        os.close(replies_write)
        self.pid, self._requests, self._replies = pid, requests_write, replies_read
        self._writing: threading.Thread | None = None
        self._posted = 0  # requests posted and not answered yet
        # Only the process that forked the child ends it: a copy of this object in another child does not.
        self._end = weakref.finalize(self, _end_child, os.getpid(), pid, requests_write, replies_read)

    def ask(self, request: Any) -> Any:
        """What ``answer(request)`` returns, in the child."""
        with self._ended_on_failure():
            _send(self._requests, request)
        return self.reply()

    def post(self, requests: list[Any]) -> None:
        """Send requests, written one after another by a thread of its own (long ones do not wait for the
        child to read them; each is marshalled on its own, so no one buffer holds them all). Take their
        replies, in order, with :meth:`reply` before anything else is asked."""
        with self._ended_on_failure():
            writing = threading.Thread(target=self._write, args=(requests,), name="tokeffc-post", daemon=True)
            writing.start()  # may fail (no thread to spare): the child is ended, and the caller does the work
            self._writing, self._posted = writing, len(requests)

    def reply(self) -> Any:
        """The reply to the next request (waits for it). The writer is waited for only once every request
        it writes is answered: the child may answer one while the next is still being written."""
        with self._ended_on_failure():
            reply = _receive(self._replies)
            self._posted -= 1
            if self._writing is not None and self._posted <= 0:
                self._writing.join()
                self._writing = None
            return reply

    @contextmanager
    def _ended_on_failure(self) -> Iterator[None]:
        """Whatever interrupts an exchange ends the child, Ctrl-C included: half a request, or a reply left in
        the pipe, would answer the next one. A failure of the pipes or of the child is :class:`Gone`."""
        if not self._end.alive:
            raise Gone
        try:
            yield
        except (OSError, EOFError, ValueError, TypeError, RuntimeError):
            self.end()
            raise Gone from None
        except BaseException:
            self.end()
            raise

    def end(self) -> None:
        """Stop the child now, whatever it is doing, and reap it; it is :class:`Gone` from then on."""
        try:
            if self._end.alive and self._writing is not None:  # a request being written fails once the child
                _kill(self.pid)  # is gone; the pipe is closed only after the writer has stopped
                self._writing.join()
        finally:
            self._writing = None
            self._end()

    def _write(self, requests: list[Any]) -> None:
        try:
            for request in requests:
                _send(self._requests, request)
        except BaseException:  # noqa: BLE001 - a request not sent whole: the child goes, and reply() finds it
            _kill(self.pid)


def _child(start: Callable[[], Any], answer: Callable[[Any], Any], requests: int, replies: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        requests, replies = (fcntl.fcntl(fd, fcntl.F_DUPFD, 3) for fd in (requests, replies))  # clear of 0-2
        quiet = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # never the caller's terminal, and never holding its output open
            os.dup2(quiet, fd)
        low, high = sorted((requests, replies))
        for first, stop in ((3, low), (low + 1, high), (high + 1, os.sysconf("SC_OPEN_MAX"))):
            os.closerange(first, stop)  # the caller's files, sockets and pipes (and `quiet`)
        start()
        while True:
            try:
                request = _receive(requests)
            except EOFError:  # the caller has ended it, or exited
                break
            _send(replies, answer(request))
        code = 0
    finally:
        os._exit(code)


def _end_child(owner: int, pid: int, requests: int, replies: int) -> None:
    if os.getpid() != owner:
        return
    for fd in (requests, replies):
        try:
            os.close(fd)
        except OSError:
            pass
    _kill(pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _send(fd: int, message: Any) -> None:
    data = marshal.dumps(message)
    view = memoryview(len(data).to_bytes(_LENGTH, "little") + data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int) -> Any:
    length = int.from_bytes(_read_exactly(fd, _LENGTH), "little")
    return marshal.loads(_read_exactly(fd, length))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
