"""What refitting the rank's priors reads: the site's waivers, as verdicts on analyzers' checks."""

from typing import List, Tuple

from kiskadee.store import sql

# One row per waived fingerprint of a package: the analyzer and check of its findings, and the verdict.
_WAIVED_CHECKS = ("SELECT DISTINCT w.package_id, w.fingerprint, az.name, f.check_id, w.kind FROM waiver w"
                  " JOIN version v ON v.package_id = w.package_id"
                  " JOIN analysis a ON a.version_id = v.id"
                  " JOIN finding f ON f.analysis_id = a.id AND f.fingerprint = w.fingerprint"
                  " JOIN analyzer az ON az.id = a.analyzer_id"
                  " ORDER BY w.package_id, w.fingerprint")


def waived_checks() -> List[Tuple[str, str, str]]:
    """(analyzer, check id, waiver kind) for each waived finding whose findings are still stored."""
    return [(analyzer, check_id, kind) for _, _, analyzer, check_id, kind in sql.execute(_WAIVED_CHECKS)]
