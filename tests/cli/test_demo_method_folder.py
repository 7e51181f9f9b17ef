"""``demo.method_folder``: the one place the demo and bench_semantic_parts name a
method's run folder."""

from __future__ import annotations

from semparts_reid.cli import demo


def test_method_folders_of_the_table() -> None:
    assert [demo.method_folder(m) for m in demo.ADAPTATIONS] == [
        "ecn", "ecn_semantic_parts", "clustering", "clustering_semantic_parts"]
    assert demo.method_folder(demo.Adaptation("A + B c", "ecn", True)) == "a_b_c"
