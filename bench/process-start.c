// The benchmark machine's floor for starting a process: posix_spawn of /bin/true and waitpid, the median of N, in
// milliseconds. A C program's own memory is tiny, so this is what the kernel and the hypervisor cost; the Node
// figure beside it in docs/performance.md adds what forking a Node process costs (every Trivy start pays that).
// Built by bench/stand-in.ts with `cc -O2` when a C compiler is installed.
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 30;
  if (count < 1 || count > 1000) {
    fprintf(stderr, "process-start: COUNT must be 1 to 1000\n");
    return 2;
  }
  double *times = malloc(sizeof(double) * (size_t)count);
  char *args[] = {"/bin/true", NULL};
  for (int i = 0; i < count; i++) {
    struct timespec started, ended;
    pid_t pid;
    int status;
    clock_gettime(CLOCK_MONOTONIC, &started);
    if (posix_spawn(&pid, args[0], NULL, NULL, args, environ) != 0 || waitpid(pid, &status, 0) != pid) {
      perror("process-start");
      return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &ended);
    times[i] = (double)(ended.tv_sec - started.tv_sec) * 1e3 + (double)(ended.tv_nsec - started.tv_nsec) / 1e6;
  }
  qsort(times, (size_t)count, sizeof(double), by_value);
  printf("%.3f\n", times[count / 2]);
  return 0;
}
