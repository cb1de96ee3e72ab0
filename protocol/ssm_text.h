/* Tiny text helpers shared by the parsers. */
#ifndef SSM_TEXT_H
#define SSM_TEXT_H

/* Value of one hex digit, or -1. */
static inline int ssm_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
