/*
 * Cross-check and benchmark harness around Intel ISA-L (Debian libisal-dev), built by
 * isal-harness.ts into a temporary directory. Modes:
 *   encode k m shardBytes in out         k data shards (k*shardBytes bytes) -> m parity shards
 *   decode k m shardBytes in out i0,i1,..  k fragments in the listed index order -> k data shards
 *   bench  k m blockBytes millis best|sse  encode/decode MB/s of block bytes per CPU-second
 * Decoding follows ISA-L's own tests: invert the survivors' rows of the gf_gen_cauchy1_matrix
 * generator with gf_invert_matrix, take the rows of the lost data shards, and run ec_encode_data.
 */
#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_MAX 256

typedef void (*encode_fn)(int, int, int, unsigned char *, unsigned char **, unsigned char **);

static void die(const char *why) {
  fprintf(stderr, "isal-harness: %s\n", why);
  exit(2);
}

static unsigned char *read_all(const char *path, size_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open input");
  unsigned char *buf = malloc(bytes ? bytes : 1);
  if (fread(buf, 1, bytes, f) != bytes) die("short input");
  fclose(f);
  return buf;
}

static void write_all(const char *path, const unsigned char *buf, size_t bytes) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, bytes, f) != bytes) die("cannot write output");
  fclose(f);
}

/* Decode rows for the lost data shards, given the k surviving indices; returns the lost count. */
static int decode_rows(int k, int m, const int *survivors, unsigned char *rows_out, int *lost_out) {
  unsigned char gen[N_MAX * N_MAX], sub[N_MAX * N_MAX], inv[N_MAX * N_MAX];
  gf_gen_cauchy1_matrix(gen, k + m, k);
  for (int i = 0; i < k; i++) memcpy(sub + i * k, gen + survivors[i] * k, k);
  if (gf_invert_matrix(sub, inv, k) < 0) die("singular decode matrix");
  int lost = 0;
  for (int j = 0; j < k; j++) {
    int present = 0;
    for (int i = 0; i < k; i++) present |= survivors[i] == j;
    if (!present) {
      memcpy(rows_out + lost * k, inv + j * k, k);
      lost_out[lost++] = j;
    }
  }
  return lost;
}

static void encode_mode(int k, int m, int len, const char *in, const char *out) {
  unsigned char gen[N_MAX * N_MAX], *tables = malloc(32 * k * m + 1);
  unsigned char *data = read_all(in, (size_t)k * len), *parity = malloc((size_t)m * len + 1);
  unsigned char *dp[N_MAX], *pp[N_MAX];
  gf_gen_cauchy1_matrix(gen, k + m, k);
  ec_init_tables(k, m, gen + k * k, tables);
  for (int i = 0; i < k; i++) dp[i] = data + (size_t)i * len;
  for (int i = 0; i < m; i++) pp[i] = parity + (size_t)i * len;
  ec_encode_data(len, k, m, tables, dp, pp);
  write_all(out, parity, (size_t)m * len);
}

static void decode_mode(int k, int m, int len, const char *in, const char *out, char *list) {
  int survivors[N_MAX], lost[N_MAX], count = 0;
  for (char *t = strtok(list, ","); t && count < N_MAX; t = strtok(NULL, ",")) survivors[count++] = atoi(t);
  if (count != k) die("need exactly k indices");
  unsigned char rows[N_MAX * N_MAX], *tables = malloc(32 * k * k + 1);
  unsigned char *frags = read_all(in, (size_t)k * len), *block = malloc((size_t)k * len + 1);
  unsigned char *sp[N_MAX], *lp[N_MAX];
  int lostCount = decode_rows(k, m, survivors, rows, lost);
  for (int i = 0; i < k; i++) {
    sp[i] = frags + (size_t)i * len;
    if (survivors[i] < k) memcpy(block + (size_t)survivors[i] * len, sp[i], len);
  }
  for (int i = 0; i < lostCount; i++) lp[i] = block + (size_t)lost[i] * len;
  ec_init_tables(k, lostCount, rows, tables);
  if (lostCount > 0) ec_encode_data(len, k, lostCount, tables, sp, lp);
  write_all(out, block, (size_t)k * len);
}

/* CPU time of this process, not wall time: on a shared, loaded machine it counts only our work. */
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Best-of-rounds MB/s (block bytes per second / 1e6) of `rows` outputs from k inputs. */
static double time_mbps(encode_fn fn, int len, int k, int rows, unsigned char *tables, unsigned char **in,
                        unsigned char **out, double blockBytes, double millis) {
  double best = 0, start = now_ms();
  while (now_ms() - start < millis) {
    int iterations = 0;
    double t0 = now_ms(), t1;
    do {
      fn(len, k, rows, tables, in, out);
      iterations++;
      t1 = now_ms();
    } while (t1 - t0 < 20);
    double mbps = blockBytes * iterations / ((t1 - t0) / 1e3) / 1e6;
    if (mbps > best) best = mbps;
  }
  return best;
}

static void bench_mode(int k, int m, int blockBytes, double millis, const char *path) {
#if defined(__x86_64__)
  encode_fn fn = strcmp(path, "sse") == 0 ? ec_encode_data_sse : ec_encode_data;
#else
  /* ec_encode_data_sse exists only on x86-64; elsewhere both rows measure the dispatched path. */
  encode_fn fn = ec_encode_data;
  (void)path;
#endif
  int len = (blockBytes + k - 1) / k;
  unsigned char gen[N_MAX * N_MAX], rows[N_MAX * N_MAX];
  unsigned char *tables = malloc(32 * k * (m > k ? m : k) + 1);
  unsigned char *dp[N_MAX], *pp[N_MAX], *sp[N_MAX];
  int survivors[N_MAX], lost[N_MAX];
  for (int i = 0; i < k + m; i++) {
    unsigned char *buf = aligned_alloc(64, ((size_t)len + 63) / 64 * 64);
    for (int j = 0; j < len; j++) buf[j] = (unsigned char)rand();
    if (i < k) dp[i] = buf; else pp[i - k] = buf;
  }
  gf_gen_cauchy1_matrix(gen, k + m, k);
  ec_init_tables(k, m, gen + k * k, tables);
  double enc = time_mbps(fn, len, k, m, tables, dp, pp, blockBytes, millis);
  /* Decode with min(m, k) data shards lost: the survivors are the remaining data and the parity. */
  int lostWanted = m < k ? m : k, at = 0;
  for (int i = lostWanted; i < k + m && at < k; i++) survivors[at++] = i;
  for (int i = 0; i < k; i++) sp[i] = survivors[i] < k ? dp[survivors[i]] : pp[survivors[i] - k];
  int lostCount = decode_rows(k, m, survivors, rows, lost);
  ec_init_tables(k, lostCount, rows, tables);
  unsigned char *lp[N_MAX];
  for (int i = 0; i < lostCount; i++) lp[i] = malloc((size_t)len + 64);
  double dec = time_mbps(fn, len, k, lostCount, tables, sp, lp, blockBytes, millis);
  printf("{\"encodeMBps\":%.1f,\"decodeMBps\":%.1f}\n", enc, dec);
}

int main(int argc, char **argv) {
  if (argc < 6) die("usage: encode|decode|bench k m bytes ...");
  int k = atoi(argv[2]), m = atoi(argv[3]), bytes = atoi(argv[4]);
  if (k < 1 || m < 0 || k + m > N_MAX) die("bad k, m");
  if (strcmp(argv[1], "encode") == 0 && argc == 7) encode_mode(k, m, bytes, argv[5], argv[6]);
  else if (strcmp(argv[1], "decode") == 0 && argc == 8) decode_mode(k, m, bytes, argv[5], argv[6], argv[7]);
  else if (strcmp(argv[1], "bench") == 0 && argc == 7) bench_mode(k, m, bytes, atof(argv[5]), argv[6]);
  else die("unknown mode or wrong argument count");
  return 0;
}
