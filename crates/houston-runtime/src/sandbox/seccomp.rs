//! The seccomp filter every sandboxed process runs under.
//!
//! It is a deny list on top of the other layers. System calls that change mounts,
//! namespaces, kernel state or other processes' memory fail with `EPERM`. Sockets other than
//! Unix, IPv4 and IPv6 cannot be created. `clone3` fails with `ENOSYS`, so the C library
//! falls back to `clone`, whose flags the filter can inspect.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// System calls no engine needs and that widen the kernel surface a sandbox can reach.
const DENIED: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
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
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// Namespace flags that `clone` must not carry.
const NAMESPACE_FLAGS: [i32; 8] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWTIME,
];

/// Socket families an engine may create; the network namespace decides where they reach.
const ALLOWED_FAMILIES: [i32; 3] = [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6];

/// Installs both filters on the calling thread; children inherit them.
///
/// # Errors
/// Returns the failing step: building a filter or loading it (which needs `no_new_privs`).
pub(super) fn install() -> Result<(), String> {
    let arch = target_arch()?;
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let enosys = SeccompAction::Errno(libc::ENOSYS as u32);

    let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&number| (number, Vec::new())).collect();
    denied.insert(libc::SYS_clone, clone_rules()?);
    denied.insert(libc::SYS_socket, vec![socket_rule()?]);
    apply(denied, eperm, arch)?;

    let clone3 = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    apply(clone3, enosys, arch)
}

fn apply(rules: BTreeMap<i64, Vec<SeccompRule>>, action: SeccompAction, arch: TargetArch) -> Result<(), String> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch)
        .map_err(|error| format!("invalid seccomp filter: {error}"))?;
    let program: BpfProgram = filter.try_into().map_err(|error| format!("failed to compile seccomp filter: {error}"))?;
    seccompiler::apply_filter(&program).map_err(|error| format!("failed to load seccomp filter: {error}"))
}

fn condition(len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(0, len, op, value).map_err(|error| error.to_string())
}

/// Builds one rule per flag, because a syscall matches when any of its rules does.
fn clone_rules() -> Result<Vec<SeccompRule>, String> {
    NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let flag = flag as u64;
            let flag_set = condition(SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag)?;
            SeccompRule::new(vec![flag_set]).map_err(|error| error.to_string())
        })
        .collect()
}

/// Builds the rule that matches a family (the first argument, an `int`) outside the allowed
/// ones, because all conditions of one rule must hold.
fn socket_rule() -> Result<SeccompRule, String> {
    let conditions = ALLOWED_FAMILIES
        .iter()
        .map(|&family| condition(SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, family as u64))
        .collect::<Result<Vec<_>, _>>()?;
    SeccompRule::new(conditions).map_err(|error| error.to_string())
}

fn target_arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| format!("seccomp filters are not built for {}", std::env::consts::ARCH))
}
