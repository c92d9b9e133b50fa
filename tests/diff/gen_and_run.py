#!/usr/bin/env python3
"""Differential test of spindle's synchronization primitives against CPython asyncio.

DESIGN.md ("The rule"): with one worker and virtual time, Lock, Semaphore,
BoundedSemaphore, Event, Condition and Barrier must behave exactly like CPython 3.11's
asyncio, with CPython 3.13's Condition.wait. This script

  * generates a random program over those primitives from a seed (deterministic),
  * serializes it to a line-oriented text format (see FORMAT below),
  * runs it under asyncio on a virtual-time event loop and prints the trace,
  * runs it under spindle (tests/diff/interp.cpp, built as spindle_diff_interp) and
    requires the two traces to be identical.

Subcommands
  gen SEED                          print the program of SEED
  run-py PROGRAM_FILE               print the asyncio trace of a program file ('-' = stdin)
  check SEED... --bin PATH          generate, run both sides, diff
  check --count N --start S --bin PATH
                                    the same for seeds S .. S+N-1 (env SPINDLE_DIFF_COUNT
                                    overrides N); the seeds/files of regressions.txt are
                                    always checked too (--no-regressions to skip).
                                    Prints the first divergences with their programs;
                                    exit 1 on any divergence that no known issue explains
                                    (see KNOWN ISSUES; --strict: on any divergence).
  minimize SEED|PROGRAM_FILE --bin PATH
                                    shrink a diverging program (delta debugging, keeping
                                    its class) and print it with both traces.
  selftest [--count N]              Python side only: format round-trip, determinism,
                                    the wait_for/Task models equal asyncio when off.
  stats [--count N]                 op outcomes, where cancellations land, and how many
                                    programs show each feature of the GCC-12 crash family
                                    (see generate_family).
  coverage [--count N]              line coverage of asyncio/locks.py by the programs.

FORMAT (one item per line, '#' starts a comment)
  prim NAME KIND [ARG]     KIND: lock | sem K | bsem K | event | cond [LOCK] | barrier P
                           (cond LOCK: a Condition on that (earlier) Lock, else its own)
  task                     starts the op list of the next task (tasks are numbered 0..)
  main                     starts the op list of the main task (runs after spawning)
  OP ARGS... [to D]        one op of the current task; 'to D' wraps a waiting op in
                           wait_for (CPython 3.12's: asyncio.timeout, in place) / spindle::wait_for, D ms
Ops: yield | sleep D | cancel J | join J (await task J; generated for J > self) | counter |
     inc (counter += 1: no lock, no notify; outcome counter=N) |
     construct sem|bsem|barrier N (ValueError?) |
     acquire X | release X | with X H (async with X: H==0 ? yield : sleep H) |
     scoped X H (the same `async with`; spindle side: the ScopedRelease guard's
                 destructor releases, where `with` calls guard.reset() explicitly) |
     locked X | value S |
     wait E | set E | clear E | is_set E |
     cwait C | cwaitfor C K (counter >= K) | cwait_nolock C | notify C N | notify_all C |
     bump C N|all (lock; counter += 1; notify; unlock) |
     notify_nolock C N|all (C.notify(N) / C.notify_all() without taking the lock: by a
                 task that holds it from an earlier `acquire C`, or a RuntimeError) |
     cwait_held C | cwaitfor_held C K (only C.wait() / C.wait_for(counter >= K): no
                 acquire before, no release after; the task holds the lock from an
                 earlier `acquire C`, or gets RuntimeError; cancelled, it still
                 re-acquires the lock and keeps it) |
     bwait R | babort R | breset R | n_waiting R | broken R
  cwait/cwaitfor: acquire C; wait/wait_for; release C (outcome `acquire:CancelledError`
  if the acquire was cancelled). cwait_nolock: the same without the acquire.

Generator: about 40% of the seeds (is_family_seed) get a program of the crash family
of /work/shared/repros (generate_family: Condition waits on a shared Lock cancelled
by other tasks, notifies and releases by non-holders, Barrier resets, BoundedSemaphore
timeouts); the others the general mix of generate(), unchanged by that addition.

Program: main spawns the tasks in order (plus the watchdog), runs its own ops, then
awaits every task in order (`join i -> outcome`), logs `final ...` lines with the state
of every primitive and the counter, and ends. A task logs start, one line per op (an
exception an op raises, CancelledError included, is its outcome; the task goes on with
its next op), and end.

TRACE: one line per event, `t=<virtual ms> task=<i|m|s> <op> -> <outcome>`.
The watchdog (task=s, the same task on both sides) cancels every task when no line has
appeared for 10 virtual ms (longer than any delay in a program: nothing can move any
more), so a stuck program goes on; after 3 such rounds it logs DEADLOCK and the run ends.

KNOWN ISSUES (KNOWN_ISSUES below; each reported, each with a program in regressions/):
a divergence is accepted only when the *whole* trace matches asyncio once the issue is
modelled on the Python side (a wait_for variant, a Task whose done-callbacks run LIFO),
or for K3 when the traces agree up to the `scoped` op at which spindle terminates.

Virtual time on the Python side: the loop's time() is an exact Fraction (seconds);
durations are passed to asyncio as Fraction(D, 1000); the clock only moves inside the
selector's select(timeout), which asyncio calls with timeout 0 whenever a callback is
ready, so the clock jumps to the next timer only when the ready queue is empty.
Only the standard library is used. The one patch: CPython 3.13's Condition.wait
(plus the Condition._notify it needs), as DESIGN.md prescribes.
"""
import argparse
import asyncio
import contextvars
import heapq
import itertools
import os
import random
import subprocess
import sys
import tempfile
from asyncio import exceptions as aio_exceptions
from fractions import Fraction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import asyncio312  # noqa: E402  (CPython 3.12's asyncio.timeout / wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))


# ─────────────────────── CPython 3.13's Condition.wait ───────────────────────

async def _condition_wait_313(self):
    if not self.locked():
        raise RuntimeError('cannot wait on un-acquired lock')
    fut = self._get_loop().create_future()
    self.release()
    try:
        try:
            self._waiters.append(fut)
            try:
                await fut
                return True
            finally:
                self._waiters.remove(fut)
        finally:
            err = None
            while True:
                try:
                    await self.acquire()
                    break
                except aio_exceptions.CancelledError as e:
                    err = e
            if err is not None:
                try:
                    raise err
                finally:
                    err = None
    except BaseException:
        self._notify(1)
        raise


def _condition_notify_unchecked(self, n=1):
    idx = 0
    for fut in self._waiters:
        if idx >= n:
            break
        if not fut.done():
            idx += 1
            fut.set_result(False)


asyncio.Condition.wait = _condition_wait_313
asyncio.Condition._notify = _condition_notify_unchecked


# ─────────────────────────────── program model ───────────────────────────────

KINDS = ('lock', 'sem', 'bsem', 'event', 'cond', 'barrier')
LOCKISH = ('lock', 'sem', 'bsem', 'cond')


class Program:
    def __init__(self):
        self.prims = []   # (name, kind, arg or None)
        self.tasks = []   # list of op lists; an op is a tuple of str tokens
        self.main = []

    def kind_of(self, name):
        for n, k, _ in self.prims:
            if n == name:
                return k
        raise KeyError(name)

    def copy(self):
        p = Program()
        p.prims = list(self.prims)
        p.tasks = [list(t) for t in self.tasks]
        p.main = list(self.main)
        return p


def serialize(prog):
    out = ['# spindle diff program']
    for name, kind, arg in prog.prims:
        out.append(f'prim {name} {kind}' + ('' if arg is None else f' {arg}'))
    for ops in prog.tasks:
        out.append('task')
        out.extend('  ' + ' '.join(op) for op in ops)
    out.append('main')
    out.extend('  ' + ' '.join(op) for op in prog.main)
    return '\n'.join(out) + '\n'


def parse(text):
    prog = Program()
    cur = None
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        toks = tuple(line.split())
        if toks[0] == 'prim':
            kind = toks[2]
            if kind not in KINDS:
                raise ValueError(f'unknown primitive kind: {raw!r}')
            arg = None
            if len(toks) > 3:
                arg = toks[3] if kind == 'cond' else int(toks[3])
            prog.prims.append((toks[1], kind, arg))
        elif toks == ('task',):
            prog.tasks.append([])
            cur = prog.tasks[-1]
        elif toks == ('main',):
            cur = prog.main
        else:
            if cur is None:
                raise ValueError(f'op outside task/main: {raw!r}')
            cur.append(toks)
    return prog


def split_to(op):
    """('acquire', 'L0', 'to', '3') -> (('acquire', 'L0'), 3); no timeout -> 0."""
    if len(op) >= 3 and op[-2] == 'to':
        return op[:-2], int(op[-1])
    return op, 0


# ─────────────────────────────── generator ───────────────────────────────────

WAKING = ('release', 'set', 'bump', 'notify', 'notify_all', 'notify_nolock', 'breset', 'babort')


# ───────────────────── generator: the GCC-12 crash family ─────────────────────
#
# The crash repros (/work/shared/repros, regressions/repro_*.prog) all combine
# Condition.wait_for(pred) with cancellation, a Condition on an explicit Lock that
# other tasks take directly, Barrier waits and resets, BoundedSemaphore timeouts, and
# releases/notifies by tasks that do not hold the lock. generate() alone made such
# programs rarely (`stats` prints how often); about FAMILY_SHARE of the seeds get a
# program of generate_family() instead, built from roles: waiters (Condition waits,
# also with the lock taken by an earlier `acquire` and kept across ops), notifiers
# (bump, inc, notify with and without the lock), lockers (the Condition's Lock used
# directly, released by whoever), cancellers (cancel waiters, often right after a
# wake), plus Barrier and BoundedSemaphore traffic.

FAMILY_SHARE = 0.4


def is_family_seed(seed):
    """Whether seed gets a generate_family() program. Decided by its own RNG, so every
    other seed keeps the program generate() always gave it."""
    return random.Random(f'family/{seed}').random() < FAMILY_SHARE


def generate_family(seed):
    r = random.Random(f'family-program/{seed}')
    prog = Program()
    ntasks = r.randint(3, 7)
    prog.prims.append(('L0', 'lock', None))
    prog.prims.append(('C0', 'cond', 'L0'))
    if r.random() < 0.3:
        prog.prims.append(('C1', 'cond', 'L0' if r.random() < 0.5 else None))
    if r.random() < 0.55:
        prog.prims.append(('R0', 'barrier', r.choice([1, 2, 2, 3, min(4, ntasks)])))
    if r.random() < 0.5:
        prog.prims.append(('B0', 'bsem', r.choice([0, 1, 1, 2])))
    roles = ['waiter', 'canceller'] + [
        _weighted(r, [(4, lambda: 'waiter'), (2, lambda: 'notifier'), (1.5, lambda: 'locker'),
                      (1.5, lambda: 'canceller'), (1.5, lambda: 'mixed')])
        for _ in range(ntasks - 2)]
    r.shuffle(roles)
    waiters = [i for i, role in enumerate(roles) if role == 'waiter']
    for me, role in enumerate(roles):
        nops = r.randint(3, 10 if r.random() < 0.3 else 7)
        ops = []
        while len(ops) < nops:
            ops.extend(_family_ops(r, prog, me, ntasks, role, waiters))
        prog.tasks.append(ops)
    nmain = r.choice([0, 0, 1, 2, 3, 4])
    while len(prog.main) < nmain:
        prog.main.extend(_family_ops(r, prog, 'm', ntasks, 'main', waiters))
    return prog


def _family_ops(r, prog, me, ntasks, role, waiters):
    """A group of ops for a task of `role` in a crash-family program."""
    kinds = {n: k for n, k, _ in prog.prims}
    conds = [(n, a) for n, k, a in prog.prims if k == 'cond']

    def pick_cond():
        return r.choice(conds) if r.random() < 0.4 else conds[0]

    def lock_of(c, lk):
        # a Condition's lock, taken through the Condition or through the Lock itself
        return lk if lk and r.random() < 0.5 else c

    def to(op, p):
        return _with_to(r, op, p)

    def victim():
        if waiters and r.random() < 0.8:
            return str(r.choice(waiters))
        return str(r.randrange(ntasks))

    def cond_wait():
        c, lk = pick_cond()
        k = str(r.randint(1, 4))
        x = r.random()
        if x < 0.25:
            return [to(('cwait', c), 0.25)]
        if x < 0.5:
            return [to(('cwaitfor', c, k), 0.25)]
        if x < 0.55:
            return [to(('cwait_nolock', c), 0.2)]
        # the lock taken by one op, kept across others, released by a later one
        ops = [('acquire', lock_of(c, lk))]
        if r.random() < 0.2:
            ops.append(('inc',))
        ops.append(to(r.choice([('cwait_held', c), ('cwaitfor_held', c, k), ('cwaitfor_held', c, k)]), 0.2))
        if r.random() < 0.35:
            ops.append(r.choice([('yield',), ('sleep', '1')]))
        if r.random() < 0.9:
            ops.append(('release', lock_of(c, lk)))
        return ops

    def notify():
        c, lk = pick_cond()
        n = r.choice(['1', '1', '2', 'all'])
        x = r.random()
        if x < 0.3:
            ops = [('bump', c, n)]
        elif x < 0.45:
            ops = [('notify', c, n)] if n != 'all' else [('notify_all', c)]
        elif x < 0.7:
            ops = [('acquire', lock_of(c, lk))] + ([('inc',)] if r.random() < 0.7 else [])
            ops += [('notify_nolock', c, n), ('release', lock_of(c, lk))]
        elif x < 0.85:
            ops = [('notify_nolock', c, n)]     # mostly by a task that does not hold the lock
        else:
            ops = [('inc',)]
        if r.random() < 0.25:                   # the wake lands on a waiter about to be cancelled
            ops.append(('cancel', victim()))
        return ops

    def locker():
        x = r.random()
        if x < 0.35:
            return [to(('acquire', 'L0'), 0.3)]
        if x < 0.65:
            return [('release', 'L0')]          # asyncio: any task may release a Lock
        if x < 0.85:
            return [('with', 'L0', _hold(r))]
        return [('locked', 'L0')]

    def cancel():
        ops = []
        if r.random() < 0.85:   # mostly let the victims start and block first
            ops.append(r.choice([('yield',), ('yield',), ('sleep', str(r.randint(1, 3)))]))
        ops.append(('cancel', victim()))
        return ops

    def barrier():
        x = r.random()
        if x < 0.55:
            return [to(('bwait', 'R0'), 0.3)]
        if x < 0.8:
            return [('breset', 'R0')]
        if x < 0.87:
            return [('babort', 'R0')]
        return [r.choice([('n_waiting', 'R0'), ('broken', 'R0')])]

    def bsem():
        x = r.random()
        if x < 0.5:
            return [to(('acquire', 'B0'), 0.8)]
        if x < 0.8:
            return [('release', 'B0')]          # by a holder, a non-holder, or one too many
        if x < 0.9:
            return [('with', 'B0', _hold(r))]
        return [('value', 'B0')]

    def generic():
        if isinstance(me, int) and me + 1 < ntasks and r.random() < 0.1:
            return [('join', str(r.randrange(me + 1, ntasks)))]
        return [r.choice([('yield',), ('yield',), ('sleep', str(r.randint(1, 3)))])]

    # weights: cond_wait, notify, locker, cancel, barrier, bsem, generic
    w = {'waiter': (5, 1, 1, 0.3, 2.5, 1.5, 1.5), 'notifier': (1, 5, 1, 0.5, 2, 1.5, 2),
         'locker': (1, 1, 5, 0.5, 2, 2.5, 2), 'canceller': (0.5, 1.5, 1, 4, 1, 1.5, 3),
         'mixed': (2, 2, 2, 1, 2.5, 2, 2), 'main': (0, 1.5, 1, 4, 1, 0.5, 2)}[role]
    ch = [(w[0], cond_wait), (w[1], notify), (w[2], locker), (w[3], cancel), (w[6], generic)]
    if 'barrier' in kinds.values():
        ch.append((w[4], barrier))
    if 'bsem' in kinds.values():
        ch.append((w[5], bsem))
    return _weighted(r, ch)


def generate(seed):
    if is_family_seed(seed):
        return generate_family(seed)
    r = random.Random(seed)
    prog = Program()
    nkinds = r.choice([1, 2, 2, 3, 3, 4])
    kinds = r.sample(KINDS, nkinds)
    if r.random() < 0.15:
        kinds.append(r.choice(kinds))       # a second primitive of one kind
    counters = {}
    letter = {'lock': 'L', 'sem': 'S', 'bsem': 'B', 'event': 'E', 'cond': 'C', 'barrier': 'R'}
    ntasks = r.randint(2, 6)
    for k in kinds:
        i = counters.get(k, 0)
        counters[k] = i + 1
        name = f'{letter[k]}{i}'
        arg = None
        if k == 'sem':
            arg = r.choice([0, 1, 1, 2, 2, 3])
        elif k == 'bsem':
            arg = r.choice([0, 1, 1, 2, 3])
        elif k == 'barrier':
            arg = r.choice([1, 2, 2, 3, 3, min(4, ntasks)])
        prog.prims.append((name, k, arg))
    locks = [n for n, k, _ in prog.prims if k == 'lock']
    if locks and r.random() < 0.3:      # a Condition sharing a Lock with the program
        i = counters.get('cond', 0)
        counters['cond'] = i + 1
        prog.prims.append((f'C{i}', 'cond', r.choice(locks)))

    for me in range(ntasks):
        nops = r.randint(3, 15 if r.random() < 0.3 else 8)
        ops = []
        while len(ops) < nops:
            ops.extend(gen_task_op(r, prog, me, ntasks))
        prog.tasks.append(ops)

    nmain = r.choice([0, 1, 2, 3, 4, 5, 6])
    while len(prog.main) < nmain:
        prog.main.extend(gen_main_op(r, prog, ntasks))
    if prog.main and prog.main[0][0] == 'cancel' and r.random() < 0.7:
        # mostly let the tasks start (and block) before main cancels one
        prog.main.insert(0, r.choice([('yield',), ('sleep', str(r.randint(1, 3)))]))
    return prog


def _with_to(r, op, p=0.4):
    if r.random() < p:
        return op + ('to', str(r.randint(1, 4)))
    return op


def _hold(r):
    return str(r.choice([0, 0, 1, 1, 2, 3]))


def _weighted(r, choices):
    total = sum(w for w, _ in choices)
    x = r.random() * total
    for w, f in choices:
        x -= w
        if x < 0:
            return f()
    return choices[-1][1]()


def gen_task_op(r, prog, me, ntasks):
    ch = [
        (3, lambda: ('yield',)),
        (3, lambda: ('sleep', str(r.randint(1, 3)))),
        (1.5, lambda: ('cancel', str(r.randrange(ntasks)))),
        (0.4, lambda: ('counter',)),
        # Joins only go to later tasks: an await cycle is a program error (cancelling a
        # task in one recurses forever: RecursionError in asyncio, a hang in spindle).
        (0.6 if me + 1 < ntasks else 0, lambda: ('join', str(r.randrange(me + 1, ntasks)))),
        (0.3, lambda: r.choice([('construct', 'sem', str(r.randint(-2, 1))),
                                ('construct', 'bsem', str(r.randint(-2, 1))),
                                ('construct', 'barrier', str(r.randint(0, 1)))])),
    ]
    for name, kind, _ in prog.prims:
        if kind in LOCKISH:
            ch += [
                (3, lambda n=name: _with_to(r, ('acquire', n))),
                (2.5, lambda n=name: ('release', n)),
                (2.2, lambda n=name: ('with', n, _hold(r))),
                (0.8, lambda n=name: ('scoped', n, _hold(r))),
                (0.8, lambda n=name: ('locked', n)),
            ]
            if kind in ('sem', 'bsem'):
                ch.append((0.8, lambda n=name: ('value', n)))
        if kind == 'event':
            ch += [
                (3.5, lambda n=name: _with_to(r, ('wait', n))),
                (2, lambda n=name: ('set', n)),
                (1.5, lambda n=name: ('clear', n)),
                (0.7, lambda n=name: ('is_set', n)),
            ]
        if kind == 'cond':
            ch += [
                (3, lambda n=name: _with_to(r, ('cwait', n))),
                (2.5, lambda n=name: _with_to(r, ('cwaitfor', n, str(r.randint(1, 3))), 0.3)),
                (2, lambda n=name: ('notify', n, str(r.randint(1, 2)))),
                (1, lambda n=name: ('notify_all', n)),
                (3, lambda n=name: ('bump', n, r.choice(['1', '2', 'all']))),
                (0.5, lambda n=name: ('notify_nolock', n, str(r.randint(1, 2)))),
                (0.4, lambda n=name: _with_to(r, ('cwait_nolock', n))),
            ]
        if kind == 'barrier':
            ch += [
                (4, lambda n=name: _with_to(r, ('bwait', n), 0.3)),
                (0.6, lambda n=name: ('babort', n)),
                (0.8, lambda n=name: ('breset', n)),
                (0.6, lambda n=name: ('n_waiting', n)),
                (0.5, lambda n=name: ('broken', n)),
            ]
    x = r.random()
    if x < 0.12:
        return gen_burst(r, prog, ntasks)
    op = _weighted(r, ch)
    ops = [op]
    # Races: a wake immediately followed by a cancel lands on a woken-not-resumed task.
    if op[0] in WAKING and r.random() < 0.3:
        ops.append(('cancel', str(r.randrange(ntasks))))
    return ops


def gen_burst(r, prog, ntasks):
    """2-4 ops that do not suspend (unless a lock is busy), all in one turn: cancels
    and wakes in both orders, so that cancellations land on waiters that were just
    woken, and wakes land on queues whose front waiter was just cancelled."""
    ch = [(3, lambda: ('cancel', str(r.randrange(ntasks))))]
    for name, kind, _ in prog.prims:
        if kind in ('lock', 'sem', 'bsem'):
            ch += [(3, lambda n=name: ('release', n)), (1, lambda n=name: ('locked', n))]
            if kind != 'lock':
                ch.append((0.7, lambda n=name: ('value', n)))
        if kind == 'cond':
            ch += [(1.5, lambda n=name: ('bump', n, r.choice(['1', '2', 'all']))),
                   (0.7, lambda n=name: ('release', n)), (0.7, lambda n=name: ('notify_nolock', n, '1'))]
        if kind == 'event':
            ch += [(2, lambda n=name: ('set', n)), (1.5, lambda n=name: ('clear', n)),
                   (0.5, lambda n=name: ('is_set', n))]
        if kind == 'barrier':
            ch += [(0.5, lambda n=name: ('n_waiting', n))]
    return [_weighted(r, ch) for _ in range(r.randint(2, 4))]


def gen_main_op(r, prog, ntasks):
    ch = [
        (3, lambda: ('yield',)),
        (3, lambda: ('sleep', str(r.randint(1, 4)))),
        (5, lambda: ('cancel', str(r.randrange(ntasks)))),
    ]
    for name, kind, _ in prog.prims:
        if kind in LOCKISH:
            ch += [(1.5, lambda n=name: ('release', n)),
                   (0.5, lambda n=name: ('with', n, _hold(r))),
                   (0.5, lambda n=name: ('locked', n))]
        if kind == 'event':
            ch += [(2, lambda n=name: ('set', n)), (0.7, lambda n=name: ('clear', n))]
        if kind == 'cond':
            ch += [(2, lambda n=name: ('bump', n, r.choice(['1', 'all']))),
                   (0.5, lambda n=name: ('notify_nolock', n, '1'))]
        if kind == 'barrier':
            ch += [(0.7, lambda n=name: ('breset', n)), (0.4, lambda n=name: ('babort', n)),
                   (0.5, lambda n=name: ('n_waiting', n))]
    if r.random() < 0.2:
        return gen_burst(r, prog, ntasks)
    op = _weighted(r, ch)
    ops = [op]
    if op[0] in WAKING and r.random() < 0.5:
        ops.append(('cancel', str(r.randrange(ntasks))))
    return ops


# ─────────────────────── asyncio side: virtual-time loop ─────────────────────

class Deadlock(Exception):
    pass


class _SeqTimerHandle(asyncio.TimerHandle):
    """A TimerHandle ordered by (deadline, creation order).

    In real time a timer created later with the same delay has a strictly later
    deadline, so asyncio fires such timers in creation order. Under a virtual clock
    that stands still while callbacks run their deadlines tie exactly, and heapq is
    not stable: five `asyncio.sleep(0.001)` started in one instant would fire in the
    order 0, 2, 4, 1, 3. That is an artifact of freezing the clock, not asyncio
    behaviour, so the virtual loop breaks ties by creation order (as real time does,
    and as spindle's timer heap does with its sequence number)."""

    __slots__ = ('_seq',)

    def _key(self):
        return (self._when, self._seq)

    def __lt__(self, other):
        return self._key() < other._key()

    def __le__(self, other):
        return self._key() <= other._key()

    def __gt__(self, other):
        return self._key() > other._key()

    def __ge__(self, other):
        return self._key() >= other._key()

    def __hash__(self):
        return hash(self._key())


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """time() is an exact virtual clock; it jumps to the next timer only when nothing
    is ready (asyncio passes timeout 0 to select() whenever a callback is ready)."""

    def __init__(self):
        super().__init__()
        self._vt = Fraction(0)
        self._clock_resolution = Fraction(1, 10**9)
        self._selector.select = self._virtual_select
        self._timer_seq = itertools.count()

    def time(self):
        return self._vt

    def call_at(self, when, callback, *args, context=None):
        # BaseEventLoop.call_at, with _SeqTimerHandle instead of TimerHandle.
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, 'call_at')
        timer = _SeqTimerHandle(when, callback, args, self, context)
        timer._seq = next(self._timer_seq)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        return timer

    def _virtual_select(self, timeout=None):
        if self._ready or self._stopping:
            assert timeout == 0, timeout
        elif timeout is None:
            raise Deadlock()        # nothing ready, no timer: every task is blocked
        else:
            assert timeout >= 0 and self._scheduled, timeout
            self._vt = self._scheduled[0]._when if timeout > 0 else self._vt
        return []


# Loops that ended in a deadlock keep their blocked tasks; keep them alive (no
# "Task was destroyed but it is pending" noise) until the process exits.
_GRAVEYARD = []


def ename(e):
    if isinstance(e, asyncio.CancelledError):
        return 'CancelledError'
    if isinstance(e, asyncio.BrokenBarrierError):     # a RuntimeError subclass
        return 'BrokenBarrierError'
    if isinstance(e, TimeoutError):
        return 'TimeoutError'
    if isinstance(e, ValueError):
        return 'ValueError'
    if isinstance(e, RuntimeError):
        return 'RuntimeError'
    return 'EXC:' + type(e).__name__


def ms(d):
    return Fraction(d, 1000)


class PyState:
    def __init__(self, prog):
        self.prog = prog
        self.trace = []
        self.tasks = []
        self.prims = {}
        self.kinds = {}
        self.counter = 0
        self.loop = None
        self.t0 = None
        self.nlog = 0
        self.sentinel = None
        self.started = set()
        self.stats = None       # a Counter in `stats` runs
        self.cur_op = {}        # stats: the op each task is running
        self.holders = {}       # stats: who acquired what with `acquire`
        self.family = set()     # stats: crash-family features seen (_family_dynamic)

    def log(self, who, text):
        t = (self.loop.time() - self.t0) * 1000
        ts = str(t.numerator) if t.denominator == 1 else f'{float(t)!r}'
        self.trace.append(f't={ts} task={who} {text}')
        self.nlog += 1


# ─────────────────── wait_for: CPython 3.12's rules on both sides ───────────────────
#
# DESIGN.md §1: spindle::wait_for(op, d) is `async with asyncio.timeout(d): return
# await op` with CPython 3.12's Timeout (tests/support/asyncio312.py; 3.11's Timeout
# compares `uncancel() == 0`, 3.12's with the count at entry). The known issues of
# CPython 3.11's task-wrapping wait_for (K1, K2, K4, K6 — an extra task, its extra
# loop hops, a second cancellation that 3.11 answered by abandoning the inner task, a
# result dropped on cancellation) are gone with it: the operation now runs in place on
# both sides. Their programs stay in regressions/ and must pass.

# ────────────── known issue K5: the order in which joiners are woken ──────────────
#
# K5. When a task finishes, asyncio runs its done-callbacks — the __wakeup of every
# task awaiting it, wait_for's _release_waiter — in the order they were added
# (FIFO). spindle keeps a task's joiners in a list that add_joiner_locked pushes at
# the front and on_complete walks from the front (runtime/src/task.cpp, registry.cpp:
# TaskHeader::add_joiner_locked and Scheduler::on_complete): the last joiner is
# woken first. The model: the pure-Python Task (asyncio.tasks._PyTask, the same
# algorithm as the C Task; the self-test 'pytask' model shows identical traces) with
# add_done_callback inserting at the front.

class _LifoCallbacksTask(asyncio.tasks._PyTask):
    def add_done_callback(self, fn, *, context=None):
        if self.done():
            self._loop.call_soon(fn, self, context=context)
        else:
            if context is None:
                context = contextvars.copy_context()
            self._callbacks.insert(0, (fn, context))


def _task_factory(cls):
    def factory(loop, coro, context=None):
        return cls(coro, loop=loop, context=context)
    return factory


ISSUES_MODELLED = ('K5',)
# Every combination, smallest first: `check` reports the first that explains a divergence.
MODEL_ORDER = tuple('+'.join(c) for n in range(1, len(ISSUES_MODELLED) + 1)
                    for c in itertools.combinations(ISSUES_MODELLED, n))
MODELS = ('asyncio', 'pytask') + MODEL_ORDER


def _apply_model(loop, model):
    """Sets the loop's task factory for `model`."""
    ks = set(model.split('+'))
    if model == 'pytask':
        loop.set_task_factory(_task_factory(asyncio.tasks._PyTask))   # self-test
    elif 'K5' in ks:
        loop.set_task_factory(_task_factory(_LifoCallbacksTask))


KNOWN_ISSUES = {
    'K3': 'a ScopedRelease guard whose release() throws calls std::terminate '
          '(asyncio: `async with` raises RuntimeError/ValueError)',
    'K5': 'the tasks awaiting a task are woken last-come first when it finishes; asyncio runs '
          'done-callbacks first-come first',
}
_wait_for = asyncio312.wait_for


async def maybe_to(aw, to):
    if to:
        return await _wait_for(aw, ms(to))
    return await aw


async def hold(h):
    await asyncio.sleep(ms(h) if h > 0 else 0)


async def exec_op(st, who, op):
    core, to = split_to(op)
    name = core[0]
    if name == 'yield':
        await asyncio.sleep(0)
        return 'ok'
    if name == 'sleep':
        await asyncio.sleep(ms(int(core[1])))
        return 'ok'
    if name == 'cancel':
        if st.stats is not None:
            st.stats[('cancel target', cancel_target_state(st, who, int(core[1])))] += 1
            _family_cancel(st, who, int(core[1]))
        return str(st.tasks[int(core[1])].cancel())
    if name == 'counter':
        return str(st.counter)
    if name == 'inc':
        st.counter += 1
        return f'counter={st.counter}'
    if name == 'join':
        await st.tasks[int(core[1])]
        return 'ok'
    if name == 'construct':
        {'sem': asyncio.Semaphore, 'bsem': asyncio.BoundedSemaphore, 'barrier': asyncio.Barrier}[core[1]](int(core[2]))
        return 'ok'
    p = st.prims[core[1]]
    if name == 'acquire':
        await maybe_to(p.acquire(), to)
        return 'ok'
    if name == 'release':
        p.release()
        return 'ok'
    if name in ('with', 'scoped'):
        async with p:
            await hold(int(core[2]))
        return 'ok'
    if name == 'locked':
        return str(p.locked())
    if name == 'value':
        return str(p._value)
    if name == 'wait':
        await maybe_to(p.wait(), to)
        return 'ok'
    if name == 'set':
        p.set()
        return 'ok'
    if name == 'clear':
        p.clear()
        return 'ok'
    if name == 'is_set':
        return str(p.is_set())
    if name in ('cwait', 'cwaitfor', 'cwait_nolock'):
        if name != 'cwait_nolock':
            try:
                await p.acquire()
            except asyncio.CancelledError:
                return 'acquire:CancelledError'
        try:
            if name == 'cwaitfor':
                k = int(core[2])
                await maybe_to(p.wait_for(lambda: st.counter >= k), to)
            else:
                await maybe_to(p.wait(), to)
            res = 'ok'
        except (asyncio.CancelledError, Exception) as e:
            res = ename(e)
            if name == 'cwait_nolock' and res == 'RuntimeError':
                return res          # refused at entry: the lock was never ours
        try:
            p.release()
        except RuntimeError:
            res += ' release:RuntimeError'
        return res
    if name in ('notify', 'notify_all', 'bump'):
        try:
            await p.acquire()
        except asyncio.CancelledError:
            return 'acquire:CancelledError'
        res = 'ok'
        if name == 'bump':
            st.counter += 1
            res = f'counter={st.counter}'
        if name == 'notify_all' or (name == 'bump' and core[2] == 'all'):
            p.notify_all()
        else:
            p.notify(int(core[2]))
        p.release()
        return res
    if name == 'notify_nolock':
        if core[2] == 'all':
            p.notify_all()
        else:
            p.notify(int(core[2]))
        return 'ok'
    if name == 'cwait_held':
        await maybe_to(p.wait(), to)
        return 'ok'
    if name == 'cwaitfor_held':
        k = int(core[2])
        await maybe_to(p.wait_for(lambda: st.counter >= k), to)
        return 'ok'
    if name == 'bwait':
        return str(await maybe_to(p.wait(), to))
    if name == 'babort':
        await p.abort()
        return 'ok'
    if name == 'breset':
        await p.reset()
        return 'ok'
    if name == 'n_waiting':
        return str(p.n_waiting)
    if name == 'broken':
        return str(p.broken)
    raise ValueError(f'unknown op {op!r}')


def cancel_target_state(st, who, j):
    """For `stats`: where a cancellation lands (asyncio's view of task j)."""
    t = st.tasks[j]
    if t.done():
        return 'done'
    if str(j) == str(who):
        return 'itself (running)'
    if j not in st.started:
        return 'not started'
    fw = t._fut_waiter
    if fw is None:
        return 'ready (yielded or woken from a timer)'
    owner = 'a timer/wait_for/other future'
    for name, p in st.prims.items():
        ws = getattr(p, '_waiters', None) or ()
        if any(w is fw for w in ws):
            owner = f'{st.kinds[name]} waiter'
    return ('woken, not yet resumed: ' if fw.done() else 'waiting: ') + owner


async def run_ops(st, who, ops):
    for op in ops:
        if st.stats is not None:
            st.cur_op[who] = op
        try:
            out = await exec_op(st, who, op)
        except (asyncio.CancelledError, Exception) as e:
            out = ename(e)
        st.log(who, f"{' '.join(op)} -> {out}")
        if st.stats is not None:
            st.cur_op.pop(who, None)
            st.stats[(op[0] + (' (to)' if split_to(op)[1] else ''), out if op[0] != 'cancel' else out)] += 1
            _family_dynamic(st, who, op, out)


COND_WAITS = ('cwait', 'cwaitfor', 'cwait_nolock', 'cwait_held', 'cwaitfor_held')


def _family_dynamic(st, who, op, out):
    """For `stats`: the features of the GCC-12 crash family seen while running
    (st.family: a set of feature names, counted once per program)."""
    name = op[0]
    if name == 'acquire' and out == 'ok':
        st.holders.setdefault(op[1], []).append(who)
    elif name == 'release':
        hs = st.holders.get(op[1], [])
        if who in hs:
            hs.remove(who)
        else:
            st.family.add('release by a non-holder' + (' (ok)' if out == 'ok' else ' (raises)'))
    elif name == 'notify_nolock':
        st.family.add('notify_nolock ' + ('by the holder' if out == 'ok' else 'raises (no lock)'))
    elif name in ('cwait_held', 'cwaitfor_held') and out == 'ok':
        st.family.add('cwait[for]_held completes')


def _family_cancel(st, who, j):
    """For `stats`: a `cancel j` op by task/main `who`: does it land inside a
    Condition wait?"""
    t = st.tasks[j]
    if t.done() or str(j) == str(who) or j not in st.started:
        return
    op = st.cur_op.get(j)
    if op is None or op[0] not in COND_WAITS:
        return
    st.family.add('cancel by a task lands in a Condition wait')
    if op[0] in ('cwaitfor', 'cwaitfor_held'):
        st.family.add('cancel by a task lands in a Condition wait_for (predicate)')
    if split_to(op)[1]:
        st.family.add('cancel by a task lands in a Condition wait under wait_for(to)')
    fw = t._fut_waiter
    if fw is not None and fw.done():
        st.family.add('cancel by a task lands in a Condition wait, woken not resumed')


def family_static(prog):
    """For `stats`: the crash family's features visible in the program text."""
    f = set()
    ops = [op for t in prog.tasks for op in t] + list(prog.main)
    names = {op[0] for op in ops}
    kinds = {n: k for n, k, _ in prog.prims}
    for n, k, a in prog.prims:
        if k == 'cond' and a:
            direct = any(op[0] in ('acquire', 'release', 'with', 'scoped') and len(op) > 1 and op[1] == a
                         for op in ops)
            if direct:
                f.add('Condition on an explicit Lock also used directly')
    if 'barrier' in kinds.values() and names & set(COND_WAITS) and 'breset' in names \
            and names & {'bwait'}:
        f.add('Barrier waits + Condition waits + breset')
    if any(op[0] == 'acquire' and kinds.get(op[1]) == 'bsem' and split_to(op)[1] for op in ops):
        f.add('BoundedSemaphore acquire with to D')
    return f


# The watchdog ("task=s"), identical on both sides: it ticks every virtual ms; when no
# trace line has appeared for STUCK_TICKS ticks (longer than any delay a program uses,
# so every timer of the program has fired and nothing can move any more), it cancels
# every task in order (a stuck program would otherwise end here; cancelling lands
# CancelledError on every blocked op, and the tasks go on with their next ops). After
# STUCK_ROUNDS such rounds it logs DEADLOCK and the run ends.
STUCK_TICKS = 10
STUCK_ROUNDS = 3


class _Stop(Exception):
    pass


async def watchdog(st):
    last, idle, rounds = st.nlog, 0, 0
    while True:
        await asyncio.sleep(ms(1))
        if st.nlog != last:
            last, idle = st.nlog, 0
            continue
        idle += 1
        if idle < STUCK_TICKS:
            continue
        idle = 0
        rounds += 1
        if rounds > STUCK_ROUNDS:
            st.log('s', 'DEADLOCK')
            raise _Stop()
        st.log('s', f'stuck round {rounds} -> cancel all')
        for i, t in enumerate(st.tasks):
            st.log('s', f'cancel {i} -> {t.cancel()}')
        last = st.nlog


async def task_body(st, i, ops):
    st.started.add(i)
    st.log(i, 'start')
    await run_ops(st, i, ops)
    st.log(i, 'end')


def final_lines(st):
    out = []
    for name, kind, _ in st.prog.prims:
        p = st.prims[name]
        if kind in ('lock', 'cond'):
            out.append(f'final {name} locked={p.locked()}')
        elif kind in ('sem', 'bsem'):
            out.append(f'final {name} locked={p.locked()} value={p._value}')
        elif kind == 'event':
            out.append(f'final {name} is_set={p.is_set()}')
        elif kind == 'barrier':
            out.append(f'final {name} n_waiting={p.n_waiting} broken={p.broken}')
    out.append(f'final counter={st.counter}')
    return out


async def py_main(st):
    st.loop = asyncio.get_running_loop()
    st.t0 = st.loop.time()
    for name, kind, arg in st.prog.prims:
        st.kinds[name] = kind
        st.prims[name] = {
            'lock': lambda: asyncio.Lock(),
            'sem': lambda: asyncio.Semaphore(arg),
            'bsem': lambda: asyncio.BoundedSemaphore(arg),
            'event': lambda: asyncio.Event(),
            'cond': lambda: asyncio.Condition(st.prims[arg] if arg else None),
            'barrier': lambda: asyncio.Barrier(arg),
        }[kind]()
    st.log('m', 'start')
    for i, ops in enumerate(st.prog.tasks):
        st.tasks.append(asyncio.create_task(task_body(st, i, ops)))
    st.sentinel = asyncio.create_task(watchdog(st))
    st.sentinel.add_done_callback(_stop_on_deadlock)
    await run_ops(st, 'm', st.prog.main)
    for i, t in enumerate(st.tasks):
        try:
            await t
            out = 'ok'
        except (asyncio.CancelledError, Exception) as e:
            out = ename(e)
        st.log('m', f'join {i} -> {out}')
    for line in final_lines(st):
        st.log('m', line)
    st.sentinel.cancel()
    try:
        await st.sentinel
    except asyncio.CancelledError:
        pass
    st.log('m', 'end')


def _stop_on_deadlock(task):
    if not task.cancelled() and isinstance(task.exception(), _Stop):
        task.get_loop().stop()


def _quiet_exception_handler(loop, context):
    # Tasks still pending in a loop the watchdog stopped; asyncio would only log that.
    msg = context.get('message', '')
    if msg.startswith(('Task exception was never retrieved', 'Task was destroyed but it is pending')):
        return
    loop.default_exception_handler(context)


def run_py(prog, model='asyncio', stats=None, family=None):
    """The asyncio trace of prog; a model other than 'asyncio' models a known issue
    (see KNOWN_ISSUES) — for diagnosis only. stats (a Counter) and family (a set)
    collect what `stats` reports."""
    st = PyState(prog)
    st.stats = stats
    if family is not None:
        st.family = family
    loop = VirtualTimeLoop()
    loop.set_exception_handler(_quiet_exception_handler)
    _apply_model(loop, model)
    try:
        loop.run_until_complete(py_main(st))
    except Deadlock:        # only if the watchdog itself is gone
        st.trace.append('DEADLOCK (no watchdog)')
        _GRAVEYARD.append((loop, st))
        return st.trace
    except RuntimeError:    # loop.stop() by the watchdog: "stopped before Future completed"
        if not st.trace or not st.trace[-1].endswith(' DEADLOCK'):
            raise
        _GRAVEYARD.append((loop, st))
        return st.trace
    if asyncio.all_tasks(loop):
        _GRAVEYARD.append((loop, st))   # tasks left pending
    else:
        loop.close()
    return st.trace


# ───────────────────────────── spindle side ─────────────────────────────────

def run_cpp(binary, text, timeout=30):
    with tempfile.NamedTemporaryFile('w', suffix='.prog', delete=False) as f:
        f.write(text)
        path = f.name
    try:
        try:
            p = subprocess.run([binary, path], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
            return out.splitlines() + [f'HANG (no exit after {timeout} s real time)']
        lines = p.stdout.splitlines()
        if p.returncode != 0:
            lines.append(f'EXIT {p.returncode}')
            lines += ['stderr: ' + s for s in p.stderr.splitlines()[-10:]]
        return lines
    finally:
        os.unlink(path)


# ───────────────────────────── check / minimize ─────────────────────────────

def first_divergence(a, b):
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else '<end of trace>'
        y = b[i] if i < len(b) else '<end of trace>'
        if x != y:
            return i
    return None


def report(label, text, py, cpp, i, out=sys.stdout):
    w = out.write
    w(f'=== DIVERGENCE {label} at trace line {i + 1}\n')
    w('--- program\n' + text)
    lo = max(0, i - 8)
    w(f'--- python (asyncio 3.11 + 3.13 Condition.wait), lines {lo + 1}..\n')
    for line in py[lo:i + 6]:
        w('  ' + line + '\n')
    w(f'--- spindle, lines {lo + 1}..\n')
    for line in cpp[lo:i + 6]:
        w('  ' + line + '\n')
    w(f'--- first difference:\n  python : {py[i] if i < len(py) else "<end of trace>"}\n'
      f'  spindle: {cpp[i] if i < len(cpp) else "<end of trace>"}\n')


def load_regressions(path):
    """Lines: `SEED|FILE [known-failing] [# comment]`; FILE relative to this folder."""
    entries = []
    if not path or not os.path.exists(path):
        return entries
    with open(path) as f:
        for raw in f:
            comment = raw.split('#', 1)[1].strip() if '#' in raw else ''
            toks = raw.split('#', 1)[0].split()
            if not toks:
                continue
            known = 'known-failing' in toks[1:]
            entries.append((toks[0], known, comment))
    return entries


def program_of(ref):
    """A seed (int) or a program file -> (label, text)."""
    if ref.isdigit():
        return f'seed {ref}', serialize(generate(int(ref)))
    path = ref if os.path.isabs(ref) or os.path.exists(ref) else os.path.join(HERE, ref)
    with open(path) as f:
        return path, f.read()


def check_one(binary, label, text, model='asyncio'):
    prog = parse(text)
    py = run_py(prog, model)
    cpp = run_cpp(binary, serialize(prog))
    return py, cpp, first_divergence(py, cpp)


def _k3(py, cpp):
    """K3: identical up to a `scoped` op whose release raised under asyncio, where the
    spindle process was killed by std::terminate (the guard's destructor threw)."""
    i = first_divergence(py, cpp)
    if i is None or i >= len(py) or i >= len(cpp):
        return False
    m = py[i].split(' task=', 1)[-1].split(' ', 1)[-1]
    return (m.startswith('scoped ') and m.endswith((' -> RuntimeError', ' -> ValueError'))
            and cpp[i].startswith('TERMINATE std::terminate called (exception: ')
            and cpp[i].endswith(m.rsplit(' ', 1)[-1] + ')'))


def explained_by_known(prog, cpp):
    """The id of the known issue(s) that alone explain the divergence, or None."""
    for k in ('asyncio',) + MODEL_ORDER:
        py = run_py(prog, k)
        if k != 'asyncio' and first_divergence(py, cpp) is None:
            return k
        if _k3(py, cpp):
            return 'K3' if k == 'asyncio' else f'{k}+K3'
    return None


def describe_known(k):
    return '; '.join(f'{c}: {KNOWN_ISSUES[c]}' for c in k.split('+'))


def cmd_check(args):
    count = int(os.environ.get('SPINDLE_DIFF_COUNT', args.count or 0))
    refs = list(args.seeds) + [str(s) for s in range(args.start, args.start + count)]
    regs = [] if args.no_regressions else load_regressions(args.regressions)
    known = {ref for ref, k, _ in regs if k}
    for ref, _, _ in regs:
        if ref not in refs:
            refs.append(ref)
    failed, known_failed, passed, deadlocks = [], [], 0, 0
    explained = {}
    for n, ref in enumerate(refs):
        if n and n % 1000 == 0 and len(refs) > 2000:
            print(f'... {n}/{len(refs)}: {len(failed)} diverged so far', file=sys.stderr, flush=True)
        label, text = program_of(ref)
        py, cpp, i = check_one(args.bin, label, text)
        if i is None:
            passed += 1
            deadlocks += bool(py) and py[-1].endswith(' DEADLOCK')
            if ref in known:
                print(f'NOTE: {label} is marked known-failing in regressions.txt but now passes')
            continue
        k = explained_by_known(parse(text), cpp)
        if ref in known and k is not None:
            known_failed.append(label)
            if args.verbose:
                report(f'{label} (known-failing, {k})', text, py, cpp, i)
            continue
        if ref in known:
            print(f'{label} is marked known-failing, but now diverges in a way no known issue explains:')
        if args.strict:
            k = None
        if k is not None:
            explained.setdefault(k, []).append(label)
            if args.verbose:
                report(f'{label} (explained by known issue {k})', text, py, cpp, i)
            continue
        failed.append(label)
        if len(failed) <= args.show or ref in known:
            report(label, text, py, cpp, i)
        if args.fail_fast:
            break
    print(f'diff.asyncio: {passed}/{len(refs)} programs identical '
          f'({deadlocks} of them end in a deadlock on both sides), '
          f'{len(failed)} diverged, {len(known_failed)} known-failing diverged as expected')
    for k, labels in sorted(explained.items()):
        print(f'  {len(labels)} diverged only through known issue(s) {k} ({describe_known(k)}); '
              f'--strict makes them fail, -v prints them')
    if failed:
        print('diverging: ' + ' '.join(failed))
    return 1 if failed else 0


def shrink_candidates(prog):
    """Smaller variants of prog, most aggressive first."""
    # drop a task (remap cancel targets)
    for j in range(len(prog.tasks)):
        p = prog.copy()
        del p.tasks[j]

        def remap(ops):
            out = []
            for op in ops:
                if op[0] in ('cancel', 'join'):
                    t = int(op[1])
                    if t == j:
                        continue
                    op = (op[0], str(t - 1 if t > j else t))
                out.append(op)
            return out
        p.tasks = [remap(o) for o in p.tasks]
        p.main = remap(p.main)
        if p.tasks:
            yield p
    # drop a primitive (and its ops)
    for name, _, _ in prog.prims:
        p = prog.copy()
        # a Condition built on the dropped Lock gets a lock of its own
        p.prims = [(n, k, None if k == 'cond' and a == name else a) for n, k, a in p.prims if n != name]
        p.tasks = [[op for op in ops if len(op) < 2 or op[1] != name] for ops in p.tasks]
        p.main = [op for op in p.main if len(op) < 2 or op[1] != name]
        yield p
    lists = [('t', j) for j in range(len(prog.tasks))] + [('m', 0)]
    # drop one op
    for kind, j in lists:
        ops = prog.tasks[j] if kind == 't' else prog.main
        for k in range(len(ops)):
            p = prog.copy()
            target = p.tasks[j] if kind == 't' else p.main
            del target[k]
            yield p
    # simplify one op: drop its timeout, shorten durations/holds/args
    for kind, j in lists:
        ops = prog.tasks[j] if kind == 't' else prog.main
        for k, op in enumerate(ops):
            variants = []
            core, to = split_to(op)
            if to:
                variants.append(core)
                if to > 1:
                    variants.append(core + ('to', str(to - 1)))
            if op[0] == 'sleep' and int(op[1]) > 1:
                variants.append(('sleep', str(int(op[1]) - 1)))
            if op[0] == 'with' and int(op[2]) > 0:
                variants.append(('with', op[1], str(int(op[2]) - 1)))
            if op[0] == 'sleep':
                variants.append(('yield',))
            for v in variants:
                p = prog.copy()
                target = p.tasks[j] if kind == 't' else p.main
                target[k] = v
                yield p


def cmd_minimize(args):
    label, text = program_of(args.ref)
    prog = parse(text)
    py, cpp, i = check_one(args.bin, label, serialize(prog))
    if i is None:
        print(f'{label}: no divergence')
        return 0
    # Keep the class of the divergence: explained by the same known issue, or by none.
    k0 = explained_by_known(prog, run_cpp(args.bin, serialize(prog)))
    print(f'{label}: diverges; known issue: {k0 or "none"}; shrinking...', flush=True)

    def same_class(cand):
        _, cpp, ci = check_one(args.bin, label, serialize(cand))
        return ci is not None and explained_by_known(cand, cpp) == k0

    changed = True
    while changed:
        changed = False
        for cand in shrink_candidates(prog):
            if same_class(cand):
                prog = cand
                changed = True
                break
    text = serialize(prog)
    py, cpp, i = check_one(args.bin, label, text)
    report(label + ' (minimized)', text, py, cpp, i)
    print('--- full python trace')
    print('\n'.join('  ' + s for s in py))
    print('--- full spindle trace')
    print('\n'.join('  ' + s for s in cpp))
    return 1


def cmd_selftest(args):
    """The Python side alone: generation round-trips through the text format, runs
    are deterministic, and the pure-Python Task behaves as the C Task."""
    bad = 0
    for seed in range(args.start, args.start + args.count):
        prog = generate(seed)
        text = serialize(prog)
        if serialize(parse(text)) != text or serialize(generate(seed)) != text:
            print(f'seed {seed}: serialization does not round-trip')
            bad += 1
            continue
        a, b = run_py(prog), run_py(parse(text))
        d = run_py(prog, 'pytask')
        if a != d:
            i = first_divergence(a, d)
            print(f'seed {seed}: the pure-Python Task differs from the C Task at line {i + 1}')
            bad += 1
        elif a != b:
            print(f'seed {seed}: two asyncio runs differ at line {first_divergence(a, b) + 1}')
            bad += 1
    print(f'selftest: {args.count - bad}/{args.count} ok')
    return 1 if bad else 0


def cmd_stats(args):
    """What the generated programs exercise (asyncio side): op outcomes and where
    cancellations land."""
    import collections
    c = collections.Counter()
    ends = collections.Counter()
    fam = collections.Counter()
    for seed in range(args.start, args.start + args.count):
        prog = generate(seed)
        st_family = set()
        tr = run_py(prog, stats=c, family=st_family)
        ends['ends in DEADLOCK' if tr[-1].endswith(' DEADLOCK') else 'completes'] += 1
        ends['watchdog cancel rounds'] += sum(1 for x in tr if 'stuck round' in x)
        feats = st_family | family_static(prog)
        fam.update(feats)
        fam['(programs from generate_family)'] += is_family_seed(seed)
        if ('cancel by a task lands in a Condition wait' in feats
                and 'Condition on an explicit Lock also used directly' in feats):
            fam['(both: cancel in a Condition wait, Condition on a shared Lock)'] += 1
    for k, v in sorted(ends.items()):
        print(f'{v:7d}  {k}')
    for (a, b), v in sorted(c.items()):
        print(f'{v:7d}  {a} -> {b}')
    print(f'crash-family features (programs out of {args.count}):')
    for k, v in sorted(fam.items()):
        print(f'{v:7d}  {k}')
    return 0


def cmd_coverage(args):
    """Line coverage of asyncio/locks.py (and of the patched Condition.wait) by the
    asyncio runs of the generated programs: lines never run are blind spots."""
    import collections
    import inspect
    hits = collections.Counter()
    targets = {asyncio.locks.__file__, __file__}

    def tracer(frame, event, arg):
        if frame.f_code.co_filename not in targets:
            return None

        def local(frame, event, arg):
            if event == 'line':
                hits[(frame.f_code.co_filename, frame.f_lineno)] += 1
            return local
        return local

    sys.settrace(tracer)
    try:
        for seed in range(args.start, args.start + args.count):
            run_py(generate(seed))
    finally:
        sys.settrace(None)

    def executable_lines(code):
        lines = {ln for _, _, ln in code.co_lines() if ln is not None and ln != code.co_firstlineno}
        for c in code.co_consts:
            if inspect.iscode(c):
                lines |= executable_lines(c)
        return lines

    classes = (asyncio.Lock, asyncio.Semaphore, asyncio.BoundedSemaphore, asyncio.Event,
               asyncio.Condition, asyncio.Barrier)
    src = {}
    for cls in classes:
        for name, fn in vars(cls).items():
            if not inspect.isfunction(fn) or name.startswith('__'):
                continue
            f = fn.__code__.co_filename
            if f not in src:
                with open(f) as fh:
                    src[f] = fh.read().splitlines()
            missed = [ln for ln in sorted(executable_lines(fn.__code__))
                      if hits[(f, ln)] == 0 and src[f][ln - 1].strip()]
            status = 'all lines run' if not missed else f'{len(missed)} line(s) never run'
            print(f'{cls.__name__ + "." + name:32s} {status}')
            for ln in missed:
                print(f'    {os.path.basename(f)}:{ln}: {src[f][ln - 1].strip()}')
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    g = sub.add_parser('gen')
    g.add_argument('seed', type=int)
    rp = sub.add_parser('run-py')
    rp.add_argument('file')
    rp.add_argument('--model', default='asyncio', choices=MODELS,
                    help='a wait_for variant modelling known issues (diagnosis only)')
    c = sub.add_parser('check')
    c.add_argument('seeds', nargs='*')
    c.add_argument('--count', type=int, default=0)
    c.add_argument('--start', type=int, default=1)
    c.add_argument('--bin', required=True)
    c.add_argument('--regressions', default=os.path.join(HERE, 'regressions.txt'))
    c.add_argument('--no-regressions', action='store_true')
    c.add_argument('--show', type=int, default=3, help='divergences to print in full')
    c.add_argument('--fail-fast', action='store_true')
    c.add_argument('-v', '--verbose', action='store_true', help='also print known-failing divergences')
    c.add_argument('--strict', action='store_true',
                   help='count divergences explained by a known issue (KNOWN_ISSUES) as failures')
    t = sub.add_parser('selftest')
    t.add_argument('--count', type=int, default=300)
    t.add_argument('--start', type=int, default=1)
    sp = sub.add_parser('stats')
    sp.add_argument('--count', type=int, default=300)
    sp.add_argument('--start', type=int, default=1)
    cv = sub.add_parser('coverage')
    cv.add_argument('--count', type=int, default=300)
    cv.add_argument('--start', type=int, default=1)
    m = sub.add_parser('minimize')
    m.add_argument('ref', help='seed or program file')
    m.add_argument('--bin', required=True)
    args = ap.parse_args(argv)
    if sys.version_info[:2] != (3, 11):
        # The reference is CPython 3.11's asyncio (DESIGN.md): another version's locks
        # and wait_for behave differently, and every difference would show up here.
        print(f'gen_and_run.py: needs CPython 3.11 (DESIGN.md), this is {sys.version.split()[0]}',
              file=sys.stderr)
        sys.exit(2)

    if args.cmd == 'gen':
        sys.stdout.write(serialize(generate(args.seed)))
        rc = 0
    elif args.cmd == 'run-py':
        text = sys.stdin.read() if args.file == '-' else open(args.file).read()
        print('\n'.join(run_py(parse(text), args.model)))
        rc = 0
    elif args.cmd == 'check':
        rc = cmd_check(args)
    elif args.cmd == 'coverage':
        rc = cmd_coverage(args)
    elif args.cmd == 'stats':
        rc = cmd_stats(args)
    elif args.cmd == 'selftest':
        rc = cmd_selftest(args)
    else:
        rc = cmd_minimize(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)    # skip finalizing the deadlocked loops kept in _GRAVEYARD


if __name__ == '__main__':
    main()
