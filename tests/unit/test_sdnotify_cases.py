"""Why kiskadee.service.systemd sends notifications itself rather than through sdnotify.

Each case pairs what a kiskadee service needs from its Notifier with what
``sdnotify.SystemdNotifier(debug=True)`` (0.3.2, the last release) does in
the same situation, on a real datagram socket standing for systemd's
(sdnotify comes with the test requirements).
"""

import socket

import pytest
import sdnotify

from kiskadee.service import systemd


def bind_datagram(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock


def sdnotify_notifier(monkeypatch, path):
    """sdnotify reads the address from os.environ only, and connects in its constructor."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    return sdnotify.SystemdNotifier(debug=True)


def test_kiskadee_delivers_to_a_socket_bound_after_the_notifier_was_made(short_tmp):
    notifier = systemd.Notifier({"NOTIFY_SOCKET": str(short_tmp / "notify")})
    notifier.status("starting")             # nothing there yet: a warning, not a crash
    receiver = bind_datagram(short_tmp / "notify")
    try:
        notifier.ready("started")
        assert receiver.recv(100) == b"READY=1\nSTATUS=started"
    finally:
        receiver.close()


def test_sdnotify_never_delivers_once_its_first_connect_failed(short_tmp, monkeypatch):
    with pytest.raises(FileNotFoundError):
        sdnotify_notifier(monkeypatch, short_tmp / "notify")
    notifier = sdnotify.SystemdNotifier(debug=False)     # the only way to get one: it has no socket
    receiver = bind_datagram(short_tmp / "notify")
    try:
        notifier.debug = True
        with pytest.raises(AttributeError):              # not even an OSError: socket is None for good
            notifier.notify("READY=1")
    finally:
        receiver.close()


def test_kiskadee_delivers_to_a_socket_recreated_at_the_same_path(short_tmp):
    path = short_tmp / "notify"
    first = bind_datagram(path)
    notifier = systemd.Notifier({"NOTIFY_SOCKET": str(path)})
    notifier.status("one")
    assert first.recv(100) == b"STATUS=one"
    first.close()
    path.unlink()
    second = bind_datagram(path)
    try:
        notifier.status("two")
        assert second.recv(100) == b"STATUS=two"
    finally:
        second.close()


def test_sdnotify_stays_connected_to_the_socket_that_is_gone(short_tmp, monkeypatch):
    path = short_tmp / "notify"
    first = bind_datagram(path)
    notifier = sdnotify_notifier(monkeypatch, path)
    first.close()
    path.unlink()
    second = bind_datagram(path)
    try:
        with pytest.raises(ConnectionRefusedError):
            notifier.notify("STATUS=two")
    finally:
        second.close()


def test_kiskadee_status_is_utf8_whatever_the_package_name(short_tmp):
    receiver = bind_datagram(short_tmp / "notify")
    notifier = systemd.Notifier({"NOTIFY_SOCKET": str(short_tmp / "notify")})
    try:
        notifier.status("analyzing café 1.0")
        notifier.status("analyzing 日本 2.0")
        notifier.status("analyzing bad\udcff 3.0")         # a file name os.fsdecode could not decode
        assert receiver.recv(100).decode() == "STATUS=analyzing café 1.0"
        assert receiver.recv(100).decode() == "STATUS=analyzing 日本 2.0"
        assert receiver.recv(100).decode() == "STATUS=analyzing bad? 3.0"
    finally:
        receiver.close()


def test_sdnotify_sends_latin1_which_systemd_drops_and_fails_beyond_it(short_tmp, monkeypatch):
    receiver = bind_datagram(short_tmp / "notify")
    notifier = sdnotify_notifier(monkeypatch, short_tmp / "notify")
    try:
        notifier.notify("STATUS=analyzing café 1.0")
        sent = receiver.recv(100)
        with pytest.raises(UnicodeDecodeError):         # systemd: "not UTF-8 clean", status ignored
            sent.decode("utf-8")
        with pytest.raises(UnicodeEncodeError):
            notifier.notify("STATUS=analyzing 日本 2.0")
    finally:
        receiver.close()
