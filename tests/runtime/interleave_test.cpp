// One worker = asyncio: traces compared with CPython 3.11's event loop.
//
// Every expected trace below is what CPython 3.11 prints for the Python program in
// the comment above the test, run on a virtual-time event loop (the loop's time()
// returns a counter that select(timeout) advances by `timeout`; see
// tests/runtime/asyncio_reference.py, which regenerates all of them). With
// `workers = 1` spindle's ready queue is strictly FIFO, so DESIGN.md ("One worker =
// asyncio") requires the same interleaving.
//
// Python helper used by every program:
//   async def worker(name, n):
//       for i in range(n):
//           trace.append(f"{name}{i}"); await asyncio.sleep(0)
#include <string>
#include <vector>

#include "runtime_test_util.hpp"

using namespace std::chrono_literals;
using spindle::Task;
using spindle::testing::join_trace;
using spindle::testing::one_worker_virtual;
using spindle::testing::yielder;

namespace {

using Trace = std::vector<std::string>;

Task<void> mark_sleep_mark(Trace& trace, std::string name, std::chrono::milliseconds d) {
    trace.push_back(name + "s");
    co_await spindle::sleep(d);
    trace.push_back(name + "w");
}

Task<void> sleep_until_cancelled(Trace& trace, std::string name) {
    trace.push_back(name + "s");
    try {
        co_await spindle::sleep(1h);
    } catch (const spindle::CancelledError&) {
        trace.push_back(name + "c");
        throw;
    }
    trace.push_back(name + "w");  // not reached
}

Task<void> await_handle(Trace& trace, std::string name, spindle::JoinHandle<void> h) {
    trace.push_back(name + "s");
    try {
        co_await h;
    } catch (const spindle::CancelledError&) {
        trace.push_back(name + "c");
        throw;
    }
}

}  // namespace

// async def main():
//     ts = [asyncio.create_task(worker(n, 3)) for n in "ABC"]
//     for t in ts: await t
CO_TEST_OPTS(Interleave, RoundRobinYieldIsAsyncioOrder, one_worker_virtual()) {
    Trace trace;
    std::vector<spindle::JoinHandle<void>> hs;
    for (const char* n : {"A", "B", "C"}) hs.push_back(spindle::spawn(yielder(trace, n, 3)));
    for (auto& h : hs) co_await h;
    EXPECT_EQ(join_trace(trace), "A0 B0 C0 A1 B1 C1 A2 B2 C2");
}

// async def main():
//     trace.append("M0")
//     a = asyncio.create_task(worker("A", 3)); b = asyncio.create_task(worker("B", 1))
//     trace.append("M1"); await asyncio.sleep(0); trace.append("M2")
//     c = asyncio.create_task(worker("C", 2))
//     await a; trace.append("M3"); await b; await c; trace.append("M4")
CO_TEST_OPTS(Interleave, SpawnYieldAndAwaitMixed, one_worker_virtual()) {
    Trace trace;
    trace.push_back("M0");
    auto a = spindle::spawn(yielder(trace, "A", 3));
    auto b = spindle::spawn(yielder(trace, "B", 1));
    trace.push_back("M1");
    co_await spindle::yield_now();
    trace.push_back("M2");
    auto c = spindle::spawn(yielder(trace, "C", 2));
    co_await a;
    trace.push_back("M3");
    co_await b;
    co_await c;
    trace.push_back("M4");
    EXPECT_EQ(join_trace(trace), "M0 M1 A0 B0 M2 A1 C0 A2 C1 M3 M4");
}

// A spawned task does not run before its spawner suspends.
CO_TEST_OPTS(Interleave, SpawnDoesNotRunInline, one_worker_virtual()) {
    Trace trace;
    auto a = spindle::spawn(yielder(trace, "A", 1));
    trace.push_back("M");
    co_await a;
    EXPECT_EQ(join_trace(trace), "M A0");
}

// async def main():
//     y = asyncio.create_task(worker("Y", 8)); a = asyncio.create_task(worker("A", 2))
//     trace.append("M0"); await a; trace.append("M1"); await y
CO_TEST_OPTS(Interleave, JoinWakesAwaiterBehindReadyTasks, one_worker_virtual()) {
    Trace trace;
    auto y = spindle::spawn(yielder(trace, "Y", 8));
    auto a = spindle::spawn(yielder(trace, "A", 2));
    trace.push_back("M0");
    co_await a;
    trace.push_back("M1");
    co_await y;
    EXPECT_EQ(join_trace(trace), "M0 Y0 A0 Y1 A1 Y2 Y3 M1 Y4 Y5 Y6 Y7");
}

// async def main():
//     y = asyncio.create_task(worker("Y", 8))
//     trace.append("M0"); await worker("A", 2); trace.append("M1"); await y
CO_TEST_OPTS(Interleave, NestedAwaitRunsInline, one_worker_virtual()) {
    Trace trace;
    auto y = spindle::spawn(yielder(trace, "Y", 8));
    trace.push_back("M0");
    co_await yielder(trace, "A", 2);
    trace.push_back("M1");
    co_await y;
    EXPECT_EQ(join_trace(trace), "M0 A0 Y0 A1 Y1 M1 Y2 Y3 Y4 Y5 Y6 Y7");
}

// async def s(name, d): trace.append(name+"s"); await asyncio.sleep(d); trace.append(name+"w")
// async def main():
//     ts = [asyncio.create_task(s(n, d)) for n, d in
//           [("A", .03), ("B", .01), ("C", .02), ("D", .01)]]
//     for t in ts: await t
CO_TEST_OPTS(Interleave, SleepersWakeInDeadlineThenScheduleOrder, one_worker_virtual()) {
    Trace trace;
    std::vector<spindle::JoinHandle<void>> hs;
    hs.push_back(spindle::spawn(mark_sleep_mark(trace, "A", 30ms)));
    hs.push_back(spindle::spawn(mark_sleep_mark(trace, "B", 10ms)));
    hs.push_back(spindle::spawn(mark_sleep_mark(trace, "C", 20ms)));
    hs.push_back(spindle::spawn(mark_sleep_mark(trace, "D", 10ms)));
    for (auto& h : hs) co_await h;
    EXPECT_EQ(join_trace(trace), "As Bs Cs Ds Bw Dw Cw Aw");
}

// Virtual time only moves when nothing is runnable (asyncio's select(timeout) only
// runs with an empty ready queue).
// async def main():
//     s = asyncio.create_task(s("S", .01)); y = asyncio.create_task(worker("Y", 6))
//     await s; await y
CO_TEST_OPTS(Interleave, VirtualClockWaitsForReadyTasks, one_worker_virtual()) {
    Trace trace;
    auto s = spindle::spawn(mark_sleep_mark(trace, "S", 10ms));
    auto y = spindle::spawn(yielder(trace, "Y", 6));
    co_await s;
    co_await y;
    EXPECT_EQ(join_trace(trace), "Ss Y0 Y1 Y2 Y3 Y4 Y5 Sw");
}

// async def main():
//     st = asyncio.create_task(s()); y = asyncio.create_task(worker("Y", 4))  # s sleeps 1h,
//     await asyncio.sleep(0)                     # logs "Sc" on CancelledError and re-raises
//     trace.append("M0"); st.cancel(); trace.append("M1")
//     await asyncio.sleep(0); trace.append("M2")
//     try: await st
//     except asyncio.CancelledError: trace.append("M3")
//     await y
CO_TEST_OPTS(Interleave, CancelSchedulesTheVictimBehindReadyTasks, one_worker_virtual()) {
    Trace trace;
    auto st = spindle::spawn(sleep_until_cancelled(trace, "S"));
    auto y = spindle::spawn(yielder(trace, "Y", 4));
    co_await spindle::yield_now();
    trace.push_back("M0");
    EXPECT_TRUE(st.cancel());
    trace.push_back("M1");
    co_await spindle::yield_now();
    trace.push_back("M2");
    try {
        co_await st;
    } catch (const spindle::CancelledError&) {
        trace.push_back("M3");
    }
    co_await y;
    EXPECT_EQ(join_trace(trace), "Ss Y0 M0 M1 Y1 Sc M2 M3 Y2 Y3");
}

// async def o(h):
//     trace.append("Os")
//     try: await h
//     except asyncio.CancelledError: trace.append("Oc"); raise
// async def main():
//     st = asyncio.create_task(s()); ot = asyncio.create_task(o(st))
//     y = asyncio.create_task(worker("Y", 6))
//     await asyncio.sleep(0)
//     trace.append("M0"); ot.cancel(); trace.append("M1")
//     try: await ot
//     except asyncio.CancelledError: trace.append("M2")
//     await y
CO_TEST_OPTS(Interleave, CancelForwardedThroughJoinHandle, one_worker_virtual()) {
    Trace trace;
    auto st = spindle::spawn(sleep_until_cancelled(trace, "S"));
    auto ot = spindle::spawn(await_handle(trace, "O", st));
    auto y = spindle::spawn(yielder(trace, "Y", 6));
    co_await spindle::yield_now();
    trace.push_back("M0");
    EXPECT_TRUE(ot.cancel());
    trace.push_back("M1");
    try {
        co_await ot;
    } catch (const spindle::CancelledError&) {
        trace.push_back("M2");
    }
    co_await y;
    EXPECT_EQ(join_trace(trace), "Ss Os Y0 M0 M1 Y1 Sc Y2 Oc Y3 M2 Y4 Y5");
}

// async def main():
//     y = asyncio.create_task(worker("Y", 8))
//     trace.append("M0"); await asyncio.gather(worker("A", 2), worker("B", 1))
//     trace.append("M1"); await y
CO_TEST_OPTS(Interleave, GatherLikeCPython311, one_worker_virtual()) {
    Trace trace;
    auto y = spindle::spawn(yielder(trace, "Y", 8));
    trace.push_back("M0");
    (void)co_await spindle::gather(yielder(trace, "A", 2), yielder(trace, "B", 1));
    trace.push_back("M1");
    co_await y;
    EXPECT_EQ(join_trace(trace), "M0 Y0 A0 B0 Y1 A1 Y2 Y3 Y4 M1 Y5 Y6 Y7");
}

// async def main():
//     y = asyncio.create_task(worker("Y", 8))
//     trace.append("M0"); await asyncio.wait_for(worker("A", 2), 10)
//     trace.append("M1"); await y
CO_TEST_OPTS(Interleave, WaitForLikeCPython312, one_worker_virtual()) {
    Trace trace;
    auto y = spindle::spawn(yielder(trace, "Y", 8));
    trace.push_back("M0");
    co_await spindle::wait_for(yielder(trace, "A", 2), 10s);
    trace.push_back("M1");
    co_await y;
    EXPECT_EQ(join_trace(trace), "M0 A0 Y0 A1 Y1 M1 Y2 Y3 Y4 Y5 Y6 Y7");
}

// async def main():
//     y = asyncio.create_task(worker("Y", 8))
//     trace.append("M0")
//     async with asyncio.TaskGroup() as g:
//         g.create_task(worker("A", 2)); g.create_task(worker("B", 1))
//     trace.append("M1"); await y
CO_TEST_OPTS(Interleave, TaskGroupLikeCPython311, one_worker_virtual()) {
    Trace trace;
    auto y = spindle::spawn(yielder(trace, "Y", 8));
    trace.push_back("M0");
    {
        spindle::TaskGroup g;
        g.spawn(yielder(trace, "A", 2));
        g.spawn(yielder(trace, "B", 1));
        co_await g.join();
    }
    trace.push_back("M1");
    co_await y;
    EXPECT_EQ(join_trace(trace), "M0 Y0 A0 B0 Y1 A1 Y2 Y3 Y4 M1 Y5 Y6 Y7");
}
