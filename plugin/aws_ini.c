/* Parser for ~/.aws/config and ~/.aws/credentials. */
#include "aws_ini.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

typedef struct ini_entry {
    char *section, *key, *value;
} ini_entry;

struct aws_ini {
    ini_entry *e;
    size_t n, cap;
    char **sections; /* every header seen, even empty ones */
    size_t ns, scap;
};

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* Copies s[0..n) trimmed, inner blank runs collapsed to one space. */
static char *norm_dup(const char *s, size_t n, bool collapse)
{
    while (n && blank(*s))
        s++, n--;
    while (n && blank(s[n - 1]))
        n--;
    char *d = malloc(n + 1), *o = d;
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (collapse && blank(s[i])) {
            if (o > d && o[-1] == ' ')
                continue;
            *o++ = ' ';
        } else {
            *o++ = s[i] == '\0' ? ' ' : s[i];
        }
    }
    *o = '\0';
    return d;
}

static bool add_section(aws_ini *ini, char *name)
{
    if (ini->ns == ini->scap) {
        size_t cap = ini->scap ? ini->scap * 2 : 8;
        char **p = realloc(ini->sections, cap * sizeof *p);
        if (!p)
            return false;
        ini->sections = p;
        ini->scap = cap;
    }
    ini->sections[ini->ns++] = name;
    return true;
}

static bool add_entry(aws_ini *ini, const char *section, char *key, char *value)
{
    if (ini->n >= AWS_INI_MAX_ENTRIES)
        return false;
    if (ini->n == ini->cap) {
        size_t cap = ini->cap ? ini->cap * 2 : 16;
        ini_entry *p = realloc(ini->e, cap * sizeof *p);
        if (!p)
            return false;
        ini->e = p;
        ini->cap = cap;
    }
    char *sec = strdup(section);
    if (!sec)
        return false;
    ini->e[ini->n++] = (ini_entry){sec, key, value};
    return true;
}

aws_ini *aws_ini_parse(const char *text, size_t n)
{
    aws_ini *ini = calloc(1, sizeof *ini);
    if (!ini)
        return NULL;
    char *section = NULL;
    char *parent = NULL; /* key with an empty value: indented lines nest under it */
    size_t pos = 0;
    while (pos < n) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - line) : n - pos;
        pos += len + (nl ? 1 : 0);
        bool indented = len && blank(line[0]);
        size_t i = 0;
        while (i < len && blank(line[i]))
            i++;
        if (i == len || line[i] == '#' || line[i] == ';')
            continue;
        if (line[i] == '[' && !indented) {
            const char *close = memchr(line + i, ']', len - i);
            free(parent);
            parent = NULL;
            free(section);
            section = NULL;
            if (!close)
                continue; /* bad header: following keys belong to no section */
            char *name = norm_dup(line + i + 1, (size_t)(close - line - i - 1), true);
            if (!name || !*name || !add_section(ini, name)) {
                free(name);
                continue;
            }
            section = strdup(name);
            continue;
        }
        const char *eq = memchr(line + i, '=', len - i);
        if (!section || !eq)
            continue;
        char *key = norm_dup(line + i, (size_t)(eq - line - i), false);
        char *val = norm_dup(eq + 1, (size_t)(line + len - eq - 1), false);
        if (!key || !val || !*key) {
            free(key);
            free(val);
            continue;
        }
        for (char *p = key; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (indented && parent) {
            size_t kl = strlen(parent) + strlen(key) + 2;
            char *full = malloc(kl);
            if (full)
                snprintf(full, kl, "%s.%s", parent, key);
            free(key);
            key = full;
            if (!key) {
                free(val);
                continue;
            }
        } else {
            free(parent);
            parent = *val ? NULL : strdup(key);
        }
        if (!add_entry(ini, section, key, val)) {
            free(key);
            free(val);
        }
    }
    free(parent);
    free(section);
    return ini;
}

int aws_ini_load_file(const char *path, aws_ini **out)
{
    *out = NULL;
    if (!path || !*path)
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *buf = malloc(AWS_INI_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, AWS_INI_MAX_FILE + 1, f) : 0;
    bool err = ferror(f);
    fclose(f);
    if (!buf || err || n > AWS_INI_MAX_FILE) {
        if (buf)
            OPENSSL_cleanse(buf, n);
        free(buf);
        return -1;
    }
    *out = aws_ini_parse(buf, n);
    OPENSSL_cleanse(buf, n);
    free(buf);
    return *out ? 0 : -1;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void aws_ini_free(aws_ini *ini)
{
    if (!ini)
        return;
    for (size_t i = 0; i < ini->n; i++) {
        free(ini->e[i].section);
        free(ini->e[i].key);
        wipe_free(ini->e[i].value);
    }
    for (size_t i = 0; i < ini->ns; i++)
        free(ini->sections[i]);
    free(ini->e);
    free(ini->sections);
    free(ini);
}

const char *aws_ini_get(const aws_ini *ini, const char *section, const char *key)
{
    if (!ini || !section || !key)
        return NULL;
    for (size_t i = ini->n; i-- > 0;)
        if (!strcmp(ini->e[i].section, section) && !strcasecmp(ini->e[i].key, key))
            return ini->e[i].value;
    return NULL;
}

bool aws_ini_has_section(const aws_ini *ini, const char *section)
{
    if (!ini || !section)
        return false;
    for (size_t i = 0; i < ini->ns; i++)
        if (!strcmp(ini->sections[i], section))
            return true;
    return false;
}

size_t aws_ini_count(const aws_ini *ini) { return ini ? ini->n : 0; }

bool aws_ini_config_profile_section(const aws_ini *cfg, const char *profile, char *buf,
                                    size_t cap)
{
    if (!profile || !*profile)
        return false;
    int n = snprintf(buf, cap, "profile %s", profile);
    if (n < 0 || (size_t)n >= cap)
        return false;
    if (aws_ini_has_section(cfg, buf))
        return true;
    if (!strcmp(profile, "default") && aws_ini_has_section(cfg, "default")) {
        snprintf(buf, cap, "default");
        return true;
    }
    return false;
}
