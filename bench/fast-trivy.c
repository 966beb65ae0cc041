// The benchmark's Trivy stand-in for scans, in C: on the benchmark machine starting a process costs milliseconds
// of CPU, and bench/fast-trivy.sh needs two (bash, then cat) plus bash's own start-up, which made the stand-in cost
// more CPU per scan than the scanner it measures. This does what fast-trivy.sh does for
// `trivy image … --format json --output FILE REF` (write the report parts around the reference) in one process,
// and ends FAST_TRIVY_LATENCY_MS after its own start, the report's writing included (fast-trivy.sh waits L and then
// writes, which is as close as bash can get); everything else (version, DB downloads, a flag it does not know, a
// malformed call) is handed to fast-trivy.sh ($FAST_TRIVY_SCRIPT) with the same argv, so both behave identically.
// Built by bench/stand-in.ts with `cc -O2`; when no C compiler is installed the benchmark uses fast-trivy.sh alone.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *VALUE_FLAGS[] = {"--format", "--output", "--scanners", "--image-src", "--cache-dir",
                                    "--timeout", "--severity", "--db-repository", "--java-db-repository", NULL};
static const char *BOOL_FLAGS[] = {"--list-all-pkgs", "--no-progress", "--skip-db-update", "--skip-java-db-update",
                                   "--skip-version-check", "--disable-telemetry", NULL};

static char **original_argv;
static struct timespec started, started_monotonic;

/* FAST_TRIVY_TIMELINE: one line "START_NS END_NS" (CLOCK_REALTIME) per scan, appended with one write, so the
   benchmark can see how long the Trivy slots stood empty between one scan and the next. */
static void record_timeline(void) {
  const char *file = getenv("FAST_TRIVY_TIMELINE");
  if (!file) return;
  struct timespec ended;
  clock_gettime(CLOCK_REALTIME, &ended);
  char line[64];
  int length = snprintf(line, sizeof line, "%lld %lld\n", (long long)started.tv_sec * 1000000000LL + started.tv_nsec,
                        (long long)ended.tv_sec * 1000000000LL + ended.tv_nsec);
  int fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)length) != length) {
  }
  close(fd);
}

static void fall_back(void) {
  const char *script = getenv("FAST_TRIVY_SCRIPT");
  if (!script) {
    fprintf(stderr, "fast-trivy: FAST_TRIVY_SCRIPT is not set\n");
    exit(1);
  }
  original_argv[0] = (char *)script;
  execv(script, original_argv);
  perror("fast-trivy: exec FAST_TRIVY_SCRIPT");
  exit(1);
}

static void fatal(const char *message, const char *detail) {
  time_t now = time(NULL);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  fprintf(stderr, "%s\tFATAL\tFatal error\t%s%s\n", stamp, message, detail);
  exit(1);
}

static int listed(const char *name, const char **list) {
  for (; *list; list++)
    if (strcmp(name, *list) == 0) return 1;
  return 0;
}

static void write_all(int fd, const char *data, size_t length, const char *output) {
  while (length > 0) {
    ssize_t written = write(fd, data, length);
    if (written <= 0) fatal("run error: unable to write results: failed to create an output file: open ", output);
    data += written;
    length -= (size_t)written;
  }
}

static void copy_file(int out, const char *file, const char *output) {
  int in = open(file, O_RDONLY);
  struct stat st;
  if (in < 0 || fstat(in, &st) != 0) fatal("fast-trivy: cannot read report part ", file);
  off_t offset = 0;
  while (offset < st.st_size) {
    ssize_t sent = sendfile(out, in, &offset, (size_t)(st.st_size - offset));
    if (sent <= 0) fatal("run error: unable to write results: failed to create an output file: open ", output);
  }
  close(in);
}

/* The scan ends FAST_TRIVY_LATENCY_MS after the process started (the report, already written, included): the
   ideal schedule counts L per scan, so the time the stand-in takes to write its report is not added to it. */
static void wait_until_latency_passed(void) {
  const char *latency_text = getenv("FAST_TRIVY_LATENCY_MS");
  long latency = latency_text ? atol(latency_text) : 0;
  if (latency <= 0) return;
  struct timespec until = started_monotonic;
  until.tv_sec += latency / 1000;
  until.tv_nsec += (latency % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != 0) {
  }
}

int main(int argc, char **argv) {
  clock_gettime(CLOCK_REALTIME, &started);
  clock_gettime(CLOCK_MONOTONIC, &started_monotonic);
  original_argv = argv;
  if (argc < 2 || strcmp(argv[1], "image") != 0) fall_back();
  const char *format = "table", *output = NULL, *ref = NULL;
  int positionals = 0;
  for (int i = 2; i < argc; i++) {
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0) {
      if (arg[0] == '-') fall_back();
      ref = arg;
      positionals++;
      continue;
    }
    char name[64];
    const char *value = NULL;
    const char *equals = strchr(arg, '=');
    size_t name_length = equals ? (size_t)(equals - arg) : strlen(arg);
    if (name_length >= sizeof name) fall_back();
    memcpy(name, arg, name_length);
    name[name_length] = '\0';
    if (listed(name, VALUE_FLAGS)) {
      if (equals) value = equals + 1;
      else if (i + 1 < argc) value = argv[++i];
      else fall_back();
      if (strcmp(name, "--format") == 0) format = value;
      if (strcmp(name, "--output") == 0) output = value;
    } else if (listed(name, BOOL_FLAGS)) {
      if (equals && strcmp(equals + 1, "true") != 0 && strcmp(equals + 1, "false") != 0) fall_back();
    } else {
      fall_back(); // unknown flags and the DB downloads: fast-trivy.sh answers them
    }
  }
  if (positionals != 1 || strcmp(format, "json") != 0 || !output) fall_back();
  const char *report = getenv("FAST_TRIVY_REPORT");
  if (!report) fatal("FAST_TRIVY_REPORT is not set", "");

  // Metadata.RepoDigests names the repository with the digest scanned; a tag reference gets the report's own digest.
  char repository[1024], digest_ref[1200], path[4096];
  const char *at = strchr(ref, '@');
  size_t repo_length = at ? (size_t)(at - ref) : strlen(ref);
  if (repo_length >= sizeof repository) fatal("fast-trivy: reference too long", "");
  memcpy(repository, ref, repo_length);
  repository[repo_length] = '\0';
  char *last_segment = strrchr(repository, '/');
  char *colon = strchr(last_segment ? last_segment : repository, ':');
  if (colon) *colon = '\0';
  char digest[128] = "";
  if (at) {
    snprintf(digest, sizeof digest, "%s", at + 1);
  } else {
    snprintf(path, sizeof path, "%s/digest", report);
    FILE *file = fopen(path, "r");
    if (!file || !fgets(digest, sizeof digest, file)) fatal("fast-trivy: cannot read ", path);
    fclose(file);
    digest[strcspn(digest, "\n")] = '\0';
  }
  snprintf(digest_ref, sizeof digest_ref, "%s@%s", repository, digest);

  int out = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0) fatal("run error: unable to write results: failed to create an output file: open ", output);
  snprintf(path, sizeof path, "%s/slots", report);
  FILE *slots = fopen(path, "r");
  if (!slots) fatal("fast-trivy: cannot read ", path);
  char slot[32];
  int part = 0;
  while (fgets(slot, sizeof slot, slots)) {
    snprintf(path, sizeof path, "%s/part-%d", report, part++);
    copy_file(out, path, output);
    if (strcmp(slot, "ref\n") == 0) write_all(out, ref, strlen(ref), output);
    else if (strcmp(slot, "digest\n") == 0) write_all(out, digest_ref, strlen(digest_ref), output);
  }
  fclose(slots);
  snprintf(path, sizeof path, "%s/part-%d", report, part);
  copy_file(out, path, output);
  if (close(out) != 0) fatal("run error: unable to write results: failed to create an output file: open ", output);
  wait_until_latency_passed();
  record_timeline();
  return 0;
}
