/* Golden test against frames recorded from the official plugin
 * (the .jsonl files in fixtures/official-plugin, see fixtures/README.md). c2s frames are
 * the reference: they must decode and re-encode to the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unhex.h"
#include <cjson/cJSON.h>

#include "ssm_msg.h"
#include "ssm_uuid.h"

#define DIR SSM_FIXTURES_DIR "/official-plugin/"

static const char *const FILES[] = {"shell.jsonl", "port_mux.jsonl", "port_basic.jsonl",
                                    "stdio.jsonl"};

struct counts {
    int c2s_bin, s2c_bin, open_channel, c2s_acks, s2c_acks, flags;
};

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}


static const cJSON *item(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        fail_msg("missing field %s", key);
    return it;
}

static double num(const cJSON *obj, const char *key)
{
    const cJSON *it = item(obj, key);
    assert_true(cJSON_IsNumber(it));
    return it->valuedouble;
}

/* The recorder's header summary must agree with our decoder. */
static void check_summary(const ssm_msg *d, const cJSON *summary)
{
    const cJSON *type = item(summary, "type");
    assert_true(cJSON_IsString(type));
    assert_string_equal(d->type, type->valuestring);
    assert_true((double)d->schema_version == num(summary, "schema"));
    assert_true((double)d->created_ms == num(summary, "created"));
    assert_true((double)d->seq == num(summary, "seq"));
    assert_true((double)d->flags == num(summary, "flags"));
    assert_true((double)d->payload_type == num(summary, "payload_type"));
    assert_true((double)d->payload_len == num(summary, "payload_len"));
    char id[SSM_UUID_STRLEN + 1];
    ssm_uuid_format(d->id, id);
    const cJSON *sid = item(summary, "id");
    assert_true(cJSON_IsString(sid));
    assert_string_equal(id, sid->valuestring);
}

/* Acks: parse, and for the official plugin's own, rebuild the body. */
static void check_ack(const ssm_msg *d, int reference)
{
    int64_t seq = -1;
    assert_int_equal(ssm_ack_parse(d->payload, d->payload_len, &seq), 0);
    assert_true(d->flags == SSM_MSGFLAG_ACK);
    assert_true(d->seq == 0);
    assert_int_equal(d->payload_type, SSM_PT_NONE);
    if (!reference)
        return;
    cJSON *j = cJSON_ParseWithLength((const char *)d->payload, d->payload_len);
    assert_non_null(j);
    const cJSON *type = item(j, "AcknowledgedMessageType");
    const cJSON *sid = item(j, "AcknowledgedMessageId");
    assert_true(cJSON_IsString(type) && cJSON_IsString(sid));
    assert_string_equal(type->valuestring, SSM_MT_OUTPUT);
    uint8_t id[16];
    assert_int_equal(ssm_uuid_parse(sid->valuestring, id), 0);
    char body[512];
    int n = ssm_ack_body(body, sizeof body, type->valuestring, id, seq);
    assert_int_equal(n, (int)d->payload_len);
    assert_memory_equal(body, d->payload, d->payload_len);
    cJSON_Delete(j);
}

static void check_binary(const cJSON *line, int c2s, struct counts *c)
{
    size_t len;
    uint8_t *buf = unhex(item(line, "hex")->valuestring, &len);
    ssm_msg d;
    int rc = ssm_msg_decode(buf, len, &d);
    if (rc != SSM_MSG_OK)
        fail_msg("decode failed: %s", ssm_msg_strerror(rc));
    check_summary(&d, item(line, "msg"));
    assert_int_equal(d.header_length, SSM_MSG_HEADER_LENGTH);
    assert_int_equal(d.payload_length, d.payload_len);

    /* Every strict prefix is refused: short ones structurally, longer ones
     * because the payload no longer matches its digest. */
    for (size_t l = 0; l < len; l++) {
        ssm_msg t;
        int want = l < 120 ? SSM_MSG_ERR_SHORT : d.payload_length ? SSM_MSG_ERR_DIGEST : SSM_MSG_OK;
        assert_int_equal(ssm_msg_decode(buf, l, &t), want);
    }

    if (c2s) {
        c->c2s_bin++;
        uint8_t *again = malloc(len);
        assert_non_null(again);
        assert_int_equal(ssm_msg_encode(&d, again, len), (long)len);
        assert_memory_equal(again, buf, len);
        free(again);
        /* What the client sends (§4.2, §7.1). */
        assert_int_equal(d.schema_version, 1);
        if (strcmp(d.type, SSM_MT_INPUT) == 0)
            assert_true(d.flags == SSM_MSGFLAG_DATA);
        else
            assert_string_equal(d.type, SSM_MT_ACK);
        assert_int_equal(d.id[6] >> 4, 4); /* fresh UUIDv4 */
        assert_int_equal(d.id[8] >> 6, 2);
    } else {
        c->s2c_bin++;
    }
    if (strcmp(d.type, SSM_MT_ACK) == 0) {
        check_ack(&d, c2s);
        c2s ? c->c2s_acks++ : c->s2c_acks++;
    }
    if (d.payload_type == SSM_PT_FLAG && strcmp(d.type, SSM_MT_INPUT) == 0) {
        uint32_t flag = 0;
        assert_int_equal(d.payload_len, 4);
        assert_int_equal(ssm_flag_decode(d.payload, d.payload_len, &flag), 0);
        assert_true(flag == SSM_FLAG_DISCONNECT_TO_PORT || flag == SSM_FLAG_TERMINATE_SESSION);
        c->flags++;
    }
    free(buf);
}

/* OpenDataChannel (§3.4): exactly these keys in this order. Values are only
 * checked for shape; the token is never printed. */
static void check_open_channel(const cJSON *line, struct counts *c)
{
    static const char *const keys[] = {"MessageSchemaVersion", "RequestId", "TokenValue",
                                       "ClientId", "ClientVersion"};
    const cJSON *text = item(line, "text");
    assert_true(cJSON_IsString(text));
    cJSON *j = cJSON_Parse(text->valuestring);
    assert_non_null(j);
    assert_true(cJSON_IsObject(j));
    size_t k = 0;
    for (const cJSON *f = j->child; f; f = f->next, k++) {
        assert_true(k < 5);
        assert_string_equal(f->string, keys[k]);
        assert_true(cJSON_IsString(f));
    }
    assert_int_equal(k, 5);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "MessageSchemaVersion")->valuestring,
                        "1.0");
    uint8_t id[16];
    assert_int_equal(
        ssm_uuid_parse(cJSON_GetObjectItemCaseSensitive(j, "RequestId")->valuestring, id), 0);
    assert_int_equal(id[6] >> 4, 4);
    assert_int_equal(
        ssm_uuid_parse(cJSON_GetObjectItemCaseSensitive(j, "ClientId")->valuestring, id), 0);
    cJSON_Delete(j);
    c->open_channel++;
}

static void check_file(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", DIR, name);
    size_t len;
    char *all = read_all(path, &len);
    struct counts c = {0};
    int lineno = 0;
    for (char *save = NULL, *l = strtok_r(all, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        cJSON *line = cJSON_Parse(l);
        if (!line)
            fail_msg("%s:%d: not JSON", name, lineno);
        if (lineno == 1) {
            assert_non_null(cJSON_GetObjectItemCaseSensitive(line, "meta"));
            cJSON_Delete(line);
            continue;
        }
        const char *dir = item(line, "dir")->valuestring;
        int opcode = (int)num(line, "opcode");
        int c2s = strcmp(dir, "c2s") == 0;
        assert_true(c2s || strcmp(dir, "s2c") == 0);
        if (opcode == 2)
            check_binary(line, c2s, &c);
        else if (opcode == 1 && c2s)
            check_open_channel(line, &c);
        cJSON_Delete(line);
    }
    free(all);
    print_message("%s: %d c2s and %d s2c binary frames, %d/%d acks, %d flags\n", name, c.c2s_bin,
                  c.s2c_bin, c.c2s_acks, c.s2c_acks, c.flags);
    /* Guard against a vacuous pass (empty or unreadable recording). */
    assert_int_equal(c.open_channel, 1);
    assert_true(c.c2s_bin >= 5);
    assert_true(c.s2c_bin >= 5);
    assert_true(c.c2s_acks >= 1);
    assert_true(c.s2c_acks >= 1);
    if (strncmp(name, "port_", 5) == 0)
        assert_true(c.flags >= 1);
}

static void test_shell(void **state)
{
    (void)state;
    check_file(FILES[0]);
}

static void test_port_mux(void **state)
{
    (void)state;
    check_file(FILES[1]);
}

static void test_port_basic(void **state)
{
    (void)state;
    check_file(FILES[2]);
}

static void test_stdio(void **state)
{
    (void)state;
    check_file(FILES[3]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell),
        cmocka_unit_test(test_port_mux),
        cmocka_unit_test(test_port_basic),
        cmocka_unit_test(test_stdio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
