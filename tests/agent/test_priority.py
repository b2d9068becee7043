"""agent.priority: urgent work first across sessions (plain tickets), and the thread gate on top."""

from __future__ import annotations

import threading

from agent.priority import LATER, URGENT, PriorityGate, PriorityQueue


def test_urgent_waiters_go_first_then_arrival_order() -> None:
    q = PriorityQueue(slots=1)
    assert q.ask("running", LATER)
    for ticket, priority in [
        ("partial-a", LATER),
        ("final-b", URGENT),
        ("partial-c", LATER),
        ("final-d", URGENT),
    ]:
        assert not q.ask(ticket, priority)
    order = [q.done() for _ in range(4)]
    assert order == ["final-b", "final-d", "partial-a", "partial-c"]
    assert q.done() is None and q.in_use == 0


def test_a_free_slot_is_taken_at_once_and_slots_bound_the_users() -> None:
    q = PriorityQueue(slots=2)
    assert q.ask("a", LATER) and q.ask("b", LATER)
    assert not q.ask("c", URGENT)
    assert q.done() == "c"  # the slot passes straight on: still two users
    assert q.in_use == 2
    assert q.done() is None and q.done() is None and q.in_use == 0
    assert q.ask("d", LATER)


def test_the_gate_hands_the_slot_to_the_urgent_waiter() -> None:
    gate = PriorityGate(1)
    gate.by_priority = True  # [server] first_clauses_first = true
    gate.acquire(URGENT)  # busy: the others queue behind it
    partial, final = gate.ask(LATER), gate.ask(URGENT)
    assert not partial.is_set() and not final.is_set()
    order: list[str] = []

    def user(name: str, turn: threading.Event) -> None:
        turn.wait()
        order.append(name)
        gate.release()

    threads = [threading.Thread(target=user, args=a) for a in [("partial", partial), ("final", final)]]
    for t in threads:
        t.start()
    gate.release()
    for t in threads:
        t.join()
    assert order == ["final", "partial"]
    with gate.slot(LATER):  # free again: taken at once
        assert gate._queue.in_use == 1


def test_the_gate_is_first_come_first_served_when_priorities_are_off() -> None:
    gate = PriorityGate(1)  # off unless asked for ([server] first_clauses_first = false, talk, demo)
    gate.acquire(LATER)
    partial, final = gate.ask(LATER), gate.ask(URGENT)
    gate.release()
    assert partial.is_set() and not final.is_set()  # the earlier caller, whatever its priority
    gate.release()
    assert final.is_set()
    gate.release()


def test_work_worth_doing_only_when_idle_never_waits() -> None:
    gate = PriorityGate(1)
    gate.by_priority = True
    assert gate.try_acquire()  # idle: taken
    assert not gate.try_acquire()  # busy: refused at once, nothing queued
    final = gate.ask(URGENT)
    gate.release()
    assert final.is_set() and not gate.try_acquire()
    gate.release()
    assert gate.try_acquire()
    gate.release()
