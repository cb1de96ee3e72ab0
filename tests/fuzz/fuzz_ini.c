/* libFuzzer: the shared config parser must take any bytes without crashing. */
#include <stddef.h>
#include <stdint.h>

#include "aws_ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aws_ini *ini = aws_ini_parse((const char *)data, size);
    char buf[64];
    (void)aws_ini_get(ini, "default", "aws_access_key_id");
    (void)aws_ini_get(ini, "profile a", "a.b");
    (void)aws_ini_config_profile_section(ini, "default", buf, sizeof buf);
    (void)aws_ini_config_profile_section(ini, "a", buf, sizeof buf);
    aws_ini_free(ini);
    return 0;
}
