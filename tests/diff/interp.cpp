// tests/diff/interp.cpp — the spindle side of the differential test against asyncio.
//
//   spindle_diff_interp PROGRAM_FILE      ('-' reads the program from stdin)
//
// Reads a program written by tests/diff/gen_and_run.py (its docstring describes the
// format and every op), runs it with spindle::run(..., {.workers = 1,
// .virtual_time = true}) and prints the trace in exactly the format of the asyncio
// side. Every op mirrors the Python code of gen_and_run.py's exec_op() statement for
// statement: same awaits, same wait_for wrapping, same exception-to-outcome mapping
// (CancelledError, BrokenBarrierError, TimeoutError, std::invalid_argument =
// ValueError, std::logic_error = RuntimeError).
//
// The watchdog ("task=s") is the same task on both sides (gen_and_run.py's
// watchdog()): it ticks every virtual millisecond; after kStuckTicks ticks without a
// trace line it cancels every task in order, and after kStuckRounds such rounds it
// logs DEADLOCK and the process exits at once (blocked tasks would keep the runtime's
// shutdown waiting forever).
//
// `with X H` mirrors asyncio's __aexit__ (an explicit guard.reset(), whose exception
// replaces the one in flight); `scoped X H` is the idiomatic C++ form (the guard's
// destructor releases). If a destructor throws, std::terminate prints a
// `TERMINATE ...` line (the trace so far is kept: stdout is line-buffered) and aborts.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <spindle/spindle.hpp>

namespace {

using spindle::Task;
using Ms = std::chrono::milliseconds;

constexpr int kStuckTicks = 10;   // virtual ms without a trace line
constexpr int kStuckRounds = 3;   // cancel-all rounds before DEADLOCK

struct Op {
    std::vector<std::string> core;  // the op without its `to D`
    int to = 0;                     // wait_for timeout in ms, 0 = none
    std::string text;               // all tokens, as written
};

struct PrimDecl {
    std::string name, kind;
    long arg = 0;
    std::string lock;  // cond: the Lock it shares, or empty
};

struct Prim {
    std::string kind;
    std::unique_ptr<spindle::Lock> lock;
    std::unique_ptr<spindle::Semaphore> sem;
    std::unique_ptr<spindle::BoundedSemaphore> bsem;
    std::unique_ptr<spindle::Event> event;
    std::unique_ptr<spindle::Condition> cond;
    std::unique_ptr<spindle::Barrier> barrier;
};

struct State {
    std::vector<PrimDecl> decls;
    std::vector<std::vector<Op>> task_ops;
    std::vector<Op> main_ops;
    std::map<std::string, Prim> prims;
    std::vector<spindle::JoinHandle<void>> tasks;
    spindle::JoinHandle<void> watchdog;
    long counter = 0;
    std::int64_t t0 = 0;
    std::uint64_t nlog = 0;
};

State* g_state = nullptr;  // lives until the process exits (tasks may outlive main)

[[noreturn]] void die(const std::string& msg) {
    std::fflush(stdout);
    std::fprintf(stderr, "spindle_diff_interp: %s\n", msg.c_str());
    std::exit(2);
}

void parse(State& st, std::istream& in) {
    std::string raw;
    std::vector<Op>* cur = nullptr;
    while (std::getline(in, raw)) {
        const auto hash = raw.find('#');
        if (hash != std::string::npos) raw.resize(hash);
        std::istringstream ss(raw);
        std::vector<std::string> toks;
        for (std::string t; ss >> t;) toks.push_back(t);
        if (toks.empty()) continue;
        if (toks[0] == "prim") {
            if (toks.size() < 3) die("bad prim line: " + raw);
            PrimDecl d{toks[1], toks[2], 0, {}};
            if (toks.size() > 3) {
                if (d.kind == "cond") d.lock = toks[3];
                else d.arg = std::stol(toks[3]);
            }
            st.decls.push_back(d);
        } else if (toks.size() == 1 && toks[0] == "task") {
            st.task_ops.emplace_back();
            cur = &st.task_ops.back();
        } else if (toks.size() == 1 && toks[0] == "main") {
            cur = &st.main_ops;
        } else {
            if (cur == nullptr) die("op outside task/main: " + raw);
            Op op;
            for (std::size_t i = 0; i < toks.size(); ++i) op.text += (i ? " " : "") + toks[i];
            if (toks.size() >= 3 && toks[toks.size() - 2] == "to") {
                op.to = std::stoi(toks.back());
                toks.resize(toks.size() - 2);
            }
            op.core = toks;
            cur->push_back(std::move(op));
        }
    }
}

void make_prims(State& st) {
    for (const auto& d : st.decls) {
        Prim p;
        p.kind = d.kind;
        if (d.kind == "lock") p.lock = std::make_unique<spindle::Lock>();
        else if (d.kind == "sem") p.sem = std::make_unique<spindle::Semaphore>(d.arg);
        else if (d.kind == "bsem") p.bsem = std::make_unique<spindle::BoundedSemaphore>(d.arg);
        else if (d.kind == "event") p.event = std::make_unique<spindle::Event>();
        else if (d.kind == "cond" && d.lock.empty()) p.cond = std::make_unique<spindle::Condition>();
        else if (d.kind == "cond") p.cond = std::make_unique<spindle::Condition>(*st.prims.at(d.lock).lock);
        else if (d.kind == "barrier") p.barrier = std::make_unique<spindle::Barrier>(static_cast<std::size_t>(d.arg));
        else die("unknown primitive kind " + d.kind);
        st.prims.emplace(d.name, std::move(p));
    }
}

const char* py_bool(bool b) { return b ? "True" : "False"; }

std::string ename(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const spindle::CancelledError&) {
        return "CancelledError";
    } catch (const spindle::BrokenBarrierError&) {
        return "BrokenBarrierError";
    } catch (const spindle::TimeoutError&) {
        return "TimeoutError";
    } catch (const std::invalid_argument&) {  // before logic_error: it derives from it
        return "ValueError";
    } catch (const std::logic_error&) {
        return "RuntimeError";
    } catch (const std::exception& x) {
        return std::string("EXC:") + x.what();
    } catch (...) {
        return "EXC:unknown";
    }
}

void log(const std::string& who, const std::string& text) {
    State& st = *g_state;
    const std::int64_t ns = spindle::now().count() - st.t0;
    std::string ts = ns % 1000000 == 0 ? std::to_string(ns / 1000000) : std::to_string(static_cast<double>(ns) / 1e6);
    std::string line = "t=" + ts + " task=" + who + " " + text + "\n";
    std::fputs(line.c_str(), stdout);
    ++st.nlog;
}

Prim& prim(const std::string& name) {
    auto it = g_state->prims.find(name);
    if (it == g_state->prims.end()) die("unknown primitive " + name);
    return it->second;
}

// Calls BODY with P bound to the lock-like primitive (Lock, Semaphore,
// BoundedSemaphore or the Condition, whose acquire/release/locked are its lock's).
#define LOCKISH(pr, P, BODY)                            \
    if ((pr).lock) {                                    \
        auto& P = *(pr).lock;                           \
        BODY;                                           \
    } else if ((pr).sem) {                              \
        auto& P = *(pr).sem;                            \
        BODY;                                           \
    } else if ((pr).bsem) {                             \
        auto& P = *(pr).bsem;                           \
        BODY;                                           \
    } else if ((pr).cond) {                             \
        auto& P = *(pr).cond;                           \
        BODY;                                           \
    } else {                                            \
        die("not a lock-like primitive: " + (pr).kind); \
    }

// asyncio: `await (asyncio.wait_for(aw, to/1000) if to else aw)`.
template <class A>
Task<void> maybe_to_void(A aw, int to) {
    if (to > 0) co_await spindle::wait_for(std::move(aw), Ms(to));
    else co_await std::move(aw);
}

template <class R, class A>
Task<R> maybe_to(A aw, int to) {
    if (to > 0) co_return co_await spindle::wait_for(std::move(aw), Ms(to));
    co_return co_await std::move(aw);
}

// asyncio: `await asyncio.sleep(h/1000 if h > 0 else 0)`.
Task<void> hold(int h) {
    if (h > 0) co_await spindle::sleep(Ms(h));
    else co_await spindle::yield_now();
}

// asyncio: `async with p: await hold(h)` — __aexit__'s release() runs also while a
// CancelledError unwinds, and an exception it raises replaces the one in flight.
template <class P>
Task<void> do_with(P& p, int h) {
    auto guard = co_await p.scoped();
    std::exception_ptr ep;
    try {
        co_await hold(h);
    } catch (...) {
        ep = std::current_exception();
    }
    guard.reset();
    if (ep) std::rethrow_exception(ep);
}

// The same `async with`, written the idiomatic C++ way: the guard's destructor
// releases, on the normal path and while an exception unwinds.
template <class P>
Task<void> do_scoped(P& p, int h) {
    auto guard = co_await p.scoped();
    co_await hold(h);
}

// Condition::wait_for(counter >= k), possibly under wait_for(.., to).
//
// The predicate deliberately carries a non-trivially-copyable capture (a std::string
// long enough to live on the heap, checked on every evaluation), because GCC 12.2
// miscompiles the *caller* when such a lambda is written as a temporary inside a
// co_await expression, e.g. `co_await c.wait_for([s, k] { ... })`: the capture is
// copy-constructed into a separate temporary and the closure gets a bitwise copy, and
// both are destroyed (a double free, or a dangling SSO pointer: stray bytes, SIGSEGV,
// SIGILL; clang is correct; /work/shared/repros, regressions/repro_*.prog). spindle
// itself is not at fault. So the lambda is named first and moved into wait_for, a
// form GCC compiles correctly; a predicate capturing only trivially-copyable things
// (as this one did before) never showed the bug at all.
Task<bool> cond_wait_for(State& st, spindle::Condition& c, const Op& op) {
    const long k = std::stol(op.core.at(2));
    std::string what = "cwaitfor predicate on Condition " + op.core[1];
    const std::size_t len = what.size();
    auto pred = [&st, k, what, len] {
        if (what.size() != len || what.rfind("cwaitfor predicate on Condition ", 0) != 0)
            die("corrupted predicate capture: '" + what + "'");
        return st.counter >= k;
    };
    auto waiting = c.wait_for(std::move(pred));
    co_return co_await maybe_to<bool>(std::move(waiting), op.to);
}

Task<std::string> do_cond_wait(State& st, spindle::Condition& c, const Op& op) {
    const std::string& name = op.core[0];
    if (name != "cwait_nolock") {
        bool cancelled = false;
        try {
            co_await c.acquire();
        } catch (const spindle::CancelledError&) {
            cancelled = true;
        }
        if (cancelled) co_return "acquire:CancelledError";
    }
    std::string res;
    try {
        if (name == "cwaitfor") {
            co_await cond_wait_for(st, c, op);
        } else {
            co_await maybe_to<bool>(c.wait(), op.to);
        }
        res = "ok";
    } catch (...) {
        res = ename(std::current_exception());
    }
    if (name == "cwait_nolock" && res == "RuntimeError") co_return res;  // refused at entry
    try {
        c.release();
    } catch (const std::logic_error&) {
        res += " release:RuntimeError";
    }
    co_return res;
}

Task<std::string> exec_op(State& st, const Op& op) {
    const auto& t = op.core;
    const std::string& name = t[0];
    if (name == "yield") {
        co_await spindle::yield_now();
        co_return "ok";
    }
    if (name == "sleep") {
        co_await spindle::sleep(Ms(std::stoi(t[1])));
        co_return "ok";
    }
    if (name == "cancel") co_return py_bool(st.tasks.at(std::stoul(t[1])).cancel());
    if (name == "counter") co_return std::to_string(st.counter);
    if (name == "inc") {
        st.counter += 1;
        co_return "counter=" + std::to_string(st.counter);
    }
    if (name == "join") {
        co_await st.tasks.at(std::stoul(t[1]));
        co_return "ok";
    }
    if (name == "construct") {
        const long n = std::stol(t.at(2));
        if (t[1] == "sem") spindle::Semaphore s(n);
        else if (t[1] == "bsem") spindle::BoundedSemaphore b(n);
        else if (t[1] == "barrier") spindle::Barrier r(static_cast<std::size_t>(n));
        else die("construct of " + t[1]);
        co_return "ok";
    }

    Prim& pr = prim(t.at(1));
    if (name == "acquire") {
        LOCKISH(pr, P, co_await maybe_to_void(P.acquire(), op.to));
        co_return "ok";
    }
    if (name == "release") {
        LOCKISH(pr, P, P.release());
        co_return "ok";
    }
    if (name == "with") {
        LOCKISH(pr, P, co_await do_with(P, std::stoi(t[2])));
        co_return "ok";
    }
    if (name == "scoped") {
        LOCKISH(pr, P, co_await do_scoped(P, std::stoi(t[2])));
        co_return "ok";
    }
    if (name == "locked") {
        bool v = false;
        LOCKISH(pr, P, v = P.locked());
        co_return py_bool(v);
    }
    if (name == "value") {
        if (pr.sem) co_return std::to_string(pr.sem->value());
        if (pr.bsem) co_return std::to_string(pr.bsem->value());
        die("value of a non-semaphore");
    }
    if (name == "wait") {
        co_await maybe_to<bool>(pr.event->wait(), op.to);
        co_return "ok";
    }
    if (name == "set") {
        pr.event->set();
        co_return "ok";
    }
    if (name == "clear") {
        pr.event->clear();
        co_return "ok";
    }
    if (name == "is_set") co_return py_bool(pr.event->is_set());
    if (name == "cwait" || name == "cwaitfor" || name == "cwait_nolock") co_return co_await do_cond_wait(st, *pr.cond, op);
    if (name == "notify" || name == "notify_all" || name == "bump") {
        spindle::Condition& c = *pr.cond;
        bool cancelled = false;
        try {
            co_await c.acquire();
        } catch (const spindle::CancelledError&) {
            cancelled = true;
        }
        if (cancelled) co_return "acquire:CancelledError";
        std::string res = "ok";
        if (name == "bump") {
            st.counter += 1;
            res = "counter=" + std::to_string(st.counter);
        }
        if (name == "notify_all" || (name == "bump" && t[2] == "all")) c.notify_all();
        else c.notify(std::stoul(t[2]));
        c.release();
        co_return res;
    }
    if (name == "notify_nolock") {
        if (t.at(2) == "all") pr.cond->notify_all();
        else pr.cond->notify(std::stoul(t[2]));
        co_return "ok";
    }
    if (name == "cwait_held") {
        co_await maybe_to<bool>(pr.cond->wait(), op.to);
        co_return "ok";
    }
    if (name == "cwaitfor_held") {
        co_await cond_wait_for(st, *pr.cond, op);
        co_return "ok";
    }
    if (name == "bwait") co_return std::to_string(co_await maybe_to<std::size_t>(pr.barrier->wait(), op.to));
    if (name == "babort") {
        co_await pr.barrier->abort();
        co_return "ok";
    }
    if (name == "breset") {
        co_await pr.barrier->reset();
        co_return "ok";
    }
    if (name == "n_waiting") co_return std::to_string(pr.barrier->n_waiting());
    if (name == "broken") co_return py_bool(pr.barrier->broken());
    die("unknown op " + op.text);
}

Task<void> run_ops(State& st, std::string who, const std::vector<Op>& ops) {
    for (const Op& op : ops) {
        std::string out;
        try {
            out = co_await exec_op(st, op);
        } catch (...) {
            out = ename(std::current_exception());
        }
        log(who, op.text + " -> " + out);
    }
}

Task<void> task_body(State& st, std::size_t i) {
    const std::string who = std::to_string(i);
    log(who, "start");
    co_await run_ops(st, who, st.task_ops[i]);
    log(who, "end");
}

Task<void> watchdog(State& st) {
    std::uint64_t last = st.nlog;
    int idle = 0;
    int rounds = 0;
    for (;;) {
        co_await spindle::sleep(Ms(1));
        if (st.nlog != last) {
            last = st.nlog;
            idle = 0;
            continue;
        }
        if (++idle < kStuckTicks) continue;
        idle = 0;
        if (++rounds > kStuckRounds) {
            log("s", "DEADLOCK");
            std::fflush(stdout);
            std::_Exit(0);
        }
        log("s", "stuck round " + std::to_string(rounds) + " -> cancel all");
        for (std::size_t i = 0; i < st.tasks.size(); ++i)
            log("s", "cancel " + std::to_string(i) + " -> " + py_bool(st.tasks[i].cancel()));
        last = st.nlog;
    }
}

std::vector<std::string> final_lines(State& st) {
    std::vector<std::string> out;
    for (const auto& d : st.decls) {
        Prim& p = prim(d.name);
        if (p.lock) out.push_back("final " + d.name + " locked=" + py_bool(p.lock->locked()));
        else if (p.cond) out.push_back("final " + d.name + " locked=" + py_bool(p.cond->locked()));
        else if (p.sem)
            out.push_back("final " + d.name + " locked=" + py_bool(p.sem->locked()) + " value=" + std::to_string(p.sem->value()));
        else if (p.bsem)
            out.push_back("final " + d.name + " locked=" + py_bool(p.bsem->locked()) + " value=" + std::to_string(p.bsem->value()));
        else if (p.event) out.push_back("final " + d.name + " is_set=" + py_bool(p.event->is_set()));
        else if (p.barrier)
            out.push_back("final " + d.name + " n_waiting=" + std::to_string(p.barrier->n_waiting()) +
                          " broken=" + py_bool(p.barrier->broken()));
    }
    out.push_back("final counter=" + std::to_string(st.counter));
    return out;
}

Task<void> main_task(State& st) {
    st.t0 = spindle::now().count();
    log("m", "start");
    st.tasks.reserve(st.task_ops.size());
    for (std::size_t i = 0; i < st.task_ops.size(); ++i) st.tasks.push_back(spindle::spawn(task_body(st, i)));
    st.watchdog = spindle::spawn(watchdog(st), "diff-watchdog");
    co_await run_ops(st, "m", st.main_ops);
    for (std::size_t i = 0; i < st.tasks.size(); ++i) {
        std::string out;
        try {
            co_await st.tasks[i];
            out = "ok";
        } catch (...) {
            out = ename(std::current_exception());
        }
        log("m", "join " + std::to_string(i) + " -> " + out);
    }
    for (const auto& line : final_lines(st)) log("m", line);
    st.watchdog.cancel();
    try {
        co_await st.watchdog;
    } catch (const spindle::CancelledError&) {
    }
    log("m", "end");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PROGRAM_FILE|-\n", argv[0]);
        return 2;
    }
    // std::terminate (e.g. a destructor that throws): keep the trace so far, say why.
    std::set_terminate([] {
        std::string why = "unknown";
        if (auto e = std::current_exception()) why = ename(e);
        std::printf("TERMINATE std::terminate called (exception: %s)\n", why.c_str());
        std::fflush(stdout);
        std::abort();
    });
    std::setvbuf(stdout, nullptr, _IOLBF, 1 << 16);  // a hang keeps the trace so far
    g_state = new State;  // deliberately leaked: detached tasks may still refer to it
    State& st = *g_state;
    if (std::string(argv[1]) == "-") {
        parse(st, std::cin);
    } else {
        std::ifstream f(argv[1]);
        if (!f) die(std::string("cannot open ") + argv[1]);
        parse(st, f);
    }
    make_prims(st);
    try {
        spindle::run(main_task(st), spindle::RuntimeOptions{.workers = 1, .virtual_time = true});
    } catch (...) {
        std::printf("MAIN %s\n", ename(std::current_exception()).c_str());
    }
    std::fflush(stdout);
    return 0;
}
