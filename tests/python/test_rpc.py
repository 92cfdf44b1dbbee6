"""Remote procedure calls with an unmodified Autobahn|Python client (json and msgpack)."""

import asyncio

import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult, PublishOptions, RegisterOptions

from support import Clients, Inbox, uid, wait, wamp_test

WITH_DETAILS = RegisterOptions(details_arg="details")


async def expect_error(awaitable, uri: str) -> ApplicationError:
    try:
        result = await wait(awaitable, f"an ERROR {uri}")
    except ApplicationError as e:
        assert e.error == uri, f"expected ERROR {uri}, got {e.error} args={e.args} kwargs={e.kwargs}"
        return e
    raise AssertionError(f"expected ERROR {uri}, got result {result!r}")


async def round_trip(session) -> None:
    """One acknowledged request/response on `session`: everything the router queued to it
    before handling this request has been received once this returns."""
    await wait(session.publish(f"com.test.sync.{uid()}", options=PublishOptions(acknowledge=True)), "a PUBLISHED")


@wamp_test()
async def test_call_with_args_and_kwargs(url, serializer):
    proc = f"com.test.rpc.echo.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()
        seen = []

        def echo(*args, **kwargs):
            seen.append((list(args), kwargs))
            return CallResult(*args, **kwargs)

        def add(a, b, scale=1):
            return (a + b) * scale

        reg = await callee.register(echo, proc)
        assert type(reg.id) is int and 1 <= reg.id <= 2**53
        await callee.register(add, f"{proc}.add")

        args = [1, "zwei ü", 3.5, None, True, [1, {"x": [2]}], 2**53]
        kwargs = {"k": "v", "nested": {"a": [1, 2]}, "neg": -1}
        res = await wait(caller.call(proc, *args, **kwargs), "RESULT of echo")
        assert isinstance(res, CallResult), res
        assert list(res.results) == args and res.kwresults == kwargs
        assert seen == [(args, kwargs)]

        assert await wait(caller.call(f"{proc}.add", 2, 3), "RESULT of add") == 5
        assert await wait(caller.call(f"{proc}.add", 2, 3, scale=10), "RESULT of add") == 50
        # a callee returning nothing still answers
        await callee.register(lambda: None, f"{proc}.none")
        assert await wait(caller.call(f"{proc}.none"), "RESULT of none") is None


@wamp_test()
async def test_call_cross_serializers(url, serializer):
    other = "msgpack" if serializer == "json" else "json"
    proc = f"com.test.rpc.cross.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(serializer), await c.connect(other)
        await callee.register(lambda *a, **kw: CallResult(*a, **kw), proc)
        res = await wait(caller.call(proc, 1, "ü", [2.5], b"\x00\xffbin", k={"v": None}), "RESULT")
        assert list(res.results) == [1, "ü", [2.5], b"\x00\xffbin"] and res.kwresults == {"k": {"v": None}}


@wamp_test()
async def test_application_error_reaches_caller(url, serializer):
    proc = f"com.test.rpc.fails.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()

        def fails():
            raise ApplicationError("com.example.error.bad", 1, 2, reason="x")

        await callee.register(fails, proc)
        e = await expect_error(caller.call(proc), "com.example.error.bad")
        assert e.args == (1, 2)
        assert e.kwargs == {"reason": "x"}
        # the callee's session keeps working after the error
        await callee.register(lambda: "ok", f"{proc}.ok")
        assert await wait(caller.call(f"{proc}.ok"), "RESULT") == "ok"


@wamp_test()
async def test_call_unregistered_procedure(url, serializer):
    async with Clients(url, serializer) as c:
        caller = await c.connect()
        await expect_error(caller.call(f"com.test.rpc.nobody.{uid()}", 1), "wamp.error.no_such_procedure")


@wamp_test()
async def test_register_twice_is_procedure_already_exists(url, serializer):
    proc = f"com.test.rpc.dup.{uid()}"
    async with Clients(url, serializer) as c:
        first, second = await c.connect(), await c.connect()
        await first.register(lambda: "first", proc)
        await expect_error(second.register(lambda: "second", proc), "wamp.error.procedure_already_exists")
        await expect_error(first.register(lambda: "again", proc), "wamp.error.procedure_already_exists")
        # a shared registration cannot join a single one either
        await expect_error(
            second.register(lambda: "rr", proc, options=RegisterOptions(invoke="roundrobin")),
            "wamp.error.procedure_already_exists",
        )
        assert await wait(second.call(proc), "RESULT") == "first"


@wamp_test()
async def test_unregister_then_no_such_procedure(url, serializer):
    proc = f"com.test.rpc.unreg.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()
        reg = await callee.register(lambda: "here", proc)
        assert await wait(caller.call(proc), "RESULT") == "here"
        await reg.unregister()
        await expect_error(caller.call(proc), "wamp.error.no_such_procedure")
        # and the URI is free again
        await caller.register(lambda: "mine", proc)
        assert await wait(callee.call(proc), "RESULT") == "mine"


@wamp_test()
async def test_progressive_call_results(url, serializer):
    proc = f"com.test.rpc.progress.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()

        async def countdown(n, details=None):
            assert details.progress is not None, "caller asked for progress but callee got no progress()"
            for i in range(n):
                details.progress(i, step=f"s{i}")
                await asyncio.sleep(0)
            return CallResult("done", total=n)

        await callee.register(countdown, proc, options=WITH_DETAILS)
        progress = Inbox()
        res = await wait(
            caller.call(proc, 4, options=CallOptions(on_progress=lambda *a, **kw: progress.put((list(a), kw)))),
            "final RESULT",
        )
        assert progress.items == [([i], {"step": f"s{i}"}) for i in range(4)]
        assert list(res.results) == ["done"] and res.kwresults == {"total": 4}

        # without on_progress the callee gets no progress callable and the caller only the final result
        async def plain(details=None):
            assert details.progress is None
            return "only-final"

        await callee.register(plain, f"{proc}.plain", options=WITH_DETAILS)
        assert await wait(caller.call(f"{proc}.plain"), "RESULT") == "only-final"


class SlowCallee:
    """A registered async handler that runs until released or interrupted."""

    def __init__(self):
        self.started = asyncio.Event()
        self.interrupted = asyncio.Event()
        self.release = asyncio.Event()  # lets a handler (running or interrupted) finish
        self.finished_normally = False

    async def __call__(self):
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.interrupted.set()
            # acknowledge the INTERRUPT only when the test says so (bounded, so that a
            # failing test's event loop can still shut down)
            try:
                await asyncio.wait_for(self.release.wait(), 3.0)
            except asyncio.TimeoutError:
                pass
            raise
        self.finished_normally = True
        return "finished"


async def yielded(callee) -> None:
    """Wait until the callee's Autobahn session has answered every INVOCATION it got."""
    while callee._invocations:
        await asyncio.sleep(0.01)


async def check_session_still_works(callee, caller, proc):
    await callee.register(lambda: "alive", f"{proc}.alive")
    assert await wait(caller.call(f"{proc}.alive"), "RESULT after cancel") == "alive"


@wamp_test()
async def test_cancel_call_with_autobahn_api(url, serializer):
    """Autobahn's public way: cancel the call's future (sends CANCEL without a mode)."""
    proc = f"com.test.rpc.cancel.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()
        slow = SlowCallee()
        await callee.register(slow, proc)
        fut = caller.call(proc)
        await wait(slow.started.wait(), "the INVOCATION to start the handler")
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fut
        await wait(slow.interrupted.wait(), "the callee's handler to be interrupted (INTERRUPT)")
        slow.release.set()

        async def call_error():
            while not caller.errors_received():
                await asyncio.sleep(0.01)

        await wait(call_error(), "an ERROR for the canceled CALL")
        errors = [(m.error, m.args) for m in caller.errors_received()]
        assert [e for (e, _a) in errors] == ["wamp.error.canceled"], f"caller got ERROR(s) {errors}"
        assert not slow.finished_normally
        await check_session_still_works(callee, caller, proc)


@pytest.mark.parametrize("mode", ["kill", "killnowait", "skip"])
@wamp_test()
async def test_cancel_modes(url, serializer, mode):
    """CANCEL with an explicit Options.mode, built with Autobahn's own message class."""
    proc = f"com.test.rpc.cancel.{mode}.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()
        slow = SlowCallee()
        await callee.register(slow, proc)
        fut = asyncio.ensure_future(caller.call(proc))
        await wait(slow.started.wait(), "the INVOCATION to start the handler")
        caller.send(message.Cancel(caller.pending_call_request_id(proc), mode=mode))

        if mode == "skip":
            # the caller gets its ERROR at once; the callee hears nothing and may finish
            await expect_error(fut, "wamp.error.canceled")
            await round_trip(callee)
            assert not slow.interrupted.is_set()
            assert not [m for m in callee.received if isinstance(m, message.Interrupt)]
            slow.release.set()
            await wait(yielded(callee), "the callee to send its (late) YIELD")
            await round_trip(callee)  # the router took (and must drop) the late YIELD
            assert slow.finished_normally
        else:
            await wait(slow.interrupted.wait(), f"the callee's handler to be interrupted ({mode})")
            interrupts = [m for m in callee.received if isinstance(m, message.Interrupt)]
            assert len(interrupts) == 1 and interrupts[0].mode in (mode, None), interrupts
            await round_trip(caller)
            if mode == "kill":
                # the dealer waits for the callee's answer before it tells the caller
                assert not fut.done(), "kill: caller got its answer before the callee acknowledged the INTERRUPT"
                slow.release.set()
                await expect_error(fut, "wamp.error.canceled")
            else:
                assert fut.done(), "killnowait: caller did not get ERROR right away"
                await expect_error(fut, "wamp.error.canceled")
                slow.release.set()
            assert not slow.finished_normally
        await round_trip(caller)
        # exactly one answer to the one CALL
        assert len(caller.errors_received()) == 1, caller.errors_received()
        assert not [m for m in caller.received if isinstance(m, message.Result)]
        await check_session_still_works(callee, caller, proc)


@wamp_test()
async def test_call_timeout(url, serializer):
    proc = f"com.test.rpc.timeout.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()
        slow = SlowCallee()
        await callee.register(slow, proc)
        # CALL.Options.timeout is in milliseconds (Autobahn passes the number through)
        fut = caller.call(proc, options=CallOptions(timeout=300))
        try:
            await wait(fut, "the dealer to time the call out", timeout=4.0)
        except ApplicationError as e:
            assert e.error in ("wamp.error.canceled", "wamp.error.timeout"), e.error
        else:
            raise AssertionError("call with timeout=300ms returned a result")
        await wait(slow.interrupted.wait(), "the callee's handler to be interrupted on timeout")
        slow.release.set()
        await check_session_still_works(callee, caller, proc)


@wamp_test()
async def test_registration_vanishes_when_callee_leaves(url, serializer):
    proc = f"com.test.rpc.vanish.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()
        await callee.register(lambda: "here", proc)
        assert await wait(caller.call(proc), "RESULT") == "here"
        await wait(callee.leave(), "GOODBYE reply")
        await wait(callee.disconnected, "the callee's transport to close")
        await expect_error(caller.call(proc), "wamp.error.no_such_procedure")
        # the procedure can be registered again by someone else
        await caller.register(lambda: "new", proc)
        other = await c.connect()
        assert await wait(other.call(proc), "RESULT") == "new"


@wamp_test()
async def test_registration_vanishes_when_callee_connection_drops(url, serializer):
    proc = f"com.test.rpc.drop.{uid()}"
    async with Clients(url, serializer) as c:
        callee, caller = await c.connect(), await c.connect()
        await callee.register(lambda: "here", proc)
        assert await wait(caller.call(proc), "RESULT") == "here"
        callee.drop()  # TCP gone, no GOODBYE, no close frame

        async def gone():
            # the router learns about the lost TCP connection asynchronously: poll with a deadline
            while True:
                try:
                    await caller.call(proc)
                except ApplicationError as e:
                    if e.error == "wamp.error.no_such_procedure":
                        return
                    if e.error not in ("wamp.error.canceled", "wamp.error.unavailable"):
                        raise
                await asyncio.sleep(0.02)

        await wait(gone(), "no_such_procedure after the callee's connection dropped")


@wamp_test()
async def test_shared_registration_roundrobin(url, serializer):
    proc = f"com.test.rpc.rr.{uid()}"
    rr = RegisterOptions(invoke="roundrobin")
    async with Clients(url, serializer) as c:
        a, b, caller = await c.connect(), await c.connect(), await c.connect()
        await a.register(lambda: "a", proc, options=rr)
        await b.register(lambda: "b", proc, options=rr)
        got = [await wait(caller.call(proc), "RESULT") for _ in range(6)]
        assert got in (list("ababab"), list("bababa")), got
        # a different policy on the same URI is refused
        with pytest.raises(ApplicationError):
            await wait(caller.register(lambda: "x", proc, options=RegisterOptions(invoke="first")), "ERROR")
        # when one callee leaves, the other one gets every call
        await a.leave()
        await wait(a.disconnected, "a's transport to close")
        got = [await wait(caller.call(proc), "RESULT") for _ in range(3)]
        assert got == list("bbb")


@pytest.mark.parametrize("policy,expected", [("first", "a"), ("last", "c")])
@wamp_test()
async def test_shared_registration_first_last(url, serializer, policy, expected):
    proc = f"com.test.rpc.{policy}.{uid()}"
    opts = RegisterOptions(invoke=policy)
    async with Clients(url, serializer) as c:
        callees = [await c.connect() for _ in range(3)]
        caller = await c.connect()
        for name, s in zip("abc", callees):
            await s.register(lambda name=name: name, proc, options=opts)
        got = [await wait(caller.call(proc), "RESULT") for _ in range(4)]
        assert got == [expected] * 4


@wamp_test()
async def test_shared_registration_random(url, serializer):
    proc = f"com.test.rpc.random.{uid()}"
    opts = RegisterOptions(invoke="random")
    async with Clients(url, serializer) as c:
        a, b, caller = await c.connect(), await c.connect(), await c.connect()
        await a.register(lambda: "a", proc, options=opts)
        await b.register(lambda: "b", proc, options=opts)
        got = await wait(asyncio.gather(*(caller.call(proc) for _ in range(60))), "60 RESULTs")
        # 2^-59 chance of a false failure with a fair coin
        assert set(got) == {"a", "b"}, got
