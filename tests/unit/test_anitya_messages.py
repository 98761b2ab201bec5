"""Anitya's real version-update messages normalized into source events, and the malformed ones refused."""

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from kiskadee.anitya.messages import MessageError, normalize, topics
from kiskadee.service import wire
from kiskadee.service.intake import event_frame

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "anitya"
V1, V2 = topics("org.release-monitoring.prod")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def v2_body() -> dict:
    return fixture("v2-fedora_mapping.json")


def test_the_flat_v1_body_fedmsg_carried_becomes_an_event():
    envelope = fixture("fedmsg-v1-aspell.json")
    event = normalize(envelope["topic"], envelope["msg"])
    assert (event.fetcher, event.package, event.version, event.source_url, event.sha256) == (
        "anitya", "aspell", "0.60.6.1", "", "")
    assert event.meta == {
        "project_id": 5, "backend": "GNU project", "homepage": "http://www.gnu.org/software/aspell/",
        "version_url": "", "ecosystem": "", "distributions": [{"distro": "Fedora", "package_name": "aspell"}],
        "topic": "org.release-monitoring.prod.anitya.project.version.update"}


def test_a_v2_body_becomes_an_event_with_every_mapping():
    event = normalize(V2, v2_body())
    assert (event.package, event.version) == ("flatpak", "1.0.4")
    assert event.meta["project_id"] == 6377 and event.meta["backend"] == "GitHub"
    assert event.meta["version_url"] == "flatpak/flatpak"
    assert event.meta["ecosystem"] == "http://flatpak.org/"
    assert [m["distro"] for m in event.meta["distributions"]] == ["Fedora", "Mageia", "Alpine", "Arch Linux"]
    assert event.meta["topic"] == V2


def test_a_v2_body_without_mappings_or_stable_versions_is_still_an_event():
    assert normalize(V2, fixture("v2-no_mapping.json")).meta["distributions"] == []
    assert normalize(V2, fixture("v2-fedora_mapping_no_stable.json")).version == "1.0.4"


def test_the_v1_body_anitya_schema_describes_becomes_an_event():
    body = v2_body()
    message = body["message"]
    message["upstream_version"] = message.pop("upstream_versions")[0]
    message["odd_change"] = False
    event = normalize(V1, body)
    assert (event.package, event.version, event.meta["topic"]) == ("flatpak", "1.0.4", V1)


def test_the_newest_found_version_is_announced_even_when_the_project_knows_a_newer_one():
    body = v2_body()
    body["message"]["upstream_versions"] = ["0.99.4"]       # a backport found after 1.0.4
    assert normalize(V2, body).version == "0.99.4"


def test_other_environments_prefixes_are_understood():
    assert normalize("org.release-monitoring.stg.anitya.project.version.update.v2", v2_body()).version == "1.0.4"


def broken(change) -> dict:
    body = copy.deepcopy(v2_body())
    change(body)
    return body


@pytest.mark.parametrize("topic, body, reason", [
    (V2, ["not", "an", "object"], "the body is a JSON array, not an object"),
    (V2, "text", "the body is a JSON string, not an object"),
    (V2, broken(lambda b: b.pop("message")), "the body must contain ['message'] properties"),
    (V2, broken(lambda b: b["project"].update(id="6377")), "project.id must be integer"),
    (V2, broken(lambda b: b["message"]["versions"].append(4)), "message.versions.73 must be string"),
    (V2, broken(lambda b: b["message"].update(upstream_versions=[])), "announces no version"),
    (V2, broken(lambda b: b["message"]["packages"].append({"distro": "Debian"})), "packages[4].package_name is missing"),
    (V2, broken(lambda b: b["message"]["packages"].append("flatpak")), "packages[4] must be an object"),
    (V2, broken(lambda b: b["project"].update(name="")), "project.name is empty"),
    (V2, broken(lambda b: b["project"].update(name="x" * 300)), "project.name is 300 characters long"),
    (V2, broken(lambda b: b["message"].update(upstream_versions=["1.0\n4"])), "contains control characters"),
    (V1, {"project": {"name": "aspell"}}, "upstream_version is missing"),
    (V1, {"project": "aspell", "upstream_version": "1"}, "project must be a JSON object, not a JSON string"),
    ("org.release-monitoring.prod.anitya.project.map.new", v2_body(), "is not an Anitya version update"),
    (V2 + ".v3", v2_body(), "is not an Anitya version update"),
])
def test_malformed_messages_are_refused_with_the_reason(topic, body, reason):
    with pytest.raises(MessageError) as refused:
        normalize(topic, body)
    assert reason in str(refused.value)


def test_a_flat_v1_body_with_an_id_of_the_wrong_type_is_refused():
    envelope = fixture("fedmsg-v1-aspell.json")
    envelope["msg"]["project"]["id"] = True
    with pytest.raises(MessageError, match="project.id must be a JSON integer, not a JSON boolean"):
        normalize(envelope["topic"], envelope["msg"])


@pytest.mark.parametrize("name", ["v2-fedora_mapping.json", "v2-no_mapping.json"])
def test_an_event_is_framed_with_every_field_as_the_wire_schema_says(name):
    event = normalize(V2, fixture(name))
    assert event_frame(event) == wire.encode("source", **dataclasses.asdict(event))
