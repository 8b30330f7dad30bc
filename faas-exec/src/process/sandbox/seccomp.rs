//! The seccomp filters every sandboxed runner gets, compiled to classic BPF with
//! [`seccompiler`] (the rust-vmm crate Firecracker uses) and handed to bubblewrap
//! (`--add-seccomp-fd`), which installs them right before it executes the runner.
//!
//! The filters are deny lists, like Docker's default profile: an action may use every system
//! call an ordinary program needs, and none of those that reach into other processes, the
//! kernel's configuration, or new namespaces:
//!
//! * reading or writing another process: `ptrace`, `process_vm_readv`/`writev`, `kcmp`,
//!   `pidfd_getfd`;
//! * kernel attack surface an action never needs: `bpf`, `perf_event_open`, `userfaultfd`,
//!   `keyctl`/`add_key`/`request_key`, `io_uring_*`, `open_by_handle_at`;
//! * the machine's configuration: mounts (old and new API), `pivot_root`, `chroot`, swap,
//!   `reboot`, `kexec_*`, modules, `acct`, `quotactl`, `syslog`, clocks, `iopl`/`ioperm`;
//! * new namespaces: `unshare`, `setns`, and `clone` with any `CLONE_NEW*` flag; `clone3`
//!   (whose flags a filter cannot see) answers `ENOSYS`, so that the C library falls back to
//!   `clone`, as Docker's profile does.
//!
//! A call of another architecture (32-bit `int 0x80` on x86-64) kills the process: the
//! compiled filter checks the audit architecture first.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The system calls denied with `EPERM`.
fn denied() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kcmp,
        libc::SYS_pidfd_getfd,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_fanotify_init,
        libc::SYS_vhangup,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_lookup_dcookie,
        libc::SYS_uselib,
        libc::SYS_ustat,
        libc::SYS_sysfs,
        libc::SYS__sysctl,
        libc::SYS_nfsservctl,
    ]);
    calls
}

/// `CLONE_NEW*` flags: a `clone` with any of them is denied.
const NAMESPACE_FLAGS: [u64; 8] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

/// The compiled filters, each as the bytes bubblewrap reads from its file descriptor.
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    /// Everything denied with `EPERM`.
    pub(crate) deny: Vec<u8>,
    /// `clone3` answered with `ENOSYS`.
    pub(crate) no_clone3: Vec<u8>,
}

/// The architecture this binary runs on, as seccompiler names it.
fn target() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        format!(
            "no seccomp filter for the {} architecture",
            std::env::consts::ARCH
        )
    })
}

/// Compiles both filters for this machine's architecture.
pub(crate) fn compile() -> Result<Filters, String> {
    let arch = target()?;
    let err = |e: seccompiler::BackendError| format!("cannot build the seccomp filter: {e}");

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied().into_iter().map(|nr| (nr, Vec::new())).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            // `clone`'s flags are its first argument on x86-64 and aarch64.
            let c = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .map_err(err)?;
            SeccompRule::new(vec![c]).map_err(err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;

    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(err)?;

    let bytes = |f: SeccompFilter| -> Result<Vec<u8>, String> {
        let prog: BpfProgram = f.try_into().map_err(err)?;
        Ok(to_bytes(&prog))
    };
    Ok(Filters {
        deny: bytes(deny)?,
        no_clone3: bytes(clone3)?,
    })
}

/// A program as the kernel's `struct sock_filter` array (native byte order).
fn to_bytes(prog: &BpfProgram) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_to_whole_instructions() {
        let f = compile().unwrap();
        assert!(!f.deny.is_empty() && f.deny.len().is_multiple_of(8));
        assert!(!f.no_clone3.is_empty() && f.no_clone3.len().is_multiple_of(8));
        // Far below the kernel's limit of 4096 instructions.
        assert!(f.deny.len() / 8 < 1024, "{}", f.deny.len() / 8);
    }
}
