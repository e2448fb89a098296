/*
 * curve.c — CURVE options, key files, and the ZAP handler (RFC 27) on the loop.
 */
#include "curve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include "log.h"
#include "zloop.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES 7 /* version, request id, domain, address, identity, mechanism, key */

static struct {
    bool on, insecure;
    char dir[1024];
    char pub[CB_Z85_KEY_LEN + 1], sec[CB_Z85_KEY_LEN + 1];
    void *zap;
    cb_zwatch_t watch;
    bool watching;
    /* The last refusal logged, so a stranger retrying every 100 ms is one line
     * per 10 s, not ten a second. */
    char last_refused[CB_Z85_KEY_LEN + 16];
    uint64_t last_refused_ms;
    unsigned long refused_quiet;
} g;

static const struct domain {
    const char *name;
    const char *groups[3];
} domains[] = {
    {"bus", {"daemons", "operators", "observers"}},
    {"control", {"operators"}},
    {"cmd", {"platforms"}},
    {"stream", {"platforms"}},
};

int cb_curve_read(const char *path, char public_[CB_Z85_KEY_LEN + 1],
                  char secret[CB_Z85_KEY_LEN + 1], cb_error_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return cb_error_set(err, CB_ERR_CONFIG, "keys_dir", "cannot read key file %s: %s", path,
                            strerror(errno));
    char line[256];
    bool got_pub = false, got_sec = false;
    while (fgets(line, sizeof(line), f)) {
        char *key = NULL;
        if (strncmp(line, "public = ", 9) == 0)
            key = public_, got_pub = true;
        else if (secret && strncmp(line, "secret = ", 9) == 0)
            key = secret, got_sec = true;
        if (key == NULL)
            continue;
        size_t n = strcspn(line + 9, "\r\n");
        uint8_t bin[32];
        if (n != CB_Z85_KEY_LEN) {
            fclose(f);
            return cb_error_set(err, CB_ERR_CONFIG, "keys_dir", "%s: a key is 40 Z85 characters",
                                path);
        }
        memcpy(key, line + 9, n);
        key[n] = '\0';
        if (zmq_z85_decode(bin, key) == NULL) {
            fclose(f);
            return cb_error_set(err, CB_ERR_CONFIG, "keys_dir", "%s: not a Z85 key", path);
        }
    }
    fclose(f);
    if (!got_pub || (secret && !got_sec))
        return cb_error_set(err, CB_ERR_CONFIG, "keys_dir", "%s has no '%s = ' line", path,
                            got_pub ? "secret" : "public");
    return 0;
}

int cb_curve_setup(const cb_config_t *cfg, const char *self, const char *key_file,
                   cb_error_t *err)
{
    memset(&g, 0, sizeof(g));
    int rc = cb_config_get_bool(cfg, "curve", "insecure", false, &g.insecure, err);
    if (rc != 0)
        return rc;
    const char *dir = cb_config_get(cfg, "curve", "keys_dir", "");
    if (*dir == '\0')
        return 0;
    if (!zmq_has("curve"))
        return cb_error_set(err, CB_ERR_CONFIG, "keys_dir", "this libzmq has no CURVE");
    snprintf(g.dir, sizeof(g.dir), "%s", dir);
    char path[1200];
    if (key_file == NULL || *key_file == '\0')
        snprintf(path, sizeof(path), "%s/%s.key", g.dir, self);
    else
        snprintf(path, sizeof(path), "%s", key_file);
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        return cb_error_set(err, CB_ERR_CONFIG, "keys_dir",
                            "%s holds a secret key and is readable by others (mode %03o): "
                            "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
    if ((rc = cb_curve_read(path, g.pub, g.sec, err)) != 0)
        return rc;
    g.on = true;
    return 0;
}

bool cb_curve_on(void)
{
    return g.on;
}

const char *cb_curve_dir(void)
{
    return g.on ? g.dir : "";
}

static const struct domain *domain_of(const char *name)
{
    for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
        if (strcmp(domains[i].name, name) == 0)
            return &domains[i];
    return NULL;
}

static bool local_endpoint(const char *endpoint)
{
    return strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0;
}

int cb_curve_server(void *sock, const char *domain, const char *endpoint, cb_error_t *err)
{
    if (!g.on) {
        if (local_endpoint(endpoint))
            return 0;
        if (!g.insecure)
            return cb_error_set(err, CB_ERR_CONFIG, "keys_dir",
                                "%s is a network endpoint and CURVE is off: set [curve] keys_dir "
                                "(casebus keys init), or [curve] insecure = yes to run it open",
                                endpoint);
        log_warn("INSECURE endpoint=%s domain=%s error=\"no CURVE: anyone who reaches this "
                 "address is trusted ([curve] insecure = yes)\"", endpoint, domain);
        return 0;
    }
    if (!g.watching || domain_of(domain) == NULL)
        return cb_error_set(err, CB_ERR_CONFIG, "", "CURVE domain '%s' without its ZAP handler",
                            domain);
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, g.sec, CB_Z85_KEY_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0)
        return cb_error_set(err, CB_ERR_ZMQ, "", "CURVE server options: %s", zmq_strerror(errno));
    return 0;
}

int cb_curve_client(void *sock, const char *server, cb_error_t *err)
{
    if (!g.on)
        return 0;
    char path[1200], server_pub[CB_Z85_KEY_LEN + 1];
    snprintf(path, sizeof(path), "%s/daemons/%s.pub", g.dir, server);
    int rc = cb_curve_read(path, server_pub, NULL, err);
    if (rc != 0)
        return rc;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_pub, CB_Z85_KEY_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, g.pub, CB_Z85_KEY_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, g.sec, CB_Z85_KEY_LEN + 1) != 0)
        return cb_error_set(err, CB_ERR_ZMQ, "", "CURVE client options: %s", zmq_strerror(errno));
    return 0;
}

bool cb_curve_each(const char *dir, const char *group, cb_curve_each_fn fn, void *ctx)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", dir, group);
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool stopped = false;
    struct dirent *e;
    while (!stopped && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || n > 255 || strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        char file[1500], pub[CB_Z85_KEY_LEN + 1], name[256];
        cb_error_t err;
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        snprintf(name, sizeof(name), "%.*s", (int)(n - 4), e->d_name);
        bool ok = cb_curve_read(file, pub, NULL, &err) == 0;
        stopped = fn(ctx, group, name, ok ? pub : NULL, &err);
    }
    closedir(d);
    return stopped;
}

typedef struct find {
    const char *key;
    char *user;
    size_t size;
} find_t;

static bool match(void *ctx, const char *group, const char *name, const char *pub,
                  const cb_error_t *err)
{
    (void)err;
    find_t *f = ctx;
    if (pub == NULL || strcmp(pub, f->key) != 0)
        return false;
    snprintf(f->user, f->size, "%s/%s", group, name);
    return true;
}

/* The principal ("group/name") whose .pub in an admitted group holds key. */
static bool admitted(const struct domain *d, const char *key, char *user, size_t size)
{
    find_t f = {key, user, size};
    for (size_t i = 0; i < 3 && d->groups[i]; i++)
        if (cb_curve_each(g.dir, d->groups[i], match, &f))
            return true;
    return false;
}

static void log_refusal(const char *domain, const char *address, const char *key)
{
    char what[sizeof(g.last_refused)];
    snprintf(what, sizeof(what), "%s %s", domain, key);
    uint64_t now = uv_now(g.watch.poll.loop);
    if (strcmp(what, g.last_refused) == 0 && now - g.last_refused_ms < 10000) {
        g.refused_quiet++;
        return;
    }
    log_warn("curve_refused domain=%s address=%s key=%s repeats=%lu error=\"no such public "
             "key in %s\"", domain, address, key, g.refused_quiet, g.dir);
    snprintf(g.last_refused, sizeof(g.last_refused), "%s", what);
    g.last_refused_ms = now;
    g.refused_quiet = 0;
}

static void on_zap(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)ctx;
    zmq_msg_t f[ZAP_FRAMES];
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES)
            f[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (n == 0)
        return;
    char domain[32] = "", address[64] = "", key[CB_Z85_KEY_LEN + 1] = "", user[256] = "";
    const char *status = "400", *text = "unknown key";
    if (n >= 3 && zmq_msg_size(&f[2]) < sizeof(domain))
        memcpy(domain, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
    if (n >= 4 && zmq_msg_size(&f[3]) < sizeof(address))
        memcpy(address, zmq_msg_data(&f[3]), zmq_msg_size(&f[3]));
    const struct domain *d = domain_of(domain);
    bool curve = n == ZAP_FRAMES && zmq_msg_size(&f[5]) == 5 &&
                 memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 && zmq_msg_size(&f[6]) == 32;
    if (curve)
        zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
    if (d == NULL || !curve)
        text = "not a CURVE handshake on a known domain";
    else if (admitted(d, key, user, sizeof(user)))
        status = "200", text = "OK";
    else
        log_refusal(domain, address, key);
    const void *rid = n >= 2 ? zmq_msg_data(&f[1]) : "";
    size_t rid_len = n >= 2 ? zmq_msg_size(&f[1]) : 0;
    /* Reply frames: version, request id, status code, status text, user id, metadata. */
    if (cb_zsend(w, "1.0", 3, true) != 0 || cb_zsend(w, rid, rid_len, true) != 0 ||
        cb_zsend(w, status, 3, true) != 0 || cb_zsend(w, text, strlen(text), true) != 0 ||
        cb_zsend(w, user, strlen(user), true) != 0 || cb_zsend(w, "", 0, false) != 0)
        log_warn("zap_reply_failed error=\"%s\"", zmq_strerror(errno));
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

int cb_zap_start(uv_loop_t *loop, void *zctx, cb_error_t *err)
{
    if (!g.on || g.watching)
        return 0;
    int zero = 0;
    g.zap = zmq_socket(zctx, ZMQ_REP);
    if (g.zap == NULL || zmq_setsockopt(g.zap, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_bind(g.zap, ZAP_ENDPOINT) != 0) {
        int rc = cb_error_set(err, CB_ERR_ZMQ, "", "ZAP handler: %s", zmq_strerror(errno));
        if (g.zap)
            zmq_close(g.zap);
        g.zap = NULL;
        return rc;
    }
    int rc = cb_zwatch_init(&g.watch, loop, g.zap, on_zap, NULL, err);
    if (rc != 0)
        return rc;
    g.watching = true;
    return 0;
}

static void on_zap_closed(cb_zwatch_t *w)
{
    (void)w;
    zmq_close(g.zap);
    g.zap = NULL;
}

void cb_zap_stop(void)
{
    if (!g.watching)
        return;
    g.watching = false;
    cb_zwatch_close(&g.watch, on_zap_closed);
}

const char *cb_curve_peer_group(zmq_msg_t *msg)
{
    static char group[64];
    const char *user = g.on ? zmq_msg_gets(msg, "User-Id") : NULL;
    snprintf(group, sizeof(group), "%.*s", user ? (int)strcspn(user, "/") : 0, user ? user : "");
    return group;
}

bool cb_curve_peer_unmasked(zmq_msg_t *msg)
{
    if (!g.on)
        return true;
    const char *group = cb_curve_peer_group(msg);
    return strcmp(group, "daemons") == 0 || strcmp(group, "operators") == 0;
}

static int write_file(const char *path, mode_t mode, const char *text, bool force,
                      cb_error_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (force ? 0 : O_EXCL), mode);
    if (fd < 0)
        return cb_error_set(err, errno == EEXIST ? CB_ERR_EXISTS : CB_ERR_CONFIG, "",
                            "cannot write %s: %s%s", path, strerror(errno),
                            errno == EEXIST ? " (--force replaces it)" : "");
    size_t n = strlen(text);
    /* A replaced secret key keeps no looser mode an older file had. */
    bool ok = (mode != 0600 || fchmod(fd, 0600) == 0) && write(fd, text, n) == (ssize_t)n &&
              fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok)
        return cb_error_set(err, CB_ERR_CONFIG, "", "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int cb_curve_keygen(const char *dir, const char *group, const char *name, bool force,
                    cb_error_t *err)
{
    if (strchr(name, '/') || strchr(group, '/') || name[0] == '.' || name[0] == '\0')
        return cb_error_set(err, CB_ERR_INVALID, "name", "'%s' is not a key name (no '/', no "
                            "leading '.')", name);
    char pub[CB_Z85_KEY_LEN + 1], sec[CB_Z85_KEY_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0)
        return cb_error_set(err, CB_ERR_ZMQ, "", "zmq_curve_keypair: %s", zmq_strerror(errno));
    char path[1200], text[400];
    snprintf(path, sizeof(path), "%s", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return cb_error_set(err, CB_ERR_CONFIG, "", "cannot make %s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/%s", dir, group);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return cb_error_set(err, CB_ERR_CONFIG, "", "cannot make %s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/%s/%s.key", dir, group, name);
    snprintf(text, sizeof(text),
             "# casebus CURVE key pair %s/%s: the secret key, keep this file 0600\n"
             "public = %s\nsecret = %s\n", group, name, pub, sec);
    int rc = write_file(path, 0600, text, force, err);
    sodium_memzero(sec, sizeof(sec));
    sodium_memzero(text, sizeof(text));
    if (rc != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s/%s.pub", dir, group, name);
    snprintf(text, sizeof(text), "# casebus CURVE public key %s/%s\npublic = %s\n", group, name,
             pub);
    return write_file(path, 0644, text, true, err);
}
