//! The parallel-for hook: how a host lends threads to the core.
//!
//! The core never creates threads. A host (Rust or C) provides a [`ParallelFor`]:
//! a function pointer plus a `void*` of its own that, given a number of tasks and
//! a task callback with its data, calls `task(data, i)` for every `i < n_tasks`
//! exactly once (possibly concurrently, on any threads) and returns when all
//! have returned. The core hands the hook every step of the forward pass that
//! splits into independent parts: each matrix multiply by ranges of output rows
//! (a row's reduction is never split; the bias, GELU, SwiGLU and residual add
//! of those rows run in the same task), attention by heads, norms by tokens.
//! Without a hook everything runs on the calling thread. Results do not depend
//! on the number of tasks: every output element is computed by the same code
//! path in the same order whichever task computes it.
//!
//! With the `std` feature, [`ThreadPool`] is a ready-made persistent pool.

use core::ffi::c_void;

/// A task callback: `task(data, index)`.
pub type TaskFn = unsafe extern "C" fn(data: *const c_void, index: usize);

/// A host's parallel-for: `run(user, n_tasks, task, task_data)`.
pub type RunFn =
    unsafe extern "C" fn(user: *mut c_void, n_tasks: usize, task: TaskFn, task_data: *const c_void);

/// A parallel-for provided by the host (see the module docs). Built with the
/// `unsafe` [`ParallelFor::new`], whose contract makes handing it to a context safe.
#[derive(Clone, Copy)]
pub struct ParallelFor {
    run: RunFn,
    user: *mut c_void,
    n_threads: usize,
}

// SAFETY: `ParallelFor::new`'s contract requires `run` to be callable with `user`
// from any thread, concurrently with nothing else but itself serialised by the host.
unsafe impl Send for ParallelFor {}
// SAFETY: as above; the struct is read-only after construction.
unsafe impl Sync for ParallelFor {}

impl ParallelFor {
    /// A hook that splits work into (up to) `n_threads` tasks.
    ///
    /// # Safety
    /// For as long as any context holds this hook, `run(user, n, task, data)` must:
    /// call `task(data, i)` exactly once for every `i < n` (possibly concurrently,
    /// on any threads), return only after every call has returned, and be safe to
    /// call from any thread with this `user` (calls may come from several contexts
    /// at once). It must not unwind.
    pub const unsafe fn new(run: RunFn, user: *mut c_void, n_threads: usize) -> ParallelFor {
        ParallelFor {
            run,
            user,
            n_threads,
        }
    }

    /// How many tasks the core splits work into (at least 1).
    pub fn n_threads(&self) -> usize {
        self.n_threads.max(1)
    }
}

impl PartialEq for ParallelFor {
    fn eq(&self, o: &Self) -> bool {
        core::ptr::fn_addr_eq(self.run, o.run)
            && self.user == o.user
            && self.n_threads == o.n_threads
    }
}
impl Eq for ParallelFor {}

impl core::fmt::Debug for ParallelFor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ParallelFor")
            .field("user", &self.user)
            .field("n_threads", &self.n_threads)
            .finish()
    }
}

/// The trampoline the host calls: `data` is a `&&(dyn Fn(usize) + Sync)`.
unsafe extern "C" fn trampoline(data: *const c_void, index: usize) {
    // SAFETY: `for_each` passes a pointer to a live `&(dyn Fn(usize) + Sync)` and
    // the host's contract keeps every call inside `run`, while that reference lives.
    let f = unsafe { &*(data as *const &(dyn Fn(usize) + Sync)) };
    f(index);
}

/// Run `f(i)` for every `i < n_tasks`, through the hook when there is one and
/// more than one task, else in order on this thread.
pub(crate) fn for_each(p: Option<&ParallelFor>, n_tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    match p {
        Some(p) if n_tasks > 1 => {
            let data: *const &(dyn Fn(usize) + Sync) = &f;
            // SAFETY: `ParallelFor::new`'s contract: every task runs exactly once and
            // `run` returns only when all are done, so `data` outlives every call.
            unsafe { (p.run)(p.user, n_tasks, trampoline, data as *const c_void) };
        }
        _ => (0..n_tasks).for_each(f),
    }
}

/// An output buffer that tasks write disjoint elements of.
pub(crate) struct SharedOut<T = f32> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: tasks only write through `write` and `slice_mut`, whose contracts
// forbid two tasks touching the same index; the values cross threads (`Send`).
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    pub(crate) fn new(out: &mut [T]) -> SharedOut<T> {
        SharedOut {
            ptr: out.as_mut_ptr(),
            len: out.len(),
        }
    }

    /// `out[i] = v` (ignored when `i` is out of range).
    ///
    /// # Safety
    /// No other task reads or writes index `i` while the buffer is shared, and the
    /// `&mut [f32]` it was made from is not used until the sharing ends.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, i: usize, v: T) {
        if i < self.len {
            // SAFETY: in bounds; exclusive per the contract.
            unsafe { self.ptr.add(i).write(v) };
        }
    }

    /// `&mut out[range]`, or `None` when the range is out of bounds.
    ///
    /// # Safety
    /// No other task reads or writes any index of `range` while the returned
    /// slice lives, and the `&mut [f32]` the buffer was made from is not used
    /// until the sharing ends.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // exclusive per the contract
    pub(crate) unsafe fn slice_mut(&self, range: core::ops::Range<usize>) -> Option<&mut [T]> {
        if range.start <= range.end && range.end <= self.len {
            // SAFETY: in bounds; exclusive per the contract.
            Some(unsafe {
                core::slice::from_raw_parts_mut(self.ptr.add(range.start), range.end - range.start)
            })
        } else {
            None
        }
    }
}

/// Tasks to split `items` independent items into: up to two per thread of the
/// hook (handed out dynamically, so a thread that starts late takes fewer),
/// one without a hook.
fn split(p: Option<&ParallelFor>, items: usize) -> usize {
    match p {
        Some(p) if p.n_threads() > 1 => (2 * p.n_threads()).min(items).max(1),
        _ => 1,
    }
}

/// One column block of a row-major `[rows][width]` buffer that tasks share:
/// columns `off .. off + bw` of every row, handed out one row at a time.
pub(crate) struct Columns<'b> {
    buf: &'b SharedOut,
    width: usize,
    off: usize,
    bw: usize,
}

impl Columns<'_> {
    /// Columns `off .. off + bw` of row `t` (`None` past the last row).
    pub(crate) fn row(&mut self, t: usize) -> Option<&mut [f32]> {
        let a = t.checked_mul(self.width)?.checked_add(self.off)?;
        let e = a.checked_add(self.bw)?;
        // SAFETY: `for_each_column_block` gives every block to exactly one task
        // and blocks do not overlap (`off + bw <= width`), so these columns of
        // row `t` are this task's alone; `&mut self` keeps one row live at a time.
        unsafe { self.buf.slice_mut(a..e) }
    }

    /// These columns of rows `t` and `t + 1` at once (`None` past the last row).
    pub(crate) fn rows2(&mut self, t: usize) -> Option<(&mut [f32], &mut [f32])> {
        let a = t.checked_mul(self.width)?.checked_add(self.off)?;
        let e = a.checked_add(self.bw)?;
        let b = a.checked_add(self.width)?;
        let f = b.checked_add(self.bw)?;
        if self.bw > self.width {
            return None;
        }
        // SAFETY: as in `row`: both are this task's columns of their rows, and
        // the two ranges do not overlap (`bw <= width`, so `e <= b`); `&mut self`
        // keeps no other row live while these two are.
        unsafe { Some((self.buf.slice_mut(a..e)?, self.buf.slice_mut(b..f)?)) }
    }
}

/// Run `f(b, cols, scratch)` for every column block `b < n_blocks` of the
/// row-major buffer `buf` (`[rows][width]`, blocks `bw` wide from column 0),
/// split into tasks of consecutive blocks: `cols` reaches block `b` of every
/// row, `scratch` is the `b`-th `scratch_per`-long chunk of `scratch`. Blocks
/// run independently (each on one thread), so results do not depend on the
/// split. Fails with `ShapeMismatch` when the blocks or scratch do not fit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_column_block(
    p: Option<&ParallelFor>,
    buf: &mut [f32],
    width: usize,
    bw: usize,
    n_blocks: usize,
    scratch: &mut [f32],
    scratch_per: usize,
    f: &(dyn Fn(usize, &mut Columns<'_>, &mut [f32]) + Sync),
) -> crate::Result<()> {
    let fits = |a: usize, b: usize, len: usize| a.checked_mul(b).is_some_and(|v| v <= len);
    if !fits(bw, n_blocks, width)
        || (width > 0 && !buf.len().is_multiple_of(width))
        || !fits(scratch_per, n_blocks, scratch.len())
    {
        return Err(crate::Error::ShapeMismatch);
    }
    let n_tasks = split(p, n_blocks);
    let per = n_blocks.div_ceil(n_tasks.max(1));
    let shared = SharedOut::new(buf);
    let scratch = SharedOut::new(scratch);
    let task = |i: usize| {
        for b in i * per..((i + 1) * per).min(n_blocks) {
            let mut cols = Columns {
                buf: &shared,
                width,
                off: b * bw,
                bw,
            };
            // SAFETY: block `b` is this task's alone, and so is its scratch chunk
            // (in bounds: checked above).
            if let Some(s) = unsafe { scratch.slice_mut(b * scratch_per..(b + 1) * scratch_per) } {
                f(b, &mut cols, s);
            }
        }
    };
    for_each(p, n_tasks, &task);
    Ok(())
}

/// Run `f(t, out_row)` for every row `t` of `out` (`[rows][width]`), split into
/// tasks of consecutive rows when there are at least `min_rows` rows (fewer run
/// on the calling thread: not worth a hand-off).
pub(crate) fn for_each_row<T: Send>(
    p: Option<&ParallelFor>,
    out: &mut [T],
    width: usize,
    min_rows: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let rows = out.len().checked_div(width).unwrap_or(0);
    if rows < min_rows.max(2) {
        for (t, r) in out.chunks_exact_mut(width.max(1)).enumerate() {
            f(t, r);
        }
        return;
    }
    let n_tasks = split(p, rows);
    let per = rows.div_ceil(n_tasks);
    let shared = SharedOut::new(out);
    let task = |i: usize| {
        for t in i * per..((i + 1) * per).min(rows) {
            // SAFETY: row `t` is this task's alone (disjoint row ranges).
            if let Some(r) = unsafe { shared.slice_mut(t * width..(t + 1) * width) } {
                f(t, r);
            }
        }
    };
    for_each(p, n_tasks, &task);
}

#[cfg(feature = "std")]
pub use pool::ThreadPool;

#[cfg(feature = "std")]
mod pool {
    //! The hot path is lock-free: a job is published by bumping a generation
    //! counter, tasks are claimed with a compare-and-swap on a ticket that
    //! carries that generation, and completion is a counter the caller spins
    //! on. Workers spin between jobs (a forward pass dispatches every few tens
    //! of microseconds) and only sleep on the condition variable after
    //! [`SPIN_FOR`] without work; the mutex is taken only to sleep or to wake a
    //! sleeper.

    use super::{ParallelFor, TaskFn};
    use core::ffi::c_void;
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};
    use std::vec::Vec;

    /// How long an idle worker spins before it sleeps (long enough to cover
    /// the gaps of a forward pass and between decode steps, short enough
    /// that an idle pool stops burning its cores quickly).
    const SPIN_FOR: Duration = Duration::from_millis(2);
    /// After this long without work a waiting thread yields its core between
    /// polls: on a machine with more runnable threads than cores, the thread
    /// it waits for may be the one it is keeping off the core.
    const YIELD_AFTER: Duration = Duration::from_micros(50);
    /// Low 32 bits of the ticket: the next task index, or `CLOSED`.
    const INDEX_MASK: u64 = 0xffff_ffff;
    /// Index of a ticket whose job has no tasks left to claim.
    const CLOSED: u64 = INDEX_MASK;
    /// Jobs with more tasks run on the calling thread (the index must fit below `CLOSED`).
    const MAX_POOLED_TASKS: usize = (CLOSED - 1) as usize;

    struct Shared {
        /// `generation << 32 | next index`. A claim is a CAS on the whole word,
        /// so a worker that read an older generation can never take a task of
        /// a newer job.
        ticket: AtomicU64,
        /// The current job, written before its generation is published and
        /// only read by a worker that then claims a task under that generation.
        task: AtomicPtr<()>,
        data: AtomicPtr<c_void>,
        n: AtomicUsize,
        /// Tasks of the current job that have returned.
        done: AtomicUsize,
        /// Workers asleep (or about to sleep) on `wake`.
        sleepers: AtomicUsize,
        shutdown: AtomicBool,
        sleep: Mutex<()>,
        wake: Condvar,
        /// Serialises `run` calls (several contexts may share one pool).
        run_lock: Mutex<()>,
    }

    /// A persistent pool of `n - 1` worker threads plus the calling thread.
    ///
    /// `pool.hook()` gives the [`ParallelFor`] to put in
    /// [`crate::ContextParams::parallel`]; the pool must outlive every context using
    /// it, which [`ThreadPool::leak`] makes trivially true.
    pub struct ThreadPool {
        shared: Arc<Shared>,
        n_threads: usize,
        workers: Vec<std::thread::JoinHandle<()>>,
    }

    /// Claim the next task of generation `generation` (of `n` tasks), if any is left.
    fn claim(s: &Shared, generation: u64, n: usize) -> Option<usize> {
        let mut t = s.ticket.load(SeqCst);
        loop {
            let i = t & INDEX_MASK;
            if t >> 32 != generation || i >= n as u64 {
                return None;
            }
            match s.ticket.compare_exchange_weak(t, t + 1, SeqCst, SeqCst) {
                Ok(_) => return Some(i as usize),
                Err(now) => t = now,
            }
        }
    }

    /// Run every task of generation `generation` this thread can claim.
    ///
    /// # Safety
    /// `task`, `data`, `n` must be the job of `generation` as `run` published
    /// it, or the claim fails (see `run`); `task(data, i)` callable from this thread.
    unsafe fn work(s: &Shared, generation: u64, task: TaskFn, data: *const c_void, n: usize) {
        while let Some(i) = claim(s, generation, n) {
            // SAFETY: a successful claim under `generation` means the job read
            // by the caller of `work` is still the live one (see `run`).
            unsafe { task(data, i) };
            s.done.fetch_add(1, SeqCst);
        }
    }

    impl ThreadPool {
        /// A pool running tasks on `n_threads` threads (the caller's included).
        pub fn new(n_threads: usize) -> ThreadPool {
            let n_threads = n_threads.max(1);
            let shared = Arc::new(Shared {
                ticket: AtomicU64::new(CLOSED),
                task: AtomicPtr::new(core::ptr::null_mut()),
                data: AtomicPtr::new(core::ptr::null_mut()),
                n: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
                sleepers: AtomicUsize::new(0),
                shutdown: AtomicBool::new(false),
                sleep: Mutex::new(()),
                wake: Condvar::new(),
                run_lock: Mutex::new(()),
            });
            let workers = (1..n_threads)
                .map(|_| {
                    let s = Arc::clone(&shared);
                    std::thread::spawn(move || worker(&s))
                })
                .collect();
            ThreadPool {
                shared,
                n_threads,
                workers,
            }
        }

        /// A pool that lives for the rest of the process.
        pub fn leak(n_threads: usize) -> &'static ThreadPool {
            std::boxed::Box::leak(std::boxed::Box::new(ThreadPool::new(n_threads)))
        }

        /// Threads the pool runs tasks on.
        pub fn n_threads(&self) -> usize {
            self.n_threads
        }

        /// The hook for a context; the pool lives forever, so this is safe.
        pub fn hook(&'static self) -> ParallelFor {
            // SAFETY: `run_hook` meets `ParallelFor::new`'s contract (see `run`) and
            // `self` lives for the rest of the process.
            unsafe {
                ParallelFor::new(
                    run_hook,
                    self as *const ThreadPool as *mut c_void,
                    self.n_threads,
                )
            }
        }

        /// Run `task(data, i)` for every `i < n` on the pool and wait for all.
        ///
        /// # Safety
        /// `task(data, i)` must be safe to call from any thread for each `i < n`.
        pub unsafe fn run(&self, n: usize, task: TaskFn, data: *const c_void) {
            if n == 0 {
                return;
            }
            if self.workers.is_empty() || n > MAX_POOLED_TASKS {
                // SAFETY: the caller's contract (any thread includes this one).
                (0..n).for_each(|i| unsafe { task(data, i) });
                return;
            }
            let s = &*self.shared;
            let _serial = s.run_lock.lock().unwrap_or_else(|e| e.into_inner());
            // The previous job left the ticket CLOSED, so no claim can succeed
            // while the job fields are rewritten: a worker still holding the old
            // generation fails its CAS, and one that reads the fields half-written
            // cannot claim before the new generation is published below.
            let generation = ((s.ticket.load(SeqCst) >> 32) + 1) & INDEX_MASK;
            s.task.store(task as *mut (), SeqCst);
            s.data.store(data.cast_mut(), SeqCst);
            s.n.store(n, SeqCst);
            s.done.store(0, SeqCst);
            s.ticket.store(generation << 32, SeqCst);
            if s.sleepers.load(SeqCst) > 0 {
                // A sleeper increments `sleepers` and re-checks the ticket under
                // the mutex before waiting, so either it sees the new generation
                // or this notify finds it waiting.
                let _g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
                s.wake.notify_all();
            }
            // The caller works too.
            // SAFETY: this is the job just published, under its generation.
            unsafe { work(s, generation, task, data, n) };
            // Every task is claimed: close the ticket (the next `run` relies on it).
            s.ticket.store(generation << 32 | CLOSED, SeqCst);
            // Wait for the tasks the workers took (they take microseconds; yield
            // if one of them has lost its core).
            let mut spins = 0u32;
            let mut since: Option<Instant> = None;
            while s.done.load(SeqCst) != n {
                core::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(256)
                    && since.get_or_insert_with(Instant::now).elapsed() >= YIELD_AFTER
                {
                    std::thread::yield_now();
                }
            }
        }
    }

    unsafe extern "C" fn run_hook(user: *mut c_void, n: usize, task: TaskFn, data: *const c_void) {
        // SAFETY: `hook` made `user` from a `&'static ThreadPool`.
        let pool = unsafe { &*(user as *const ThreadPool) };
        // SAFETY: the core's tasks are callable from any thread (they only share `Sync` data).
        unsafe { pool.run(n, task, data) };
    }

    fn worker(s: &Shared) {
        let mut seen = s.ticket.load(SeqCst) >> 32;
        loop {
            // Wait for a new generation: spin, then sleep.
            let mut idle_since: Option<Instant> = None;
            let mut spins = 0u32;
            let generation = loop {
                let g = s.ticket.load(SeqCst) >> 32;
                if g != seen {
                    break g;
                }
                if s.shutdown.load(SeqCst) {
                    return;
                }
                core::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if !spins.is_multiple_of(256) {
                    continue;
                }
                let idle = idle_since.get_or_insert_with(Instant::now).elapsed();
                if idle < YIELD_AFTER {
                    continue;
                }
                if idle < SPIN_FOR {
                    std::thread::yield_now();
                    continue;
                }
                let mut g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, SeqCst);
                while s.ticket.load(SeqCst) >> 32 == seen && !s.shutdown.load(SeqCst) {
                    g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                s.sleepers.fetch_sub(1, SeqCst);
                idle_since = None;
            };
            seen = generation;
            let p = s.task.load(SeqCst);
            if p.is_null() {
                continue;
            }
            // SAFETY: `task` only ever holds a `TaskFn` stored by `run` (null
            // excluded above); a pointer read from a later job than
            // `generation` is never called, because the claim in `work` fails.
            let task: TaskFn = unsafe { core::mem::transmute::<*mut (), TaskFn>(p) };
            let data = s.data.load(SeqCst).cast_const();
            let n = s.n.load(SeqCst);
            // SAFETY: as above; the job's tasks are callable from any thread.
            unsafe { work(s, generation, task, data, n) };
        }
    }

    impl Drop for ThreadPool {
        fn drop(&mut self) {
            self.shared.shutdown.store(true, SeqCst);
            {
                let _g = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
                self.shared.wake.notify_all();
            }
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}
