/* The transport's state, shared by transport.c (lws set-up, dialing) and
 * ws_direct.c (our own framing on the established connection). */
#ifndef SSM_TRANSPORT_PRIV_H
#define SSM_TRANSPORT_PRIV_H

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "ssm_ws_frame.h"
#include "transport.h"

#define RX_MAX (64u * 1024u) /* largest websocket message accepted */
#define PING_PAYLOAD "keepalive"

struct ssm_transport {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    const ssm_transport_ops *ops;
    void *user;
    char *ca_file;    /* AWS_CA_BUNDLE / SSL_CERT_FILE, or NULL */
    SSL_CTX *tls_ctx; /* made at the first wss:// connect (ws:// never pays for it) */
    struct lws *wsi;
    bool open, closing;
    char *open_msg;  /* OpenDataChannel, sent first on every connection */
    bool open_sent, ping_due;
    char *headers;   /* extra upgrade headers */
    char *url_copy;  /* lws_parse_uri works in place */
    char host_hdr[300];
    unsigned ping_interval_s;
    lws_sorted_usec_list_t sul_ping;
    uint8_t *tx;     /* LWS_PRE + max_frame */
    size_t tx_cap;
    uint8_t *rx;     /* reassembly of fragmented messages */
    size_t rx_len;
    bool rx_overflow;
    char why[256];   /* last error text */
    char tls_why[160]; /* certificate verification failure of this attempt */
    struct ssm_transport *next; /* all transports (see by_vhost) */

    /* Direct framing (ws_direct.c) on the established connection. */
    bool direct;         /* our codec carries the current connection */
    struct lws *rd_wsi;  /* adopted duplicate of the socket: our POLLIN */
    SSL *ssl;            /* lws's TLS session (wss), NULL for ws */
    int fd;              /* lws's socket */
    ssm_ws_rx rxp;       /* parser state; assembles into rx */
    uint8_t *rd;         /* read buffer */
    uint8_t *out;        /* frames built for one raw write */
    size_t out_cap;
    uint8_t keys[1024];  /* mask keys drawn in bulk */
    size_t key_pos;
    struct lws *tm_wsi; /* bulk tail timer (ws_direct.c), adopted timerfd */
    int tm_fd;
    bool bulk;           /* data is streaming in: reads are coalesced */
    uint64_t win_start_us, win_bytes; /* bytes read in the current window */
    bool rd_wants_write; /* SSL_read needs the socket writable first */
    bool in_read;        /* inside a read batch: writes wait for its end */
    bool draining;       /* reading what is left of a dying connection */
    bool write_wanted;   /* ... and something asked to write meanwhile */
    bool pong_due;
    uint8_t pong[SSM_WS_MAX_CTRL];
    size_t pong_len;
    uint64_t dropped_seen;
};

void ssm_transport_set_why(ssm_transport *t, const char *what);

/* ---- ws_direct.c ---- */

/* The reader's lws protocol (listed on the transport's vhost). */
#define SSM_WSD_PROTOCOL "ssm-ws-direct"
int ssm_wsd_reader_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
/* Takes over framing of the just-established wsi. 0, or -1 (lws keeps it). */
int ssm_wsd_start(ssm_transport *t, struct lws *wsi);
/* Stops reading (the connection is going away); idempotent. */
void ssm_wsd_stop(ssm_transport *t);
/* Reads what the socket still holds before the connection is reported down. */
void ssm_wsd_drain(ssm_transport *t);
/* Frames and writes what is ready now: from CLIENT_WRITEABLE while direct,
 * and right after a read batch. 0, or -1 to drop the wsi. */
int ssm_wsd_write_now(ssm_transport *t, struct lws *wsi);
/* Frees the direct-path buffers. */
void ssm_wsd_free(ssm_transport *t);

#endif
