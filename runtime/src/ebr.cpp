// runtime/src/ebr.cpp — see spindle/runtime/detail/ebr.hpp for the algorithm.
#include "spindle/runtime/detail/ebr.hpp"
#include "asym_fence.hpp"

#include <chrono>
#include <utility>
#include <vector>

namespace spindle::detail::ebr {

namespace {

constexpr std::uint64_t kActive = 1;       // low bit of Record::state
constexpr std::uint32_t kCollectEvery = 64;  // retirements between collection attempts
// Membarrier mode: an attempt whose scan finds every pinned thread at the epoch costs a
// membarrier, ~1 us with no other thread of the process running and ~20 us on the 2-core
// VM with one running (its IPIs are VM exits), and it interrupts those threads (measured
// in review: a retire-only loop went from 35 to 350 ns per retirement, and a spinning
// sibling lost half its throughput). So a thread attempts at most once per
// kHeavyEveryNs or per kHeavyEvery retirements, whichever comes first: at most ~20 ns
// per retirement, and at most a millisecond's garbage (or 1,024 objects) waits longer.
constexpr std::uint32_t kHeavyEvery = 1024;
constexpr std::int64_t kHeavyEveryNs = 1'000'000;

struct Retired {
    void* p;
    Deleter del;
    std::uint64_t epoch;
};

struct Record {
    // state = epoch << 1 | kActive while pinned, 0 otherwise. Written by the owner,
    // read by collectors.
    std::atomic<std::uint64_t> state{0};
    // The process's fence mode (asym::mode()), copied when the record is taken: the
    // pin reads it from the line it writes anyway. Decided once per process, so every
    // record and every collector agree.
    asym::Mode mode = asym::Mode::kSymmetric;
    std::atomic<bool> in_use{false};      // owner claims/releases; collectors skip free ones
    Record* next = nullptr;               // immutable once published in g_records
    // Owner only:
    std::uint32_t nest = 0;
    std::uint32_t since_try = 0;   // retirements since the last collection attempt
    std::int64_t last_try_ns = 0;  // steady clock at that attempt (membarrier mode)
    std::vector<Retired> limbo;
};

// An exiting thread's garbage, freed by later collectors.
struct Orphans {
    std::vector<Retired> items;
    Orphans* next = nullptr;
};

std::atomic<std::uint64_t> g_epoch{2};
std::atomic<Record*> g_records{nullptr};
std::atomic<Orphans*> g_orphans{nullptr};
std::atomic<std::int64_t> g_pending{0};

Record* acquire_record() {
    // acquire: pairs with the release CAS that published each record.
    for (Record* r = g_records.load(std::memory_order_acquire); r != nullptr; r = r->next) {
        bool expected = false;
        // acquire: pairs with the release store in ThreadHandle's destructor, so we
        // see the previous owner's writes.
        if (!r->in_use.load(std::memory_order_relaxed) &&  // relaxed: pre-check, CAS validates
            r->in_use.compare_exchange_strong(expected, true, std::memory_order_acquire))
            return r;
    }
    auto* r = new Record;
    r->mode = asym::mode();
    r->in_use.store(true, std::memory_order_relaxed);  // relaxed: published by the CAS below
    // relaxed: the CAS validates.
    Record* head = g_records.load(std::memory_order_relaxed);
    do {
        r->next = head;
        // release: publishes r's fields to readers of g_records (acquire above).
    } while (!g_records.compare_exchange_weak(head, r, std::memory_order_release, std::memory_order_relaxed));
    return r;
}

void free_items(std::vector<Retired>& items, std::uint64_t epoch) noexcept {
    std::size_t kept = 0;
    for (Retired& it : items) {
        if (it.epoch + 2 <= epoch) {
            it.del(it.p);
            // relaxed: a statistic.
            g_pending.fetch_sub(1, std::memory_order_relaxed);
        } else {
            items[kept++] = it;
        }
    }
    items.resize(kept);
}

/// True if some pinned record is at another epoch than `e` (seq_cst loads: a pin
/// published before the read is seen, the Dekker pair with the pin).
bool someone_lags(std::uint64_t e) noexcept {
    // acquire: pairs with the release CAS that published each record.
    for (Record* r = g_records.load(std::memory_order_acquire); r != nullptr; r = r->next) {
        // seq_cst: see above.
        const std::uint64_t s = r->state.load(std::memory_order_seq_cst);
        if ((s & kActive) != 0U && (s >> 1) != e) return true;
    }
    return false;
}

/// Advances the global epoch if every pinned thread is at it; returns the epoch.
std::uint64_t try_advance() noexcept {
    // seq_cst: ordered after the records' seq_cst pin stores (see pin()).
    const std::uint64_t e = g_epoch.load(std::memory_order_seq_cst);
    // A first look without the barrier: a record seen at an older epoch is pinned there
    // (not advancing is always safe), so a scan that could not advance costs no system
    // call (found in review: most attempts under steady waits are of this kind).
    if (someone_lags(e)) return e;
    // The heavy half of the pin's Dekker pair (asym_fence.hpp), before the scan that
    // decides. What must be visible to a pinner that this scan misses are the unlinks
    // of the objects retired at e - 1 or before, by any thread: each unlink came before
    // its retirer's read of that older epoch, which came before the CAS that made e,
    // which this collector read above; the barrier then runs on every CPU of the
    // process, so a pin store it does not drain is made after it, and the pinner's
    // later loads see those unlinks. A pin it drains, this scan sees. Symmetric mode:
    // a seq_cst fence, paired with the pin's (crossbeam-epoch's argument).
    asym::heavy(asym::mode());
    if (someone_lags(e)) return e;
    std::uint64_t expected = e;
    // seq_cst: the advance is ordered with every pin in the single total order.
    g_epoch.compare_exchange_strong(expected, e + 1, std::memory_order_seq_cst);
    return expected == e ? e + 1 : expected;
}

void collect_orphans(std::uint64_t epoch) noexcept {
    // acquire: pairs with the release CAS in ~ThreadHandle that pushed the batch.
    Orphans* list = g_orphans.exchange(nullptr, std::memory_order_acquire);
    while (list != nullptr) {
        Orphans* next = list->next;
        free_items(list->items, epoch);
        if (list->items.empty()) {
            delete list;
        } else {
            // relaxed: the CAS validates.
            Orphans* head = g_orphans.load(std::memory_order_relaxed);
            do {
                list->next = head;
                // release: publishes the batch to the next collector.
            } while (!g_orphans.compare_exchange_weak(head, list, std::memory_order_release,
                                                      std::memory_order_relaxed));  // failure: retry
        }
        list = next;
    }
}

struct ThreadHandle {
    Record* rec = nullptr;
    Record& get() {
        if (rec == nullptr) rec = acquire_record();
        return *rec;
    }
    ~ThreadHandle() {
        if (rec == nullptr) return;
        Record* const mine = std::exchange(rec, nullptr);
        if (!mine->limbo.empty()) {
            auto* o = new Orphans;
            o->items.swap(mine->limbo);
            // relaxed: the CAS validates.
            Orphans* head = g_orphans.load(std::memory_order_relaxed);
            do {
                o->next = head;
                // release: publishes the batch to collectors (acquire exchange).
            } while (!g_orphans.compare_exchange_weak(head, o, std::memory_order_release,
                                                      std::memory_order_relaxed));  // failure: retry
        }
        // release: pairs with the acquire CAS of the next owner in acquire_record().
        mine->in_use.store(false, std::memory_order_release);
        // `rec` is null from here: a thread_local destroyed after this one that pins or
        // retires (a thread_local primitive) takes a fresh record instead of one that
        // another thread may own by now (found in review). That record and its limbo
        // are never released (a leak per such thread, never a race).
    }
};

thread_local ThreadHandle tl_handle;

}  // namespace

Guard::Guard() noexcept {
    Record& r = tl_handle.get();
    if (r.nest++ != 0) return;
    // seq_cst: the epoch read is in the single total order S with try_advance()'s CAS.
    const std::uint64_t e = g_epoch.load(std::memory_order_seq_cst);
    // relaxed store + fence (crossbeam-epoch's pin): the fence orders the pin before
    // this thread's later loads of shared pointers. Symmetric mode: a seq_cst fence, and
    // a collector's seq_cst load of `state` that follows it in S sees the pin
    // ([atomics.order]: a modification sequenced before a seq_cst fence X is observed
    // by a seq_cst read after X in S). Membarrier mode: the light fence (compiler only),
    // paired with the collector's asym::heavy() before its deciding scan. A pin is
    // on every wait and grant of the waiter engine; the fence's locked instruction was
    // two per Condition wait (A seq_cst store here would add a second barrier: that
    // pair was 19% of lock_contended_2.)
    r.state.store((e << 1) | kActive, std::memory_order_relaxed);
    asym::light(r.mode);
}

Guard::~Guard() {
    Record& r = *tl_handle.rec;
    if (--r.nest != 0) return;
    // release: everything this thread read from shared segments happens before
    // a collector that sees us unpinned frees them.
    r.state.store(0, std::memory_order_release);
}

void retire(void* p, Deleter del) noexcept {
    Record& r = tl_handle.get();
    // seq_cst: the retirement epoch must not be older than the unlink that preceded.
    const std::uint64_t e = g_epoch.load(std::memory_order_seq_cst);
    try {
        r.limbo.push_back(Retired{p, del, e});
    } catch (...) {
        // Out of memory for the limbo list: leak rather than free unsafely.
        return;
    }
    // relaxed: a statistic.
    g_pending.fetch_add(1, std::memory_order_relaxed);
    if (++r.since_try % kCollectEvery != 0) return;
    if (r.mode == asym::Mode::kMembarrier && r.since_try < kHeavyEvery) {
        const std::int64_t t = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count();
        if (t - r.last_try_ns < kHeavyEveryNs) return;
        r.last_try_ns = t;
    }
    r.since_try = 0;
    {  // safe while pinned: see free_items' bound
        const std::uint64_t now = try_advance();
        free_items(r.limbo, now);
        collect_orphans(now);
    }
}

void collect() noexcept {
    Record& r = tl_handle.get();
    std::uint64_t now = 0;
    for (int i = 0; i < 3; ++i) now = try_advance();
    free_items(r.limbo, now);
    collect_orphans(now);
}

std::int64_t approx_pending() noexcept {
    // relaxed: a statistic.
    return g_pending.load(std::memory_order_relaxed);
}

}  // namespace spindle::detail::ebr
