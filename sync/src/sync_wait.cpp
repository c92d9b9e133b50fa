// sync/src/sync_wait.cpp — see spindle/sync/detail/sync_wait.hpp.
#include "spindle/sync/detail/sync_wait.hpp"

#include <stdexcept>
#include <string>

namespace spindle::detail {

TaskHeader& waiting_task(const char* what) {
    TaskHeader* t = current_task();
    if (t == nullptr)
        throw std::logic_error(std::string("spindle: ") + what +
                               " needs a running task (waking calls work from any thread, waiting calls do not)");
    return *t;
}

bool SyncWait::park(WaitQueue& q, std::coroutine_handle<> h) noexcept {
    const std::uint64_t token = self->next_token(/*sync=*/true);
    // release: a canceller reaches it only through a claim of the wait armed below,
    // whose CAS acquires arm()'s seq_cst store (which follows this one); a dumper's
    // acquire load pairs with it directly.
    self->wait_cell_.store(&pos.cell(), std::memory_order_release);
    if (!q.install(pos, *self, token)) {
        // Nobody can have claimed a wait we never armed, but a dumper may be reading it.
        self->clear_wait_cell();
        // A deposit: granted without suspending. If another worker granted it, the
        // task resumes over there instead (it is not a suspension point: no
        // cancellation is delivered; `suspended` stays false), so two tasks handing
        // a primitive back and forth end up on one core.
        return hand_over_self(*self, h, q.grant_hint());
    }
    (void)self->arm(nullptr, h);
    suspended = true;
    if (self->cancelled_while_arming(token) && q.self_cancel(pos, *self, token)) {
        q.owner()->on_waiter_cancelled();
        self->schedule();  // back of the ready queue, as asyncio's call_soon
    }
    return true;
}

bool SyncWait::finish(WaitQueue& q) noexcept {
    const bool granted = finish_keep();
    q.remove(pos);
    return granted;
}

bool SyncWait::finish_keep() noexcept {
    // seq_cst: before the cell is removed (which may let its segment be retired), so
    // a canceller pinned after this store cannot reach the cell (wait_queue.hpp R4).
    // (clear_wait_cell's CAS is seq_cst; it first waits out a dumper reading the cell.)
    self->clear_wait_cell();
    // Disarm (harmless if a canceller claimed it, or if the wait was never armed: a
    // deposit).
    self->disarm_sync_wait();
    return WaitQueue::outcome(pos) != cell::kCancelled;
}

}  // namespace spindle::detail
