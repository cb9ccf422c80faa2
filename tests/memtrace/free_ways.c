/*
 * A hostile agent for the memtrace tests: frees N bytes of memory it wrote,
 * by one way chosen on the command line. Compiled by the test with cc.
 *
 *   free_ways WAY N [FIFO]
 *
 * prints "ready <pid>", waits for a line, touches N bytes (every page
 * written), prints "touched", waits for a line, frees them by WAY, prints
 * "freed", waits for a line and exits 0. WAY "exit" exits right after
 * "touched" + a line (the test waits for the process); "forkexit" forks
 * children that each touch N/8 and exit, all reaped before "freed".
 * With FIFO, the lines are read from it instead of stdin (an agent started by
 * the membrane, whose stdin is not ours).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/io_uring.h>

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#define PAGE 4096UL
#define CHILDREN 8

static void die(const char *what)
{
	printf("error %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void say(const char *line)
{
	char buf[64];

	printf("%s\n", line);
	fflush(stdout);
	if (!fgets(buf, sizeof(buf), stdin))
		exit(0);
}

static void touch(char *p, size_t n)
{
	for (size_t i = 0; i < n; i += PAGE)
		p[i] = 1;
}

static char *anon(size_t n, int flags)
{
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

/* munmap through the 32-bit entry: i386 __NR_munmap is 91; int 0x80 takes ebx, ecx */
static long munmap_int80(void *addr, size_t len)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "0"(91L), "b"((unsigned long)addr), "c"((unsigned long)len)
			 : "memory");
	return ret;
}

/* madvise through io_uring (IORING_OP_MADVISE, run by an io-wq worker): raw syscalls */
static int io_uring_madvise(void *addr, size_t len, int advice)
{
	struct io_uring_params params;

	memset(&params, 0, sizeof(params));
	int fd = syscall(__NR_io_uring_setup, 4, &params);
	if (fd < 0)
		return -errno;
	size_t sq_bytes = params.sq_off.array + params.sq_entries * sizeof(unsigned);
	size_t cq_bytes = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
	if (params.features & IORING_FEAT_SINGLE_MMAP)
		sq_bytes = cq_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;
	char *sq = mmap(NULL, sq_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			IORING_OFF_SQ_RING);
	char *cq = (params.features & IORING_FEAT_SINGLE_MMAP) ? sq :
		mmap(NULL, cq_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		     IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(NULL, params.sq_entries * sizeof(struct io_uring_sqe),
					 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
					 IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return -errno;
	unsigned *tail = (unsigned *)(sq + params.sq_off.tail);
	unsigned mask = *(unsigned *)(sq + params.sq_off.ring_mask);
	unsigned *array = (unsigned *)(sq + params.sq_off.array);
	unsigned idx = *tail & mask;
	struct io_uring_sqe *sqe = &sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_MADVISE;
	sqe->addr = (unsigned long)addr;
	sqe->len = (unsigned)len;
	sqe->fadvise_advice = advice;
	array[idx] = idx;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	unsigned head = __atomic_load_n((unsigned *)(cq + params.cq_off.head), __ATOMIC_ACQUIRE);
	unsigned cmask = *(unsigned *)(cq + params.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + params.cq_off.cqes);
	int res = cqes[head & cmask].res;

	close(fd);
	return res;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: free_ways WAY N [FIFO]\n");
		return 2;
	}
	if (argc == 4 && !freopen(argv[3], "r", stdin))
		die("open FIFO");
	const char *way = argv[1];
	size_t n = strtoul(argv[2], NULL, 10);
	char *p = NULL;
	int fd = -1;

	char line[64];
	printf("ready %d\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;

	/* allocate and write */
	if (!strcmp(way, "brk")) {
		p = sbrk(0);
		if (brk(p + n))
			die("brk grow");
		touch(p, n);
	} else if (!strcmp(way, "madv_remove")) {
		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap shared");
		touch(p, n);
	} else if (!strcmp(way, "int80")) {
		p = anon(n, MAP_32BIT);
		touch(p, n);
	} else if (!strcmp(way, "mremap")) {
		p = anon(n + PAGE, 0);
		touch(p, n + PAGE);
	} else if (!strcmp(way, "memfd")) {
		fd = memfd_create("free_ways", 0);
		if (fd < 0)
			die("memfd_create");
		char *buf = calloc(1, 1 << 20);
		memset(buf, 1, 1 << 20);
		for (size_t done = 0; done < n; done += 1 << 20)
			if (write(fd, buf, 1 << 20) != 1 << 20)
				die("write memfd");
		free(buf);
	} else if (!strcmp(way, "thp")) {
		/* 2 MiB-aligned region asking for huge pages: one folio of 512 pages each */
		char *raw = anon(n + (2UL << 20), 0);
		p = (char *)(((unsigned long)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
		if (madvise(p, n, MADV_HUGEPAGE))
			die("madvise hugepage");
		touch(p, n);
	} else if (!strcmp(way, "forkexit")) {
		/* nothing in the parent: the children allocate */
	} else {
		p = anon(n, 0);
		if (!strcmp(way, "madv_dontneed_locked") && mlock(p, n))
			; /* without CAP_IPC_LOCK the advice still applies to unlocked pages */
		touch(p, n);
	}
	say("touched");

	/* free */
	if (!strcmp(way, "munmap") || !strcmp(way, "thp")) {
		if (munmap(p, n))
			die("munmap");
	} else if (!strcmp(way, "madv_dontneed")) {
		if (madvise(p, n, MADV_DONTNEED))
			die("madvise");
	} else if (!strcmp(way, "madv_dontneed_locked")) {
		if (madvise(p, n, MADV_DONTNEED_LOCKED))
			die("madvise DONTNEED_LOCKED");
	} else if (!strcmp(way, "madv_remove")) {
		if (madvise(p, n, MADV_REMOVE))
			die("madvise REMOVE");
	} else if (!strcmp(way, "madv_free")) {
		/* lazy: counted when reclaim takes the pages; ask for it at once */
		if (madvise(p, n, MADV_FREE))
			die("madvise FREE");
		if (madvise(p, n, MADV_PAGEOUT))
			die("madvise PAGEOUT");
	} else if (!strcmp(way, "madv_free_lazy")) {
		/* lazy, no reclaim asked: the test applies pressure through the cgroup limit */
		if (madvise(p, n, MADV_FREE))
			die("madvise FREE");
	} else if (!strcmp(way, "io_uring")) {
		int r = io_uring_madvise(p, n, MADV_DONTNEED);

		if (r) {
			errno = -r;
			die("io_uring madvise");
		}
	} else if (!strcmp(way, "process_madvise")) {
		int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
		struct iovec iov = { p, n };

		if (pidfd < 0)
			die("pidfd_open");
		if (syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_DONTNEED, 0) != (long)n)
			die("process_madvise");
	} else if (!strcmp(way, "brk")) {
		if (brk(p))
			die("brk shrink");
	} else if (!strcmp(way, "mremap")) {
		if (mremap(p, n + PAGE, PAGE, 0) == MAP_FAILED)
			die("mremap");
	} else if (!strcmp(way, "map_fixed")) {
		if (mmap(p, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			 0) != p)
			die("mmap MAP_FIXED");
	} else if (!strcmp(way, "int80")) {
		long r = munmap_int80(p, n);

		if (r) {
			errno = (int)-r;
			die("int 0x80 munmap");
		}
	} else if (!strcmp(way, "memfd")) {
		if (ftruncate(fd, 0))
			die("ftruncate");
	} else if (!strcmp(way, "exit")) {
		exit(0);
	} else if (!strcmp(way, "forkexit")) {
		for (int i = 0; i < CHILDREN; i++) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork");
			if (pid == 0) {
				char *q = anon(n / CHILDREN, 0);

				touch(q, n / CHILDREN);
				_exit(0);
			}
		}
		for (int i = 0; i < CHILDREN; i++)
			wait(NULL);
	} else {
		errno = EINVAL;
		die("unknown way");
	}
	say("freed");
	return 0;
}
