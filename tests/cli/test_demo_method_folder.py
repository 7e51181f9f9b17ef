"""``experiments.method_folder``: the one place the demo and bench_semantic_parts name a
method's run folder."""

from __future__ import annotations

from semparts_reid import experiments as ex


def test_method_folders_of_the_table() -> None:
    assert [ex.method_folder(m) for m in ex.ADAPTATIONS] == [
        "ecn", "ecn_semantic_parts", "clustering", "clustering_semantic_parts"]
    assert ex.method_folder(ex.Adaptation("A + B c", "ecn", True)) == "a_b_c"


def test_a_method_folder_is_one_path_component() -> None:
    """A diagnostic row's ``/`` must not open a sub-folder; its ``,`` stays (the
    benchmark's existing run folders keep their names)."""
    name = ex.method_folder(ex.Adaptation("ECN + parts, heads 1/3", "ecn", True))
    assert name == "ecn_parts,_heads_1_3"
    assert ex.method_folder(ex.Adaptation("a/b\\c:d", "ecn", True)) == "a_b_c_d"
