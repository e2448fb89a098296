/*
 * powercut.c — an LD_PRELOAD library for the power-cut test (tests/e2e/powercut.sh).
 *
 * Beside each file of POWERCUT_DIR named in POWERCUT_FILES (default data.mdb)
 * it keeps, in POWERCUT_SHADOW, the copy a disk would hold if the power went
 * at this instant:
 *   - every write that a completed fsync or fdatasync of the file covered;
 *   - every write through a descriptor opened O_SYNC or O_DSYNC, once it returned;
 *   - of the other writes, a random POWERCUT_EARLY percent (default 50), as a
 *     disk may write back any page before it is asked to, in any order.
 * The process runs on the real file as usual. Killing it with SIGKILL and
 * starting the daemon on a copy of the shadow is then a power cut at the
 * moment of the kill. So the cut falls inside a commit, where writes are not
 * yet synced, rather than between two: once the file POWERCUT_ARM exists, the
 * process kills itself right after its POWERCUT_SKIP-th next write or, with
 * POWERCUT_CUT=dsync, inside its next O_DSYNC write (LMDB's meta page), after
 * POWERCUT_WINDOW_MS in which the page is in the page cache, where readers
 * see it, and not on disk.
 * POWERCUT_STATS names a file kept up to date with the syncs seen, on the
 * process's first thread and on others.
 * POWERCUT_IGNORE_SYNC=1 makes syncs keep nothing: a daemon that acknowledges
 * before its data is durable, which the test must catch.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 4096
#define MAX_FILES 16

typedef struct op {
    off_t off;
    size_t len;     /* bytes at data; a truncation has none */
    bool truncate;  /* set the size to off */
    uint8_t *data;
} op_t;

typedef struct file {
    char path[PATH_MAX];
    int shadow;
    op_t *ops;      /* written, not yet covered by a sync, in order */
    size_t nops, cap;
} file_t;

static struct {
    bool on, ignore_sync, armed, cut_in_dsync;
    unsigned window_us;
    unsigned early, seed;
    long skip;
    char dir[PATH_MAX], shadow[PATH_MAX], names[512], arm[PATH_MAX];
    char stats[PATH_MAX];
    unsigned long syncs_main, syncs_other;
    file_t files[MAX_FILES];
    size_t nfiles;
    signed char fd_file[MAX_FDS]; /* index into files, or -1 */
    bool fd_dsync[MAX_FDS];
} pc;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int (*real_open)(const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static off_t (*real_lseek)(int, off_t, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);

static void die(const char *what)
{
    fprintf(stderr, "powercut: %s: %s\n", what, strerror(errno));
    abort();
}

static void init(void)
{
    real_open = dlsym(RTLD_NEXT, "open");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pread = dlsym(RTLD_NEXT, "pread");
    real_lseek = dlsym(RTLD_NEXT, "lseek");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    memset(pc.fd_file, -1, sizeof(pc.fd_file));
    const char *dir = getenv("POWERCUT_DIR"), *shadow = getenv("POWERCUT_SHADOW");
    if (dir == NULL || shadow == NULL)
        return;
    snprintf(pc.dir, sizeof(pc.dir), "%s", dir);
    snprintf(pc.shadow, sizeof(pc.shadow), "%s", shadow);
    const char *names = getenv("POWERCUT_FILES");
    snprintf(pc.names, sizeof(pc.names), ":%s:", names ? names : "data.mdb");
    const char *early = getenv("POWERCUT_EARLY"), *seed = getenv("POWERCUT_SEED");
    pc.early = early ? (unsigned)atoi(early) : 50;
    pc.seed = seed ? (unsigned)atoi(seed) : (unsigned)getpid();
    const char *ignore = getenv("POWERCUT_IGNORE_SYNC");
    pc.ignore_sync = ignore && strcmp(ignore, "1") == 0;
    const char *arm = getenv("POWERCUT_ARM"), *skip = getenv("POWERCUT_SKIP");
    snprintf(pc.arm, sizeof(pc.arm), "%s", arm ? arm : "");
    pc.skip = skip ? atol(skip) : 0;
    const char *cut = getenv("POWERCUT_CUT"), *window = getenv("POWERCUT_WINDOW_MS");
    pc.cut_in_dsync = cut && strcmp(cut, "dsync") == 0;
    pc.window_us = window ? (unsigned)atoi(window) * 1000 : 0;
    const char *stats = getenv("POWERCUT_STATS");
    snprintf(pc.stats, sizeof(pc.stats), "%s", stats ? stats : "");
    pc.on = true;
}

/* The file of POWERCUT_DIR at path that is shadowed, or -1. */
static int file_for(const char *path)
{
    char abs[PATH_MAX];
    if (path[0] == '/') {
        snprintf(abs, sizeof(abs), "%s", path);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return -1;
        snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
    }
    size_t n = strlen(pc.dir);
    const char *base = abs + n + 1;
    if (strncmp(abs, pc.dir, n) != 0 || abs[n] != '/' || strchr(base, '/'))
        return -1;
    char key[PATH_MAX + 2];
    snprintf(key, sizeof(key), ":%s:", base);
    if (strstr(pc.names, key) == NULL)
        return -1;
    for (size_t i = 0; i < pc.nfiles; i++)
        if (strcmp(pc.files[i].path, abs) == 0)
            return (int)i;
    if (pc.nfiles == MAX_FILES)
        return -1;
    /* First sight: the file as it is now was made durable before the daemon
     * started (the test syncs first), so that is where the shadow begins. */
    file_t *f = &pc.files[pc.nfiles];
    snprintf(f->path, sizeof(f->path), "%s", abs);
    char spath[PATH_MAX + 256];
    snprintf(spath, sizeof(spath), "%s/%s", pc.shadow, base);
    f->shadow = real_open(spath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->shadow < 0)
        die(spath);
    int src = real_open(abs, O_RDONLY | O_CLOEXEC);
    if (src >= 0) {
        static uint8_t buf[1 << 16];
        ssize_t r;
        off_t at = 0;
        while ((r = real_pread(src, buf, sizeof(buf), at)) > 0) {
            if (real_pwrite(f->shadow, buf, (size_t)r, at) != r)
                die(spath);
            at += r;
        }
        real_close(src);
    }
    return (int)pc.nfiles++;
}

static void shadow_apply(file_t *f, const op_t *o)
{
    if (o->truncate ? real_ftruncate(f->shadow, o->off) != 0
                    : real_pwrite(f->shadow, o->data, o->len, o->off) != (ssize_t)o->len)
        die("writing the shadow");
}

static uint8_t *copy_of(const void *data, size_t len)
{
    uint8_t *c = malloc(len);
    if (c == NULL)
        die("malloc");
    return memcpy(c, data, len);
}

/* A write (data, len bytes, which this takes) or a truncation the daemon made:
 * kept in order until a sync covers it; applied to the shadow at once when it
 * is already durable or, by chance, written back early. */
static void record(int fd, off_t off, uint8_t *data, size_t len, bool truncate)
{
    pthread_mutex_lock(&mu);
    file_t *f = &pc.files[pc.fd_file[fd]];
    op_t o = {off, len, truncate, data};
    if (f->nops == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        if ((f->ops = realloc(f->ops, f->cap * sizeof(*f->ops))) == NULL)
            die("realloc");
    }
    f->ops[f->nops++] = o;
    if ((unsigned)(rand_r(&pc.seed) % 100) < pc.early)
        shadow_apply(f, &o);
    struct stat st;
    bool dsync = pc.fd_dsync[fd];
    if (!pc.armed && pc.arm[0] && stat(pc.arm, &st) == 0) {
        pc.armed = true;
    } else if (pc.armed && (pc.cut_in_dsync ? dsync : pc.skip-- <= 0)) {
        /* The power goes. Inside an O_DSYNC write it goes while the write is
         * in the page cache, where other threads read it, and not yet on disk. */
        pthread_mutex_unlock(&mu);
        if (dsync)
            usleep(pc.window_us);
        kill(getpid(), SIGKILL);
        for (;;)
            pause();
    }
    if (dsync) { /* the O_DSYNC the descriptor was opened with (see shadow_open) */
        if (real_fdatasync(fd) != 0)
            die("fdatasync for O_DSYNC");
        if (!pc.ignore_sync)
            shadow_apply(f, &o);
    }
    pthread_mutex_unlock(&mu);
}

static bool tracked(int fd)
{
    return pc.on && fd >= 0 && fd < MAX_FDS && pc.fd_file[fd] >= 0;
}

/* A shadowed file opened O_DSYNC (LMDB's meta pages) is opened without it, and
 * each write is followed by an fdatasync here, so that a cut can fall between
 * the two. */
static int shadow_open(const char *path, int flags, mode_t mode)
{
    if (!pc.on || (flags & O_ACCMODE) == O_RDONLY)
        return real_open(path, flags, mode);
    pthread_mutex_lock(&mu);
    int i = file_for(path);
    bool dsync = i >= 0 && (flags & (O_DSYNC | O_SYNC));
    int fd = real_open(path, dsync ? flags & ~(O_DSYNC | O_SYNC) : flags, mode);
    if (fd >= 0 && fd < MAX_FDS) {
        pc.fd_file[fd] = (signed char)i;
        pc.fd_dsync[fd] = dsync;
    }
    pthread_mutex_unlock(&mu);
    return fd;
}

int open(const char *path, int flags, ...)
{
    pthread_once(&once, init);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return shadow_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int close(int fd)
{
    pthread_once(&once, init);
    if (tracked(fd)) {
        pthread_mutex_lock(&mu);
        pc.fd_file[fd] = -1;
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    pthread_once(&once, init);
    ssize_t r = real_pwrite(fd, buf, n, off);
    if (r > 0 && tracked(fd))
        record(fd, off, copy_of(buf, (size_t)r), (size_t)r, false);
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

ssize_t write(int fd, const void *buf, size_t n)
{
    pthread_once(&once, init);
    if (!tracked(fd))
        return real_write(fd, buf, n);
    off_t off = real_lseek(fd, 0, SEEK_CUR);
    ssize_t r = real_write(fd, buf, n);
    if (r > 0)
        record(fd, off, copy_of(buf, (size_t)r), (size_t)r, false);
    return r;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    pthread_once(&once, init);
    if (!tracked(fd))
        return real_writev(fd, iov, iovcnt);
    off_t off = real_lseek(fd, 0, SEEK_CUR);
    ssize_t r = real_writev(fd, iov, iovcnt);
    if (r <= 0)
        return r;
    uint8_t *all = malloc((size_t)r);
    if (all == NULL)
        die("malloc");
    size_t at = 0;
    for (int i = 0; i < iovcnt && at < (size_t)r; i++) {
        size_t k = iov[i].iov_len < (size_t)r - at ? iov[i].iov_len : (size_t)r - at;
        memcpy(all + at, iov[i].iov_base, k);
        at += k;
    }
    record(fd, off, all, (size_t)r, false);
    return r;
}

int ftruncate(int fd, off_t len)
{
    pthread_once(&once, init);
    int r = real_ftruncate(fd, len);
    if (r == 0 && tracked(fd))
        record(fd, len, NULL, 0, true);
    return r;
}

int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

/* Everything written to the file before the sync began is durable once it
 * returns; what other threads write meanwhile is not. */
static int synced(int fd, int (*sync_fn)(int))
{
    if (!tracked(fd))
        return sync_fn(fd);
    pthread_mutex_lock(&mu);
    file_t *f = &pc.files[pc.fd_file[fd]];
    size_t covered = f->nops;
    pthread_mutex_unlock(&mu);
    int r = sync_fn(fd);
    if (r != 0)
        return r;
    pthread_mutex_lock(&mu);
    if (pc.ignore_sync)
        covered = 0;
    for (size_t i = 0; i < covered; i++) {
        shadow_apply(f, &f->ops[i]);
        free(f->ops[i].data);
    }
    memmove(f->ops, f->ops + covered, (f->nops - covered) * sizeof(*f->ops));
    f->nops -= covered;
    if (pc.stats[0]) {
        char line[64];
        *(gettid() == getpid() ? &pc.syncs_main : &pc.syncs_other) += 1;
        int n = snprintf(line, sizeof(line), "%lu %lu\n", pc.syncs_main, pc.syncs_other);
        int sfd = real_open(pc.stats, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (sfd < 0 || real_write(sfd, line, (size_t)n) != n)
            die(pc.stats);
        real_close(sfd);
    }
    pthread_mutex_unlock(&mu);
    return r;
}

int fsync(int fd)
{
    pthread_once(&once, init);
    return synced(fd, real_fsync);
}

int fdatasync(int fd)
{
    pthread_once(&once, init);
    return synced(fd, real_fdatasync);
}
