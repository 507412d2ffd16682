"""Whole-pipeline invariants on random frameworks (hypothesis): exact counts, exact accounting, every
output faithful to its sources, and the same bytes whatever order the files were written in."""

import tempfile
from pathlib import Path

from conftest import MINI_CONFIG, write_tree
from fidelity import check_fidelity
from helpers import assert_counts_exact, assert_savings_reconcile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokeffc.pipeline import compile_framework

TEXTS = [
    "Plain guidance that is long enough to be deduplicated when it shows up twice in a bundle.\n",
    "## Heading\n\nA paragraph  \nwith trailing spaces.\n\n\n\nAnd a run of blank lines.\n",
    "<!-- a maintainer note -->\n- item one\n- item two\n",
    '<checkpoint id="c">\n<reasoning>Because of several reasons.</reasoning>\n'
    "<conclusion>Do it this way.</conclusion>\n</checkpoint>\n",
    "```python\nx = 1   \n\n\ny = {{ not_jinja }}\n```\n",
    '{% if tokeffc.tier != "minimal" %}\nOnly on larger tiers: café, 数据, emoji 🚀.\n{% endif %}\n',
    "  indented start\n\tand a tab\n",
    "No newline at the end",
]

module = st.fixed_dictionaries({
    "texts": st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3),
    "tier": st.sampled_from(["minimal", "standard", "full"]),
    "load": st.sampled_from(["immediate", "on_demand", "lazy"]),
    "requires": st.lists(st.integers(0, 5), max_size=2),
    "includes": st.lists(st.integers(0, 5), max_size=2),
})
framework = st.fixed_dictionaries({
    "modules": st.lists(module, min_size=1, max_size=6),
    "commands": st.lists(st.fixed_dictionaries({"texts": st.lists(st.sampled_from(TEXTS), min_size=1, max_size=2),
                                                "requires": st.lists(st.integers(0, 5), max_size=3)}),
                         min_size=1, max_size=3),
})


def files_of(spec) -> dict[str, str]:
    count = len(spec["modules"])
    files = {"tokeffc.yaml": MINI_CONFIG, "CORE.md": "# Core\n\nBe precise.\n"}
    for index, mod in enumerate(spec["modules"]):
        # Only later modules are required or included, so no cycles arise.
        later = sorted({f"m{j}" for j in mod["requires"] if index < j < count})
        includes = "".join(f'{{% include "modules/m{j}.md" %}}\n' for j in sorted(set(mod["includes"]))
                           if index < j < count and f"m{j}" not in later)
        front = (f"---\ntokeffc:\n  tier: {mod['tier']}\n  load: {mod['load']}\n  requires: [{', '.join(later)}]\n"
                 "---\n")
        files[f"modules/m{index}.md"] = front + "".join(mod["texts"]) + "\n" + includes
    for index, cmd in enumerate(spec["commands"]):
        needed = sorted({f"m{j}" for j in cmd["requires"] if j < count})
        files[f"commands/c{index}.md"] = f"---\ntokeffc: {{requires: [{', '.join(needed)}]}}\n---\n" + \
            "".join(cmd["texts"])
    return files


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(framework, st.randoms(use_true_random=False))
def test_random_frameworks_count_exactly_and_build_the_same_in_any_order(spec, rng):
    files = files_of(spec)
    with tempfile.TemporaryDirectory() as tmp:
        first = write_tree(Path(tmp) / "a", files)
        names = list(files)
        rng.shuffle(names)
        second = write_tree(Path(tmp) / "b", {name: files[name] for name in names})
        result = compile_framework(first)
        assert_counts_exact(result)
        assert_savings_reconcile(result)
        assert check_fidelity(first, dict(result.release.files)) == []
        assert compile_framework(second).release.files == result.release.files
