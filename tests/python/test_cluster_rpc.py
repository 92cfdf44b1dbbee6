"""RPC across the nodes of a cluster (issue #14, item 4): three `switchboard gateway` processes on one
RabbitMQ stream, unmodified Autobahn|Python callers and callees on different nodes.

A caller on node 2 calls procedures registered on node 3: plain (arguments, keyword arguments, an
application error, caller disclosure), progressive, canceled in each of the three modes, timed out; a
roundrobin registration spread over nodes 1 and 3 alternates; `single` on one node refuses another
node's registration; a callee or a caller that leaves mid-call ends the call on the other node; a node
that starts late learns the registrations that exist; a callee node killed with SIGKILL mid-call fails
the call (wamp.error.canceled, no hang) and its procedures become wamp.error.no_such_procedure."""

import asyncio
import time

import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult, RegisterOptions

from support import Clients, Inbox, uid, wait, wamp_test
# `cluster`: the module fixture (three nodes of a fresh stream), imported: this module gets its own.
from test_cluster import Node, cluster  # noqa: F401
from test_rpc import SlowCallee, expect_error, round_trip, yielded

WITH_DETAILS = RegisterOptions(details_arg="details")
# A node forgets a silent node after 3.5 s (nodes.rs EXPIRY); calls to it fail then.
NODE_EXPIRY = 3.5


async def reachable(caller, procedure: str, timeout: float = 10.0) -> None:
    """Waits until `caller`'s node knows `procedure` (registrations travel to the other nodes as
    messages). Callees register `<x>.ready` after their real procedures: their node announces in
    order, so once it is callable the others are known too."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert await wait(caller.call(procedure), f"{procedure}") == "ready"
            return
        except ApplicationError as e:
            assert e.error == "wamp.error.no_such_procedure", e
            assert time.monotonic() < deadline, f"{procedure} never became callable from the caller's node"
            await asyncio.sleep(0.05)


def call_disclosed(caller, procedure: str):
    """CALL with Options.disclose_me = true: Autobahn|Python 26's CallOptions has no such argument, so
    its Call message is told to add it while this one call is marshaled (synchronously, in call())."""
    plain = message.Call.marshal_options

    def disclosed(self):
        options = plain(self)
        options["disclose_me"] = True
        return options

    message.Call.marshal_options = disclosed
    try:
        return caller.call(procedure)
    finally:
        message.Call.marshal_options = plain


async def ready(callee, proc: str) -> None:
    await callee.register(lambda: "ready", f"{proc}.ready")


async def across(on_callee: Clients, on_caller: Clients, proc: str, handler, options=None):
    """A callee of `proc` on one node and a caller on another that already knows it; returns both."""
    callee = await on_callee.connect()
    await callee.register(handler, proc, options=options)
    await ready(callee, proc)
    caller = await on_caller.connect()
    await reachable(caller, f"{proc}.ready")
    return callee, caller


@wamp_test()
async def test_a_call_on_node_2_reaches_a_procedure_on_node_3(cluster):
    proc = f"com.cluster.rpc.{uid()}"
    async with Clients(cluster.nodes[2].url, "json") as on3, Clients(cluster.nodes[1].url, "msgpack") as on2:
        callee = await on3.connect()
        seen = Inbox()

        def echo(*args, details=None, **kwargs):
            seen.put(details)
            return CallResult(*args, **kwargs)

        def fails():
            raise ApplicationError("com.example.error.bad", 1, 2, reason="x")

        await callee.register(echo, proc, options=WITH_DETAILS)
        await callee.register(fails, f"{proc}.fails")
        await ready(callee, proc)
        caller = await on2.connect()
        await reachable(caller, f"{proc}.ready")

        args = [1, "zwei ü", 3.5, None, True, [1, {"x": [2]}], 2**53, b"\x00\xffbin"]
        kwargs = {"k": "v", "nested": {"a": [1, 2]}}
        result = await wait(caller.call(proc, *args, **kwargs), "RESULT from node 3")
        assert list(result.results) == args and result.kwresults == kwargs
        assert (await seen.count(1))[0].caller is None, "the caller was disclosed without asking"

        await wait(call_disclosed(caller, proc), "RESULT")
        details = (await seen.count(2))[1]
        assert (details.caller, details.caller_authid) == (caller._session_id, caller._authid)

        error = await expect_error(caller.call(f"{proc}.fails"), "com.example.error.bad")
        assert list(error.args) == [1, 2] and error.kwargs == {"reason": "x"}


@wamp_test()
async def test_progressive_results_travel_across_nodes(cluster):
    proc = f"com.cluster.rpc.progress.{uid()}"
    async with Clients(cluster.nodes[2].url, "json") as on3, Clients(cluster.nodes[1].url, "json") as on2:

        def count(n, details=None):
            assert details.progress is not None, "the caller asked for progress, the callee got none"
            for i in range(n):
                details.progress(i, step=f"s{i}")
            return "done"

        _, caller = await across(on3, on2, proc, count, WITH_DETAILS)
        progress = Inbox()
        on_progress = CallOptions(on_progress=lambda *a, **kw: progress.put((list(a), kw)))
        assert await wait(caller.call(proc, 4, options=on_progress), "the final RESULT") == "done"
        assert progress.items == [([i], {"step": f"s{i}"}) for i in range(4)]


@pytest.mark.parametrize("mode", ["kill", "killnowait", "skip"])
@wamp_test()
async def test_cancel_across_nodes(cluster, mode):
    proc = f"com.cluster.rpc.cancel.{mode}.{uid()}"
    async with Clients(cluster.nodes[2].url, "json") as on3, Clients(cluster.nodes[1].url, "json") as on2:
        slow = SlowCallee()
        callee, caller = await across(on3, on2, proc, slow)
        fut = asyncio.ensure_future(caller.call(proc))
        await wait(slow.started.wait(), "the INVOCATION on node 3")
        request = caller.pending_call_request_id(proc)
        caller.send(message.Cancel(request, mode=mode))
        if mode == "skip":
            await expect_error(fut, "wamp.error.canceled")
            await asyncio.sleep(0.3)
            assert not [m for m in callee.received if isinstance(m, message.Interrupt)]
            slow.release.set()
            await wait(yielded(callee), "the callee's late YIELD")
            await round_trip(callee)
            assert slow.finished_normally
        else:
            await wait(slow.interrupted.wait(), f"the callee on node 3 to be interrupted ({mode})")
            interrupts = [m for m in callee.received if isinstance(m, message.Interrupt)]
            assert len(interrupts) == 1 and interrupts[0].mode in (mode, None), interrupts
            if mode == "kill":
                await asyncio.sleep(0.3)
                assert not fut.done(), "kill: the caller was answered before the callee acknowledged"
                slow.release.set()
            await expect_error(fut, "wamp.error.canceled")
            slow.release.set()
        await asyncio.sleep(0.3)
        assert len(caller.errors_received()) == 1, caller.errors_received()
        assert not [m for m in caller.received if isinstance(m, message.Result) and m.request == request]


@wamp_test()
async def test_a_timed_out_call_interrupts_the_callee_on_its_node(cluster):
    proc = f"com.cluster.rpc.timeout.{uid()}"
    async with Clients(cluster.nodes[2].url, "json") as on3, Clients(cluster.nodes[1].url, "json") as on2:
        slow = SlowCallee()
        callee, caller = await across(on3, on2, proc, slow)
        started = time.monotonic()
        error = await expect_error(caller.call(proc, options=CallOptions(timeout=300)), "wamp.error.canceled")
        assert "timed out after 300 ms" in error.args[0] and time.monotonic() - started < 3
        await wait(slow.interrupted.wait(), "the callee on node 3 to be interrupted")
        interrupt = next(m for m in callee.received if isinstance(m, message.Interrupt))
        assert interrupt.reason == "wamp.error.timeout", interrupt
        slow.release.set()


@wamp_test()
async def test_a_roundrobin_registration_on_nodes_1_and_3_alternates(cluster):
    proc = f"com.cluster.rpc.rr.{uid()}"
    rr = RegisterOptions(invoke="roundrobin")
    async with Clients(cluster.nodes[0].url, "json") as on1, Clients(cluster.nodes[2].url, "json") as on3, Clients(
        cluster.nodes[1].url, "json"
    ) as on2:
        first, second = await on1.connect(), await on3.connect()
        await first.register(lambda: "n1", proc, options=rr)
        await second.register(lambda: "n3", proc, options=rr)
        await ready(first, proc)
        await ready(second, f"{proc}.3")
        caller = await on2.connect()
        await reachable(caller, f"{proc}.ready")
        await reachable(caller, f"{proc}.3.ready")
        answers = [await wait(caller.call(proc), "RESULT") for _ in range(6)]
        assert sorted(answers) == ["n1"] * 3 + ["n3"] * 3, answers
        assert all(a != b for a, b in zip(answers, answers[1:])), f"not alternating: {answers}"

        # a session on node 2 joins the round
        local = await on2.connect()
        await local.register(lambda: "n2", proc, options=rr)
        answers = [await wait(caller.call(proc), "RESULT") for _ in range(6)]
        assert sorted(answers) == ["n1"] * 2 + ["n2"] * 2 + ["n3"] * 2, answers


@wamp_test()
async def test_single_on_one_node_refuses_another_nodes_registration(cluster):
    proc = f"com.cluster.rpc.single.{uid()}"
    async with Clients(cluster.nodes[0].url, "json") as on1, Clients(cluster.nodes[2].url, "json") as on3:
        owner = await on1.connect()
        await owner.register(lambda: "n1", proc)
        await ready(owner, proc)
        other = await on3.connect()
        await reachable(other, f"{proc}.ready")
        for invoke in ("single", "roundrobin"):
            error = await expect_error(
                other.register(lambda: "n3", proc, options=RegisterOptions(invoke=invoke)),
                "wamp.error.procedure_already_exists",
            )
            assert "on node" in error.args[0], error.args
        assert await wait(other.call(proc), "RESULT") == "n1"


@wamp_test()
async def test_a_party_that_leaves_mid_call_ends_the_call_on_the_other_node(cluster):
    proc = f"com.cluster.rpc.leave.{uid()}"
    async with Clients(cluster.nodes[2].url, "json") as on3, Clients(cluster.nodes[1].url, "json") as on2:
        # the callee leaves: the caller on node 2 gets wamp.error.canceled
        callee, caller = await across(on3, on2, proc, SlowCallee())
        fut = asyncio.ensure_future(caller.call(proc))
        await asyncio.sleep(0.3)
        callee.drop()
        error = await expect_error(fut, "wamp.error.canceled")
        assert "callee left" in error.args[0], error.args
        await expect_error(caller.call(proc), "wamp.error.no_such_procedure")

        # the caller leaves: the callee on node 3 is interrupted
        slow = SlowCallee()
        callee, caller = await across(on3, on2, f"{proc}.2", slow)
        asyncio.ensure_future(caller.call(f"{proc}.2"))
        await wait(slow.started.wait(), "the INVOCATION on node 3")
        caller.drop()
        await wait(slow.interrupted.wait(), "the callee to be interrupted when its caller left")
        slow.release.set()


@pytest.mark.timeout(120)  # nodes to start and kill; the pytest.ini guard of 60 s is for one-node tests
@wamp_test(timeout=90)
async def test_a_late_node_learns_registrations_and_a_killed_node_takes_its_own(cluster):
    proc = f"com.cluster.rpc.late.{uid()}"
    late = Node(cluster.stream, f"n4-{uid()}")
    try:
        async with Clients(cluster.nodes[2].url, "json") as on3:
            callee = await on3.connect()
            await callee.register(lambda: "from n3", proc)
            await ready(callee, proc)
            late.start()
            async with Clients(late.url, "json") as on4, Clients(cluster.nodes[1].url, "json") as on2:
                caller4 = await on4.connect()
                await reachable(caller4, f"{proc}.ready")
                assert await wait(caller4.call(proc), "RESULT from node 3") == "from n3"

                # node 4 serves a slow procedure; node 2 calls it; node 4 dies
                on4_callee = await on4.connect()
                slow = SlowCallee()
                await on4_callee.register(slow, f"{proc}.slow")
                await ready(on4_callee, f"{proc}.slow")
                caller2 = await on2.connect()
                await reachable(caller2, f"{proc}.slow.ready")
                fut = asyncio.ensure_future(caller2.call(f"{proc}.slow"))
                await wait(slow.started.wait(), "the INVOCATION on node 4")
                killed = time.monotonic()
                late.kill()
                error = await expect_error(asyncio.wait_for(fut, NODE_EXPIRY + 5), "wamp.error.canceled")
                assert "left the cluster" in error.args[0], error.args
                assert time.monotonic() - killed < NODE_EXPIRY + 3
                await expect_error(caller2.call(f"{proc}.slow"), "wamp.error.no_such_procedure")
                assert await wait(caller2.call(proc), "RESULT from node 3") == "from n3"
    finally:
        late.kill()
        late.close()


@pytest.mark.timeout(120)
@wamp_test(timeout=90)
async def test_a_callee_node_restarted_at_once_ends_its_calls_and_serves_again(cluster):
    """kill -9 and an immediate restart under the same name: the other nodes never see it silent, they
    see a new incarnation, and end its calls in flight at once instead of waiting for answers that the
    dead process cannot send."""
    proc = f"com.cluster.rpc.restart.{uid()}"
    name = f"n5-{uid()}"
    node = Node(cluster.stream, name)
    try:
        node.start()
        async with Clients(cluster.nodes[1].url, "json") as on2:
            caller = await on2.connect()
            async with Clients(node.url, "json") as on5:
                callee = await on5.connect()
                slow = SlowCallee()
                await callee.register(slow, proc)
                await ready(callee, proc)
                await reachable(caller, f"{proc}.ready")
                fut = asyncio.ensure_future(caller.call(proc))
                await wait(slow.started.wait(), "the INVOCATION on node 5")
                node.kill()
                slow.release.set()
            node.close()
            node = Node(cluster.stream, name)
            node.start()
            error = await expect_error(fut, "wamp.error.canceled")
            assert "left the cluster" in error.args[0], error.args
            cluster.nodes[1].wait_for_log("node restarted or reconnected")
            async with Clients(node.url, "json") as on5:
                callee = await on5.connect()
                await callee.register(lambda: "again", proc)
                await ready(callee, f"{proc}.again")
                await reachable(caller, f"{proc}.again.ready")
                assert await wait(caller.call(proc), "RESULT from the restarted node") == "again"
    finally:
        node.kill()
        node.close()
