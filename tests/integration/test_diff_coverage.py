"""`kiskadee diff` and the release views where an analyzer that compiles the code could not analyze a file.

gadget 1.0 has a double free in a.c, a use after free in b.c, and a double
free in c.c, which does not compile. In 1.1 a.c no longer compiles (its bug
is still there), b.c's bug is fixed, and c.c compiles. gcc -fanalyzer
therefore sees a.c's bug only in 1.0 and c.c's only in 1.1: neither is
fixed or new, both are "not analyzed"; b.c's fix is the one real change.

Both releases are analyzed into SQLite and into PostgreSQL (``new_database``),
the second time from the analysis cache the two share (``analysis_cache``).
"""

import json

import pytest
from harness import other_connection, run_kiskadee, write_config

DOUBLE_FREE = """#include <stdlib.h>

void release_twice(int size)
{
    char *buffer = malloc(size + 1);

    if (buffer == NULL)
        return;
    free(buffer);
    free(buffer);
}
"""
USE_AFTER_FREE = """#include <stdlib.h>

int last_value(int seed)
{
    int *cell = malloc(sizeof *cell);

    if (cell == NULL)
        return -1;
    *cell = seed;
    free(cell);
    return *cell;
}
"""
FIXED = USE_AFTER_FREE.replace("    free(cell);\n    return *cell;\n",
                                "    seed = *cell;\n    free(cell);\n    return seed;\n")
BROKEN = "\nint broken(void) { return undeclared_variable + ; }\n"
RELEASES = {
    "1.0": {"a.c": DOUBLE_FREE, "b.c": USE_AFTER_FREE, "c.c": DOUBLE_FREE + BROKEN},
    "1.1": {"a.c": DOUBLE_FREE + BROKEN, "b.c": FIXED, "c.c": DOUBLE_FREE},
}


@pytest.fixture(scope="module")
def gadget(tmp_path_factory, new_database, analysis_cache):
    work = tmp_path_factory.mktemp("gadget")
    db = new_database(work)
    config = write_config(work / "kiskadee.toml", {"analysis.cache": f'path = "{analysis_cache}"'})
    for version, files in RELEASES.items():
        tree = work / f"gadget-{version}" / "src"
        tree.mkdir(parents=True)
        for name, text in files.items():
            (tree / name).write_text(text)
        result = run_kiskadee("analyze", tree.parent, "--analyzers", "gcc", "--db", db, config=config)
        assert result.returncode == 0, result.stdout + result.stderr
    return db


def located(findings):
    return {(f["path"], f["check_id"]) for f in findings}


def test_findings_in_files_one_side_could_not_analyze_are_neither_new_nor_fixed(gadget):
    result = run_kiskadee("diff", "gadget", "1.0", "1.1", "--format", "json", "--db", gadget)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    # gcc reports the use after free twice: its analyzer, and -Wuse-after-free.
    assert located(data["fixed_findings"]) == {("src/b.c", "analyzer-use-after-free"), ("src/b.c", "use-after-free")}
    assert located(data["new_findings"]) == set()
    assert {("src/a.c", "analyzer-double-free"), ("src/c.c", "analyzer-double-free")} <= located(
        data["not_analyzed_findings"])
    assert {f["path"] for f in data["not_analyzed_findings"]} == {"src/a.c", "src/c.c"}
    (gcc,) = data["analyzers"]
    assert gcc["note"] == ("files not analyzed: 1 on 1.0, 1 on 1.1; findings in them are neither new "
                           "nor fixed")


def test_the_release_views_leave_out_the_same_files(gadget):
    with other_connection(gadget) as connection:
        fixed = set(connection.rows("SELECT path, check_id FROM fixed_finding WHERE version = '1.1'"))
        new = set(connection.rows("SELECT path, check_id FROM new_finding WHERE version = '1.1'"))
    assert fixed == {("src/b.c", "analyzer-use-after-free"), ("src/b.c", "use-after-free")}
    assert new == set()
