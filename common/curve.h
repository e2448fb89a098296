/*
 * curve.h — CURVE on every ZeroMQ socket, and the ZAP handler that admits only
 * the public keys kept in the keys directory ([curve] keys_dir).
 *
 * The keys directory holds one key pair per principal, in a folder per group:
 *
 *   daemons/intake.key   daemons/intake.pub      (router, deadline, notify)
 *   operators/NAME.key   operators/NAME.pub      the casebus CLI
 *   observers/NAME.pub                           read-only tails, masked
 *   platforms/NAME.pub                           county platforms (command door, stream)
 *
 * A .key file holds the public and the secret key (Z85, mode 0600); a .pub file
 * only the public key. Which groups a socket admits is fixed by its domain:
 *
 *   bus      daemons, operators, observers   (observers get personal data masked)
 *   control  operators
 *   cmd      platforms
 *   stream   platforms
 *
 * The ZAP handler reads the directory at every handshake, so adding or removing
 * a .pub file admits or shuts out a key from its next connection on, without a
 * restart. Without keys_dir, ipc endpoints work without CURVE (the socket file is
 * 0600), and a tcp endpoint is refused unless [curve] insecure = yes.
 */
#ifndef CB_CURVE_H
#define CB_CURVE_H

#include <stdbool.h>
#include <uv.h>
#include <zmq.h>

#include "config.h"
#include "error.h"

#define CB_Z85_KEY_LEN 40

/* Reads [curve] from cfg and, when keys_dir is set, this process's key pair:
 * key_file when given (the CLI's $CASEBUS_KEY), else KEYS_DIR/self.key (self:
 * "daemons/router", "operators/operator"). Once per process, before any socket. */
int cb_curve_setup(const cb_config_t *cfg, const char *self, const char *key_file,
                   cb_error_t *err);
bool cb_curve_on(void);
/* KEYS_DIR ("" when CURVE is off). */
const char *cb_curve_dir(void);

/* Before binding sock at endpoint: CURVE server with this ZAP domain when on;
 * when off, a tcp endpoint is refused unless insecure (then a WARNING line). */
int cb_curve_server(void *sock, const char *domain, const char *endpoint, cb_error_t *err);
/* Before connecting sock to the daemon named server ("intake", …): CURVE client
 * with this process's keys and KEYS_DIR/daemons/server.pub. No-op when off. */
int cb_curve_client(void *sock, const char *server, cb_error_t *err);

/* The ZAP handler on loop for every socket of zctx. Start it before the first
 * cb_curve_server; stop it before terminating zctx. No-op when CURVE is off. */
int cb_zap_start(uv_loop_t *loop, void *zctx, cb_error_t *err);
void cb_zap_stop(void);

/* The group ("daemons", "operators", …) the ZAP handler admitted the peer of a
 * received message as; "" when CURVE is off. */
const char *cb_curve_peer_group(zmq_msg_t *msg);
/* The peer of msg may read personal data: CURVE is off (ipc, owner only), or it
 * is a daemon or an operator. */
bool cb_curve_peer_unmasked(zmq_msg_t *msg);

/* Writes a new key pair as DIR/GROUP/NAME.key (0600) and .pub (0644 under the
 * umask); refuses to overwrite unless force. */
int cb_curve_keygen(const char *dir, const char *group, const char *name, bool force,
                    cb_error_t *err);
/* Calls fn for each DIR/GROUP/NAME.pub: its name, and its public key (NULL,
 * with the reason in err, when the file does not read). fn returns true to stop;
 * returns whether one did. */
typedef bool (*cb_curve_each_fn)(void *ctx, const char *group, const char *name,
                                 const char *public_, const cb_error_t *err);
bool cb_curve_each(const char *dir, const char *group, cb_curve_each_fn fn, void *ctx);
/* Reads a .key or .pub file: public (and, when secret is not NULL, secret) in Z85. */
int cb_curve_read(const char *path, char public_[CB_Z85_KEY_LEN + 1],
                  char secret[CB_Z85_KEY_LEN + 1], cb_error_t *err);

#endif
