from kiskadee.core.findings import Finding
from kiskadee.core.ranking import rank


def f(path, line, severity="medium", cwe=None):
    return Finding(path=path, line=line, check_id="c", severity=severity, message="m", cwe=cwe)


def test_agreement_between_analyzers_raises_the_rank():
    alone, agreed, other = f("a.c", 10), f("b.c", 10), f("b.c", 11)
    rank({"cppcheck": [alone, agreed], "flawfinder": [other]})
    assert agreed.rank > alone.rank
    assert other.rank == agreed.rank


def test_agreement_needs_the_same_file_within_two_lines():
    near, close = f("a.c", 10), f("a.c", 12)
    rank({"cppcheck": [near], "flawfinder": [close]})
    far, distant = f("a.c", 10), f("a.c", 13)
    rank({"cppcheck": [far], "flawfinder": [distant]})
    elsewhere, other_file = f("a.c", 10), f("b.c", 10)
    rank({"cppcheck": [elsewhere], "flawfinder": [other_file]})
    assert near.rank > far.rank
    assert elsewhere.rank > far.rank        # only the crowded-file penalty differs
    assert near.rank - far.rank == 2.0


def test_severity_and_cwe_order_findings():
    high, low, low_cwe = f("a.c", 1, "high"), f("b.c", 1, "low"), f("c.c", 1, "low", cwe=120)
    rank({"cppcheck": [high, low, low_cwe]})
    assert high.rank > low_cwe.rank > low.rank


def test_crowded_files_rank_lower():
    lone = f("a.c", 1)
    crowd = [f("b.c", line) for line in range(1, 400, 10)]
    rank({"flawfinder": [lone] + crowd})
    assert all(c.rank < lone.rank for c in crowd)
