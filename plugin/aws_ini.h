/* The AWS shared config / credentials file format: [section] headers,
 * "key = value" lines, '#'/';' comment lines, indented sub-properties (kept
 * as "parent.child"). Bounded and lenient: malformed lines are skipped. */
#ifndef SSM_AWS_INI_H
#define SSM_AWS_INI_H

#include <stdbool.h>
#include <stddef.h>

#define AWS_INI_MAX_FILE (1u << 20) /* files larger than 1 MiB are refused */
#define AWS_INI_MAX_ENTRIES 4096

typedef struct aws_ini aws_ini;

/* Parses text[0..n) (need not be NUL-terminated). NULL only on OOM. */
aws_ini *aws_ini_parse(const char *text, size_t n);
/* Loads a file. Returns 0, -1 when missing/unreadable/too large (*out NULL). */
int aws_ini_load_file(const char *path, aws_ini **out);
/* Wipes (values may be secrets) and frees. NULL is fine. */
void aws_ini_free(aws_ini *ini);

/* Section names are stored with surrounding blanks removed and inner runs of
 * blanks collapsed ("[ profile  dev ]" -> "profile dev"). Keys compare
 * case-insensitively; the last duplicate wins. NULL when absent. */
const char *aws_ini_get(const aws_ini *ini, const char *section, const char *key);
bool aws_ini_has_section(const aws_ini *ini, const char *section);
size_t aws_ini_count(const aws_ini *ini);

/* Profile lookup in the config file: "default" also matches
 * "[profile default]" (preferred when both exist), other names only
 * "[profile NAME]". Writes the section name into buf; false when absent. */
bool aws_ini_config_profile_section(const aws_ini *cfg, const char *profile, char *buf,
                                    size_t cap);

#endif
