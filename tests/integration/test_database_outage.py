"""The database server goes away under a running service and comes back: nothing is lost or stored twice.

A real monitor and runner (processes) on a database of a real PostgreSQL
server (tests/postgresql_server.py), which the test stops at once (every
connection cut, as in a crash) while the runner analyzes, and starts again.
"""

import pytest
from harness import HELLO_TARBALL, Suite, submit, wait_until

pytestmark = pytest.mark.slow


def test_a_result_sent_while_the_server_is_down_is_stored_once_when_it_is_back(postgresql, short_tmp):
    suite = Suite(short_tmp, database=postgresql.fresh_database(), analyzers=("cppcheck", "flawfinder"))
    # The lease runs out during the outage; the monitor gives the runner a lease period after the
    # database is back to be heard again (a runner sends its result again every 5 s), so the job is
    # not analyzed a second time.
    suite.config.write_text(suite.config.read_text().replace("lease_seconds = 3", "lease_seconds = 6"))
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        submit(suite, "hello", "2.10", HELLO_TARBALL)
        suite.wait_analyzing("r1")
        postgresql.stop()
        try:
            wait_until(lambda: any(word in suite.log("r1") for word in ("sending the result again", "rejected")),
                       120, "the runner's result to go unanswered")
            assert "rejected" not in suite.log("r1"), suite.log("monitor")[-3000:]     # a lost result
            assert suite.log("monitor").count("the database is unavailable") == 1    # said once, not each step
            assert suite.processes["monitor"].poll() is None        # it waits for the database, running
        finally:
            postgresql.start_again()
        wait_until(lambda: suite.states().get("hello 2.10") == "done", 60, "the result stored")
        assert "connecting again" in suite.log("monitor") and "the database is back after" in suite.log("monitor")
        assert suite.rows("SELECT attempts, leased_by FROM version") == [(1, "r1")]   # not analyzed again
        assert suite.rows("SELECT analyzer, COUNT(*) FROM analysis_detail GROUP BY analyzer ORDER BY analyzer") == [
            ("cppcheck", 1), ("flawfinder", 1)]
        assert suite.rows("SELECT COUNT(*) FROM finding") == suite.rows("SELECT SUM(finding_count) FROM analysis")
    finally:
        suite.stop()
