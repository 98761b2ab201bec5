"""kiskadee.service.systemd against real sockets: notifications on a datagram socket, inherited listening sockets."""

import os
import socket

import pytest
import zmq

from kiskadee.service import systemd


@pytest.fixture
def notify_socket(short_tmp):
    """A datagram socket standing where systemd's notification socket would."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(short_tmp / "notify"))
    sock.settimeout(2)
    yield sock
    sock.close()


def received(sock):
    """Every notification waiting on ``sock``."""
    messages = []
    sock.settimeout(0.2)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except socket.timeout:
        return messages


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_notifier_sends_ready_status_and_stopping(notify_socket):
    notifier = systemd.Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})
    notifier.ready("monitor started")
    notifier.status("3 queued, 2 running")
    notifier.status("3 queued, 2 running")          # unchanged: not sent again
    notifier.status("analyzing hello 2.10 with cppcheck")
    notifier.stopping()
    assert received(notify_socket) == [
        "READY=1\nSTATUS=monitor started", "STATUS=3 queued, 2 running",
        "STATUS=analyzing hello 2.10 with cppcheck", "STOPPING=1\nSTATUS=stopping"]


def test_watchdog_is_sent_at_half_the_period_and_no_more_often(notify_socket):
    clock = Clock()
    notifier = systemd.Notifier({"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "10000000",
                                 "WATCHDOG_PID": str(os.getpid())}, clock=clock)
    assert notifier.watchdog_interval == 5.0
    for step in range(12):              # a loop turning every second for 12 s
        notifier.watchdog()
        clock.now += 1.0
    assert received(notify_socket) == ["WATCHDOG=1"] * 3      # at 0, 5 and 10 s


def test_watchdog_of_another_process_is_not_ours(notify_socket):
    notifier = systemd.Notifier({"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "10000000",
                                 "WATCHDOG_PID": "1"})
    notifier.watchdog()
    assert notifier.watchdog_interval == 0 and received(notify_socket) == []


def test_abstract_notification_socket():
    name = f"kiskadee-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        systemd.Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        sock.settimeout(2)
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_without_systemd_nothing_is_sent_and_nothing_fails():
    notifier = systemd.Notifier({})
    assert not notifier.enabled
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping()


def test_a_vanished_notification_socket_is_a_warning_not_a_crash(short_tmp, caplog):
    notifier = systemd.Notifier({"NOTIFY_SOCKET": str(short_tmp / "gone")})
    notifier.ready()
    notifier.status("still running")
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def test_stall_hook_is_off_unless_set():
    clock = Clock()
    assert systemd.Notifier({}, clock=clock).stall_at is None
    assert systemd.Notifier({systemd.STALL_HOOK: "5"}, clock=clock).stall_at == 105.0


def test_listen_fds_by_name_and_unset():
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "3", "LISTEN_FDNAMES": "intake:work:work"}
    assert systemd.listen_fds(environ, unset=True) == {"intake": [3], "work": [4, 5]}
    assert environ == {}


def test_listen_fds_of_another_process_are_ignored():
    assert systemd.listen_fds({"LISTEN_PID": "1", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "intake:work"}) == {}
    assert systemd.listen_fds({}) == {}


def test_socket_endpoint_of_unix_and_tcp_listeners(short_tmp):
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(short_tmp / "intake.sock"))
    unix.listen()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    try:
        assert systemd.socket_endpoint(unix.fileno()) == f"ipc://{short_tmp}/intake.sock"
        assert systemd.socket_endpoint(tcp.fileno()) == f"tcp://127.0.0.1:{tcp.getsockname()[1]}"
        assert unix.fileno() >= 0 and tcp.fileno() >= 0       # borrowed, not closed
    finally:
        unix.close()
        tcp.close()


def test_socket_endpoint_refuses_what_zmq_cannot_serve(short_tmp):
    datagram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    datagram.bind(str(short_tmp / "d.sock"))
    not_listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with open(short_tmp / "file", "w") as regular:
        try:
            for fd in (datagram.fileno(), not_listening.fileno(), regular.fileno()):
                with pytest.raises(systemd.InheritedSocketError):
                    systemd.socket_endpoint(fd)
        finally:
            datagram.close()
            not_listening.close()


def test_adopted_socket_serves_and_outlives_the_zmq_socket(short_tmp):
    """What systemd holds stays: closing the adopting socket neither closes nor unlinks it."""
    path = short_tmp / "intake.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    fd = os.dup(listener.fileno())          # zmq owns this copy, as a service owns systemd's
    context = zmq.Context()
    router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    try:
        assert systemd.bind(router, "ipc:///elsewhere.sock", [fd]) == [f"ipc://{path}"]
        dealer.connect(f"ipc://{path}")
        dealer.send(b"hello")
        assert router.poll(5000)
        assert router.recv_multipart()[1] == b"hello"
        router.close(linger=0)
        assert path.exists()
        second = context.socket(zmq.ROUTER)          # a restarted service adopts the same socket again
        systemd.bind(second, f"ipc://{path}", [os.dup(listener.fileno())])
        for _attempt in range(50):      # a frame written into the old connection is lost: send until one arrives
            dealer.send(b"again")
            if second.poll(100):
                break
        assert second.recv_multipart(zmq.NOBLOCK)[1] == b"again"
    finally:
        dealer.close(linger=0)
        router.close(linger=0)
        if "second" in locals():
            second.close(linger=0)
        context.term()
        listener.close()


def test_bind_without_inherited_sockets_creates_the_directory(short_tmp):
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    try:
        endpoint = f"ipc://{short_tmp}/run/work.sock"
        assert systemd.bind(router, endpoint, []) == [endpoint]
        assert (short_tmp / "run" / "work.sock").exists()
    finally:
        router.close(linger=0)
        context.term()
