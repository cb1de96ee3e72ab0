/* Early (out-of-order) client messages, bounded like the agent's incoming
 * buffer: up to SIM_IN_MAX_MSGS messages (the agent's 100000) and, as a
 * memory guard the agent lacks, SIM_IN_MAX_BYTES of payload. Chained hash on
 * the sequence number; entries are allocated only on this early path (in-
 * order input is processed straight from the receive buffer). */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define BUCKETS 1024

struct sim_inbuf {
    struct sim_in_entry *bucket[BUCKETS];
    size_t count, bytes;
};

static struct sim_inbuf *ib(sim_session *s)
{
    if (s->in == NULL)
        s->in = calloc(1, sizeof *s->in);
    return s->in;
}

struct sim_in_entry *sim_inbuf_find(sim_session *s, int64_t seq)
{
    if (s->in == NULL)
        return NULL;
    for (struct sim_in_entry *e = s->in->bucket[(uint64_t)seq % BUCKETS]; e; e = e->next)
        if (e->seq == seq)
            return e;
    return NULL;
}

int sim_inbuf_put(sim_session *s, const ssm_msg *m, int need_ack)
{
    struct sim_inbuf *b = ib(s);
    if (b == NULL)
        return -1;
    if (sim_inbuf_find(s, m->seq))
        return 0;
    if (b->count >= SIM_IN_MAX_MSGS || b->bytes + m->payload_len > SIM_IN_MAX_BYTES)
        return -1;
    struct sim_in_entry *e = malloc(sizeof *e + m->payload_len);
    if (e == NULL)
        return -1;
    e->need_ack = need_ack;
    memcpy(e->id, m->id, sizeof e->id);
    e->seq = m->seq;
    e->ptype = m->payload_type;
    e->len = m->payload_len;
    memcpy(e->buf, m->payload, m->payload_len);
    struct sim_in_entry **head = &b->bucket[(uint64_t)m->seq % BUCKETS];
    e->next = *head;
    *head = e;
    b->count++;
    b->bytes += e->len;
    return 0;
}

void sim_inbuf_remove(sim_session *s, int64_t seq)
{
    if (s->in == NULL)
        return;
    for (struct sim_in_entry **pp = &s->in->bucket[(uint64_t)seq % BUCKETS]; *pp; pp = &(*pp)->next) {
        if ((*pp)->seq == seq) {
            struct sim_in_entry *e = *pp;
            *pp = e->next;
            s->in->count--;
            s->in->bytes -= e->len;
            free(e);
            return;
        }
    }
}

void sim_inbuf_free(sim_session *s)
{
    if (s->in == NULL)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        struct sim_in_entry *e = s->in->bucket[i];
        while (e) {
            struct sim_in_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(s->in);
    s->in = NULL;
}
