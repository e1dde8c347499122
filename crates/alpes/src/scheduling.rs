//! How the operating system schedules the platform's threads. A saga is a pipeline of small
//! steps, each a hand-over between threads: a runtime thread sends a statement to a SQLite
//! connection's thread and waits for its answer, a relay wakes the bus, the bus wakes a
//! consumer. Under Linux's default policy every such wake-up may preempt the thread that sent
//! it, on the spot, so the sender is switched out half-way through a batch it could have
//! finished, and both cores spend their time switching instead of working.
//!
//! `SCHED_BATCH` tells the scheduler that a thread is throughput work: a thread it wakes waits
//! for a free core or the end of the running thread's slice instead of preempting it. Fairness
//! and priorities (the nice value) are unchanged; only wake-up preemption goes. Measured in
//! BENCHMARKS.md (twelfth run): more sagas per second in `alpes up`, where fifteen SQLite
//! threads and the runtime's hand work to each other; one process per service on PostgreSQL
//! measured no better, so `alpes serve` keeps the default.
//!
//! The one part of `alpes up` that is interactive, the BFF's HTTP front door (a thread of its
//! own, see `platform::start_on_own_runtime`), is put back to the default policy so that a
//! request still preempts the pipeline's batches.

/// How a thread is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `SCHED_BATCH`: wakes others without being preempted by them.
    Batch,
    /// `SCHED_OTHER`, Linux's default: what answers requests.
    Interactive,
}

/// Puts the calling thread in `class`; threads it starts afterwards inherit it, so calling
/// this first thing in `main` covers the runtime's threads and SQLite's connection threads.
/// Fails where the policy cannot be set (a sandbox that forbids it, another system than
/// Linux); the thread then keeps the policy it had, which is only slower.
pub fn set_current_thread(class: Class) -> Result<(), String> {
    imp::set_current_thread(class)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::Class;
    use scheduler::Policy;

    pub(super) fn set_current_thread(class: Class) -> Result<(), String> {
        let policy = match class {
            Class::Batch => Policy::Batch,
            Class::Interactive => Policy::Other,
        };
        // On Linux, process id 0 here is the calling thread; static priority is 0 for both
        // policies, and the nice value is left alone.
        scheduler::set_self_policy(policy, 0).map_err(|()| {
            format!(
                "cannot set the scheduling policy to {class:?}: {}",
                std::io::Error::last_os_error()
            )
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Class;

    pub(super) fn set_current_thread(class: Class) -> Result<(), String> {
        Err(format!("scheduling policy {class:?} is only set on Linux"))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{set_current_thread, Class};

    /// The calling thread's scheduling policy and nice value, as the kernel reports them
    /// (`/proc/thread-self/stat`, fields 41 and 19).
    fn policy_and_nice() -> (u32, i32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("readable");
        // The command name (field 2) may hold spaces; the fields after it do not.
        let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // `fields[0]` is field 3 of the file.
        (
            fields[41 - 3].parse().expect("a policy"),
            fields[19 - 3].parse().expect("a nice value"),
        )
    }

    #[test]
    fn a_thread_goes_batch_and_back_and_what_it_starts_inherits_it() {
        std::thread::spawn(|| {
            let (_, nice) = policy_and_nice();
            set_current_thread(Class::Batch).expect("batch");
            assert_eq!(policy_and_nice(), (3, nice), "SCHED_BATCH, nice unchanged");
            let inherited = std::thread::spawn(policy_and_nice).join().expect("joined");
            assert_eq!(
                inherited,
                (3, nice),
                "a thread started afterwards is batch too"
            );
            set_current_thread(Class::Interactive).expect("interactive");
            assert_eq!(policy_and_nice(), (0, nice), "SCHED_OTHER again");
        })
        .join()
        .expect("the test thread");
    }
}
