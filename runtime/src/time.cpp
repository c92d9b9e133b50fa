// runtime/src/time.cpp — JoinOrTimeout (the wait behind wait_for).
#include "spindle/runtime/time.hpp"

namespace spindle::detail {

bool JoinOrTimeout::await_suspend(std::coroutine_handle<> h) {
    self = &require_task("wait_for");
    notify = &JoinOrTimeout::notify_fn;
    target->lock_joiners();
    if (!target->add_joiner_locked(this)) {
        target->unlock_joiners();
        return false;  // completed meanwhile
    }
    // Armed under the joiners lock, so notify_fn (which runs under it) sees the token.
    entry.token = self->arm(this, h);
    joined = true;
    target->unlock_joiners();
    suspended = true;
    if (delay_ns > 0) {
        entry.deadline = now_ns(*self) + delay_ns;
        entry.task = self;
        add_timer(*self, entry);
        timer = true;
    }
    if (self->cancelled_while_arming(entry.token)) self->schedule();  // requeue (asyncio order)
    return true;
}

JoinOrTimeout::Outcome JoinOrTimeout::await_resume() noexcept {
    if (delay_ns == 0 && !target->complete()) return Outcome::kTimedOut;
    if (!suspended) return Outcome::kCompleted;
    if (timer) remove_timer(*self, entry);
    if (joined) {
        target->lock_joiners();
        target->remove_joiner_locked(this);
        target->unlock_joiners();
    }
    if (self->consume_cancel()) return Outcome::kCancelled;
    return target->complete() ? Outcome::kCompleted : Outcome::kTimedOut;
}

void JoinOrTimeout::notify_fn(JoinNode* n) noexcept {
    auto* a = static_cast<JoinOrTimeout*>(n);
    if (a->self->claim(a->entry.token)) a->self->schedule();
}

}  // namespace spindle::detail
