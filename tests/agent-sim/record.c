/* --record: one JSON object per line, flushed at once so a test can read the
 * file while the simulator runs. Never receives token values. */
#include <time.h>

#include "sim.h"

static FILE *g_rec;

uint64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sim_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int sim_record_open(const char *path)
{
    if (path == NULL)
        return 0;
    g_rec = fopen(path, "a");
    return g_rec ? 0 : -1;
}

void sim_record_close(void)
{
    if (g_rec)
        fclose(g_rec);
    g_rec = NULL;
}

/* cJSON copies string bytes verbatim; peer-controlled text (ids, handshake
 * JSON) could make a line invalid UTF-8. Replace bad bytes with '?'. */
static void sanitize_utf8(char *t)
{
    unsigned char *p = (unsigned char *)t;
    while (*p) {
        size_t need = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : 4;
        if (need == 0) {
            p++;
            continue;
        }
        size_t ok = need < 4 && *p >= 0xC2;
        for (size_t i = 1; ok && i <= need; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += need + 1;
    }
}

static void write_line(const char *sid, const char *event, cJSON *fields)
{
    if (g_rec == NULL) {
        cJSON_Delete(fields);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        cJSON_Delete(fields);
        return;
    }
    cJSON_AddNumberToObject(o, "t_ms", (double)sim_wall_ms());
    if (sid)
        cJSON_AddStringToObject(o, "session", sid);
    cJSON_AddStringToObject(o, "event", event);
    if (fields) {
        /* Move the fields over so the caller's object is consumed. */
        while (fields->child) {
            cJSON *it = cJSON_DetachItemViaPointer(fields, fields->child);
            cJSON_AddItemToObject(o, it->string, it);
        }
        cJSON_Delete(fields);
    }
    char *txt = cJSON_PrintUnformatted(o);
    if (txt) {
        sanitize_utf8(txt);
        fputs(txt, g_rec);
        fputc('\n', g_rec);
        fflush(g_rec);
        cJSON_free(txt);
    }
    cJSON_Delete(o);
}

void sim_record(sim_session *s, const char *event, cJSON *fields)
{
    write_line(s ? s->id : NULL, event, fields);
}

void sim_record_global(const char *event, cJSON *fields)
{
    write_line(NULL, event, fields);
}
