"""runcpserver's scheduling parts, driven directly: the request queue and the gate."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from django_devcommands.servers import http, supervisor
from django_devcommands.servers.supervisor import Concurrency


def test_a_pool_threads_own_put_waits_for_that_thread_not_another() -> None:
    """The gate starts a held request as a thread's request ends: that thread takes it
    next, and a sleeping thread is not woken for it. Puts from elsewhere (the selector
    thread) are shared, in order."""
    queue = http._WarmQueue()
    got: dict[str, list[object]] = {"a": [], "b": []}
    a_started, proceed, put_done, go_on = (threading.Event() for _ in range(4))

    def thread_a() -> None:
        got["a"].append(queue.get())
        a_started.set()
        proceed.wait(5)
        queue.put("mine")
        queue.put("second")  # one item is kept per thread: this one is shared
        put_done.set()
        go_on.wait(5)
        got["a"].append(queue.get())

    def thread_b() -> None:
        for _ in range(2):
            got["b"].append(queue.get())

    a = threading.Thread(target=thread_a, daemon=True)
    b = threading.Thread(target=thread_b, daemon=True)
    a.start()
    queue.put("first")
    assert a_started.wait(5)
    b.start()
    time.sleep(0.1)  # b is waiting for work
    proceed.set()
    assert put_done.wait(5)
    time.sleep(0.2)  # b had time to take "mine" too, were it shared
    assert got["b"] == ["second"]
    go_on.set()
    a.join(5)
    assert got["a"] == ["first", "mine"]
    queue.put("last")
    b.join(5)
    assert got["b"] == ["second", "last"]


_gates: list[http._Gate] = []


@pytest.fixture(autouse=True)
def _close_gates():
    yield
    while _gates:
        _gates.pop().close()


def _gate_at_one(pull: Any = None) -> tuple[http._Gate, list[Any]]:
    started: list[Any] = []
    gate = http._Gate(threads=4, dispatch=started.append, pull=pull)
    _gates.append(gate)
    gate.concurrency = Concurrency(4, clock=lambda: 0.0, cpu_clock=lambda: 0.0)
    gate.concurrency.limit = 1  # as when the process uses a whole core
    return gate, started


def _waiter(gate: http._Gate, timeout: float) -> tuple[threading.Thread, list[float]]:
    took: list[float] = []

    def wait() -> None:
        begin = time.monotonic()
        gate.wait_for_room(timeout)
        took.append(time.monotonic() - begin)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, took


def test_the_selector_sleeps_while_requests_are_held_until_they_start() -> None:
    gate, started = _gate_at_one()
    first, second, third = (SimpleNamespace() for _ in range(3))
    gate.admit(first)
    gate.admit(second)
    gate.admit(third)
    assert started == [first] and gate.waiting()

    thread, took = _waiter(gate, 10)
    time.sleep(0.2)
    assert not took  # asleep: nothing can start
    gate.done(first)
    time.sleep(0.2)
    assert started == [first, second] and not took  # one still held
    gate.done(second)
    thread.join(5)
    assert started == [first, second, third]
    assert took and took[0] < 5


def test_the_selector_wakes_each_window_and_at_once_when_nothing_is_held() -> None:
    gate, _ = _gate_at_one()
    begin = time.monotonic()
    gate.wait_for_room(10)  # nothing held: no wait
    assert time.monotonic() - begin < 1
    gate.admit(SimpleNamespace())
    gate.admit(SimpleNamespace())
    thread, took = _waiter(gate, 0.3)  # a window: the limit may have to rise
    thread.join(5)
    assert took and 0.25 < took[0] < 3


def test_stopping_starts_held_requests_and_wakes_the_selector() -> None:
    gate, started = _gate_at_one()
    for _ in range(3):
        gate.admit(SimpleNamespace())
    thread, took = _waiter(gate, 10)
    time.sleep(0.1)
    gate.stop_gating()
    thread.join(5)
    assert len(started) == 3 and took and took[0] < 5


def test_the_selector_also_wakes_for_a_new_connection() -> None:
    gate, _ = _gate_at_one()
    gate.admit(SimpleNamespace())
    gate.admit(SimpleNamespace())
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        begin = time.monotonic()
        assert gate.wait_for_room(0.2, listener.fileno()) is False  # nobody connected
        assert time.monotonic() - begin > 0.15
        client = socket.create_connection(listener.getsockname())
        begin = time.monotonic()
        assert gate.wait_for_room(10, listener.fileno()) is True
        assert time.monotonic() - begin < 5
        client.close()
    finally:
        listener.close()


def test_a_thread_whose_request_ends_accepts_only_when_nothing_is_held() -> None:
    pulls: list[int] = []
    gate, started = _gate_at_one(pull=lambda: pulls.append(gate.in_service))
    first, second = SimpleNamespace(), SimpleNamespace()
    gate.admit(first)
    gate.admit(second)  # held
    gate.done(first)  # starts the held one: no room for a new connection
    assert started == [first, second] and pulls == []
    gate.done(second)  # nothing held, a slot free: look for a new connection
    assert pulls == [0]
    gate.done(second)  # not in service (already done): nothing
    assert pulls == [0]


def test_the_listening_socket_defers_accept_until_a_request_arrives() -> None:
    sock = supervisor.listen_socket("127.0.0.1", 0, backlog=8)
    try:
        deferred = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)
        assert deferred > 0
        sock.settimeout(0.3)
        silent = socket.create_connection(sock.getsockname())
        with pytest.raises(TimeoutError):
            sock.accept()  # connected, but nothing sent yet
        talking = socket.create_connection(sock.getsockname())
        talking.sendall(b"GET / HTTP/1.1\r\n\r\n")
        accepted, _ = sock.accept()
        assert accepted.recv(64).startswith(b"GET /")
        for s in (accepted, silent, talking):
            s.close()
    finally:
        sock.close()


def _worker(sock: socket.socket, **kwargs: Any) -> supervisor.Worker:
    return supervisor.Worker(engine=SimpleNamespace(), sock=sock, log=lambda _: None, **kwargs)


def test_a_worker_takes_its_share_of_a_waiting_burst_at_once() -> None:
    """Past the slack over its least busy peer, a worker still accepts while more
    connections wait than the peers need to catch up (read from the kernel's queue)."""
    board = supervisor.Heartbeat(slots=4)
    me, peer = board.take(), board.take()
    for slot in (me, peer):
        board.beat(slot)
    board.set_load(peer, 0, accepting=True)
    sock = supervisor.listen_socket("127.0.0.1", 0, backlog=64)
    clients: list[socket.socket] = []
    try:
        worker = _worker(sock, heartbeat=board, slot=me)
        worker.connections = 10
        assert supervisor.waiting_connections(sock) == 0
        assert not worker.may_accept()  # 10 against 0: the peer's turn
        for _ in range(12):
            client = socket.create_connection(sock.getsockname())
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")  # accepted only once it talks
            clients.append(client)
        deadline = time.monotonic() + 5
        while supervisor.waiting_connections(sock) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert supervisor.waiting_connections(sock) == 12
        assert worker.may_accept()  # 12 waiting: the peer can still catch up
        worker.connections = 12
        assert not worker.may_accept()  # the peer needs all 12 to catch up
        board.take()  # a third worker, live and idle: two peers share what waits
        board.beat(2)
        board.set_load(2, 0, accepting=True)
        worker.connections = 5
        assert worker.may_accept()  # 2 x 5 < 12
        worker.connections = 6
        assert not worker.may_accept()  # 2 x 6 = 12: the peers need them all
    finally:
        for client in clients:
            client.close()
        sock.close()
    unix = socket.socket(socket.AF_UNIX)
    try:
        assert supervisor.waiting_connections(unix) == 0  # not known: the slack decides
    finally:
        unix.close()


def test_a_burst_is_accepted_before_any_connection_is_handed_to_a_thread(monkeypatch) -> None:
    """Each system call lets a busy thread take the GIL (and keep it for 5 ms): the
    manager accepts and polls the whole burst first, then hands it over."""
    events: list[str] = []
    sock = supervisor.listen_socket("127.0.0.1", 0, backlog=64)
    sock.settimeout(0)
    clients = []
    try:
        for _ in range(5):
            client = socket.create_connection(sock.getsockname())
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            clients.append(client)
        real_poll = http._has_input

        def polled(s: socket.socket) -> bool:
            events.append("poll")
            return real_poll(s)

        monkeypatch.setattr(http, "_has_input", polled)
        handed: list[Any] = []

        def process_conn(conn: Any) -> None:
            events.append("hand")
            handed.append(conn)

        server = SimpleNamespace(
            socket=sock,
            stats={"Enabled": False},
            timeout=10,
            ssl_adapter=None,
            bind_addr=sock.getsockname(),
            ConnectionClass=lambda server, s, makefile: SimpleNamespace(socket=s),
            process_conn=process_conn,
        )
        gate, _ = _gate_at_one()
        manager = http._balanced_manager(server, _worker(sock), gate)
        deadline = time.monotonic() + 5
        while supervisor.waiting_connections(sock) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manager._from_server_socket(sock) is None  # handed over already
        assert events == ["poll"] * 5 + ["hand"] * 5
        assert all(conn._had_input for conn in handed)
        for conn in handed:
            conn.socket.close()
    finally:
        for client in clients:
            client.close()
        sock.close()


def test_a_ready_worker_freezes_what_it_built_out_of_the_collectors_sight() -> None:
    """A full collection walked Django and everything loaded at start-up (26 ms per
    worker every few seconds on the example): a worker freezes its start-up heap."""
    import gc

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    sock = socket.socket()
    try:
        _worker(sock).ready()
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        sock.close()
