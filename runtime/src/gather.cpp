// runtime/src/gather.cpp — ChildSet, the engine of gather and TaskGroup.
#include "spindle/runtime/gather.hpp"

#include "spindle/runtime/time.hpp"

namespace spindle::detail {

ChildSet::ChildSet(bool count_cancelled, bool cancel_on_failure) noexcept
    : count_cancelled_(count_cancelled), cancel_on_failure_(cancel_on_failure) {
    on_done = &ChildSet::on_done_fn;
}

ChildSet::~ChildSet() {
    for (TaskHeader* t : children_) t->release();
}

void ChildSet::release() noexcept {
    // acq_rel: the last owner sees every other owner's writes before deleting.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void ChildSet::abandon() noexcept {
    cancel_all();
    release();
}

void ChildSet::cancel_all() noexcept {
    std::vector<TaskHeader*> live;
    {
        std::lock_guard lk(mx_);
        live.reserve(children_.size());
        for (TaskHeader* t : children_) {
            if (t->complete()) continue;
            t->add_ref();
            live.push_back(t);
        }
    }
    // Outside mx_: cancel() may take other tasks' join locks (lock order).
    for (TaskHeader* t : live) {
        t->cancel();
        t->release();
    }
}

std::exception_ptr ChildSet::first_failure() const {
    std::lock_guard lk(mx_);
    return failure_;
}

void ChildSet::on_done_fn(CompletionHook* self, TaskHeader& child) noexcept {
    auto* s = static_cast<ChildSet*>(self);
    const bool fail = child.exception_ && (s->count_cancelled_ || !child.was_cancelled());
    // gather/TaskGroup collect every child's outcome (asyncio's done-callback calls
    // fut.exception()): never "unobserved" for debug mode.
    // relaxed: read by the last owner, after refs_' acq_rel decrement.
    if (child.exception_) child.exception_observed_.store(true, std::memory_order_relaxed);
    bool first = false;
    if (fail) {
        std::lock_guard lk(s->mx_);
        if (!s->failure_) {
            s->failure_ = child.exception_;
            first = true;
        }
        // release: pairs with the acquire in failed().
        s->failed_.store(true, std::memory_order_release);
    }
    if (first && s->cancel_on_failure_) s->cancel_all();
    // acq_rel: pairs with the acquire in all_done(); the child's outcome is published.
    const std::size_t left = s->pending_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    {
        // The claim happens under mx_: the parent clears waiter_ under mx_ before it
        // can leave its wait, so the header is alive here.
        std::lock_guard lk(s->mx_);
        if (s->waiter_ != nullptr && (left == 0 || (fail && s->wake_on_failure_))) {
            if (s->waiter_->claim(s->waiter_token_)) s->waiter_->schedule();
            s->waiter_ = nullptr;
        }
    }
    s->release();
}

ChildSet::Wait ChildSet::wait(bool wake_on_failure) noexcept {
    Wait w;
    w.set = this;
    w.wake_on_failure = wake_on_failure;
    return w;
}

bool ChildSet::Wait::await_ready() const noexcept {
    return set->all_done() || (wake_on_failure && set->failed());
}

bool ChildSet::Wait::await_suspend(std::coroutine_handle<> h) {
    self = &require_task("gather / TaskGroup::join");
    std::unique_lock lk(set->mx_);
    if (await_ready()) return false;
    const std::uint64_t token = self->arm(this, h);
    set->waiter_ = self;
    set->waiter_token_ = token;
    set->wake_on_failure_ = wake_on_failure;
    suspended = true;
    lk.unlock();
    if (self->cancelled_while_arming(token)) self->schedule();  // requeue (asyncio order)
    return true;
}

ChildSet::WaitResult ChildSet::Wait::await_resume() noexcept {
    if (!suspended) return WaitResult::kReady;
    {
        std::lock_guard lk(set->mx_);
        if (set->waiter_ == self) set->waiter_ = nullptr;
    }
    return self->consume_cancel() ? WaitResult::kCancelled : WaitResult::kWoken;
}

Task<void> finish_children(ChildSet& set, bool stop_on_failure) {
    auto r = co_await set.wait(stop_on_failure);
    bool cancelled = (r == ChildSet::WaitResult::kCancelled);
    if (cancelled || (stop_on_failure && set.failed())) set.cancel_all();
    while (!set.all_done()) {
        r = co_await set.wait(false);
        if (r == ChildSet::WaitResult::kCancelled) {
            cancelled = true;
            set.cancel_all();
        }
    }
    // CPython wakes the awaiting task in two ready-queue steps (a child's done
    // callback sets the outer future, whose callback wakes the task); one worker
    // must interleave the same, so a wake by a child costs one more step here.
    if (r == ChildSet::WaitResult::kWoken) {
        try {
            co_await yield_now();
        } catch (const CancelledError&) {
            cancelled = true;
        }
    }
    if (stop_on_failure) {  // gather: a cancellation of the awaiting task wins
        if (cancelled) throw CancelledError{};
        if (auto e = set.first_failure()) std::rethrow_exception(e);
    } else {  // TaskGroup: a child's failure wins, as in asyncio
        if (auto e = set.first_failure()) std::rethrow_exception(e);
        if (cancelled) throw CancelledError{};
    }
}

}  // namespace spindle::detail
