/* powerloss.c: an LD_PRELOAD shim that keeps, next to each store file, what a power
 * loss would leave of it.
 *
 * A SIGKILL does not lose what the process wrote: the page cache survives it, so a
 * kill test passes even when nothing is ever fsynced.  A power loss keeps only what
 * was synced.  This shim records every write and truncate the process makes to the
 * files named POWERLOSS_PREFIX* in the directory POWERLOSS_DIR (except SQLite's
 * memory-mapped -shm index, which is never synced and rebuilt on open), and applies
 * them to FILE.synced only when fsync/fdatasync on that file returns.  FILE.synced is
 * then the file as the disk holds it.  The test kills the process and replaces each
 * file by its .synced copy (or deletes it: never synced) - a simulated power loss in
 * which every unsynced write is lost, the strictest a disk may be.
 *
 * Files are recognised by (device, inode) through fstat; unlink forgets them (and their
 * .synced copy: an unlink is treated as durable).  The shim is test tooling: simple,
 * one lock for everything.  Built by tests/conformance/test_durability.py with cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FILES 64

struct op {
    struct op *next;
    off_t offset; /* for a truncate: the new size */
    size_t len;   /* 0 and data NULL: a truncate */
    char *data;
};

struct file {
    int used;
    dev_t dev;
    ino_t ino;
    char path[PATH_MAX];
    struct op *head, *tail; /* unsynced, in order */
};

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP; /* perror writes */
static struct file files[MAX_FILES];
static char dir[PATH_MAX];
static char prefix[256];
static int configured = -1;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);

static void setup(void) {
    if (configured >= 0)
        return;
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    const char *d = getenv("POWERLOSS_DIR"), *p = getenv("POWERLOSS_PREFIX");
    configured = 0;
    if (d && p && strlen(d) < sizeof dir && strlen(p) < sizeof prefix) {
        strcpy(dir, d);
        strcpy(prefix, p);
        configured = 1;
    }
}

static int tracked_name(const char *path) {
    size_t n = strlen(dir), len = strlen(path);
    if (strncmp(path, dir, n) != 0 || path[n] != '/')
        return 0;
    const char *base = path + n + 1;
    if (strchr(base, '/') || strncmp(base, prefix, strlen(prefix)) != 0)
        return 0;
    if (len >= 4 && strcmp(path + len - 4, "-shm") == 0)
        return 0;
    if (len >= 7 && strcmp(path + len - 7, ".synced") == 0)
        return 0;
    return 1;
}

/* The tracked file behind fd, or NULL.  Called with the lock held. */
static struct file *file_of(int fd) {
    struct stat st;
    if (configured != 1 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    for (int i = 0; i < MAX_FILES; i++)
        if (files[i].used && files[i].dev == st.st_dev && files[i].ino == st.st_ino)
            return &files[i];
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return NULL;
    path[n] = 0;
    if (!tracked_name(path))
        return NULL;
    for (int i = 0; i < MAX_FILES; i++)
        if (!files[i].used) {
            files[i].used = 1;
            files[i].dev = st.st_dev;
            files[i].ino = st.st_ino;
            strcpy(files[i].path, path);
            files[i].head = files[i].tail = NULL;
            return &files[i];
        }
    fprintf(stderr, "powerloss: too many files\n");
    abort();
}

static void record(struct file *f, off_t offset, const void *data, size_t len, int truncate) {
    struct op *op = calloc(1, sizeof *op);
    if (!op)
        abort();
    op->offset = offset;
    op->len = len;
    if (!truncate) {
        op->data = malloc(len ? len : 1);
        if (!op->data)
            abort();
        memcpy(op->data, data, len);
    }
    if (f->tail)
        f->tail->next = op;
    else
        f->head = op;
    f->tail = op;
}

static void drop_ops(struct file *f) {
    struct op *op = f->head;
    while (op) {
        struct op *next = op->next;
        free(op->data);
        free(op);
        op = next;
    }
    f->head = f->tail = NULL;
}

/* fsync returned: what was written so far is on the disk. */
static void synced(struct file *f) {
    char shadow[PATH_MAX + 8];
    snprintf(shadow, sizeof shadow, "%s.synced", f->path);
    int fd = open(shadow, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("powerloss: open shadow");
        abort();
    }
    for (struct op *op = f->head; op; op = op->next) {
        if (op->data) {
            size_t done = 0;
            while (done < op->len) {
                ssize_t n = real_pwrite(fd, op->data + done, op->len - done,
                                        op->offset + (off_t)done);
                if (n <= 0) {
                    perror("powerloss: write shadow");
                    abort();
                }
                done += (size_t)n;
            }
        } else if (real_ftruncate(fd, op->offset) != 0) {
            perror("powerloss: truncate shadow");
            abort();
        }
    }
    close(fd);
    drop_ops(f);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    setup();
    pthread_mutex_lock(&lock);
    ssize_t n = real_pwrite64(fd, buf, count, offset);
    int saved = errno;
    if (n > 0) {
        struct file *f = file_of(fd);
        if (f)
            record(f, offset, buf, (size_t)n, 0);
    }
    pthread_mutex_unlock(&lock);
    errno = saved;
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    return pwrite64(fd, buf, count, offset);
}

ssize_t write(int fd, const void *buf, size_t count) {
    setup();
    if (configured != 1)
        return real_write(fd, buf, count);
    pthread_mutex_lock(&lock);
    struct file *f = file_of(fd);
    off_t offset = f ? lseek(fd, 0, SEEK_CUR) : 0;
    ssize_t n = real_write(fd, buf, count);
    int saved = errno;
    if (f && n > 0)
        record(f, offset, buf, (size_t)n, 0);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return n;
}

int ftruncate64(int fd, off_t length) {
    setup();
    pthread_mutex_lock(&lock);
    int r = real_ftruncate64(fd, length);
    int saved = errno;
    if (r == 0) {
        struct file *f = file_of(fd);
        if (f)
            record(f, length, NULL, 0, 1);
    }
    pthread_mutex_unlock(&lock);
    errno = saved;
    return r;
}

int ftruncate(int fd, off_t length) { return ftruncate64(fd, length); }

static int sync_common(int fd, int (*real)(int)) {
    setup();
    int r = real(fd);
    int saved = errno;
    if (r == 0) {
        pthread_mutex_lock(&lock);
        struct file *f = file_of(fd);
        if (f)
            synced(f);
        pthread_mutex_unlock(&lock);
    }
    errno = saved;
    return r;
}

int fsync(int fd) { return sync_common(fd, real_fsync); }

int fdatasync(int fd) { return sync_common(fd, real_fdatasync); }

int unlink(const char *path) {
    setup();
    pthread_mutex_lock(&lock);
    struct stat st;
    int known = configured == 1 && stat(path, &st) == 0;
    int r = real_unlink(path);
    int saved = errno;
    if (r == 0 && known) {
        for (int i = 0; i < MAX_FILES; i++)
            if (files[i].used && files[i].dev == st.st_dev && files[i].ino == st.st_ino) {
                drop_ops(&files[i]);
                files[i].used = 0;
            }
        if (tracked_name(path)) {
            char shadow[PATH_MAX + 8];
            snprintf(shadow, sizeof shadow, "%s.synced", path);
            real_unlink(shadow);
        }
    }
    pthread_mutex_unlock(&lock);
    errno = saved;
    return r;
}
