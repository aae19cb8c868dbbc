"""Visdom ports: distinct under concurrency, bind-checked, released."""
from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.jobs.ports import PortPool, PortsExhausted, can_bind


def bindable_range(ports, size: int) -> tuple[int, int]:
    """A range of ``size`` ports of which none is in use now (other tests' servers run beside this one)."""
    for _ in range(100):
        first, last = ports(size)
        if all(can_bind(port) for port in range(first, last + 1)):
            return first, last
    raise AssertionError(f"no range of {size} free ports found")


def test_hundred_concurrent_allocations_never_share_a_port(ports):
    pool = PortPool(*bindable_range(ports, 100))
    with ThreadPoolExecutor(32) as executor:
        ports = list(executor.map(lambda _: pool.allocate(), range(100)))
    assert len(set(ports)) == 100
    with pytest.raises(PortsExhausted):
        pool.allocate()
    pool.release(ports[7])
    assert pool.allocate() == ports[7]


def test_a_port_another_program_listens_on_is_skipped():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        assert not can_bind(taken)
        pool = PortPool(taken, taken + 1)
        assert pool.allocate() == taken + 1


def test_held_ports_from_adopted_jobs_are_not_given(ports):
    first, last = ports(3)
    pool = PortPool(first, last)
    pool.hold([first, first + 1])
    assert pool.allocate() == last and pool.free_count() == 0 and not pool.is_free(first)
