/* smux v1 client (PROTOCOL.md §11). See ssm_smux.h for the memory policy. */
#include "ssm_smux.h"

#include <stdlib.h>
#include <string.h>

/* ---- byte ring ---------------------------------------------------------- */

typedef struct ring {
    uint8_t *buf;
    size_t cap, head, len;
} ring;

static size_t ring_free(const ring *r) { return r->cap - r->len; }

/* Caller checked ring_free() >= n. */
static void ring_push(ring *r, const uint8_t *p, size_t n)
{
    size_t tail = (r->head + r->len) % r->cap;
    size_t first = r->cap - tail;
    if (first > n)
        first = n;
    memcpy(r->buf + tail, p, first);
    memcpy(r->buf, p + first, n - first);
    r->len += n;
}

static size_t ring_peek(const ring *r, const uint8_t **p)
{
    size_t first = r->cap - r->head;
    *p = r->buf + r->head;
    return r->len < first ? r->len : first;
}

static void ring_consume(ring *r, size_t n)
{
    if (n > r->len)
        n = r->len;
    r->head = (r->head + n) % r->cap;
    r->len -= n;
    if (r->len == 0)
        r->head = 0; /* keep the next writes contiguous */
}

static size_t ring_read(ring *r, uint8_t *buf, size_t cap)
{
    size_t done = 0;
    while (done < cap && r->len > 0) {
        const uint8_t *p;
        size_t k = ring_peek(r, &p);
        if (k > cap - done)
            k = cap - done;
        memcpy(buf + done, p, k);
        ring_consume(r, k);
        done += k;
    }
    return done;
}

/* ---- streams ------------------------------------------------------------ */

typedef struct stream {
    uint32_t sid;
    void *user;
    ring rx;
    bool rx_fin;
    bool notify_pending;
    struct stream *next_notify;
    struct stream *prev_open, *next_open; /* all open streams, for can_feed */
} stream;

struct ssm_smux {
    ssm_smux_config cfg;
    ssm_smux_callbacks cb;
    void *user;

    /* Open-addressing table of streams keyed by id (linear probing). */
    stream **table;
    uint32_t table_mask;
    stream *open_list;
    uint32_t n_streams;
    uint32_t next_sid; /* last id handed out; starts at 1 */
    bool ids_exhausted;

    size_t rx_total;
    ring tx;
    size_t tx_ctrl_reserve; /* room kept for SYN/FIN/NOP frames */

    /* Parser state across feeds. */
    uint8_t hdr[SSM_SMUX_HEADER_SIZE];
    size_t hdr_have;
    size_t body_left;      /* PSH data or UPD bytes still to come */
    uint32_t body_sid;     /* stream receiving the PSH body (0: discard) */

    stream *notify_head, *notify_tail;

    bool dead;
    bool data_ready;  /* some frame arrived since the last timeout check */
    bool rx_blocked;  /* the last feed was refused (receive buffers full) */
    uint64_t next_ping_ms, next_check_ms;

    ssm_smux_stats st;
};

void ssm_smux_config_default(ssm_smux_config *cfg)
{
    cfg->keepalive = true;
    cfg->keepalive_interval_ms = SSM_SMUX_KEEPALIVE_INTERVAL_MS;
    cfg->keepalive_timeout_ms = SSM_SMUX_KEEPALIVE_TIMEOUT_MS;
    cfg->max_frame = SSM_SMUX_MAX_FRAME;
    cfg->stream_rx_cap = 256u * 1024u;
    cfg->session_rx_cap = 4u * 1024u * 1024u;
    cfg->tx_cap = 256u * 1024u;
    cfg->max_streams = 1024;
}

static uint32_t hash_sid(uint32_t sid) { return sid * 2654435761u; }

static stream *find(const ssm_smux *m, uint32_t sid)
{
    for (uint32_t i = hash_sid(sid) & m->table_mask;; i = (i + 1) & m->table_mask) {
        stream *s = m->table[i];
        if (!s)
            return NULL;
        if (s->sid == sid)
            return s;
    }
}

static void table_insert(ssm_smux *m, stream *s)
{
    uint32_t i = hash_sid(s->sid) & m->table_mask;
    while (m->table[i])
        i = (i + 1) & m->table_mask;
    m->table[i] = s;
}

/* Linear-probing delete with backward shift, so lookups never need tombstones. */
static void table_remove(ssm_smux *m, uint32_t sid)
{
    uint32_t i = hash_sid(sid) & m->table_mask;
    while (m->table[i] && m->table[i]->sid != sid)
        i = (i + 1) & m->table_mask;
    if (!m->table[i])
        return;
    m->table[i] = NULL;
    for (uint32_t j = (i + 1) & m->table_mask; m->table[j]; j = (j + 1) & m->table_mask) {
        stream *s = m->table[j];
        uint32_t home = hash_sid(s->sid) & m->table_mask;
        /* Move s into the hole when its home slot is not between hole and j. */
        bool between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->table[i] = s;
            m->table[j] = NULL;
            i = j;
        }
    }
}

ssm_smux *ssm_smux_new(const ssm_smux_config *cfg, const ssm_smux_callbacks *cb, void *user,
                       uint64_t now_ms)
{
    ssm_smux *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    if (cfg)
        m->cfg = *cfg;
    else
        ssm_smux_config_default(&m->cfg);
    if (m->cfg.max_frame == 0 || m->cfg.max_frame > 65535)
        m->cfg.max_frame = SSM_SMUX_MAX_FRAME;
    if (m->cfg.max_streams == 0)
        m->cfg.max_streams = 1;
    if (m->cfg.stream_rx_cap < SSM_SMUX_MIN_FEED)
        m->cfg.stream_rx_cap = SSM_SMUX_MIN_FEED;
    if (m->cfg.session_rx_cap < m->cfg.stream_rx_cap)
        m->cfg.session_rx_cap = m->cfg.stream_rx_cap;
    if (cb)
        m->cb = *cb;
    m->user = user;
    m->next_sid = 1;

    uint32_t slots = 4;
    while (slots < 2u * m->cfg.max_streams)
        slots <<= 1;
    m->table = calloc(slots, sizeof(*m->table));
    m->table_mask = slots - 1;

    /* Every stream needs at most SYN + FIN, plus one NOP: control frames can
     * never be refused. */
    m->tx_ctrl_reserve = ((size_t)m->cfg.max_streams * 2u + 2u) * SSM_SMUX_HEADER_SIZE;
    m->tx.cap = m->cfg.tx_cap + m->tx_ctrl_reserve;
    m->tx.buf = malloc(m->tx.cap);
    if (!m->table || !m->tx.buf) {
        ssm_smux_free(m);
        return NULL;
    }
    m->next_ping_ms = now_ms + m->cfg.keepalive_interval_ms;
    m->next_check_ms = now_ms + m->cfg.keepalive_timeout_ms;
    return m;
}

static void stream_free(stream *s)
{
    free(s->rx.buf);
    free(s);
}

void ssm_smux_free(ssm_smux *m)
{
    if (!m)
        return;
    if (m->table) {
        for (uint32_t i = 0; i <= m->table_mask; i++)
            if (m->table[i])
                stream_free(m->table[i]);
        free(m->table);
    }
    free(m->tx.buf);
    free(m);
}

/* ---- output ------------------------------------------------------------- */

static void put_header(uint8_t h[SSM_SMUX_HEADER_SIZE], uint8_t cmd, uint16_t len, uint32_t sid)
{
    h[0] = SSM_SMUX_VERSION;
    h[1] = cmd;
    h[2] = (uint8_t)(len & 0xff);
    h[3] = (uint8_t)(len >> 8);
    h[4] = (uint8_t)(sid & 0xff);
    h[5] = (uint8_t)(sid >> 8);
    h[6] = (uint8_t)(sid >> 16);
    h[7] = (uint8_t)(sid >> 24);
}

static int queue_ctrl(ssm_smux *m, uint8_t cmd, uint32_t sid)
{
    uint8_t h[SSM_SMUX_HEADER_SIZE];
    if (ring_free(&m->tx) < sizeof(h))
        return SSM_SMUX_ENOMEM; /* cannot happen: the reserve covers it */
    put_header(h, cmd, 0, sid);
    ring_push(&m->tx, h, sizeof(h));
    m->st.frames_out++;
    return SSM_SMUX_OK;
}

/* Data may use the queue up to tx_cap; the reserve stays for control frames. */
static size_t data_room(const ssm_smux *m)
{
    return m->tx.len >= m->cfg.tx_cap ? 0 : m->cfg.tx_cap - m->tx.len;
}

size_t ssm_smux_write_space(const ssm_smux *m)
{
    size_t room = data_room(m);
    if (m->dead || room <= SSM_SMUX_HEADER_SIZE)
        return 0;
    /* One header per max_frame of data. */
    size_t frames = (room + m->cfg.max_frame + SSM_SMUX_HEADER_SIZE - 1) /
                    (m->cfg.max_frame + SSM_SMUX_HEADER_SIZE);
    return room - frames * SSM_SMUX_HEADER_SIZE;
}

long ssm_smux_write(ssm_smux *m, uint32_t sid, const uint8_t *p, size_t n)
{
    if (m->dead)
        return SSM_SMUX_EDEAD;
    if (!find(m, sid))
        return SSM_SMUX_ENOENT;
    size_t done = 0;
    while (done < n) {
        size_t room = data_room(m);
        if (room <= SSM_SMUX_HEADER_SIZE)
            break;
        size_t chunk = n - done;
        if (chunk > m->cfg.max_frame)
            chunk = m->cfg.max_frame;
        if (chunk > room - SSM_SMUX_HEADER_SIZE)
            chunk = room - SSM_SMUX_HEADER_SIZE;
        uint8_t h[SSM_SMUX_HEADER_SIZE];
        put_header(h, SSM_SMUX_PSH, (uint16_t)chunk, sid);
        ring_push(&m->tx, h, sizeof(h));
        ring_push(&m->tx, p + done, chunk);
        m->st.frames_out++;
        done += chunk;
    }
    return (long)done;
}

size_t ssm_smux_out_pending(const ssm_smux *m) { return m->tx.len; }

size_t ssm_smux_out_read(ssm_smux *m, uint8_t *buf, size_t cap)
{
    return ring_read(&m->tx, buf, cap);
}

/* ---- streams, caller side ----------------------------------------------- */

int ssm_smux_open(ssm_smux *m, void *stream_user, uint32_t *sid)
{
    if (m->dead)
        return SSM_SMUX_EDEAD;
    if (m->n_streams >= m->cfg.max_streams || m->ids_exhausted)
        return SSM_SMUX_ELIMIT;
    stream *s = calloc(1, sizeof(*s));
    if (!s)
        return SSM_SMUX_ENOMEM;
    s->rx.cap = m->cfg.stream_rx_cap;
    s->rx.buf = malloc(s->rx.cap);
    if (!s->rx.buf) {
        free(s);
        return SSM_SMUX_ENOMEM;
    }
    if (m->next_sid > UINT32_MAX - 2) { /* smux: no new streams after wrap-around */
        m->ids_exhausted = true;
        stream_free(s);
        return SSM_SMUX_ELIMIT;
    }
    m->next_sid += 2;
    s->sid = m->next_sid;
    s->user = stream_user;
    table_insert(m, s);
    s->next_open = m->open_list;
    if (m->open_list)
        m->open_list->prev_open = s;
    m->open_list = s;
    m->n_streams++;
    queue_ctrl(m, SSM_SMUX_SYN, s->sid);
    *sid = s->sid;
    return SSM_SMUX_OK;
}

static void notify_unlink(ssm_smux *m, stream *s)
{
    if (!s->notify_pending)
        return;
    stream *prev = NULL;
    for (stream *it = m->notify_head; it; prev = it, it = it->next_notify) {
        if (it != s)
            continue;
        if (prev)
            prev->next_notify = it->next_notify;
        else
            m->notify_head = it->next_notify;
        if (m->notify_tail == it)
            m->notify_tail = prev;
        break;
    }
    s->notify_pending = false;
    s->next_notify = NULL;
}

int ssm_smux_close(ssm_smux *m, uint32_t sid)
{
    stream *s = find(m, sid);
    if (!s)
        return SSM_SMUX_ENOENT;
    notify_unlink(m, s);
    if (m->body_sid == sid)
        m->body_sid = 0; /* the rest of an in-flight PSH is discarded */
    m->rx_total -= s->rx.len;
    if (s->prev_open)
        s->prev_open->next_open = s->next_open;
    else
        m->open_list = s->next_open;
    if (s->next_open)
        s->next_open->prev_open = s->prev_open;
    table_remove(m, sid);
    m->n_streams--;
    stream_free(s);
    if (!m->dead)
        queue_ctrl(m, SSM_SMUX_FIN, sid);
    return SSM_SMUX_OK;
}

size_t ssm_smux_readable(const ssm_smux *m, uint32_t sid)
{
    const stream *s = find(m, sid);
    return s ? s->rx.len : 0;
}

size_t ssm_smux_peek(const ssm_smux *m, uint32_t sid, const uint8_t **p)
{
    const stream *s = find(m, sid);
    if (!s) {
        *p = NULL;
        return 0;
    }
    return ring_peek(&s->rx, p);
}

void ssm_smux_consume(ssm_smux *m, uint32_t sid, size_t n)
{
    stream *s = find(m, sid);
    if (!s)
        return;
    if (n > s->rx.len)
        n = s->rx.len;
    ring_consume(&s->rx, n);
    m->rx_total -= n;
}

size_t ssm_smux_read(ssm_smux *m, uint32_t sid, uint8_t *buf, size_t cap)
{
    stream *s = find(m, sid);
    if (!s)
        return 0;
    size_t n = ring_read(&s->rx, buf, cap);
    m->rx_total -= n;
    return n;
}

bool ssm_smux_eof(const ssm_smux *m, uint32_t sid)
{
    const stream *s = find(m, sid);
    return !s || (s->rx_fin && s->rx.len == 0);
}

/* ---- input -------------------------------------------------------------- */

bool ssm_smux_can_feed(const ssm_smux *m, size_t n)
{
    if (m->dead)
        return true; /* feed reports the error */
    if (n > m->cfg.stream_rx_cap || m->rx_total + n > m->cfg.session_rx_cap)
        return false;
    /* Any one stream may receive all n bytes of this feed. */
    for (const stream *s = m->open_list; s; s = s->next_open)
        if (ring_free(&s->rx) < n)
            return false;
    return true;
}

static void mark_notify(ssm_smux *m, stream *s)
{
    if (s->notify_pending)
        return;
    s->notify_pending = true;
    s->next_notify = NULL;
    if (m->notify_tail)
        m->notify_tail->next_notify = s;
    else
        m->notify_head = s;
    m->notify_tail = s;
}

static int fail(ssm_smux *m, int err)
{
    m->dead = true;
    return err;
}

/* A complete header is in m->hdr. */
static int on_header(ssm_smux *m)
{
    const uint8_t *h = m->hdr;
    uint16_t len = (uint16_t)(h[2] | (h[3] << 8));
    uint32_t sid = (uint32_t)h[4] | ((uint32_t)h[5] << 8) | ((uint32_t)h[6] << 16) |
                   ((uint32_t)h[7] << 24);
    m->st.frames_in++;
    m->data_ready = true;
    if (h[0] != SSM_SMUX_VERSION)
        return fail(m, SSM_SMUX_EPROTO);
    switch (h[1]) {
    case SSM_SMUX_NOP:
        m->st.nops_in++;
        return SSM_SMUX_OK;
    case SSM_SMUX_SYN:
        /* The agent never opens streams and this client accepts none. */
        return SSM_SMUX_OK;
    case SSM_SMUX_FIN: {
        stream *s = find(m, sid);
        if (s && !s->rx_fin) {
            s->rx_fin = true;
            mark_notify(m, s);
        }
        return SSM_SMUX_OK;
    }
    case SSM_SMUX_PSH:
        m->body_left = len;
        m->body_sid = find(m, sid) ? sid : 0;
        return SSM_SMUX_OK;
    case SSM_SMUX_UPD:
        m->body_left = 8; /* smux reads a fixed 8-byte body whatever Length says */
        m->body_sid = 0;
        return SSM_SMUX_OK;
    default:
        return fail(m, SSM_SMUX_EPROTO);
    }
}

static void fire_notifications(ssm_smux *m)
{
    while (m->notify_head) {
        stream *s = m->notify_head;
        m->notify_head = s->next_notify;
        if (!m->notify_head)
            m->notify_tail = NULL;
        s->notify_pending = false;
        s->next_notify = NULL;
        if (m->cb.on_readable)
            m->cb.on_readable(m->user, s->sid, s->user);
    }
}

int ssm_smux_feed(ssm_smux *m, const uint8_t *p, size_t n, uint64_t now_ms)
{
    (void)now_ms;
    if (m->dead)
        return SSM_SMUX_EDEAD;
    if (n > m->cfg.stream_rx_cap)
        return SSM_SMUX_E2BIG;
    if (!ssm_smux_can_feed(m, n)) {
        m->rx_blocked = true;
        return SSM_SMUX_NOT_READY;
    }
    m->rx_blocked = false;
    size_t i = 0;
    int rc = SSM_SMUX_OK;
    while (i < n) {
        if (m->body_left > 0) {
            size_t k = n - i;
            if (k > m->body_left)
                k = m->body_left;
            stream *s = m->body_sid ? find(m, m->body_sid) : NULL;
            if (s) {
                ring_push(&s->rx, p + i, k);
                m->rx_total += k;
                mark_notify(m, s);
            } else {
                m->st.bytes_discarded += k;
            }
            m->body_left -= k;
            i += k;
            continue;
        }
        size_t k = SSM_SMUX_HEADER_SIZE - m->hdr_have;
        if (k > n - i)
            k = n - i;
        memcpy(m->hdr + m->hdr_have, p + i, k);
        m->hdr_have += k;
        i += k;
        if (m->hdr_have == SSM_SMUX_HEADER_SIZE) {
            m->hdr_have = 0;
            rc = on_header(m);
            if (rc < 0)
                break;
        }
    }
    fire_notifications(m);
    return rc;
}

/* ---- time --------------------------------------------------------------- */

int ssm_smux_tick(ssm_smux *m, uint64_t now_ms)
{
    if (m->dead)
        return SSM_SMUX_EDEAD;
    if (!m->cfg.keepalive)
        return SSM_SMUX_OK;
    if (now_ms >= m->next_ping_ms) {
        queue_ctrl(m, SSM_SMUX_NOP, 0);
        m->next_ping_ms = now_ms + m->cfg.keepalive_interval_ms;
    }
    if (now_ms >= m->next_check_ms) {
        m->next_check_ms = now_ms + m->cfg.keepalive_timeout_ms;
        if (m->data_ready)
            m->data_ready = false;
        else if (!m->rx_blocked) /* a full receive buffer is not a dead peer */
            return fail(m, SSM_SMUX_ETIMEDOUT);
    }
    return SSM_SMUX_OK;
}

int64_t ssm_smux_next_timeout(const ssm_smux *m, uint64_t now_ms)
{
    if (!m->cfg.keepalive || m->dead)
        return -1;
    uint64_t due = m->next_ping_ms < m->next_check_ms ? m->next_ping_ms : m->next_check_ms;
    return due <= now_ms ? 0 : (int64_t)(due - now_ms);
}

bool ssm_smux_dead(const ssm_smux *m) { return m->dead; }

const char *ssm_smux_strerror(int err)
{
    switch (err) {
    case SSM_SMUX_OK: return "ok";
    case SSM_SMUX_NOT_READY: return "receive buffers full";
    case SSM_SMUX_EPROTO: return "smux protocol error";
    case SSM_SMUX_ENOMEM: return "out of memory";
    case SSM_SMUX_EDEAD: return "smux session closed";
    case SSM_SMUX_ELIMIT: return "too many smux streams";
    case SSM_SMUX_ENOENT: return "no such smux stream";
    case SSM_SMUX_ETIMEDOUT: return "smux keepalive timeout";
    case SSM_SMUX_E2BIG: return "smux feed larger than a stream buffer";
    default: return "unknown smux error";
    }
}

void ssm_smux_get_stats(const ssm_smux *m, ssm_smux_stats *st)
{
    *st = m->st;
    st->open_streams = m->n_streams;
    st->rx_buffered = m->rx_total;
    st->tx_queued = m->tx.len;
}
