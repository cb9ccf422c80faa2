/*
 * The `maxwell bench memtrace` workload in C, so the timing measures the
 * syscalls and the tracer rather than an interpreter loop. Speaks the same
 * line protocol as _workload.py (subset): prints "ready <pid>", then
 *   bench N SIZE...   N x (mmap SIZE, write every page, munmap; write SIZE of a fixed
 *                     region, madvise(MADV_DONTNEED) it)                 -> done <cpu_ns>
 *   fault N SIZE...   N x (mmap SIZE, write every page), all kept        -> done <cpu_ns>
 *   free              munmap what `fault` mapped                         -> done <cpu_ns>
 *   syscalls N        N getppid() calls, nothing freed                   -> done <cpu_ns>
 *   quit
 * Every page is written before it is freed: untouched pages are never
 * resident, so giving them back frees nothing (and is not counted).
 * Times are this thread's CPU time (the tracer runs in the caller's context).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define REGION_BYTES (64L << 20)
#define MAX_SIZES 64

static void touch(char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
}

static long long cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void)
{
	char line[4096];
	void **held = NULL;
	size_t *held_size = NULL;
	long nheld = 0;
	char *region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (region == MAP_FAILED)
		return 1;
	printf("ready %d\n", getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		char *save = NULL;
		char *cmd = strtok_r(line, " \n", &save);
		char *arg = strtok_r(NULL, " \n", &save);
		long n = arg ? strtol(arg, NULL, 10) : 0;
		long long t0;

		if (!cmd || !strcmp(cmd, "quit"))
			break;
		if (!strcmp(cmd, "bench")) {
			size_t sizes[MAX_SIZES];
			int m = 0;
			char *s;

			while (m < MAX_SIZES && (s = strtok_r(NULL, " \n", &save)))
				sizes[m++] = strtoul(s, NULL, 10);
			if (m == 0 || n <= 0) {
				printf("error bench needs N and sizes\n");
				fflush(stdout);
				continue;
			}
			t0 = cpu_ns();
			for (long i = 0; i < n; i++) {
				size_t size = sizes[i % m];
				void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

				touch(p, size);
				munmap(p, size);
				touch(region, size);
				madvise(region, size, MADV_DONTNEED);
			}
		} else if (!strcmp(cmd, "fault")) {
			size_t sizes[MAX_SIZES];
			int m = 0;
			char *s;

			while (m < MAX_SIZES && (s = strtok_r(NULL, " \n", &save)))
				sizes[m++] = strtoul(s, NULL, 10);
			held = realloc(held, (nheld + n) * sizeof(*held));
			held_size = realloc(held_size, (nheld + n) * sizeof(*held_size));
			if (m == 0 || n <= 0 || !held || !held_size) {
				printf("error fault needs N and sizes\n");
				fflush(stdout);
				continue;
			}
			t0 = cpu_ns();
			for (long i = 0; i < n; i++) {
				size_t size = sizes[i % m];
				char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

				touch(p, size);
				held[nheld] = p;
				held_size[nheld++] = size;
			}
		} else if (!strcmp(cmd, "free")) {
			t0 = cpu_ns();
			for (long i = 0; i < nheld; i++)
				munmap(held[i], held_size[i]);
			nheld = 0;
		} else if (!strcmp(cmd, "syscalls")) {
			t0 = cpu_ns();
			for (long i = 0; i < n; i++)
				getppid();
		} else {
			printf("error unknown command %s\n", cmd);
			fflush(stdout);
			continue;
		}
		printf("done %lld\n", cpu_ns() - t0);
		fflush(stdout);
	}
	return 0;
}
