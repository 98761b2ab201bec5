"""The CWE classes reports show and the rank's survival term."""

from kiskadee.core import ranking
from kiskadee.core.findings import Finding


def test_memory_safety_and_injection_weigh_above_numeric_above_api_misuse_above_style():
    use_after_free, format_string, overflow, printf_args, unused, unlisted, none = (
        ranking.cwe_weight(cwe) for cwe in (416, 134, 190, 686, 563, 20, None))
    assert use_after_free == format_string > overflow > printf_args > unlisted > unused == none
    assert ranking.cwe_class(476) == "memory-safety" and ranking.cwe_class(398) == "code-quality"
    assert ranking.cwe_class(20) == "other" and ranking.cwe_class(None) == ""
    assert "memory-safety" in ranking.CWE_CLASSES


def test_the_cwe_class_is_no_term_of_the_rank():
    """Issue 15: on held-out labelled code the CWE class did not help the rank (bench/ranking.py)."""
    findings = [Finding(path=f"{n}.c", line=1, check_id="c", severity="medium", message="m", cwe=cwe)
                for n, cwe in enumerate((416, 563, None))]
    ranking.rank({"cppcheck": findings})
    assert len({f.rank for f in findings}) == 1


def test_each_surviving_release_lowers_the_rank_less_and_less_down_to_a_floor():
    weights = [ranking.survival_weight(n) for n in (0, 1, 3, 7, 15, 1000)]
    assert weights[0] == 0.0
    assert weights == sorted(weights, reverse=True)
    assert weights[1] - weights[2] == weights[2] - weights[3] == 0.5     # per doubling
    assert weights[-1] == ranking.SURVIVAL_FLOOR == weights[-2]
    assert ranking.with_survival(4.25, 0) == 4.25 and ranking.with_survival(4.25, 3) == 3.25
