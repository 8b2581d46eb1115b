//! The parallel-for hook: how a host lends threads to the core.
//!
//! The core never creates threads. A host (Rust or C) provides a [`ParallelFor`]:
//! a function pointer plus a `void*` of its own that, given a number of tasks and
//! a task callback with its data, calls `task(data, i)` for every `i < n_tasks`
//! exactly once (possibly concurrently, on any threads) and returns when all
//! have returned. The core splits each matrix multiply into independent row
//! ranges (a row's reduction is never split) and hands them to the hook; without
//! a hook everything runs on the calling thread. Results do not depend on the
//! number of tasks: every output element is computed by the same code path in
//! the same order whichever task computes it.
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
pub(crate) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks only write through `write`, whose contract forbids two tasks
// writing the same index.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub(crate) fn new(out: &mut [f32]) -> SharedOut {
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
    pub(crate) unsafe fn write(&self, i: usize, v: f32) {
        if i < self.len {
            // SAFETY: in bounds; exclusive per the contract.
            unsafe { self.ptr.add(i).write(v) };
        }
    }
}

#[cfg(feature = "std")]
pub use pool::ThreadPool;

#[cfg(feature = "std")]
mod pool {
    use super::{ParallelFor, TaskFn};
    use core::ffi::c_void;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::vec::Vec;

    #[derive(Clone, Copy)]
    struct Job {
        task: TaskFn,
        data: *const c_void,
        n: usize,
    }
    // SAFETY: the job's data is shared by the hook's contract (`task` may run on any thread).
    unsafe impl Send for Job {}

    struct State {
        job: Option<Job>,
        generation: u64,
        active: usize,
        shutdown: bool,
    }

    struct Shared {
        state: Mutex<State>,
        work: Condvar,
        idle: Condvar,
        next: AtomicUsize,
        done: AtomicUsize,
        /// Mirror of `State::active` (written under the lock, read without it).
        busy: AtomicUsize,
        generation: AtomicU64,
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

    impl ThreadPool {
        /// A pool running tasks on `n_threads` threads (the caller's included).
        pub fn new(n_threads: usize) -> ThreadPool {
            let n_threads = n_threads.max(1);
            let shared = Arc::new(Shared {
                state: Mutex::new(State {
                    job: None,
                    generation: 0,
                    active: 0,
                    shutdown: false,
                }),
                work: Condvar::new(),
                idle: Condvar::new(),
                next: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
                busy: AtomicUsize::new(0),
                generation: AtomicU64::new(0),
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
            let s = &*self.shared;
            let _serial = s.run_lock.lock().unwrap_or_else(|e| e.into_inner());
            {
                let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
                s.next.store(0, Ordering::SeqCst);
                s.done.store(0, Ordering::SeqCst);
                st.job = Some(Job { task, data, n });
                st.generation += 1;
                s.generation.store(st.generation, Ordering::SeqCst);
                s.work.notify_all();
            }
            // The caller works too.
            loop {
                let i = s.next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                // SAFETY: the caller's contract.
                unsafe { task(data, i) };
                s.done.fetch_add(1, Ordering::SeqCst);
            }
            // The workers usually finish within microseconds of the caller: spin
            // on the counter before sleeping on the condition variable (a futex
            // round trip per matmul costs more than a small matmul).
            let mut spins = 0;
            while (s.done.load(Ordering::Acquire) != n || s.busy.load(Ordering::Acquire) != 0)
                && spins < 200_000
            {
                core::hint::spin_loop();
                spins += 1;
            }
            let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
            while !(s.done.load(Ordering::SeqCst) == n && st.active == 0) {
                st = s.idle.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            // No worker holds this job any more; a late one will find `None`.
            st.job = None;
        }
    }

    unsafe extern "C" fn run_hook(user: *mut c_void, n: usize, task: TaskFn, data: *const c_void) {
        // SAFETY: `hook` made `user` from a `&'static ThreadPool`.
        let pool = unsafe { &*(user as *const ThreadPool) };
        // SAFETY: the core's tasks are callable from any thread (they only share `Sync` data).
        unsafe { pool.run(n, task, data) };
    }

    fn worker(s: &Shared) {
        let mut seen = 0u64;
        loop {
            // Spin briefly: matmuls come in quick succession during a forward pass.
            let mut spins = 0;
            while s.generation.load(Ordering::Acquire) == seen && spins < 20_000 {
                core::hint::spin_loop();
                spins += 1;
            }
            let job = {
                let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
                while st.generation == seen && !st.shutdown {
                    st = s.work.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.shutdown {
                    return;
                }
                seen = st.generation;
                match st.job {
                    Some(j) => {
                        st.active += 1;
                        s.busy.store(st.active, Ordering::Release);
                        j
                    }
                    None => continue,
                }
            };
            loop {
                let i = s.next.fetch_add(1, Ordering::SeqCst);
                if i >= job.n {
                    break;
                }
                // SAFETY: `ThreadPool::run`'s contract; the job is live until `active` drops to 0.
                unsafe { (job.task)(job.data, i) };
                s.done.fetch_add(1, Ordering::SeqCst);
            }
            let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
            st.active -= 1;
            s.busy.store(st.active, Ordering::Release);
            s.idle.notify_all();
        }
    }

    impl Drop for ThreadPool {
        fn drop(&mut self) {
            {
                let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                st.shutdown = true;
                self.shared.work.notify_all();
            }
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}
