// The benchmark's Trivy stand-in for scans, in C: on the benchmark machine starting a process costs milliseconds
// of CPU, and bench/fast-trivy.sh needs two (bash, then cat) plus bash's own start-up, which made the stand-in cost
// more CPU per scan than the scanner it measures. This does what fast-trivy.sh does for
// `trivy image … --format json --output FILE REF` (write the report parts around the reference) in one process,
// and ends FAST_TRIVY_LATENCY_MS after its own start, the report's writing included (fast-trivy.sh waits L and then
// writes, which is as close as bash can get); everything else (version, DB downloads, a flag it does not know, a
// malformed call) is handed to fast-trivy.sh ($FAST_TRIVY_SCRIPT) with the same argv, so both behave identically.
// Built by bench/stand-in.ts with `cc -O2`; when no C compiler is installed the benchmark uses fast-trivy.sh alone.
//
// Layers (the incremental scenario, FAST_TRIVY_LAYERS set): a scan then takes FAST_TRIVY_MANIFEST_MS for the
// manifest and config, plus the time its layers take, downloaded and analysed FAST_TRIVY_PARALLEL (Trivy's
// --parallel, 5) at a time, instead of FAST_TRIVY_LATENCY_MS. A local scan has an empty private cache, so it takes
// every layer; a client (`--server URL`) asks the server which layers it misses (Twirp's MissingBlobs, in its JSON
// encoding, to test/support/fake-trivy.mjs's `trivy server`, which fast-trivy.sh starts), takes only those, stores
// each with PutBlob as it is done, PutArtifact for a new image, then Scan, as aquasecurity/trivy v0.69.3's client does
// (pkg/fanal/artifact/image/image.go Inspect). Each layer taken is appended to FAST_TRIVY_LAYER_LOG. The findings are
// the report's either way (the stand-in server does not carry them: a real server would send the same results).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *VALUE_FLAGS[] = {"--format",     "--output",   "--scanners",     "--image-src",
                                    "--cache-dir",  "--timeout",  "--severity",     "--db-repository",
                                    "--java-db-repository", "--server", "--token-header", NULL};
static const char *BOOL_FLAGS[] = {"--list-all-pkgs", "--no-progress", "--skip-db-update", "--skip-java-db-update",
                                   "--skip-version-check", "--disable-telemetry", NULL};

static char **original_argv;
static const char *token_header = "Trivy-Token";
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

/* Sleeps until `ms` after the process started. */
static void wait_until(long ms) {
  if (ms <= 0) return;
  struct timespec until = started_monotonic;
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != 0) {
  }
}

/* The scan ends FAST_TRIVY_LATENCY_MS after the process started (the report, already written, included): the
   ideal schedule counts L per scan, so the time the stand-in takes to write its report is not added to it. */
static void wait_until_latency_passed(void) {
  const char *latency_text = getenv("FAST_TRIVY_LATENCY_MS");
  wait_until(latency_text ? atol(latency_text) : 0);
}

static long env_long(const char *name, long fallback) {
  const char *text = getenv(name);
  return text && *text ? atol(text) : fallback;
}

/* ---------- layers ---------- */

#define MAX_LAYERS 64
struct layer {
  char id[96];
  long ms;
  long done_at; /* ms after the process started */
};

/* The image's line of FAST_TRIVY_LAYERS: "<digest> <diffID>:<ms> <diffID>:<ms> …" (bench/layers.ts writes it). */
static int read_layers(const char *digest, struct layer *layers) {
  const char *file = getenv("FAST_TRIVY_LAYERS");
  FILE *in = fopen(file, "r");
  if (!in) fatal("fast-trivy: cannot read FAST_TRIVY_LAYERS ", file);
  static char line[8192];
  size_t length = strlen(digest);
  int count = -1;
  while (fgets(line, sizeof line, in)) {
    if (strncmp(line, digest, length) != 0 || line[length] != ' ') continue;
    count = 0;
    for (char *token = strtok(line + length + 1, " \n"); token && count < MAX_LAYERS; token = strtok(NULL, " \n")) {
      char *colon = strrchr(token, ':');
      if (!colon) continue;
      *colon = '\0';
      snprintf(layers[count].id, sizeof layers[count].id, "%s", token);
      layers[count].ms = atol(colon + 1);
      count++;
    }
    break;
  }
  fclose(in);
  if (count < 0) fatal("fast-trivy: no layers for ", digest);
  return count;
}

/* --parallel workers take the layers in order, each the next one when it is free: when each one is done. */
static void schedule_layers(struct layer *layers, int count, long from) {
  long workers[16] = {0};
  int parallel = (int)env_long("FAST_TRIVY_PARALLEL", 5);
  if (parallel < 1) parallel = 1;
  if (parallel > 16) parallel = 16;
  for (int w = 0; w < parallel; w++) workers[w] = from;
  for (int i = 0; i < count; i++) {
    int free_worker = 0;
    for (int w = 1; w < parallel; w++)
      if (workers[w] < workers[free_worker]) free_worker = w;
    workers[free_worker] += layers[i].ms;
    layers[i].done_at = workers[free_worker];
  }
}

static void log_layer(const char *id) {
  const char *file = getenv("FAST_TRIVY_LAYER_LOG");
  if (!file) return;
  char line[128];
  int length = snprintf(line, sizeof line, "%s\n", id);
  int fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)length) != length) {
  }
  close(fd);
}

/* ---------- Twirp over HTTP/1.1 (JSON), to the stand-in server ---------- */

static char response[1 << 16];

/* POSTs `body` to <server>/twirp/<service>/<method>; the answer's status, its body in `response`. */
static int twirp(const char *server, const char *service, const char *method, const char *body) {
  char host[256] = "";
  int port = 0;
  if (sscanf(server, "http://%255[^:]:%d", host, &port) != 2) fatal("fast-trivy: --server must be http://HOST:PORT, not ", server);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) fatal("fast-trivy: --server needs an IPv4 address, not ", host);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  char detail[512];
  if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    snprintf(detail, sizeof detail,
             "twirp error internal: failed to do request: Post \"%s/twirp/%s/%s\": dial tcp %s:%d: connect: %s", server,
             service, method, host, port, errno == ECONNREFUSED ? "connection refused" : strerror(errno));
    fatal("run error: image scan error: scan error: scan failed: ", detail);
  }
  const char *token = getenv("TRIVY_TOKEN");
  static char request[1 << 16];
  int length = snprintf(request, sizeof request,
                        "POST /twirp/%s/%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n%s%s%s%s\r\n%s",
                        service, method, host, port, strlen(body), token ? token_header : "", token ? ": " : "",
                        token ? token : "", token ? "\r\n" : "", body);
  if (length >= (int)sizeof request) fatal("fast-trivy: request too large", "");
  for (int sent = 0; sent < length;) {
    ssize_t n = write(fd, request + sent, (size_t)(length - sent));
    if (n <= 0) fatal("fast-trivy: the server closed the connection", "");
    sent += (int)n;
  }
  size_t got = 0;
  for (;;) {
    char sink[8192];
    char *into = got < sizeof response - 1 ? response + got : sink;
    size_t room = got < sizeof response - 1 ? sizeof response - 1 - got : sizeof sink;
    ssize_t n = read(fd, into, room);
    if (n <= 0) break;
    if (into != sink) got += (size_t)n;
  }
  close(fd);
  response[got] = '\0';
  int status = 0;
  if (sscanf(response, "HTTP/1.%*d %d", &status) != 1) {
    snprintf(detail, sizeof detail, "twirp error internal: failed to do request: Post \"%s/twirp/%s/%s\": EOF", server,
             service, method);
    fatal("run error: image scan error: scan error: scan failed: ", detail);
  }
  char *body_start = strstr(response, "\r\n\r\n");
  if (body_start) memmove(response, body_start + 4, strlen(body_start + 4) + 1);
  if (status != 200) {
    snprintf(detail, sizeof detail, "twirp error (HTTP %d): %.300s", status, response);
    fatal("run error: image scan error: scan error: scan failed: ", detail);
  }
  return status;
}

/* Manifest and config, then the layers a local scan needs (all) or the server misses, as Trivy's client does. */
static void take_layers(const char *digest, const char *server) {
  static struct layer layers[MAX_LAYERS];
  int count = read_layers(digest, layers);
  const char *version = getenv("FAST_TRIVY_VERSION") ? getenv("FAST_TRIVY_VERSION") : "0.69.3";
  long manifest = env_long("FAST_TRIVY_MANIFEST_MS", 0);
  wait_until(manifest);
  static struct layer missing[MAX_LAYERS];
  int missing_count = 0, missing_artifact = 1;
  char artifact[256];
  snprintf(artifact, sizeof artifact, "artifact-%s-%s", digest, version);
  static char body[1 << 15];
  if (server) {
    int at = snprintf(body, sizeof body, "{\"artifact_id\":\"%s\",\"blob_ids\":[", artifact);
    for (int i = 0; i < count; i++)
      at += snprintf(body + at, sizeof body - (size_t)at, "%s\"%s-%s\"", i ? "," : "", layers[i].id, version);
    snprintf(body + at, sizeof body - (size_t)at, "]}");
    twirp(server, "trivy.cache.v1.Cache", "MissingBlobs", body);
    missing_artifact = strstr(response, "\"missing_artifact\":true") != NULL;
    const char *ids = strstr(response, "\"missing_blob_ids\"");
    for (int i = 0; i < count; i++) {
      char quoted[160];
      snprintf(quoted, sizeof quoted, "\"%.90s-%.40s\"", layers[i].id, version);
      if (ids && strstr(ids, quoted)) missing[missing_count++] = layers[i];
    }
  } else {
    for (int i = 0; i < count; i++) missing[missing_count++] = layers[i];
  }
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long elapsed = (now.tv_sec - started_monotonic.tv_sec) * 1000 + (now.tv_nsec - started_monotonic.tv_nsec) / 1000000;
  schedule_layers(missing, missing_count, elapsed);
  for (int done = 0; done < missing_count; done++) {
    int next = -1;
    for (int i = 0; i < missing_count; i++)
      if (missing[i].ms >= 0 && (next < 0 || missing[i].done_at < missing[next].done_at)) next = i;
    wait_until(missing[next].done_at);
    log_layer(missing[next].id);
    if (server) {
      snprintf(body, sizeof body,
               "{\"diff_id\":\"%s-%s\",\"blob_info\":{\"SchemaVersion\":2,\"DiffID\":\"%s\"}}", missing[next].id,
               version, missing[next].id);
      twirp(server, "trivy.cache.v1.Cache", "PutBlob", body);
    }
    missing[next].ms = -1;
  }
  if (!server) return;
  if (missing_artifact) {
    snprintf(body, sizeof body, "{\"artifact_id\":\"%s\",\"artifact_info\":{\"SchemaVersion\":1}}", artifact);
    twirp(server, "trivy.cache.v1.Cache", "PutArtifact", body);
  }
  int at = snprintf(body, sizeof body, "{\"target\":\"%s\",\"artifact_id\":\"%s\",\"blob_ids\":[", digest, artifact);
  for (int i = 0; i < count; i++)
    at += snprintf(body + at, sizeof body - (size_t)at, "%s\"%s-%s\"", i ? "," : "", layers[i].id, version);
  snprintf(body + at, sizeof body - (size_t)at, "]}");
  twirp(server, "trivy.scanner.v1.Scanner", "Scan", body);
}

int main(int argc, char **argv) {
  clock_gettime(CLOCK_REALTIME, &started);
  clock_gettime(CLOCK_MONOTONIC, &started_monotonic);
  original_argv = argv;
  if (argc < 2 || strcmp(argv[1], "image") != 0) fall_back();
  const char *format = "table", *output = NULL, *ref = NULL, *server = NULL;
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
      if (strcmp(name, "--server") == 0) server = value;
      if (strcmp(name, "--token-header") == 0) token_header = value;
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
  if (getenv("FAST_TRIVY_LAYERS")) take_layers(digest, server);
  else if (server) fatal("fast-trivy: --server needs FAST_TRIVY_LAYERS (the incremental scenario)", "");

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
  if (!getenv("FAST_TRIVY_LAYERS")) wait_until_latency_passed();
  record_timeline();
  return 0;
}
