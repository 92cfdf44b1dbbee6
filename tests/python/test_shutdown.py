"""Graceful shutdown: SIGTERM -> every session gets GOODBYE wamp.close.system_shutdown, process exits."""

import asyncio
import signal
import subprocess
import time

from support import Clients, Gateway, wait, wamp_test

SHUTDOWN_DEADLINE = 5.0


@wamp_test(timeout=20)
async def test_sigterm_sends_goodbye_system_shutdown(serializer):
    other = "msgpack" if serializer == "json" else "json"
    gw = await asyncio.to_thread(lambda: Gateway().start())  # a gateway of its own: this test stops it
    try:
        async with Clients(gw.url, serializer) as c:
            s1 = await c.connect(serializer)
            s2 = await c.connect(other)
            # a session with a subscription and a registration still gets a clean GOODBYE
            await s1.subscribe(lambda *a: None, "com.test.shutdown.topic")
            await s1.register(lambda: None, "com.test.shutdown.proc")

            t0 = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            for s in (s1, s2):
                details = await wait(s.left, "the session to be closed by the gateway", timeout=SHUTDOWN_DEADLINE)
                assert details.reason == "wamp.close.system_shutdown", (
                    f"expected GOODBYE wamp.close.system_shutdown, got reason={details.reason!r} "
                    f"message={details.message!r}"
                )
            goodbyes = [m for m in s1.received if type(m).__name__ == "Goodbye"]
            assert [g.reason for g in goodbyes] == ["wamp.close.system_shutdown"], goodbyes

            remaining = max(0.1, SHUTDOWN_DEADLINE - (time.monotonic() - t0))
            try:
                code = await asyncio.to_thread(gw.proc.wait, remaining)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"gateway still running {SHUTDOWN_DEADLINE}s after SIGTERM\n{gw.log_tail()}"
                ) from None
            elapsed = time.monotonic() - t0
            assert elapsed <= SHUTDOWN_DEADLINE, f"gateway took {elapsed:.1f}s to exit after SIGTERM"
            assert code == 0, f"gateway exited with code {code} after SIGTERM\n{gw.log_tail()}"
    finally:
        await asyncio.to_thread(gw.close)
