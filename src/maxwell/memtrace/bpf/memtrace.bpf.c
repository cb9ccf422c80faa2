// SPDX-License-Identifier: GPL-2.0
/*
 * Bytes of memory each agent gave back to the kernel, counted where the
 * kernel itself accounts for it: the memory cgroup statistics, not a list of
 * syscalls. Whatever way a process frees memory (munmap, any madvise,
 * process_madvise, brk, mremap, mmap over a mapping, a 32-bit entry, a memfd
 * truncated, io_uring, exit), the kernel ends in the same statistic updates,
 * traced as memcg:mod_memcg_lruvec_state(memcg, item, val):
 *
 *  - NR_ANON_MAPPED, val < 0: anonymous pages unmapped for the last time
 *    (__folio_remove_rmap), i.e. no process maps them any more;
 *  - NR_SHMEM, val < 0: shmem/tmpfs/memfd pages removed from their file
 *    (filemap_unaccount_folio).
 *
 * A decrement inside a user page fault is a page replaced (copy-on-write,
 * NUMA migration), not given back, and is skipped.
 *
 * Updates made by the kernel on its own behalf (in a kernel thread, or in
 * reclaim/compaction context: PF_MEMALLOC) are not the agent's doing:
 * migration and THP collapse unmap pages and map their copies, swap-out keeps
 * the data. Those NR_ANON_MAPPED updates are summed with their sign in
 * `kernel_pages` instead: migrations and collapses cancel out, and what stays
 * negative is anonymous memory the kernel dropped — pages the agent gave up
 * with MADV_FREE that reclaim then discarded (or, with swap, pages swapped
 * out). User space adds the largest deficit seen (a ratchet: a migration in
 * flight at read time is not undone). Kernel-context shmem updates (swap-out)
 * are ignored.
 *
 * Attribution: the page's memory cgroup (its id is the cgroup directory's
 * inode, the number user space stats), right in any context, reclaim
 * included. For agents without a memory cgroup of their own, frees made in
 * the agent's context: its v2 cgroup id, then its process id (children
 * inherit a pid registration at fork). `settings` tells the program whether any
 * such agent exists, so other processes' pages cost one lookup, not three.
 *
 * Cost: the tracepoint fires on memory-statistics updates only (page faults,
 * LRU moves, unmaps, page-cache changes), never on an unrelated syscall. The
 * filter on the statistic comes first (LRU moves, file pages: two compares).
 * Counters live in a per-CPU array indexed by a slot number that user space
 * assigns per agent.
 *
 * empty_lruvec does nothing on the same hook: the benchmark's floor.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define MAX_SLOTS 256
#define MAX_CGROUPS 1024
#define MAX_PIDS 8192

#define PAGE_SIZE_B 4096ULL /* x86_64 base page: the unit of the memcg page statistics */

/* include/linux/sched.h (not in BTF: #defines) */
#define PF_MEMALLOC 0x00000800
#define PF_KTHREAD 0x00200000

struct freed {
	__u64 bytes;        /* freed in the agent's (or any user task's) context */
	__u64 calls;        /* statistic updates credited (one per folio, at most a page table) */
	__s64 kernel_pages; /* NR_ANON_MAPPED changes made in kernel context, signed */
};

#define CONFIG_CGROUP_KEYS 1
#define CONFIG_PID_KEYS 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* CONFIG_* bits, set by user space */
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);   /* memory cgroup id (inode of its directory, v1 memory or v2) */
	__type(value, __u32); /* slot */
} memcg_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);   /* v2 cgroup id of the freeing task */
	__type(value, __u32); /* slot */
} cgroup_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PIDS);
	__type(key, __u32);   /* tgid */
	__type(value, __u32); /* slot */
} pid_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct freed);
} freed SEC(".maps");

static __always_inline __u32 *slot_of_memcg(struct mem_cgroup *memcg)
{
	/* a tp_btf argument is a trusted kernel pointer: plain loads, no probe-read helper calls */
	__u64 id = memcg->css.cgroup->kn->id;

	return bpf_map_lookup_elem(&memcg_slots, &id);
}

static __always_inline __u32 *slot_of_current(void)
{
	__u32 zero = 0;
	__u32 *cfg = bpf_map_lookup_elem(&settings, &zero);
	__u32 *slot = 0;

	if (!cfg || !*cfg)
		return 0;
	if (*cfg & CONFIG_CGROUP_KEYS) {
		__u64 cg = bpf_get_current_cgroup_id();

		slot = bpf_map_lookup_elem(&cgroup_slots, &cg);
		if (slot)
			return slot;
	}
	if (*cfg & CONFIG_PID_KEYS) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		slot = bpf_map_lookup_elem(&pid_slots, &tgid);
	}
	return slot;
}

static __always_inline struct freed *counters(__u32 *slot)
{
	return bpf_map_lookup_elem(&freed, slot);
}

SEC("tp_btf/mod_memcg_lruvec_state")
int BPF_PROG(page_unmapped, struct mem_cgroup *memcg, int item, int val)
{
	int anon = item == bpf_core_enum_value(enum node_stat_item, NR_ANON_MAPPED);

	if (!anon && item != bpf_core_enum_value(enum node_stat_item, NR_SHMEM))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->flags & (PF_KTHREAD | PF_MEMALLOC)) {
		if (!anon)
			return 0;
		/* only the page's cgroup is right here: kswapd, or whoever needed memory */
		__u32 *slot = slot_of_memcg(memcg);
		struct freed *f = slot ? counters(slot) : 0;
		if (f)
			f->kernel_pages += val; /* per-CPU value, no other writer on this CPU */
		return 0;
	}
	if (val >= 0)
		return 0;
	/*
	 * Inside a user page fault a page is replaced, not given back: copy-on-write
	 * maps a copy and unmaps the original (when the original could not be reused),
	 * NUMA migration likewise. in_user_fault is the memcg's own fault marker.
	 */
	if (BPF_CORE_READ_BITFIELD(task, in_user_fault))
		return 0;
	__u32 *slot = slot_of_memcg(memcg);
	if (!slot)
		slot = slot_of_current();
	if (!slot)
		return 0;
	struct freed *f = counters(slot);
	if (!f)
		return 0;
	/* tp_btf programs do not nest on a CPU: plain adds to the per-CPU value are safe */
	f->bytes += (__u64)(-(__s64)val) * PAGE_SIZE_B;
	f->calls += 1;
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(inherit_on_fork, struct task_struct *parent, struct task_struct *child)
{
	/* threads share the tgid already registered; only new processes matter */
	if (child->pid != child->tgid)
		return 0;
	__u32 ptgid = parent->tgid;
	__u32 *slot = bpf_map_lookup_elem(&pid_slots, &ptgid);
	if (!slot)
		return 0;
	__u32 ctgid = child->tgid;
	__u32 s = *slot;
	/* BPF_NOEXIST: a full map refuses the insert; the next read re-registers */
	bpf_map_update_elem(&pid_slots, &ctgid, &s, BPF_NOEXIST);
	return 0;
}

SEC("tp_btf/mod_memcg_lruvec_state")
int BPF_PROG(empty_lruvec, struct mem_cgroup *memcg, int item, int val)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
