"""The rank: severity, the check's measured precision, agreement of independent analyzers."""

import pytest

from kiskadee.core import ranking
from kiskadee.core.findings import Finding
from kiskadee.core.priors import PRIORS
from kiskadee.core.ranking import rank

# A small table, so these tests do not move when the shipped priors are refitted.
TABLE = {
    "cppcheck": {"real": 40, "total": 100, "checks": {"arrayIndexOutOfBounds": (30, 30), "variableScope": (5, 50)}},
    "clang": {"real": 50, "total": 100, "checks": {"core.NullDereference": (10, 40)}},
    "gcc": {"real": 50, "total": 100, "checks": {"analyzer-null-dereference": (10, 40)}},
}


def f(path, line, check_id="c", severity="medium", cwe=None):
    return Finding(path=path, line=line, check_id=check_id, severity=severity, message="m", cwe=cwe)


def test_clang_and_gcc_agreeing_on_a_null_argument_do_not_outrank_a_lone_cppcheck_overrun():
    clang = f("a.c", 10, "core.NonNullParamChecker", "high", cwe=476)
    gcc = f("a.c", 10, "analyzer-null-argument", "high", cwe=476)
    overrun = f("b.c", 20, "arrayIndexOutOfBounds", "high", cwe=788)
    rank({"clang": [clang], "gcc": [gcc], "cppcheck": [overrun]})     # the shipped priors
    assert overrun.rank > clang.rank and overrun.rank > gcc.rank


def test_one_family_agreeing_with_itself_earns_no_bonus_another_family_earns_one():
    clang, gcc = f("a.c", 10, "core.NullDereference", cwe=476), f("a.c", 11, "analyzer-null-dereference", cwe=476)
    rank({"clang": [clang], "gcc": [gcc]}, TABLE)
    alone = f("a.c", 10, "core.NullDereference", cwe=476)
    rank({"clang": [alone]}, TABLE)
    assert clang.rank == alone.rank
    clang, cppcheck = f("a.c", 10, "core.NullDereference", cwe=476), f("a.c", 12, "nullPointer", cwe=476)
    rank({"clang": [clang], "cppcheck": [cppcheck]}, TABLE)
    assert clang.rank == alone.rank + ranking.AGREEMENT_BONUS


def test_agreement_is_one_bonus_however_many_analyzers_agree():
    two = f("a.c", 10, "core.NullDereference", cwe=476)
    rank({"clang": [two], "cppcheck": [f("a.c", 10, "nullPointer", cwe=476)]}, TABLE)
    three = f("a.c", 10, "core.NullDereference", cwe=476)
    rank({"clang": [three], "cppcheck": [f("a.c", 10, "nullPointer", cwe=476)],
          "framac": [f("a.c", 10, "mem_access", cwe=476)]}, TABLE)
    assert three.rank == two.rank


def test_agreement_needs_a_compatible_problem_within_two_lines():
    def bonus(other):
        finding = f("a.c", 10, "core.NullDereference", cwe=476)
        return ranking.explain({"clang": [finding], "cppcheck": [other]}, "clang", finding, TABLE)[
            "independent agreement"]

    assert bonus(f("a.c", 12, "nullPointer", cwe=476)) == ranking.AGREEMENT_BONUS
    assert bonus(f("a.c", 12, "uninitvar", cwe=457)) == ranking.AGREEMENT_BONUS   # memory safety too
    assert bonus(f("a.c", 12, "unknownMacro")) == ranking.AGREEMENT_BONUS         # no CWE: compatible
    assert bonus(f("a.c", 13, "nullPointer", cwe=476)) == 0.0                     # three lines away
    assert bonus(f("b.c", 10, "nullPointer", cwe=476)) == 0.0                     # another file
    assert bonus(f("a.c", 10, "unreadVariable", cwe=563)) == 0.0                  # code quality


def test_an_unseen_check_gets_its_analyzers_prior_and_an_unseen_analyzer_the_global_one():
    new_check = f("a.c", 1, "a-check-added-later")
    rank({"cppcheck": [new_check]}, TABLE)
    cppcheck = ranking.analyzer_precision("cppcheck", TABLE)
    assert ranking.check_precision("cppcheck", "a-check-added-later", TABLE) == cppcheck
    assert new_check.rank == pytest.approx(ranking.SEVERITY_WEIGHT["medium"] + ranking.SCALE * cppcheck, abs=1e-3)
    assert ranking.analyzer_precision("infer", TABLE) == ranking.GLOBAL_PRIOR


def test_a_checks_record_is_shrunk_toward_its_analyzer_by_how_little_it_was_seen():
    base = ranking.analyzer_precision("cppcheck", TABLE)
    once = {**TABLE, "cppcheck": {**TABLE["cppcheck"], "checks": {"rare": (1, 1)}}}
    rare, proven = ranking.check_precision("cppcheck", "rare", once), \
        ranking.check_precision("cppcheck", "arrayIndexOutOfBounds", TABLE)
    assert base < rare < proven < 1.0
    assert ranking.check_precision("cppcheck", "variableScope", TABLE) < base


def test_a_precise_check_outranks_a_noisy_one_of_the_same_severity_and_even_one_step_more():
    precise, noisy = f("a.c", 1, "arrayIndexOutOfBounds", "low"), f("b.c", 1, "variableScope", "low")
    louder = f("c.c", 1, "variableScope", "medium")
    rank({"cppcheck": [precise, noisy, louder]}, TABLE)
    assert precise.rank > louder.rank > noisy.rank


def test_severity_still_orders_findings_of_one_check_five_points_a_step():
    high, medium, low = f("a.c", 1, "c", "high"), f("b.c", 1, "c", "medium"), f("c.c", 1, "c", "low")
    rank({"cppcheck": [high, medium, low]}, TABLE)
    assert high.rank - medium.rank == pytest.approx(5.0) == medium.rank - low.rank


def test_explain_names_the_terms_that_sum_to_the_rank():
    finding, other = f("a.c", 5, "core.NullDereference", "high", 476), f("a.c", 6, "nullPointer", cwe=476)
    found = {"clang": [finding], "cppcheck": [other]}
    rank(found, TABLE)
    terms = ranking.explain(found, "clang", finding, TABLE)
    assert set(terms) == {"severity", "check precision", "independent agreement"}
    assert terms["severity"] == 15.0 and terms["independent agreement"] == ranking.AGREEMENT_BONUS
    assert sum(terms.values()) == pytest.approx(finding.rank, abs=1e-3)


def test_fit_counts_real_and_total_findings_per_analyzer_and_check():
    table = ranking.fit([("gcc", "a", True), ("gcc", "a", False), ("gcc", "b", False), ("clang", "a", True)])
    assert table["gcc"] == {"real": 1, "total": 3, "checks": {"a": (1, 2), "b": (0, 1)}}
    assert table["clang"]["checks"] == {"a": (1, 1)}


def test_the_shipped_table_has_a_record_for_every_analyzer():
    assert set(PRIORS) == {"cppcheck", "flawfinder", "clang", "gcc", "framac"}
    for record in PRIORS.values():
        assert sum(real for real, _ in record["checks"].values()) == record["real"]
        assert sum(total for _, total in record["checks"].values()) == record["total"]


def test_a_refit_table_loads_and_a_broken_one_is_a_configuration_error(tmp_path):
    import json

    from kiskadee.errors import ConfigError

    good = tmp_path / "priors.json"
    good.write_text(json.dumps({"waivers": 3, "priors": {"cppcheck": {"real": 1, "total": 3,
                                                                      "checks": {"nullPointer": [1, 3]}}}}))
    table = ranking.load_priors(str(good))
    assert table["cppcheck"]["checks"]["nullPointer"] == (1, 3)
    assert ranking.load_priors("") is None
    for text in ("not json", '{"priors": {"cppcheck": {"checks": {"x": [-1, 2]}}}}', "[1, 2]"):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ConfigError, match="ranking.priors: .*bad.json"):
            ranking.load_priors(str(bad))
    with pytest.raises(ConfigError, match="missing.json"):
        ranking.load_priors(str(tmp_path / "missing.json"))
