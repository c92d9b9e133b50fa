// bench/harness.hpp — the spindle_bench harness: options, repetitions, medians and
// the WORKLOADS.md output line:
//   workload=<name> system=<system> value=<number> unit=<unit> [extra=<k:v,...>]
#pragma once

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace bench {

using clk = std::chrono::steady_clock;

struct Result {
    double value = NAN;
    std::string extra;
    bool ok = true;
};

struct Options {
    double scale = 1.0;
    int runs = 3;
    int warmup = 1;
    std::size_t workers = 2;
    long idle_spin_us = -1;  // spindle's RuntimeOptions::idle_spin_us; -1: its default
    std::vector<std::string> only;
    std::vector<std::string> systems;
    bool list = false;
};
inline Options g_opt;
inline bool g_failed = false;

inline long S(long n, long min = 1) {
    const long v = std::lround(static_cast<double>(n) * g_opt.scale);
    return v < min ? min : v;
}
inline double ns_since(clk::time_point t0) {
    return std::chrono::duration<double, std::nano>(clk::now() - t0).count();
}
// SPINDLE_BENCH_PERF_CTL=<fifo> (and SPINDLE_BENCH_PERF_ACK=<fifo>): profile only a
// workload's timed window. Run under `perf record -D -1 --control fifo:CTL,ACK`; a
// workload that calls perf_window(true) / perf_window(false) around its timed part
// enables and disables perf's events there (the set-up, often most of a run, stays out
// of the profile). Without the variable both calls do nothing.
// A system's bench may also hook the window (spindle_bench: SPINDLE_BENCH_METRICS prints
// the runtime's counters of the timed window beside those of the whole run).
inline void (*g_window_hook)(bool on) = nullptr;
inline void perf_window(bool on) {
    if (g_window_hook != nullptr) g_window_hook(on);
    static FILE* ctl = [] {
        const char* p = std::getenv("SPINDLE_BENCH_PERF_CTL");
        return p != nullptr ? std::fopen(p, "w") : nullptr;
    }();
    static FILE* ack = [] {
        const char* p = std::getenv("SPINDLE_BENCH_PERF_ACK");
        return p != nullptr && ctl != nullptr ? std::fopen(p, "r") : nullptr;
    }();
    if (ctl == nullptr) return;
    std::fputs(on ? "enable\n" : "disable\n", ctl);
    std::fflush(ctl);
    if (ack != nullptr) {
        char buf[16];
        if (std::fgets(buf, sizeof buf, ack) == nullptr) return;  // perf went away: nothing to wait for
    }
}
inline void check(Result& r, bool cond, const char* what) {
    if (!cond) {
        r.ok = false;
        std::fprintf(stderr, "CHECK FAILED: %s\n", what);
    }
}
inline long vm_rss_bytes() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr) return -1;
    char line[256];
    long kb = -1;
    while (std::fgets(line, sizeof line, f) != nullptr)
        if (std::strncmp(line, "VmRSS:", 6) == 0) {
            kb = std::strtol(line + 6, nullptr, 10);
            break;
        }
    std::fclose(f);
    return kb * 1024;
}
inline std::string fmt(double v) {
    char buf[64];
    if (std::isnan(v)) return "nan";
    const double a = std::fabs(v);
    if (a >= 1000) std::snprintf(buf, sizeof buf, "%.1f", v);
    else if (a >= 1) std::snprintf(buf, sizeof buf, "%.3f", v);
    else std::snprintf(buf, sizeof buf, "%.6f", v);
    return buf;
}
inline void jain(const std::vector<long>& xs, double& index, double& min_share, double& max_share) {
    double s = 0, s2 = 0;
    long mn = xs.empty() ? 0 : xs[0], mx = mn;
    for (long x : xs) {
        s += static_cast<double>(x);
        s2 += static_cast<double>(x) * static_cast<double>(x);
        mn = std::min(mn, x);
        mx = std::max(mx, x);
    }
    index = s2 > 0 ? (s * s) / (static_cast<double>(xs.size()) * s2) : NAN;
    min_share = s > 0 ? static_cast<double>(mn) / s : NAN;
    max_share = s > 0 ? static_cast<double>(mx) / s : NAN;
}

inline void add_extra(std::string& extra, const std::string& kv) {
    if (!extra.empty()) extra += ",";
    extra += kv;
}
inline std::string kv(const char* k, double v) { return std::string(k) + ":" + fmt(v); }
inline std::string kv(const char* k, long v) { return std::string(k) + ":" + std::to_string(v); }
/// A baseline run at a smaller size than WORKLOADS.md says (`n` instead of `spec`) is
/// marked `scaled:<n/spec>` (per-op units stay comparable; totals do not).
inline void add_scaled(std::string& extra, long n, long spec) {
    if (n != spec) add_extra(extra, kv("scaled", static_cast<double>(n) / static_cast<double>(spec)));
}

struct Workload {
    std::string name;
    std::string system;
    std::string unit;
    std::function<Result()> fn;
    bool cold = false;  // memory: no warm-up, malloc_trim before each run
    /// Run in a forked child process (warm-up, runs and the line), with `setup` called
    /// there first: Boost.Fiber's work_stealing scheduler can be installed once per
    /// process and its idle workers spin, so each boost_fiber workload gets its own
    /// process, as in ../shared/peers/cpp/run.sh.
    bool isolate = false;
    std::function<void()> setup{};
    /// Not applicable to this system: prints value=nan with extra=n_a:<why>, runs nothing.
    std::string na{};
};

inline std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t p = 0;
    while (p <= s.size()) {
        std::size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        if (q > p) out.push_back(s.substr(p, q - p));
        p = q + 1;
    }
    return out;
}

inline void parse_args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "missing value for %s\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--scale") g_opt.scale = std::atof(next().c_str());
        else if (a == "--runs") g_opt.runs = std::max(1, std::atoi(next().c_str()));
        else if (a == "--warmup") g_opt.warmup = std::max(0, std::atoi(next().c_str()));
        else if (a == "--workers") g_opt.workers = static_cast<std::size_t>(std::max(1, std::atoi(next().c_str())));
        else if (a == "--idle-spin-us") g_opt.idle_spin_us = std::max(0, std::atoi(next().c_str()));
        else if (a == "--only") g_opt.only = split(next());
        else if (a == "--system") g_opt.systems = split(next());
        else if (a == "--list") g_opt.list = true;
        else if (a == "-h" || a == "--help") {
            std::printf("usage: %s [--only w1,w2] [--system s1,s2] [--scale F] [--runs N] [--warmup W] "
                        "[--workers N] [--idle-spin-us US] [--list]\n",
                        argv[0]);
            std::exit(0);
        } else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            std::exit(2);
        }
    }
    if (!(g_opt.scale > 0)) {
        std::fprintf(stderr, "--scale must be > 0\n");
        std::exit(2);
    }
}

inline bool wanted(const std::vector<std::string>& set, const std::string& x) {
    return set.empty() || std::find(set.begin(), set.end(), x) != set.end();
}

/// Runs one workload in this process: warm-up, --runs timed runs, prints the median line.
inline void run_here(const Workload& w, const std::function<Result()>& once = {}) {
    if (w.cold) malloc_trim(0);
    for (int i = 0; i < (w.cold ? 0 : g_opt.warmup); ++i) (void)w.fn();
    std::vector<double> vals;
    bool ok = true;
    for (int i = 0; i < g_opt.runs; ++i) {
        if (w.cold) malloc_trim(0);
        Result r = once ? once() : w.fn();
        ok = ok && r.ok;
        vals.push_back(r.value);
        std::fprintf(stderr, "  %s/%s run %d: %s %s\n", w.name.c_str(), w.system.c_str(), i + 1,
                     fmt(r.value).c_str(), w.unit.c_str());
        if (i + 1 == g_opt.runs) {
            std::vector<double> s = vals;
            std::sort(s.begin(), s.end());
            const double med = s[s.size() / 2];
            std::string extra = r.extra;
            auto add = [&](const std::string& kv) {
                if (!extra.empty()) extra += ",";
                extra += kv;
            };
            add("runs:" + std::to_string(g_opt.runs));
            add("run_min:" + fmt(s.front()));
            add("run_max:" + fmt(s.back()));
            if (g_opt.scale != 1.0) add("scale:" + fmt(g_opt.scale));
            if (!ok) add("check:FAIL");
            std::printf("workload=%s system=%s value=%s unit=%s extra=%s\n", w.name.c_str(), w.system.c_str(),
                        fmt(med).c_str(), w.unit.c_str(), extra.c_str());
            std::fflush(stdout);
        }
    }
    if (!ok) g_failed = true;
}

/// One run of `w` in a fresh forked child (setup, then fn); the Result comes back on a pipe.
/// For cold + isolate workloads (boost_fiber memory_parked): the fiber scheduler frees
/// stacks lazily, so a second run in the same process measures reused memory.
inline Result run_in_child(const Workload& w) {
    int fd[2];
    if (pipe(fd) != 0) return Result{NAN, "error:pipe", false};
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        if (w.setup) w.setup();
        malloc_trim(0);
        const Result r = w.fn();
        const std::string msg = fmt(r.value) + " " + (r.ok ? "1" : "0") + " " + r.extra;
        (void)!write(fd[1], msg.data(), msg.size());
        std::_Exit(0);
    }
    close(fd[1]);
    std::string msg;
    char buf[512];
    for (ssize_t k; (k = read(fd[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<std::size_t>(k));
    close(fd[0]);
    int status = 0;
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0) {
        }
    Result r{NAN, "error:child_failed", false};
    const std::size_t a = msg.find(' '), b = a == std::string::npos ? a : msg.find(' ', a + 1);
    if (b != std::string::npos) {
        r.value = std::atof(msg.substr(0, a).c_str());
        r.ok = msg.substr(a + 1, b - a - 1) == "1";
        r.extra = msg.substr(b + 1) + ",process_per_run";
    }
    return r;
}

/// Runs one workload (in a child process when `isolate`), or prints its n/a line.
inline void run_one(const Workload& w) {
    if (!w.na.empty()) {
        std::printf("workload=%s system=%s value=nan unit=%s extra=n_a:%s\n", w.name.c_str(), w.system.c_str(),
                    w.unit.c_str(), w.na.c_str());
        std::fflush(stdout);
        return;
    }
    if (!w.isolate) {
        run_here(w);
        return;
    }
    if (w.cold) {
        run_here(w, [&w] { return run_in_child(w); });
        return;
    }
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) {
        std::perror("fork");
        g_failed = true;
        return;
    }
    if (pid == 0) {
        if (w.setup) w.setup();
        run_here(w);
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(g_failed ? 1 : 0);  // skip static teardown of the child's scheduler
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
        g_failed = true;  // a check failed; the child printed its line with check:FAIL
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const std::string why = WIFSIGNALED(status) ? "signal_" + std::to_string(WTERMSIG(status))
                                                    : "exit_" + std::to_string(WEXITSTATUS(status));
        std::fprintf(stderr, "FAILED: %s/%s %s\n", w.name.c_str(), w.system.c_str(), why.c_str());
        std::printf("workload=%s system=%s value=nan unit=%s extra=error:%s\n", w.name.c_str(), w.system.c_str(),
                    w.unit.c_str(), why.c_str());
        std::fflush(stdout);
        g_failed = true;
    }
}

}  // namespace bench
